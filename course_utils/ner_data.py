"""Column-format NER corpora, tag schemes and vocabularies.

Introduced in lesson 05 (BiLSTM-CNN-CRF named-entity recognition).

The module has three parts:

* ``read_conll``: reads a column-format corpus (CoNLL-2003, Resume NER, ...)
  into a ``Corpus`` of ``Sentence`` objects, checking every line;
* Tag schemes: ``detect_scheme``, ``convert_tags``, ``tags_to_spans``,
  ``spans_to_tags``, ``tag_violations`` and ``may_follow``. This is the one
  home of the schemes' rules: the CRF's transition constraints
  (``scheme_constraints``) are built from ``may_follow``.
* Vocabularies: ``build_vocab``, ``build_char_vocab`` and ``build_tag_vocab``
  build the course's one vocabulary class, ``course_utils.vocab.Vocab``
  (lesson 02), for tokens, characters and tags.

Tag schemes
-----------
An entity is a span of tokens with a type (PER, LOC, ...). A tag scheme writes
the spans as one tag per token, ``O`` (outside) or ``PREFIX-TYPE``::

                 Alex   Smith  visited  New    York   City   .
    IOB1         I-PER  I-PER  O        I-LOC  I-LOC  I-LOC  O
    BIO (IOB2)   B-PER  I-PER  O        B-LOC  I-LOC  I-LOC  O
    BIOES        B-PER  E-PER  O        B-LOC  I-LOC  E-LOC  O
    BMES         B-PER  E-PER  O        B-LOC  M-LOC  E-LOC  O

* IOB1 (the original CoNLL-2003 files): an entity starts with ``I-``; ``B-``
  marks the first token of an entity only when it directly follows another
  entity of the same type ("I-PER I-PER B-PER" is two people).
* BIO, also called IOB2: every entity starts with ``B-``, goes on with ``I-``.
* BIOES: like BIO, but the last token of an entity is ``E-`` and a one-token
  entity is ``S-`` (single).
* BMES (Resume NER): BIOES with ``M-`` (middle) in place of ``I-``.

Conversions go through spans: ``tags_to_spans`` reads the entities in one
scheme, ``spans_to_tags`` writes them in another.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import torch

from .checks import check_positive_int
from .vocab import PAD, UNK, Vocab

SCHEMES = ("IOB1", "BIO", "BIOES", "BMES")
# Other names accepted wherever a scheme is given.
_ALIASES = {"IOB2": "BIO"}
# The prefixes each scheme may use (besides the tag "O").
_PREFIXES = {"IOB1": "BI", "BIO": "BI", "BIOES": "BIES", "BMES": "BMES"}
# Prefixes that continue the entity of the previous token, when its type matches.
_CONTINUES = {"IOB1": "I", "BIO": "I", "BIOES": "IE", "BMES": "ME"}
# Prefixes that close their entity on the current token.
_CLOSES = "ES"
# The prefix of the tokens between the first and the last, per scheme.
_INSIDE = {"IOB1": "I", "BIO": "I", "BIOES": "I", "BMES": "M"}

# An entity span: (type, start, end), end exclusive, so tokens[start:end] is the entity.
Span = tuple[str, int, int]

# The grammar of an entity type: letters, digits, _ and other symbols, in parts joined by single
# inner hyphens or dots, as real corpora write them (PER, WORK_OF_ART, ORG-CORP, NORP.X).
_TYPE = re.compile(r"[^\s.\-]+(?:[.\-][^\s.\-]+)*")
# A type that starts with a prefix ("B-B-PER") is a doubled prefix, not a type.
_DOUBLED_PREFIX = re.compile(r"[BIMES]-")
_TYPE_RULE = ("TYPE made of letters, digits and symbols, in parts joined by single inner "
              "hyphens or dots (PER, ORG-CORP, NORP.X), not starting with a prefix such as B-, "
              "without invisible (format, control or space) characters")


def _canonical_scheme(scheme: str) -> str:
    """The canonical name of ``scheme`` (case-insensitive, IOB2 -> BIO), or a ValueError."""
    if not isinstance(scheme, str):
        raise TypeError(f"expected the tag scheme as a string, got {type(scheme).__name__}")
    name = _ALIASES.get(scheme.upper(), scheme.upper())
    if name not in SCHEMES:
        raise ValueError(
            f"unknown tag scheme {scheme!r}: expected one of IOB1, BIO (or IOB2), BIOES, BMES"
        )
    return name


def _is_type(type_: object) -> bool:
    """True if ``type_`` follows the grammar of entity types (see ``_TYPE``)."""
    return (isinstance(type_, str) and bool(_TYPE.fullmatch(type_)) and not _DOUBLED_PREFIX.match(type_)
            and not any(unicodedata.category(char)[0] in "CZ" for char in type_))


def _split_tag(tag: str, prefixes: str) -> tuple[str, str | None]:
    """Split ``tag`` into (prefix, type): "B-PER" -> ("B", "PER"), "O" -> ("O", None).

    Raises a ValueError unless ``tag`` is "O" or PREFIX-TYPE with a prefix in
    ``prefixes`` and a type that follows the grammar of types (so "B-FOO-",
    "B--", "B-" and "B-B-PER" are errors).
    """
    if tag == "O":
        return "O", None
    if isinstance(tag, str) and len(tag) > 2 and tag[1] == "-" and tag[0] in prefixes and _is_type(tag[2:]):
        return tag[0], tag[2:]
    expected = ", ".join(f"{p}-TYPE" for p in prefixes)
    raise ValueError(f"unknown tag {tag!r}: expected 'O' or one of {expected}, with a {_TYPE_RULE}")


def _check_sequence(tags: object, what: str = "tags") -> None:
    """Raise a TypeError unless ``tags`` is a list or tuple of tags (not one string)."""
    if not isinstance(tags, (list, tuple)):
        raise TypeError(f"expected {what} to be a list of tag strings, got {type(tags).__name__}")


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """Guess the tag scheme of a corpus from its tag sequences. Introduced in lesson 05.

    Args:
        tag_sequences: one list of tags per sentence (each of length T_i).
            Sentences matter: IOB1 is told from BIO by how entities start.

    Returns:
        "BMES" if any tag uses ``M-``; else "BIOES" if any uses ``E-`` or
        ``S-``; else "IOB1" if some entity starts with ``I-`` (an ``I-X`` that
        does not follow ``B-X`` or ``I-X``); else "BIO". A corpus of only
        ``O`` tags is reported as "BIO".

    Raises:
        ValueError: for no tags at all; for a tag that is neither "O" nor PREFIX-TYPE with prefix
            B, I, M, E or S; for tags that mix ``I-`` and ``M-``; and when the
            tags that point to a scheme are outnumbered by the places that
            break its rules (one ``S-`` typo in a BIO corpus does not make it
            BIOES): the message names the first of each.
    """
    if isinstance(tag_sequences, (str, bytes)):
        raise TypeError("expected a list of tag sequences (one list per sentence), got a string")
    sequences = list(tag_sequences)
    for n, tags in enumerate(sequences):
        _check_sequence(tags, f"tag sequence {n}")
    if not any(sequences):
        raise ValueError("expected at least one tag to guess a scheme from, got no tags "
                         "(an empty corpus, or a file that was read wrongly?)")
    return _detect_scheme(sequences, lambda n, i: f"sentence {n}, token {i}")


def _detect_scheme(sequences: list[Sequence[str]], where: Callable[[int, int], str]) -> str:
    """``detect_scheme`` for checked lists of tags; ``where(sentence, token)`` names a place in errors."""
    evidence: dict[str, list[tuple[int, int]]] = {}  # prefix or "I-start" -> its places
    for n, tags in enumerate(sequences):
        previous: tuple[str, str | None] = ("O", None)
        for i, tag in enumerate(tags):
            try:
                prefix, type_ = _split_tag(tag, "BIMES")
            except ValueError as error:
                raise ValueError(f"{where(n, i)}: {error}") from None
            evidence.setdefault(prefix, []).append((n, i))
            if prefix == "I" and not (previous[0] in "BI" and previous[1] == type_):
                evidence.setdefault("I-start", []).append((n, i))
            previous = (prefix, type_)
    if "M" in evidence and "I" in evidence:
        raise ValueError(
            "the tags mix I- (IOB1, BIO, BIOES) and M- (BMES) prefixes: first I- tag in "
            f"{where(*evidence['I'][0])}; first M- tag in {where(*evidence['M'][0])}"
        )
    if "M" in evidence:
        scheme, signs = "BMES", ["M", "E", "S"]
    elif "E" in evidence or "S" in evidence:
        scheme, signs = "BIOES", ["E", "S"]
    elif "I-start" in evidence:
        scheme, signs = "IOB1", ["I-start"]
    else:
        return "BIO"
    places = sorted(place for sign in signs for place in evidence.get(sign, []))
    broken = [(n, i) for n, tags in enumerate(sequences) for i, _ in tag_violations(tags, scheme)]
    if len(broken) > len(places):
        n, i = places[0]
        raise ValueError(
            f"{where(n, i)}: the tag {sequences[n][i]!r} points to {scheme}, as {len(places)} "
            f"tag(s) do, but {len(broken)} place(s) break {scheme}'s rules (first at "
            f"{where(*broken[0])}): a typo? Correct it, or give the scheme explicitly"
        )
    return scheme


def may_follow(previous: str | None, tag: str | None, scheme: str) -> bool:
    """True if ``tag`` may come right after ``previous`` in ``scheme``. Introduced in lesson 05.

    None stands for the sentence boundary: ``may_follow(None, tag, ...)`` says
    whether a sentence may start with ``tag``, ``may_follow(tag, None, ...)``
    whether it may end with it. The rules (X is an entity type):

    * IOB1: ``B-X`` only directly after ``B-X`` or ``I-X``.
    * BIO: ``I-X`` only directly after ``B-X`` or ``I-X``.
    * BIOES / BMES: ``I-X``/``M-X`` and ``E-X`` only directly after ``B-X``
      or ``I-X``/``M-X``; and ``B-X``, ``I-X``/``M-X`` must be followed by
      ``I-X``/``M-X`` or ``E-X`` (an entity cannot stop without its ``E-``).

    Raises:
        ValueError: for an unknown scheme, or a tag that is neither "O" nor
            PREFIX-TYPE with one of the scheme's prefixes.
    """
    scheme = _canonical_scheme(scheme)
    prev_prefix, prev_type = _split_tag(previous, _PREFIXES[scheme]) if previous is not None else ("O", None)
    prefix, type_ = _split_tag(tag, _PREFIXES[scheme]) if tag is not None else ("O", None)
    inside = _INSIDE[scheme]
    continues_same = prev_prefix in "B" + inside and prev_type == type_
    if scheme == "IOB1":
        return prefix != "B" or continues_same
    if scheme == "BIO":
        return prefix != "I" or continues_same
    if prefix in inside + "E":
        return continues_same
    return prev_prefix not in "B" + inside  # B, S, O or the end close no open entity


class TransitionConstraints(NamedTuple):
    """Which tags may start, follow each other, and end a sequence. Introduced in lesson 05.

    A tuple, so that ``CRF(num_tags, constraints)`` (``course_utils.crf``) takes it as its
    three boolean masks without knowing about tag schemes.

    Attributes:
        transitions: (T, T) bool; transitions[i, j] is True if tag j may follow tag i.
        start: (T,) bool; True if a sequence may start with the tag.
        end: (T,) bool; True if a sequence may end with the tag.
    """

    transitions: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor


def scheme_constraints(tag_names: list[str], scheme: str) -> TransitionConstraints:
    """Allowed transitions, start tags and end tags of a tagging scheme, by ``may_follow``.

    Introduced in lesson 05. In short (X, Y are entity types such as PER, LOC):
    - BIO: I-X may only follow B-X or I-X, so a sequence cannot start with I-X.
    - IOB1: B-X may only follow B-X or I-X.
    - BIOES: B-X and I-X must be followed by I-X or E-X; O, E-X and S-X must
      be followed by O, B-Y or S-Y. Sequences start with O, B or S and end
      with O, E or S.
    - BMES: BIOES with M in place of I.

    Args:
        tag_names: the T tag names in tag-index order, e.g. ["O", "B-PER", "I-PER"].
        scheme: "IOB1", "BIO" (or "IOB2"), "BIOES" or "BMES" (case-insensitive).

    Returns:
        TransitionConstraints with transitions (T, T), start (T,), end (T,), all bool.
    """
    if not isinstance(tag_names, (list, tuple)) or not tag_names or len(set(tag_names)) != len(tag_names):
        raise ValueError(f"tag_names must be a non-empty list of distinct names, got {tag_names}")
    for tag in tag_names:
        may_follow(None, tag, scheme)  # a ValueError names a tag the scheme does not use
    transitions = torch.tensor([[may_follow(a, b, scheme) for b in tag_names] for a in tag_names])
    start = torch.tensor([may_follow(None, tag, scheme) for tag in tag_names])
    end = torch.tensor([may_follow(tag, None, scheme) for tag in tag_names])
    return TransitionConstraints(transitions, start, end)


def _violation(previous: str | None, tag: str, scheme: str) -> str:
    """The message for ``tag`` after ``previous``, where ``may_follow`` is False."""
    where = f"after {previous!r}" if previous is not None else "at the start of the sentence"
    prefix, type_ = _split_tag(tag, _PREFIXES[scheme])
    inside = _INSIDE[scheme]
    if scheme == "IOB1":
        return f"{tag!r} {where}: in IOB1, B-{type_} is only used right after another {type_} entity"
    if scheme == "BIO":
        return (f"{tag!r} {where}: in BIO, an entity starts with B-{type_}, "
                f"so I-{type_} must follow B-{type_} or I-{type_}")
    if prefix in inside + "E":
        return f"{tag!r} {where}: {prefix}-{type_} must follow B-{type_} or {inside}-{type_}"
    prev_type = previous.partition("-")[2]
    return f"{tag!r} {where}: {previous!r} must be followed by {inside}-{prev_type} or E-{prev_type}"


def tag_violations(tags: Sequence[str], scheme: str) -> list[tuple[int, str]]:
    """Every place where ``tags`` break the rules of ``scheme`` (see ``may_follow``).

    Introduced in lesson 05. The start and the end of the sentence count as ``O``.

    Args:
        tags: the T tags of one sentence.
        scheme: "IOB1", "BIO" (or "IOB2"), "BIOES" or "BMES".

    Returns:
        A list of (position, message), position in 0..T-1, empty for valid
        tags. An entity left open at the end of the sentence is reported at
        its last token, T-1.

    Raises:
        ValueError: for an unknown scheme or a tag not valid in ``scheme``.
    """
    scheme = _canonical_scheme(scheme)
    _check_sequence(tags)
    problems = []
    previous = None
    for i, tag in enumerate(tags):
        try:
            allowed = may_follow(previous, tag, scheme)
        except ValueError as error:
            raise ValueError(f"token {i}: {error}") from None
        if not allowed:
            problems.append((i, _violation(previous, tag, scheme)))
        previous = tag
    if tags and not may_follow(previous, None, scheme):
        inside, prev_type = _INSIDE[scheme], previous.partition("-")[2]
        problems.append((len(tags) - 1, f"the sentence ends inside an entity: {previous!r} must "
                                        f"be followed by {inside}-{prev_type} or E-{prev_type}"))
    return problems


def tags_to_spans(tags: Sequence[str], scheme: str) -> list[Span]:
    """The entities that ``tags`` mark, as (type, start, end) spans. Introduced in lesson 05.

    ``end`` is exclusive: the entity is ``tokens[start:end]``. Spans come in
    order and never overlap.

    Invalid tags (see ``tag_violations``) are read leniently, with these
    repairs:

    * a tag that cannot continue the previous token's entity (``I-X`` after
      ``O`` in BIO, ``M-X``/``E-X`` after ``O`` in BMES, ...) starts a new
      entity, as if it were ``B-X`` (``E-X`` then also ends it);
    * IOB1's ``B-X`` after ``O`` starts an entity, as ``I-X`` would;
    * an entity still open at ``O``, at a new ``B-``/``S-`` or at the end of
      the sentence (BIOES/BMES without its ``E-``) ends there.

    Args:
        tags: the T tags of one sentence.
        scheme: "IOB1", "BIO" (or "IOB2"), "BIOES" or "BMES".

    Raises:
        ValueError: for an unknown scheme or a tag not valid in ``scheme``.
    """
    scheme = _canonical_scheme(scheme)
    _check_sequence(tags)
    spans: list[Span] = []
    start, open_type = 0, None  # the entity that the next token may continue
    for i, tag in enumerate(tags):
        try:
            prefix, type_ = _split_tag(tag, _PREFIXES[scheme])
        except ValueError as error:
            raise ValueError(f"token {i}: {error}") from None
        if not (prefix in _CONTINUES[scheme] and type_ == open_type):
            if open_type is not None:
                spans.append((open_type, start, i))
            start, open_type = i, type_
        if prefix in _CLOSES:
            spans.append((type_, start, i + 1))
            open_type = None
    if open_type is not None:
        spans.append((open_type, start, len(tags)))
    return spans


def spans_to_tags(spans: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Write entity spans as ``length`` tags in ``scheme``. Introduced in lesson 05.

    The inverse of ``tags_to_spans``.

    Args:
        spans: (type, start, end) tuples, end exclusive, in order, not overlapping.
        length: T, the number of tokens of the sentence.
        scheme: "IOB1", "BIO" (or "IOB2"), "BIOES" or "BMES".

    Returns:
        The T tags.
    """
    scheme = _canonical_scheme(scheme)
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise ValueError(f"expected length to be a non-negative int, got {length!r}")
    tags = ["O"] * length
    inside = _INSIDE[scheme]
    previous: Span | None = None
    for span in spans:
        if not (isinstance(span, tuple) and len(span) == 3):
            raise TypeError(f"expected each span to be a tuple (type, start, end), got {span!r}")
        type_, start, end = span
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end))
        if not _is_type(type_) or not ints or not 0 <= start < end <= length:
            raise ValueError(f"invalid span {span!r} for {length} tokens: expected a {_TYPE_RULE}, "
                             "and int positions 0 <= start < end <= length")
        if previous is not None and start < previous[2]:
            raise ValueError(f"span {span!r} overlaps or comes before the span {previous!r}")
        if scheme == "IOB1":
            after_same_type = previous is not None and previous[2] == start and previous[0] == type_
            first = "B" if after_same_type else "I"
            tags[start:end] = [f"{first}-{type_}"] + [f"I-{type_}"] * (end - start - 1)
        elif scheme == "BIO":
            tags[start:end] = [f"B-{type_}"] + [f"I-{type_}"] * (end - start - 1)
        elif end - start == 1:
            tags[start] = f"S-{type_}"
        else:
            tags[start:end] = ([f"B-{type_}"] + [f"{inside}-{type_}"] * (end - start - 2)
                               + [f"E-{type_}"])
        previous = span
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Rewrite one sentence's tags from scheme ``source`` to ``target``. Introduced in lesson 05.

    Any scheme to any other among IOB1, BIO (IOB2), BIOES and BMES: the spans
    are read with ``tags_to_spans`` (so invalid tags are repaired as it
    describes) and written with ``spans_to_tags``. Converting to the same
    scheme therefore only repairs.

    Example: ``convert_tags(["I-PER", "I-PER", "O"], "IOB1", "BIOES")`` is
    ``["B-PER", "E-PER", "O"]``.

    Args:
        tags: the T tags of one sentence.
        source: the scheme of ``tags``.
        target: the scheme of the result.

    Returns:
        The T converted tags.
    """
    return spans_to_tags(tags_to_spans(tags, source), len(tags), target)


@dataclass
class Sentence:
    """One sentence of a corpus: its tokens and their tags. Introduced in lesson 05.

    Attributes:
        tokens: the T tokens (words, or characters for Resume NER).
        tags: the T tags, one per token.
        line: the 1-based line number of the first token in the file it was
            read from (token i is on line ``line + i``); 0 if not from a file.
    """

    tokens: list[str]
    tags: list[str]
    line: int = 0

    def __post_init__(self) -> None:
        for name in ("tokens", "tags"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
                raise TypeError(f"expected {name} as a list of strings, got {type(value).__name__} {value!r:.80}")
        if len(self.tokens) != len(self.tags):
            raise ValueError(f"expected as many tags as tokens, got {len(self.tokens)} tokens "
                             f"and {len(self.tags)} tags")

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class Corpus:
    """The sentences of one file, and their tag scheme. Introduced in lesson 05.

    Iterate over it, index it and take its ``len`` like a list of ``Sentence``.

    Attributes:
        sentences: the N sentences.
        scheme: the tag scheme of their tags: "IOB1", "BIO", "BIOES" or "BMES".
    """

    sentences: list[Sentence]
    scheme: str

    def __post_init__(self) -> None:
        self.scheme = _canonical_scheme(self.scheme)

    def __len__(self) -> int:
        return len(self.sentences)

    def __iter__(self) -> Iterator[Sentence]:
        return iter(self.sentences)

    def __getitem__(self, index: int) -> Sentence:
        return self.sentences[index]

    @property
    def num_tokens(self) -> int:
        """The number of tokens in all sentences."""
        return sum(len(sentence) for sentence in self.sentences)

    def tag_counts(self) -> Counter[str]:
        """How often each tag occurs."""
        return Counter(tag for sentence in self.sentences for tag in sentence.tags)

    def convert(self, target_scheme: str) -> Corpus:
        """A new corpus with every sentence's tags converted (see ``convert_tags``)."""
        target_scheme = _canonical_scheme(target_scheme)
        sentences = [
            Sentence(s.tokens, convert_tags(s.tags, self.scheme, target_scheme), s.line)
            for s in self.sentences
        ]
        return Corpus(sentences, target_scheme)


