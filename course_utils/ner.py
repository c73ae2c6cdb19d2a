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
state_dict. Training and the command line (``python -m course_utils ner ...``)
are in ``course_utils.ner_train``, as a model and its training script are kept
apart in nanoGPT: this module is what you need to *use* a tagger.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .crf import CRF, scheme_constraints
from .ner_data import (
    Corpus, Sentence, Vocab, build_char_vocab, build_tag_vocab, build_vocab, convert_tags,
    tag_violations,
)

# The files of a saved tagger (see Tagger.save).
SAVED_FILES = ("config.json", "vocabularies.json", "weights.pt")

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


def collate(encoded: Sequence[dict[str, Tensor]]) -> Batch:
    """Pad B encoded sentences (``Vocabularies.encode``) into one ``Batch``. Introduced in lesson 05."""
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


def _check_pairs(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], gold_scheme: str,
                 predicted_scheme: str) -> tuple[list[list[str]], list[list[str]]]:
    """Check that gold and predicted tags pair up sentence by sentence; return both in BIO."""
    if len(gold) != len(predicted):
        raise ValueError(f"expected as many predicted as gold sentences, got {len(predicted)} "
                         f"and {len(gold)}")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted tags")
    return _as_bio(gold, gold_scheme), _as_bio(predicted, predicted_scheme)


def invalid_sequences(tag_lists: Sequence[Sequence[str]], scheme: str) -> int:
    """How many sentences' tags break the rules of ``scheme`` (``ner_data.tag_violations``),
    such as ``O I-PER`` in BIO. Introduced in lesson 05."""
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


def check_save_target(directory: str | Path) -> Path:
    """``directory`` as a Path, if a tagger can be saved there: a new folder, an empty one or
    a saved tagger (which is replaced). Introduced in lesson 05.

    Raises:
        ValueError: ``directory`` is a file, lies under a file, or is a folder that
            holds files other than a saved tagger's (saving would delete them).
    """
    directory = Path(directory)
    for path in (directory, *directory.parents):
        if path.exists() and not path.is_dir():
            where = "is" if path == directory else f"lies under {path}, which is"
            raise ValueError(f"cannot save a tagger to {directory}: it {where} a file, not a folder")
    if directory.is_dir():
        others = sorted(p.name for p in directory.iterdir() if p.name not in SAVED_FILES)
        if others:
            raise ValueError(f"cannot save a tagger to {directory}: it holds other files than a saved "
                             f"tagger ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
                             f"choose a new or empty folder")
    return directory


def _swap_in(staging: Path, directory: Path) -> None:
    """Put the folder ``staging`` at ``directory`` by renames; an old ``directory`` is moved
    aside first and deleted once the new one is in place (or put back if that fails)."""
    if not directory.exists():
        os.replace(staging, directory)
        return
    old = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".old"))
    os.replace(directory, old)  # replaces the empty folder mkdtemp made
    try:
        os.replace(staging, directory)
    except BaseException:
        os.replace(old, directory)
        raise
    shutil.rmtree(old, ignore_errors=True)


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
        token_lists = _token_lists(token_lists)
        device = next(self.model.parameters()).device
        self.model.eval()
        order = sorted(range(len(token_lists)), key=lambda i: len(token_lists[i]))
        predictions: list[list[str]] = [[] for _ in token_lists]
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate([self.vocabularies.encode(token_lists[i]) for i in chunk]).to(device)
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
        predictions = self.predict(token_lists)
        if scheme is not None:
            predictions = [convert_tags(tags, self.scheme, scheme) for tags in predictions]
        return [list(zip(tokens, tags)) for tokens, tags in zip(token_lists, predictions)]

    def evaluate(self, corpus: Corpus) -> dict[str, float]:
        """Entity precision, recall and F1 on a corpus, and the number of invalid
        predicted sequences: {"precision", "recall", "f1", "invalid"}."""
        if not isinstance(corpus, Corpus):
            raise TypeError(f"expected a ner_data.Corpus, got {type(corpus).__name__}")
        predictions = self.predict([sentence.tokens for sentence in corpus])
        scores = entity_scores([s.tags for s in corpus], predictions, corpus.scheme, self.scheme)
        return {**scores, "invalid": invalid_sequences(predictions, self.scheme)}

    def save(self, directory: str | Path) -> Path:
        """Write config.json, vocabularies.json and weights.pt (a state_dict) to ``directory``.

        The files are written to a new sibling folder first, which then takes the
        place of ``directory`` by renames: a failure part-way (a full disk, an
        interrupt) leaves an older tagger in ``directory`` as it was, and loadable.
        ``directory`` may be new, empty or a saved tagger (see `check_save_target`).
        """
        directory = check_save_target(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".saving"))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; a folder made by mkdir would not be
        try:
            (staging / "config.json").write_text(json.dumps(asdict(self.model.config), indent=1))
            (staging / "vocabularies.json").write_text(
                json.dumps(self.vocabularies.to_json(), ensure_ascii=False))
            torch.save(self.model.state_dict(), staging / "weights.pt")
            _swap_in(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: torch.device | str = "cpu") -> Tagger:
        """The tagger saved by ``save`` (weights loaded with ``weights_only=True``: no code runs)."""
        directory = Path(directory)
        paths = [directory / name for name in SAVED_FILES]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{directory} is not a saved tagger: missing {missing}")
        try:
            config = TaggerConfig(**json.loads(paths[0].read_text()))
            vocabularies = Vocabularies.from_json(json.loads(paths[1].read_text()))
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise ValueError(f"{directory}: unreadable configuration or vocabularies ({error})") from None
        model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars),
                             vocabularies.tags.itos)
        try:
            model.load_state_dict(torch.load(paths[2], map_location="cpu", weights_only=True))
        except Exception as error:  # a corrupt file, or weights of another architecture
            raise ValueError(f"{paths[2]} does not hold this tagger's weights ({error})") from error
        return cls(model.to(device).eval(), vocabularies)
