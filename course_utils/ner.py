"""A BiLSTM-CNN-CRF named-entity tagger (Ma & Hovy, 2016), trained from scratch.

Introduced in lesson 05.

For every token of a sentence the tagger builds a feature vector from

* a word embedding (randomly initialised), looked up for the *normalised*
  word: lowercased, with every digit replaced by 0 (``normalise_word``);
* a casing class (``casing``): lower, UPPER, Title, digits, ... embedded in a
  few dimensions, so that lowercasing loses nothing;
* a character CNN (``CharCNN``): the word's characters are embedded,
  convolved and max-pooled into one vector, which sees prefixes, suffixes and
  capitals of words the vocabulary has never met.

A bidirectional LSTM reads these vectors, a linear layer turns its outputs
into tag scores (emissions, shape (B, L, T)), and a linear-chain CRF
(``course_utils.crf``) scores whole tag sequences and decodes with Viterbi.
``TaggerConfig(use_crf=False)`` gives a softmax tagger (one independent
decision per token) and ``use_chars=False`` drops the character CNN, for the
lesson's ablation.

``Tagger`` is a trained network with its vocabularies: it tags new text,
evaluates, and saves itself as JSON (configuration, vocabularies) plus a
state_dict, with a manifest of their sha256. Training is in ``course_utils.ner_train``
and the command line (``python -m course_utils ner ...``) in ``course_utils.tooling.ner_cli``,
as a model and its training script are kept apart in nanoGPT: this module is what you
need to *use* a tagger.
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .checks import check_positive_int
from .crf import CRF
from .ner_data import (
    Corpus, Sentence, Vocab, build_char_vocab, build_tag_vocab, build_vocab, convert_tags,
    scheme_constraints, tag_violations,
)
from .tooling.tagger_files import (WEIGHTS_OVERHEAD_BYTES, ZIP_MAGIC, check_save_target, leftovers, read_json,
                                   read_manifest, read_verified, state_bytes, write_tagger_files)

# Casing classes; index 0 is padding.
CASINGS = ("<pad>", "lower", "upper", "title", "digits", "mostly_digits", "has_digit", "other")
_DIGIT = re.compile(r"\d")


def normalise_word(token: str, lowercase: bool = True) -> str:
    """The form a token is looked up under in the word vocabulary: digits become 0
    ("1996" -> "0000", so all years share one embedding) and, if ``lowercase``,
    letters are lowercased. Introduced in lesson 05."""
    return _DIGIT.sub("0", token.lower() if lowercase else token)


def casing(token: str) -> str:
    """The casing class of a token, one of ``CASINGS[1:]``. Introduced in lesson 05.

    "the" -> "lower", "EU" -> "upper", "Paris" -> "title", "1996" -> "digits",
    "12.5%" -> "mostly_digits", "A4" -> "has_digit", "iPhone"/"," -> "other".
    """
    digits = sum(char.isdigit() for char in token)
    if token and digits == len(token):
        return "digits"
    if digits > len(token) / 2:
        return "mostly_digits"
    if digits:
        return "has_digit"
    if token.islower():
        return "lower"
    if token.isupper():
        return "upper"
    if token[:1].isupper() and (len(token) == 1 or token[1:].islower()):
        return "title"
    return "other"


# ---------------------------------------------------------------------------
# Configuration, vocabularies and batches
# ---------------------------------------------------------------------------


@dataclass
class TaggerConfig:
    """Everything that defines a tagger's architecture. Introduced in lesson 05.

    Attributes:
        scheme: the tag scheme the model predicts: "BIO", "BIOES" or "BMES";
            training data is converted to it.
        word_dim: size of the word embeddings.
        casing_dim: size of the casing embeddings; 0 leaves casing out.
        use_chars: add the character CNN.
        char_dim, char_filters, char_kernel: character embedding size, number
            of convolution filters (the size of the word's character vector)
            and the convolution's width in characters.
        hidden_size: LSTM units per direction.
        dropout: dropout on the token features, the characters and the LSTM output.
        use_crf: score sequences with a CRF; False gives a softmax tagger.
        lowercase: lowercase words before the vocabulary lookup.
    """

    scheme: str = "BIOES"
    word_dim: int = 100
    casing_dim: int = 8
    use_chars: bool = True
    char_dim: int = 30
    char_filters: int = 50
    char_kernel: int = 3
    hidden_size: int = 200
    dropout: float = 0.5
    use_crf: bool = True
    lowercase: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.scheme, str) or self.scheme.upper() not in ("BIO", "BIOES", "BMES"):
            raise ValueError(f"scheme must be 'BIO', 'BIOES' or 'BMES', got {self.scheme!r}")
        self.scheme = self.scheme.upper()
        sizes = ("word_dim", "casing_dim", "char_dim", "char_filters", "char_kernel", "hidden_size")
        for name in sizes:
            value, smallest = getattr(self, name), 0 if name == "casing_dim" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < smallest:
                raise ValueError(f"{name} must be an int >= {smallest}, got {value!r}")
        for name in ("use_chars", "use_crf", "lowercase"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


@dataclass
class Batch:
    """B padded sentences as tensors. Introduced in lesson 05.

    Attributes:
        words: (B, L) long word ids (0 = padding).
        casings: (B, L) long casing ids (0 = padding).
        chars: (B, L, C) long character ids, C the longest word (0 = padding).
        mask: (B, L) bool, True on real tokens.
        tags: (B, L) long tag ids (0 on padding), or None when tagging new text.
    """

    words: Tensor
    casings: Tensor
    chars: Tensor
    mask: Tensor
    tags: Tensor | None = None

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        return Batch(**{k: None if v is None else v.to(device) for k, v in moved.items()})


@dataclass
class Vocabularies:
    """The word, character and tag vocabularies of a tagger. Introduced in lesson 05.

    Attributes:
        words: normalised words (see ``normalise_word``), with "<pad>" = 0 and "<unk>" = 1.
        chars: characters, with "<pad>" = 0 and "<unk>" = 1.
        tags: the tags of the model's scheme, "O" = 0.
        lowercase: whether words are lowercased before lookup.
    """

    words: Vocab
    chars: Vocab
    tags: Vocab
    lowercase: bool = True

    @classmethod
    def from_sentences(cls, sentences: Sequence[Sentence], lowercase: bool = True) -> Vocabularies:
        """Every normalised word, character and tag of ``sentences`` (the training set)."""
        tokens = [token for sentence in sentences for token in sentence.tokens]
        return cls(
            words=build_vocab(normalise_word(token, lowercase) for token in tokens),
            chars=build_char_vocab(tokens),
            tags=build_tag_vocab([sentence.tags for sentence in sentences]),
            lowercase=lowercase,
        )

    def encode(self, tokens: Sequence[str], tags: Sequence[str] | None = None) -> dict[str, Tensor]:
        """One sentence of n tokens as tensors: words (n,), casings (n,), chars
        (n, c) with c its longest token, and tags (n,) if given."""
        tokens = _token_lists([tokens])[0]
        if tags is not None and (not _is_tag_list(tags) or len(tags) != len(tokens)):
            raise TypeError(f"expected {len(tokens)} tags (strings), one per token, got {tags!r:.200}")
        return self._encode(tokens, tags)

    def _encode(self, tokens: list[str], tags: Sequence[str] | None = None) -> dict[str, Tensor]:
        """`encode` for a token list already checked."""
        longest = max(len(token) for token in tokens)
        chars = torch.zeros(len(tokens), longest, dtype=torch.long)
        for i, token in enumerate(tokens):
            chars[i, :len(token)] = torch.tensor(self.chars.encode(list(token)))
        encoded = {
            "words": torch.tensor(self.words.encode([normalise_word(t, self.lowercase) for t in tokens])),
            "casings": torch.tensor([CASINGS.index(casing(token)) for token in tokens]),
            "chars": chars,
        }
        if tags is not None:
            encoded["tags"] = torch.tensor(self.tags.encode(tags))
        return encoded

    def to_json(self) -> dict:
        """A JSON-ready dict; ``from_json`` reads it back."""
        return {"words": self.words.itos, "chars": self.chars.itos, "tags": self.tags.itos,
                "lowercase": self.lowercase}

    @classmethod
    def from_json(cls, data: dict) -> Vocabularies:
        """The vocabularies saved by ``to_json``."""
        return cls(Vocab(data["words"]), Vocab(data["chars"]), Vocab(data["tags"]),
                   bool(data["lowercase"]))


def read_embeddings(path: str | Path, vocabularies: Vocabularies, dim: int) -> tuple[Tensor, Tensor]:
    """Pre-trained vectors for the words of a tagger's vocabulary, from a GloVe-format file.
    Introduced in lesson 05.

    The format of GloVe (https://nlp.stanford.edu/projects/glove/, e.g. glove.6B.100d.txt):
    one word per line, then its ``dim`` numbers, separated by spaces. Words are looked up
    as the vocabulary stores them (``normalise_word``); the first line of a word wins.

    Args:
        path: the file (UTF-8).
        vocabularies: the tagger's vocabularies; their V words get vectors.
        dim: the width every line must have (the tagger's ``word_dim``).

    Returns:
        vectors (V, dim) float32, zero for words the file lacks, and found (V,) bool.

    Raises:
        ValueError: naming the file and line of a line of another width, a value that is
            not a finite number, text that is not UTF-8, or a file without any vector.
    """
    path = Path(path)
    vectors = torch.zeros(len(vocabularies.words), dim)
    found = torch.zeros(len(vocabularies.words), dtype=torch.bool)
    specials = {vocabularies.words.pad_index, vocabularies.words.unk_index}
    lines = 0
    with open(path, encoding="utf-8") as handle:
        try:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != dim + 1:
                    raise ValueError(f"{path} line {number}: expected a word and {dim} numbers (the "
                                     f"tagger's word_dim), got {len(fields) - 1} values")
                try:
                    vector = torch.from_numpy(np.array(fields[1:], dtype=np.float32))
                except ValueError as error:
                    raise ValueError(f"{path} line {number}: expected {dim} numbers after the word ({error})") from None
                if not torch.isfinite(vector).all():
                    raise ValueError(f"{path} line {number}: expected finite numbers, got NaN or inf")
                lines += 1
                index = vocabularies.words.stoi.get(normalise_word(fields[0], vocabularies.lowercase))
                if index is not None and index not in specials and not found[index]:
                    vectors[index], found[index] = vector, True
        except UnicodeDecodeError as error:
            raise ValueError(f"{path}: not valid UTF-8 ({error.reason})") from None
    if not lines:
        raise ValueError(f"{path} holds no vectors: expected lines of a word and {dim} numbers, "
                         "as in GloVe's glove.6B.100d.txt")
    return vectors, found


def collate(encoded: Sequence[dict[str, Tensor]]) -> Batch:
    """Pad B encoded sentences (``Vocabularies.encode``) into one ``Batch``. Introduced in lesson 05."""
    if not encoded:
        raise ValueError("expected at least one encoded sentence to collate, got none")
    lengths = [len(sentence["words"]) for sentence in encoded]
    size, length = len(encoded), max(lengths)
    longest_word = max(sentence["chars"].size(1) for sentence in encoded)
    words = torch.zeros(size, length, dtype=torch.long)
    casings = torch.zeros(size, length, dtype=torch.long)
    chars = torch.zeros(size, length, longest_word, dtype=torch.long)
    tags = torch.zeros(size, length, dtype=torch.long) if "tags" in encoded[0] else None
    for b, (sentence, n) in enumerate(zip(encoded, lengths)):
        words[b, :n] = sentence["words"]
        casings[b, :n] = sentence["casings"]
        chars[b, :n, :sentence["chars"].size(1)] = sentence["chars"]
        if tags is not None:
            tags[b, :n] = sentence["tags"]
    mask = torch.arange(length) < torch.tensor(lengths).unsqueeze(1)
    return Batch(words, casings, chars, mask, tags)


# ---------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------


class CharCNN(nn.Module):
    """A vector per word from its characters: embed, convolve, max over positions.

    Introduced in lesson 05. Ma & Hovy (2016) use 30-dimensional character
    embeddings and 30 filters of width 3, with dropout before the convolution.

    Args:
        num_chars: size of the character vocabulary (index 0 is padding).
        char_dim: E, the character embedding size.
        filters: F, the number of filters (the output size).
        kernel_size: the filters' width in characters (odd).
        dropout: dropout on the character embeddings.
    """

    def __init__(self, num_chars: int, char_dim: int, filters: int, kernel_size: int,
                 dropout: float) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.dropout = nn.Dropout(dropout)
        self.conv = nn.Conv1d(char_dim, filters, kernel_size, padding=kernel_size // 2)

    def forward(self, chars: Tensor, mask: Tensor) -> Tensor:
        """Args: chars (B, L, C) long, 0 = padding; mask (B, L) bool.

        Returns:
            (B, L, F): one vector per token, zeros on padding tokens.
        """
        words = chars[mask]                                       # (N, C): the N real tokens
        x = self.dropout(self.embedding(words))                   # (N, C, E)
        x = self.conv(x.transpose(1, 2))                          # (N, F, C)
        x = x.masked_fill((words == 0).unsqueeze(1), float("-inf"))  # padding never wins the max
        vectors = x.max(dim=2).values                             # (N, F)
        out = vectors.new_zeros(*mask.shape, vectors.size(1))     # (B, L, F)
        out[mask] = vectors
        return out


class BiLSTMTagger(nn.Module):
    """Token features -> BiLSTM -> tag scores -> CRF (or softmax). Introduced in lesson 05.

    Args:
        config: the architecture (see ``TaggerConfig``).
        num_words, num_chars: vocabulary sizes (index 0 is padding in both).
        tag_names: the T tags, in id order; with a CRF, the transitions that
            ``config.scheme`` forbids are never decoded.
    """

    def __init__(self, config: TaggerConfig, num_words: int, num_chars: int,
                 tag_names: Sequence[str]) -> None:
        super().__init__()
        self.config = config
        self.word_embedding = nn.Embedding(num_words, config.word_dim, padding_idx=0)
        bound = math.sqrt(3 / config.word_dim)  # variance 1 / word_dim, as Ma & Hovy
        with torch.no_grad():
            self.word_embedding.weight[1:].uniform_(-bound, bound)
        features = config.word_dim
        self.casing_embedding = None
        if config.casing_dim:
            self.casing_embedding = nn.Embedding(len(CASINGS), config.casing_dim, padding_idx=0)
            features += config.casing_dim
        self.char_cnn = None
        if config.use_chars:
            self.char_cnn = CharCNN(num_chars, config.char_dim, config.char_filters,
                                    config.char_kernel, config.dropout)
            features += config.char_filters
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(features, config.hidden_size, batch_first=True, bidirectional=True)
        with torch.no_grad():  # forget-gate bias 1 (gates are ordered input, forget, cell, output)
            for name, parameter in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    parameter[config.hidden_size:2 * config.hidden_size] = 1.0
        self.output = nn.Linear(2 * config.hidden_size, len(tag_names))
        self.crf = None
        if config.use_crf:
            self.crf = CRF(len(tag_names), scheme_constraints(list(tag_names), config.scheme))

    def emissions(self, batch: Batch) -> Tensor:
        """Tag scores of every token: (B, L, T), for batch words (B, L)."""
        features = [self.word_embedding(batch.words)]                       # (B, L, word_dim)
        if self.casing_embedding is not None:
            features.append(self.casing_embedding(batch.casings))           # (B, L, casing_dim)
        if self.char_cnn is not None:
            features.append(self.char_cnn(batch.chars, batch.mask))         # (B, L, F)
        x = self.dropout(torch.cat(features, dim=2))                        # (B, L, D)
        lengths = batch.mask.sum(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = pad_packed_sequence(hidden, batch_first=True, total_length=x.size(1))  # (B, L, 2H)
        return self.output(self.dropout(hidden))                            # (B, L, T)

    def loss(self, batch: Batch) -> Tensor:
        """Mean over the B sentences of the negative log-likelihood of their tags: ()."""
        if batch.tags is None:
            raise ValueError("the batch has no tags to compute a loss from")
        emissions = self.emissions(batch)
        if self.crf is not None:
            return self.crf(emissions, batch.tags, batch.mask, reduction="mean")
        # Softmax tagger: token cross-entropies, summed per sentence like the CRF's NLL.
        token_losses = nn.functional.cross_entropy(emissions[batch.mask], batch.tags[batch.mask],
                                                   reduction="sum")
        return token_losses / batch.words.size(0)

    @torch.no_grad()
    def decode(self, batch: Batch) -> list[list[int]]:
        """The predicted tag ids of each sentence: B lists, each as long as its sentence."""
        emissions = self.emissions(batch)                                   # (B, L, T)
        if self.crf is not None:
            return self.crf.decode(emissions, batch.mask)
        lengths = batch.mask.sum(1).tolist()
        return [row[:n] for row, n in zip(emissions.argmax(2).tolist(), lengths)]


# ---------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------


@torch.no_grad()
def constrained_softmax_predict(tagger: Tagger, token_lists: Sequence[Sequence[str]],
                                batch_size: int = 256) -> list[list[str]]:
    """The tags of a *softmax* tagger decoded under its scheme's constraints: Viterbi over each token's
    log-probabilities, with every allowed transition (and first and last tag) scored 0 and every
    forbidden one excluded. This keeps the ban on invalid sequences that a CRF brings and nothing it
    learns, so it separates the ban from the CRF's training. Introduced in lesson 05.

    Args:
        tagger: a trained tagger with ``use_crf=False``.
        token_lists: N token lists.
        batch_size: sentences per forward pass.

    Returns:
        N tag lists in ``tagger.scheme``, none of them invalid.
    """
    model = tagger.model
    if model.crf is not None:
        raise ValueError("expected a softmax tagger (TaggerConfig(use_crf=False)); a CRF tagger decodes with "
                         "its own constraints already")
    check_positive_int("batch_size", batch_size)
    names = tagger.vocabularies.tags.itos
    ban = CRF(len(names), scheme_constraints(list(names), tagger.scheme))
    for parameter in ban.parameters():
        parameter.data.zero_()                                  # allowed transitions: score 0, learned nothing
    token_lists = _token_lists(token_lists)
    device = next(model.parameters()).device
    ban.to(device)
    model.eval()
    order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
    predictions: list[list[str]] = [[] for _ in token_lists]
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = collate([tagger.vocabularies._encode(token_lists[i]) for i in chunk]).to(device)
        log_probabilities = model.emissions(batch).log_softmax(2)     # (B, L, T)
        for i, ids in zip(chunk, ban.decode(log_probabilities, batch.mask)):
            predictions[i] = tagger.vocabularies.tags.decode(ids)
    return predictions




def _as_bio(tag_lists: Sequence[Sequence[str]], scheme: str) -> list[list[str]]:
    """Each sentence's tags converted from ``scheme`` to BIO."""
    return [convert_tags(list(tags), scheme, "BIO") for tags in tag_lists]


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                  gold_scheme: str = "BIO", predicted_scheme: str = "BIO") -> dict[str, float]:
    """Entity-level precision, recall and F1 (seqeval, as CoNLL's conlleval). Introduced in lesson 05.

    An entity counts as found only if its type and both boundaries are right.
    Both sides are converted to BIO first (invalid predicted sequences are
    read as ``ner_data.tags_to_spans`` describes).

    Args:
        gold, predicted: one list of tags per sentence, same lengths.
        gold_scheme, predicted_scheme: their tag schemes.

    Returns:
        {"precision": float, "recall": float, "f1": float}.
    """
    gold_bio, predicted_bio = _check_pairs(gold, predicted, gold_scheme, predicted_scheme)
    return {"precision": precision_score(gold_bio, predicted_bio, zero_division=0),
            "recall": recall_score(gold_bio, predicted_bio, zero_division=0),
            "f1": f1_score(gold_bio, predicted_bio, zero_division=0)}


def entity_report(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
                  gold_scheme: str = "BIO", predicted_scheme: str = "BIO") -> pd.DataFrame:
    """Per-type precision, recall, F1 and support (seqeval). Introduced in lesson 05.

    Same arguments as ``entity_scores``. Returns one row per entity type plus
    the micro, macro and weighted averages.
    """
    gold_bio, predicted_bio = _check_pairs(gold, predicted, gold_scheme, predicted_scheme)
    report = classification_report(gold_bio, predicted_bio, output_dict=True, zero_division=0)
    return pd.DataFrame(report).T.rename(columns={"f1-score": "f1"})


def _is_tag_list(tags: object) -> bool:
    """Whether ``tags`` is a list (or tuple) of strings."""
    return isinstance(tags, (list, tuple)) and all(isinstance(tag, str) for tag in tags)


def _check_tag_lists(tag_lists: object, name: str) -> None:
    """Raise a TypeError unless ``tag_lists`` is a list of sentences, each a list of tag strings."""
    if not isinstance(tag_lists, (list, tuple)):
        raise TypeError(f"{name}: expected a list of sentences, each a list of tags such as "
                        f"[['B-PER', 'O']], got {type(tag_lists).__name__} {tag_lists!r:.80}")
    for i, tags in enumerate(tag_lists):
        if not _is_tag_list(tags):
            raise TypeError(f"{name}, sentence {i}: expected a list of tags (strings) such as "
                            f"['B-PER', 'O'], got {type(tags).__name__} {tags!r:.80}")


def _check_pairs(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], gold_scheme: str,
                 predicted_scheme: str) -> tuple[list[list[str]], list[list[str]]]:
    """Check that gold and predicted tags pair up sentence by sentence; return both in BIO."""
    _check_tag_lists(gold, "gold")
    _check_tag_lists(predicted, "predicted")
    if len(gold) != len(predicted):
        raise ValueError(f"expected as many predicted as gold sentences, got {len(predicted)} "
                         f"and {len(gold)}")
    if not gold:
        raise ValueError("no sentences to score: expected at least one gold sentence and its prediction")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted tags")
    return _as_bio(gold, gold_scheme), _as_bio(predicted, predicted_scheme)


def invalid_sequences(tag_lists: Sequence[Sequence[str]], scheme: str) -> int:
    """How many sentences' tags break the rules of ``scheme`` (``ner_data.tag_violations``),
    such as ``O I-PER`` in BIO. Introduced in lesson 05."""
    _check_tag_lists(tag_lists, "tag_lists")
    return sum(bool(tag_violations(list(tags), scheme)) for tags in tag_lists)


# ---------------------------------------------------------------------------
# The tagger: network + vocabularies
# ---------------------------------------------------------------------------


def _token_lists(sentences: Sequence[str] | Sequence[Sequence[str]]) -> list[list[str]]:
    """Whitespace-tokenise strings; check that every sentence is a non-empty list of tokens."""
    if isinstance(sentences, str):
        raise TypeError("expected a list of sentences; for one sentence pass [text]")
    token_lists = []
    for i, sentence in enumerate(sentences):
        tokens = sentence.split() if isinstance(sentence, str) else sentence
        if not isinstance(tokens, (list, tuple)) or not all(isinstance(t, str) and t for t in tokens):
            raise TypeError(f"sentence {i}: expected a string or a list of non-empty strings, "
                            f"got {sentence!r}")
        if not tokens:
            raise ValueError(f"sentence {i} has no tokens")
        if any(any(c.isspace() for c in t) for t in tokens):
            raise ValueError(f"sentence {i}: tokens may not contain whitespace, got {tokens!r}")
        token_lists.append(list(tokens))
    return token_lists


class Tagger:
    """A trained tagger: the network and its vocabularies. Introduced in lesson 05.

    Args:
        model: the network.
        vocabularies: its word, character and tag vocabularies.
    """

    def __init__(self, model: BiLSTMTagger, vocabularies: Vocabularies) -> None:
        self.model = model
        self.vocabularies = vocabularies

    @property
    def scheme(self) -> str:
        """The tag scheme the tagger predicts."""
        return self.model.config.scheme

    def predict(self, token_lists: Sequence[Sequence[str]], batch_size: int = 256) -> list[list[str]]:
        """The predicted tags (in ``self.scheme``) of each of N token lists."""
        check_positive_int("batch_size", batch_size)
        return self._predict(_token_lists(token_lists), batch_size)

    def _predict(self, token_lists: list[list[str]], batch_size: int = 256) -> list[list[str]]:
        """`predict` for token lists already checked."""
        device = next(self.model.parameters()).device
        self.model.eval()
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        predictions: list[list[str]] = [[] for _ in token_lists]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate([self.vocabularies._encode(token_lists[i]) for i in chunk]).to(device)
            for i, ids in zip(chunk, self.model.decode(batch)):
                predictions[i] = self.vocabularies.tags.decode(ids)
        return predictions

    def tag(self, sentences: Sequence[str] | Sequence[Sequence[str]],
            scheme: str | None = None) -> list[list[tuple[str, str]]]:
        """Tag new text.

        Args:
            sentences: N sentences, each a whitespace-tokenised string or a list of tokens.
            scheme: the scheme of the returned tags; None means ``self.scheme``.

        Returns:
            N lists of (token, tag) pairs.
        """
        token_lists = _token_lists(sentences)
        predictions = self._predict(token_lists)
        if scheme is not None:
            predictions = [convert_tags(tags, self.scheme, scheme) for tags in predictions]
        return [list(zip(tokens, tags)) for tokens, tags in zip(token_lists, predictions)]

    def evaluate(self, corpus: Corpus) -> dict[str, float]:
        """Entity precision, recall and F1 on a corpus, and the number of invalid
        predicted sequences: {"precision", "recall", "f1", "invalid"}."""
        if not isinstance(corpus, Corpus):
            raise TypeError(f"expected a ner_data.Corpus, got {type(corpus).__name__}")
        if not len(corpus):
            raise ValueError("the corpus has no sentences: expected at least one to evaluate on")
        predictions = self.predict([sentence.tokens for sentence in corpus])
        scores = entity_scores([s.tags for s in corpus], predictions, corpus.scheme, self.scheme)
        return {**scores, "invalid": invalid_sequences(predictions, self.scheme)}

    def save(self, directory: str | Path) -> Path:
        """Write config.json, vocabularies.json, weights.pt (a state_dict) and manifest.json (the
        sha256 of the other three, written last) to ``directory``.

        The files are written to a new sibling folder first, which then takes the place of
        ``directory`` (``tooling.tagger_files``): a failure part-way (a full disk, an
        interrupt) leaves an older tagger in ``directory`` as it was, and loadable. SIGINT,
        SIGTERM and SIGHUP that arrive meanwhile are held back and raised once the save is
        over, so nothing stops it half-way and no signal is lost. Staging folders that a
        killed save left beside ``directory`` are removed first (so two saves to one folder
        must not run at once). ``directory`` may be new, empty or a saved tagger (see
        `check_save_target`).

        Raises:
            ValueError: ``directory`` cannot hold a tagger (see `check_save_target`).
            OSError: the files could not be written (a full disk, no permission); the tagger
                in memory is unchanged, so it can be saved elsewhere.
        """
        directory = check_save_target(directory)
        weights = io.BytesIO()
        torch.save(self.model.state_dict(), weights)
        files = {
            "config.json": json.dumps(asdict(self.model.config), indent=1).encode(),
            "vocabularies.json": json.dumps(self.vocabularies.to_json(), ensure_ascii=False).encode(),
            "weights.pt": weights.getvalue(),
        }
        return write_tagger_files(directory, files)

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> Tagger:
        """The tagger saved by ``save``.

        Every file is checked against manifest.json, and its size against what such a
        tagger can hold, before it is used; the weights are loaded with ``weights_only=True``
        (no code runs). A staging folder left by a killed save is named in a warning.

        Raises:
            FileNotFoundError: a file of a saved tagger is missing.
            ValueError: naming the file that is corrupted, too large or not what ``save`` writes.
        """
        directory = Path(directory)
        digests = read_manifest(directory)
        for leftover in leftovers(directory, (".part", ".check")):
            warnings.warn(f"{leftover} was left by an interrupted save of {directory}; the next save "
                          "there removes it (or delete it)", stacklevel=2)
        config = read_json(directory / "config.json", digests, lambda data: TaggerConfig(**data))
        vocabularies = read_json(directory / "vocabularies.json", digests, Vocabularies.from_json)
        try:
            model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars), vocabularies.tags.itos)
        except (ValueError, RuntimeError, MemoryError) as error:
            raise ValueError(f"{directory}: config.json and vocabularies.json describe no network this "
                             f"machine can build ({type(error).__name__}: {error})") from None
        path = directory / "weights.pt"
        weights = read_verified(path, digests[path.name], state_bytes(model) + WEIGHTS_OVERHEAD_BYTES)
        if not weights.startswith(ZIP_MAGIC):
            raise ValueError(f"{path} is not a file torch.save writes (expected a zip archive, which starts "
                             f"with {ZIP_MAGIC!r}, got {weights[:4]!r}); save the tagger again")
        try:
            state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
            model.load_state_dict(state)
        except Exception as error:  # a corrupt file, or weights of another architecture
            raise ValueError(f"{path} does not hold this tagger's weights ({error})") from error
        return cls(model.to(device).eval(), vocabularies)