_COLUMN_SEPARATOR = re.compile(r"[ \t]+")
_LINE_END = re.compile(r"\r*\n|\r")  # CR CR LF (a CRLF file converted twice) is one line end


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file (a leading byte-order mark dropped), without line endings.

    A line ends at LF, CRLF or a lone CR (old Mac files, or a stray CR in a line), so
    that no CR is ever read as part of a token.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = len(_LINE_END.split(data[:error.start].decode("utf-8")))
        raise ValueError(f"{path} line {line}: not valid UTF-8 ({error.reason})") from None
    # Not splitlines(): it also breaks at characters such as U+2028 or U+0085, which may be tokens.
    return _LINE_END.split(text.removeprefix("\ufeff"))


def _check_line_characters(path: Path, number: int, line: str) -> None:
    """Raise ValueError if ``line`` holds a control character other than tab (a vertical tab, a form
    feed, U+0085) or a line or paragraph separator (U+2028, U+2029): some tools split lines or
    columns there and some do not, so a token would silently change. A space character such as
    U+3000 or a no-break space stays part of its token, as in character-level Chinese corpora."""
    odd = next((char for char in line if char != "\t" and unicodedata.category(char) in ("Cc", "Zl", "Zp")), None)
    if odd is not None:
        name = unicodedata.name(odd, "a control character")
        raise ValueError(f"{path} line {number}: U+{ord(odd):04X} ({name}) in the line; expected tokens "
                         "and tags separated by spaces or tabs, with no control character or line separator")


