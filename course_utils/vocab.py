"""The course's one vocabulary class: strings <-> integer ids. Introduced in lesson 02.

Lesson 02 maps the characters of Tiny Shakespeare to ids; lesson 05 maps
words, characters and tags (``course_utils.ner_data`` builds those).
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Sequence

import torch
from torch import Tensor

PAD = "<pad>"
UNK = "<unk>"


class Vocab:
    """A two-way mapping between strings and integer ids. Introduced in lesson 02.

    Lesson 02 uses it for the characters of a text (``from_text``,
    ``encode_text``, ``decode_text``); lesson 05 for words, characters and
    tags (``course_utils.ner_data.build_vocab`` and friends).

    Ids are positions in ``itos``. If ``"<unk>"`` (``UNK``) is in the
    vocabulary, ``encode`` maps strings it does not know to it; otherwise an
    unknown string is an error (as for tags: a tag the model has never seen
    is a bug, not a rare word).

    Attributes:
        itos: the strings, in id order ("index to string").
        stoi: string -> id ("string to index").
    """

    def __init__(self, itos: Sequence[str]) -> None:
        if isinstance(itos, str) or not all(isinstance(item, str) for item in itos):
            raise TypeError("expected itos to be a sequence of strings")
        self.itos = list(itos)
        self.stoi = {item: index for index, item in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            duplicates = sorted(item for item, n in Counter(self.itos).items() if n > 1)
            raise ValueError(f"expected distinct strings, got duplicates {duplicates}")

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        """The vocabulary of every distinct character of `text`, sorted, with no specials,
        so the same text always gives the same ids."""
        if not isinstance(text, str) or not text:
            raise ValueError("expected a non-empty string")
        return cls(sorted(set(text)))

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def __repr__(self) -> str:
        return f"Vocab({len(self)} items: {self.itos[:8]}{' ...' if len(self) > 8 else ''})"

    def _special_index(self, special: str) -> int:
        if special not in self.stoi:
            raise ValueError(f"this vocabulary has no {special!r}; build it with {special!r} "
                             f"among the specials")
        return self.stoi[special]

    @property
    def pad_index(self) -> int:
        """The id of ``"<pad>"``; a ValueError if the vocabulary has none."""
        return self._special_index(PAD)

    @property
    def unk_index(self) -> int:
        """The id of ``"<unk>"``; a ValueError if the vocabulary has none."""
        return self._special_index(UNK)

    def encode(self, items: Sequence[str]) -> list[int]:
        """The ids of ``items`` (a list of L strings), as a list of L ints.

        To encode the characters of a word, pass ``list(word)``: a plain
        string is refused, so that a word is never split by accident.
        """
        if isinstance(items, str):
            raise TypeError(f"expected a list of strings, got the string {items!r}; "
                            "for its characters pass list(...)")
        unk = self.stoi.get(UNK)
        ids = []
        for item in items:
            index = self.stoi.get(item, unk)
            if index is None:
                raise ValueError(f"{item!r} is not in the vocabulary, which has no {UNK!r}")
            ids.append(index)
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The strings of ``ids`` (L ints, or a 1-D integer tensor of shape (L,))."""
        items = []
        for index in ids:
            index = int(index)
            if not 0 <= index < len(self.itos):
                raise ValueError(f"id {index} is out of range for a vocabulary of {len(self)}")
            items.append(self.itos[index])
        return items

    def encode_text(self, text: str) -> Tensor:
        """The characters of `text` as ids: a (len(text),) int64 tensor. Unknown
        characters are an error (or ``"<unk>"``, if the vocabulary has it)."""
        if not isinstance(text, str):
            raise TypeError(f"expected a string, got {type(text).__name__}")
        if UNK not in self.stoi:
            unknown = sorted(set(text) - self.stoi.keys())
            if unknown:
                raise ValueError(f"characters not in the vocabulary: {unknown[:10]!r}")
        return torch.tensor(self.encode(list(text)), dtype=torch.long)

    def decode_text(self, ids: Tensor | Sequence[int]) -> str:
        """The string of character ids (N,), the inverse of ``encode_text``; no ids give ""."""
        if isinstance(ids, Tensor) and (ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype == torch.bool):
            raise TypeError(f"expected a 1-D integer tensor of ids, got shape {tuple(ids.shape)} and {ids.dtype}")
        return "".join(self.decode(ids))
