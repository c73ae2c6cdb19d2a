"""Lesson 03's exercises: the receptive field of a TCN, and a mean over the real steps of padded sequences."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..cnn import receptive_field
from .engine import Case, Exercise, compare_int, matches, register, same_tensor

def _tcn_field_cases(gen: torch.Generator) -> list[Case]:
    cases = [(2, 1), (2, 8), (3, 1), (1, 5), (3, 4)]
    cases += [(int(torch.randint(2, 8, (), generator=gen)), int(torch.randint(1, 11, (), generator=gen)))
              for _ in range(5)]
    return [Case(f"kernel_size={k}, layers={n}", (k, n)) for k, n in cases]


def _tcn_field_reference(kernel_size: int, layers: int) -> int:
    """The field by composing the layers one at a time (course_utils.cnn.receptive_field)."""
    return receptive_field([(kernel_size, 1, 2 ** i) for i in range(layers)])


def _diagnose_tcn_field(got: Any, args: tuple) -> str | None:
    k, n = args
    if isinstance(got, float) and got.is_integer() and int(got) == _tcn_field_reference(k, n):
        return "return an int, not a float: 2 ** layers is an int already."
    if got == 1 + (k - 1) * n:
        return "you left out the dilations: layer i adds (kernel_size - 1) * 2**i steps, not kernel_size - 1."
    if got == 1 + (k - 1) * 2 ** n:
        return "the dilations are 1, 2, ..., 2**(layers - 1); their sum is 2**layers - 1."
    if got == (k - 1) * (2 ** n - 1):
        return "start from 1, the current step: one layer of kernel k sees k steps, not k - 1."
    return None


def _masked_mean_cases(gen: torch.Generator) -> list[Case]:
    # (B, T, H) and the lengths: edge cases first (full length, length 1), then random ones.
    cases = [((1, 1, 1), [1]), ((2, 4, 3), [4, 4]), ((3, 5, 2), [1, 5, 2]), ((1, 6, 4), [3])]
    for _ in range(4):
        b, t, h = (int(torch.randint(1, n + 1, (), generator=gen)) for n in (4, 9, 5))
        cases.append(((b, t, h), torch.randint(1, t + 1, (b,), generator=gen).tolist()))
    result = []
    for (b, t, h), lengths in cases:
        features = torch.randn(b, t, h, generator=gen)
        result.append(Case(f"h {(b, t, h)}, lengths {lengths}", (features, torch.tensor(lengths))))
    return result


def _masked_mean_reference(h: Tensor, lengths: Tensor) -> Tensor:
    """One sequence at a time: the mean of its first lengths[b] steps."""
    return torch.stack([h[b, :length].mean(dim=0) for b, length in enumerate(lengths.tolist())])


def _diagnose_masked_mean(got: Any, args: tuple) -> str | None:
    h, lengths = args
    if matches(got, h.mean(dim=1)):
        return "you averaged over all T steps, padding included: keep only the first lengths[b] steps."
    masked_sum = _masked_mean_reference(h, lengths) * lengths[:, None]
    if matches(got, masked_sum / h.shape[1]):
        return "divide the masked sum by lengths[b], the number of real steps, not by T."
    if matches(got, masked_sum):
        return "that is the masked sum; divide it by lengths[b] to get the mean."
    return None


register(
    Exercise(id="03.tcn_receptive_field", signature="tcn_receptive_field(kernel_size, layers) -> int",
             hint="each layer adds (kernel_size - 1) * dilation steps to the field of one step; add up the "
                  "dilations 1 + 2 + ... + 2**(layers - 1) with the formula for a geometric series.",
             cases=_tcn_field_cases, reference=_tcn_field_reference, compare=compare_int,
             diagnose=_diagnose_tcn_field, does_the_work=("receptive_field",), form="closed"),
    Exercise(id="03.masked_mean", signature="masked_mean(h, lengths) -> (B, H)",
             hint="build a (B, T) mask with torch.arange(T) < lengths[:, None], zero the padded steps, sum "
                  "over time and divide by lengths[:, None] (as a float).",
             cases=_masked_mean_cases, reference=_masked_mean_reference, compare=same_tensor,
             diagnose=_diagnose_masked_mean),
)