def _read_sentences(path: Path) -> list[Sentence]:
    """Group the token lines of ``path`` into sentences, checking the column count."""
    sentences: list[Sentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    first_line = 0
    for number, line in enumerate(_read_lines(path), start=1):
        if number > 1 and "\ufeff" in line:  # line 1 may start with a token that begins with one
            raise ValueError(f"{path} line {number}: a byte-order mark (U+FEFF) inside the text (were two "
                             "files joined?); expected one at the start of the file at most")
        _check_line_characters(path, number, line)
        columns = _COLUMN_SEPARATOR.split(line.strip(" \t"))
        if not line.strip() or columns[0] == "-DOCSTART-":
            if tokens:
                sentences.append(Sentence(tokens, tags, first_line))
                tokens, tags = [], []
            continue
        if len(columns) < 2:
            raise ValueError(f"{path} line {number}: expected at least 2 columns (token and "
                             f"tag), got {len(columns)}: {line!r}")
        if not tokens:
            first_line = number
        tokens.append(columns[0])
        tags.append(columns[-1])
    if tokens:
        sentences.append(Sentence(tokens, tags, first_line))
    return sentences


def _check_tags(path: Path, sentences: list[Sentence], prefixes: str, note: str = "") -> None:
    """Raise a ValueError naming the file and line of the first tag not valid with ``prefixes``."""
    for sentence in sentences:
        for i, tag in enumerate(sentence.tags):
            try:
                _split_tag(tag, prefixes)
            except ValueError as error:
                raise ValueError(f"{path} line {sentence.line + i}: {error}{note}") from None


def read_conll(
    path: str | Path,
    *,
    scheme: str = "auto",
    target_scheme: str | None = None,
    strict: bool = False,
) -> Corpus:
    """Read a column-format NER corpus (CoNLL-2003, Resume NER). Introduced in lesson 05.

    The format: one token per line (lines end with LF, CRLF or CR), columns separated by spaces or tabs; the
    token is the first column and its tag the last (CoNLL-2003 has
    ``token POS chunk NER``, Resume NER ``char TAG``). Blank lines, including
    lines holding only whitespace, separate sentences; several blank lines in
    a row and a missing blank line at the end are fine. ``-DOCSTART-`` lines
    (document boundaries, whatever their other columns) are skipped and end a
    sentence. The file must be UTF-8.

    Tags are checked: each must be "O" or PREFIX-TYPE with a prefix of the
    scheme. Transitions between tags (``tag_violations``) are checked only in
    strict mode. Otherwise the tags are kept exactly as in the file, and any
    invalid transition is repaired when the tags are converted
    (``target_scheme``, ``Corpus.convert``, ``convert_tags``) as
    ``tags_to_spans`` describes. In the real corpora:

    * CoNLL-2003 ``eng.train`` lines 152428 and 175436 have ``B-MISC`` after
      ``O``, which IOB1 does not allow: each starts a MISC entity (B-MISC
      in BIO), as an ``I-MISC`` there would.
    * Resume NER ``train.char.bmes`` breaks two sentences inside an
      organisation name, at a ``。``: the sentences ending on ``M-ORG`` (lines
      62390 and 64412) end the entity there (``E-ORG`` in BIOES, ``I-ORG`` in
      BIO), and the next ones, starting with ``M-ORG``, start a new ORG entity
      (``B-ORG`` in BIO and BIOES).

    Args:
        path: the file to read.
        scheme: the tag scheme of the file, or "auto" to detect it with
            ``detect_scheme``.
        target_scheme: convert the tags to this scheme; None keeps the file's.
        strict: raise an error at the first invalid transition instead.

    Returns:
        A ``Corpus`` whose ``scheme`` is ``target_scheme``, or the file's
        scheme if None.

    Raises:
        ValueError: naming the file and the 1-based line for a line with one
            column, a tag not valid in the scheme, text that is not UTF-8 and,
            if ``strict``, an invalid transition; naming the file if it holds no
            sentence, and the file and lines if "auto" cannot tell the scheme
            (see ``detect_scheme``).
    """
    path = Path(path)
    sentences = _read_sentences(path)
    if not sentences:
        raise ValueError(f"{path}: no sentences (the file is empty, or holds only blank and -DOCSTART- "
                         "lines); expected lines of a token and its tag, such as 'EU B-ORG'")
    if scheme == "auto":
        # Any prefix first, so that an unknown tag gets its line number; the
        # detected scheme then allows every prefix that occurs.
        _check_tags(path, sentences, "BIMES")
        try:
            scheme = _detect_scheme([s.tags for s in sentences],
                                    lambda n, i: f"line {sentences[n].line + i}")
        except ValueError as error:
            raise ValueError(f"{path}: cannot detect the tag scheme: {error}") from None
    else:
        scheme = _canonical_scheme(scheme)
        _check_tags(path, sentences, _PREFIXES[scheme], f" (tag scheme {scheme})")
    if strict:
        for sentence in sentences:
            problems = tag_violations(sentence.tags, scheme)
            if problems:
                i, message = problems[0]
                raise ValueError(f"{path} line {sentence.line + i}: invalid {scheme} "
                                 f"transition: {message}")
    corpus = Corpus(sentences, scheme)
    return corpus if target_scheme is None else corpus.convert(target_scheme)


def build_vocab(
    items: Iterable[str], *, min_count: int = 1, specials: Sequence[str] = (PAD, UNK)
) -> Vocab:
    """A vocabulary of the strings in ``items``. Introduced in lesson 05.

    The specials come first (so with the default ``"<pad>"`` has id 0 and
    ``"<unk>"`` id 1), then every string seen at least ``min_count`` times,
    most frequent first (ties in order of first appearance).

    Example: ``build_vocab(t for s in corpus for t in s.tokens, min_count=2)``.

    Args:
        items: the strings, e.g. every token of the training set.
        min_count: leave out rarer strings (they become ``"<unk>"``).
        specials: strings to put first, whatever their count.
    """
    if isinstance(items, str):
        raise TypeError("expected an iterable of strings, got a single string; "
                        "for its characters use build_char_vocab([...])")
    check_positive_int("min_count", min_count)
    if isinstance(specials, str):
        raise TypeError(f"expected specials to be a sequence of strings, got {specials!r}")
    counts = Counter(items)
    frequent = [item for item, n in counts.most_common() if n >= min_count and item not in specials]
    return Vocab([*specials, *frequent])


def build_char_vocab(
    tokens: Iterable[str], *, min_count: int = 1, specials: Sequence[str] = (PAD, UNK)
) -> Vocab:
    """A vocabulary of the characters of ``tokens``, for the character CNN. Introduced in lesson 05.

    Same order and arguments as ``build_vocab``, counting characters.
    """
    if isinstance(tokens, str):
        raise TypeError("expected an iterable of tokens, got a single string")
    return build_vocab((char for token in tokens for char in token),
                       min_count=min_count, specials=specials)


def build_tag_vocab(tag_sequences: Iterable[Sequence[str]]) -> Vocab:
    """A vocabulary of the tags of a corpus, without specials. Introduced in lesson 05.

    ``"O"`` gets id 0, then the other tags grouped by type (alphabetical) in
    the order of their prefix (B, I, M, E, S), so that a transition matrix
    reads well. There is no ``"<unk>"``: encoding an unseen tag is an error.
    There is no ``"<pad>"``: pad tag sequences with any id (e.g. 0) and mask
    those positions out.

    Args:
        tag_sequences: one list of tags per sentence.
    """
    if isinstance(tag_sequences, (str, bytes)):
        raise TypeError("expected a list of tag sequences (one list per sentence), got a string")
    tags = set()
    for tags_of_sentence in tag_sequences:
        _check_sequence(tags_of_sentence, "each tag sequence")
        tags.update(tags_of_sentence)
    for tag in tags:
        _split_tag(tag, "BIMES")
    others = sorted(tags - {"O"}, key=lambda tag: (tag[2:], "BIMES".index(tag[0])))
    return Vocab(["O", *others])
