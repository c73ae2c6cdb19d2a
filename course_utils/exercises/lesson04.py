"""Lesson 04's exercises: folding time into the batch for a per-frame CNN, and unfolding it back."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .engine import Case, Exercise, matches, register, same_tensor, variant

def _fold_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    # (B, T, C, H, W)
    shapes = [(2, 3, 1, 4, 4), (1, 1, 1, 2, 2), (3, 1, 2, 3, 5), (1, 4, 3, 2, 2), (4, 2, 1, 3, 3)]
    for b, t, c, h, w in shapes:
        clips = torch.randn(b, t, c, h, w, generator=gen)
        cases.append(Case(f"clips {tuple(clips.shape)}", (clips,)))
    # Time-major memory, as after a transpose: .view cannot fold it, .reshape can.
    clips = torch.randn(3, 2, 1, 4, 4, generator=gen).transpose(0, 1)
    cases.append(Case(f"clips {tuple(clips.shape)}, not contiguous in memory", (clips,)))
    return cases


def _fold_reference(clips: Tensor) -> Tensor:
    b, t = clips.shape[:2]
    return clips.reshape(b * t, *clips.shape[2:])


def _diagnose_fold(got: Any, args: tuple) -> str | None:
    (clips,) = args
    if matches(got, _fold_reference(clips.transpose(0, 1))):
        return ("the frames of one clip must stay together: row b*T + t holds clip b, frame t. "
                "Moving time first (transpose or permute) interleaves the clips.")
    return None


def _unfold_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for b, t, f in [(2, 3, 4), (1, 1, 1), (3, 1, 5), (1, 5, 2), (4, 2, 3)]:
        features = torch.randn(b * t, f, generator=gen)
        cases.append(Case(f"features {tuple(features.shape)}, batch_size={b}", (features, b)))
    return cases


def _unfold_reference(features: Tensor, batch_size: int) -> Tensor:
    return features.reshape(batch_size, -1, features.shape[1])


def _diagnose_unfold(got: Any, args: tuple) -> str | None:
    features, b = args
    if matches(got, features.reshape(-1, b, features.shape[1]).transpose(0, 1)):
        return "you split the rows as (T, B); row b*T + t is clip b, frame t, so the batch comes first."
    return None


def _diagnose_time_major_fold(got: Any, args: tuple) -> str | None:
    if matches(got, _fold_reference(*args)):
        return "you kept each clip's frames together (row b*T + t); this class's version is time-major: row t*B + b."
    return None


def _diagnose_time_major_unfold(got: Any, args: tuple) -> str | None:
    if matches(got, _unfold_reference(*args)):
        return "you read the rows as clip-major (row b*T + t); in this class's version row t*B + b is clip b, frame t."
    return None


FOLD_TIME = Exercise(id="04.fold_time", signature="fold_time(clips) -> (B*T, C, H, W)",
             hint="merge the first two axes with reshape (view fails on tensors that are not contiguous); "
                  "do not reorder the axes, so that row b*T + t holds clip b, frame t.",
             cases=_fold_cases, reference=_fold_reference, compare=same_tensor, diagnose=_diagnose_fold)
UNFOLD_TIME = Exercise(id="04.unfold_time", signature="unfold_time(features, batch_size) -> (B, T, F)",
             hint="the inverse of fold_time: row b*T + t of features belongs to clip b, frame t; "
                  "T = features.shape[0] // batch_size.",
             cases=_unfold_cases, reference=_unfold_reference, compare=same_tensor, diagnose=_diagnose_unfold)

register(
    FOLD_TIME, UNFOLD_TIME,
    # Class variants (see engine.variant): the public solutions do not pass them.
    variant(FOLD_TIME, "time_major",
            "**Time-major rows.** `fold_time(clips)` puts frame t of clip b in **row t\\*B + b** (all the first "
            "frames, then all the second frames, ...), the layout of a time-major LSTM.",
            hint="move time first (clips.transpose(0, 1)), then merge the first two axes with reshape (view fails on "
                 "tensors that are not contiguous), so that row t*B + b holds clip b, frame t.",
            reference=lambda clips: _fold_reference(clips.transpose(0, 1)), diagnose=_diagnose_time_major_fold),
    variant(UNFOLD_TIME, "time_major",
            "**Time-major rows.** Row t\\*B + b of `features` belongs to clip b, frame t; `unfold_time` still "
            "returns (B, T, F).",
            hint="split the rows as (T, B) with reshape, then swap the first two axes: T = features.shape[0] // "
                 "batch_size.",
            reference=lambda features, b: features.reshape(-1, b, features.shape[1]).transpose(0, 1),
            diagnose=_diagnose_time_major_unfold),
)
