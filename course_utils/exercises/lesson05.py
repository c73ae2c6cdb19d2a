"""Lesson 05's exercises: Viterbi decoding of a linear-chain CRF, and the entity spans of BIO tags."""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import torch
from torch import Tensor

from ..ner_data import spans_to_tags, tags_to_spans
from .engine import Case, Exercise, describe, register, variant

def _viterbi_cases(gen: torch.Generator) -> list[Case]:
    # A case where the best tag of every token on its own is not the best path:
    # token 0 slightly prefers tag 0, but moving from tag 0 to tag 1 costs 5.
    trap = (torch.tensor([[0.6, 0.5], [0.0, 2.0], [0.0, 2.0]]),
            torch.tensor([[0.0, -5.0], [0.0, 0.0]]), torch.zeros(2), torch.zeros(2))
    cases = [Case("3 tokens, 2 tags, a costly transition", trap)]
    sizes = [(1, 3), (4, 1), (2, 2)]
    sizes += [(int(torch.randint(1, 8, (), generator=gen)), int(torch.randint(2, 5, (), generator=gen)))
              for _ in range(5)]
    for length, tags in sizes:
        args = (2 * torch.randn(length, tags, generator=gen), 2 * torch.randn(tags, tags, generator=gen),
                torch.randn(tags, generator=gen), torch.randn(tags, generator=gen))
        cases.append(Case(f"{length} token{'s' * (length != 1)}, {tags} tag{'s' * (tags != 1)}", args))
    return cases


def _path_scores(paths: Tensor, emissions: Tensor, transitions: Tensor, start: Tensor,
                 end: Tensor) -> Tensor:
    """Scores (N,) of N tag paths (N, L) under a linear-chain CRF (see course_utils.crf)."""
    positions = torch.arange(emissions.shape[0])
    return (start[paths[:, 0]] + emissions[positions, paths].sum(1)
            + transitions[paths[:, :-1], paths[:, 1:]].sum(1) + end[paths[:, -1]])


def _viterbi_reference(emissions: Tensor, transitions: Tensor, start: Tensor,
                       end: Tensor) -> tuple[float, list[int]]:
    """The best path by brute force over all T**L paths (the test cases are small)."""
    length, num_tags = emissions.shape
    paths = torch.tensor(list(itertools.product(range(num_tags), repeat=length)))  # (T**L, L)
    scores = _path_scores(paths, emissions, transitions, start, end)
    best = scores.argmax()
    return scores[best].item(), paths[best].tolist()


def _as_number(value: Any) -> float | None:
    """A Python number, a NumPy scalar or a one-element tensor as a float; None for anything else."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def _as_path(path: Any, length: int, num_tags: int) -> list[int] | None:
    """`path` (a list, tuple or 1-D tensor of integers) as a list of `length` tag ids
    in [0, num_tags); None if it is not one."""
    if isinstance(path, Tensor):
        path = path.tolist() if path.dim() == 1 else None
    if not isinstance(path, (list, tuple)) or len(path) != length:
        return None
    path = [t.item() if isinstance(t, Tensor) and t.numel() == 1 else t for t in path]
    if all(isinstance(t, numbers.Integral) and not isinstance(t, bool) and 0 <= t < num_tags for t in path):
        return [int(t) for t in path]
    return None


def _compare_viterbi(got: Any, expected: tuple[float, list[int]], args: tuple) -> str | None:
    """Any best path passes (ties are fine), with its score."""
    best_score, best_path = expected
    length, num_tags = args[0].shape
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a tuple (best_score, best_path), got {describe(got)}"
    path = _as_path(got[1], length, num_tags)
    if path is None:
        return (f"expected best_path to be a list of {length} tag ids in [0, {num_tags - 1}], "
                f"got {describe(got[1])}")
    score = _path_scores(torch.tensor([path]), *args).item()
    if abs(score - best_score) > 1e-4:
        return f"your path {path} scores {score:.4f}, but the best path {best_path} scores {best_score:.4f}"
    reported = _as_number(got[0])
    if reported is None:
        return f"expected best_score to be a number, got {describe(got[0])}"
    if abs(reported - best_score) > 1e-4:
        return f"your path is a best one, but expected best_score {best_score:.4f}, got {reported:.4f}"
    return None


def _same_answer(score: float | None, path: list[int] | None, expected: tuple[float, list[int]]) -> bool:
    return path == expected[1] and score is not None and abs(score - expected[0]) < 1e-4


def _diagnose_viterbi(got: Any, args: tuple) -> str | None:
    emissions, transitions, start, end = args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return None
    score, path = _as_number(got[0]), _as_path(got[1], *emissions.shape)
    zeros = torch.zeros_like(start)
    if _same_answer(score, path, _viterbi_reference(emissions, transitions, zeros, end)):
        return "add start[tag] to the scores of the first token."
    if _same_answer(score, path, _viterbi_reference(emissions, transitions, start, zeros)):
        return "add end[tag] to the scores of the last token before picking the best one."
    if _same_answer(score, path, _viterbi_reference(emissions, -transitions, start, end)):
        return "add transitions[i, j], the score of moving from tag i to tag j; you subtracted it."
    if path == emissions.argmax(1).tolist():  # the best tag of each token on its own
        best_score, _ = _viterbi_reference(*args)
        if _path_scores(torch.tensor([path]), *args).item() < best_score - 1e-4:
            return ("picking each token's best tag on its own ignores the transitions: keep, for every "
                    "tag, the best score of a path that ends in it, and a back-pointer to its previous tag.")
    return None


_ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")


def _random_bio(gen: torch.Generator) -> list[str]:
    """A random, valid BIO tag sequence of 1 to 12 tokens."""
    length = int(torch.randint(1, 13, (), generator=gen))
    spans, i = [], 0
    while i < length:
        if torch.rand((), generator=gen) < 0.4:
            end = min(length, i + int(torch.randint(1, 4, (), generator=gen)))
            spans.append((_ENTITY_TYPES[int(torch.randint(0, 4, (), generator=gen))], i, end))
            i = end
        else:
            i += 1
    return spans_to_tags(spans, length, "BIO")


def _bio_cases(gen: torch.Generator) -> list[Case]:
    sentences = [[], ["O", "O"], ["B-PER"], ["B-PER", "I-PER", "O"], ["O", "B-LOC", "I-LOC"],
                 ["B-PER", "B-PER"], ["B-PER", "I-PER", "B-LOC", "O", "B-ORG"],
                 ["B-MISC", "I-MISC", "I-MISC", "I-MISC"]]
    sentences += [_random_bio(gen) for _ in range(5)]
    return [Case(f"tags {tags}", (tags,)) for tags in sentences]


def _as_spans(spans: Any) -> list[tuple] | None:
    """`spans` as a list of 3-tuples, or None if it is not a list (or tuple) of 3-element sequences."""
    if isinstance(spans, (list, tuple)) and all(isinstance(s, (list, tuple)) and len(s) == 3 for s in spans):
        return [tuple(s) for s in spans]
    return None


def _compare_spans(got: Any, expected: list[tuple[str, int, int]], args: tuple) -> str | None:
    spans = _as_spans(got)
    if spans is None:
        return f"expected a list of (type, start, end) tuples such as {expected}, got {describe(got)}"
    return None if spans == expected else f"expected {expected}, got {spans}"


def _diagnose_spans(got: Any, args: tuple) -> str | None:
    expected, got = tags_to_spans(args[0], "BIO"), _as_spans(got)
    if got is None:
        return None
    if got and all(isinstance(s[0], str) and s[0][:2] in ("B-", "I-") for s in got):
        return "the type is the tag without its prefix: 'B-PER' -> 'PER'."
    if got == [(t, s, e - 1) for t, s, e in expected]:
        return ("end is exclusive: tokens[start:end] is the entity, so a one-token entity at i "
                "is (type, i, i + 1).")
    if got == expected[:-1]:
        return "an entity that is still open at the end of the sentence ends there: add it too."
    return None


def _transposed(args: tuple) -> tuple:
    """The arguments with transitions[j, i] read as the score of moving from tag i to tag j."""
    emissions, transitions, start, end = args
    return emissions, transitions.T, start, end


def _diagnose_transposed(got: Any, args: tuple) -> str | None:
    if isinstance(got, (tuple, list)) and len(got) == 2 and _same_answer(
            _as_number(got[0]), _as_path(got[1], *args[0].shape), _viterbi_reference(*args)):
        return "you read transitions[i, j] as the move from i to j; in this class's version it is the move from j to i."
    return _diagnose_viterbi(got, _transposed(args))


def _diagnose_inclusive(got: Any, args: tuple) -> str | None:
    spans = _as_spans(got)
    if spans is not None and spans == tags_to_spans(args[0], "BIO"):
        return "end is inclusive in this class's version: a one-token entity at i is (type, i, i)."
    return _diagnose_spans(got, args) if spans is not None and spans[:1] and str(spans[0][0])[:2] in ("B-", "I-") else None


VITERBI = Exercise(id="05.viterbi",
             signature="viterbi(emissions, transitions, start, end) -> (best_score, best_path)",
             hint="score[t, j] = max over i of (score[t-1, i] + transitions[i, j]) + emissions[t, j], starting "
                  "from start + emissions[0]; keep the argmax as a back-pointer, add end at the last token, "
                  "then follow the back-pointers from the best last tag.",
             cases=_viterbi_cases, reference=_viterbi_reference, compare=_compare_viterbi,
             diagnose=_diagnose_viterbi, does_the_work=("decode", "viterbi_decode", "CRF", "viterbi_tags"))
BIO_SPANS = Exercise(id="05.bio_spans", signature="bio_spans(tags) -> [(type, start, end), ...]",
             hint="an entity starts at B-X and goes on over the I-X tags that follow; it ends (end exclusive) "
                  "at an O, at the next B-, or at the end of the sentence.",
             cases=_bio_cases, reference=lambda tags: tags_to_spans(tags, "BIO"), compare=_compare_spans,
             diagnose=_diagnose_spans, does_the_work=("tags_to_spans", "get_entities"))

register(
    VITERBI, BIO_SPANS,
    # Class variants (see engine.variant): the public solutions do not pass them.
    variant(VITERBI, "transposed",
            "**Transposed transitions.** `transitions[j, i]` is the score of moving **from tag i to tag j** (the "
            "matrix of the lesson, transposed); the rest of the path score is as in the lesson.",
            hint="score[t, j] = max over i of (score[t-1, i] + transitions[j, i]) + emissions[t, j], starting from "
                 "start + emissions[0]; keep the argmax as a back-pointer, add end at the last token, then follow "
                 "the back-pointers from the best last tag.",
            reference=lambda *args: _viterbi_reference(*_transposed(args)),
            compare=lambda got, expected, args: _compare_viterbi(got, expected, _transposed(args)),
            diagnose=_diagnose_transposed),
    variant(BIO_SPANS, "inclusive",
            "**Inclusive ends.** Each span is (type, start, end) with `end` the index of the entity's **last** "
            "token: a one-token entity at i is (type, i, i).",
            hint="an entity starts at B-X and goes on over the I-X tags that follow; its end is the index of its "
                 "last token (an O, the next B- or the end of the sentence comes after it).",
            reference=lambda tags: [(t, s, e - 1) for t, s, e in tags_to_spans(tags, "BIO")],
            diagnose=_diagnose_inclusive),
)
