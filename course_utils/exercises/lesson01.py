"""Lesson 01's exercises: a convolution written with loops, and the output size of a convolution."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .engine import Case, Exercise, compare_int, matches, register, same_tensor, variant

def _conv_cases(gen: torch.Generator) -> list[Case]:
    # (B, C_in, C_out, H, W, k): edge cases, then random shapes.
    shapes = [(1, 1, 1, 3, 3, 3), (2, 3, 4, 5, 5, 1), (1, 2, 3, 4, 7, 3), (1, 1, 2, 5, 5, 2)]
    for _ in range(4):
        b, c_in, c_out, k = (int(torch.randint(1, n + 1, (), generator=gen)) for n in (3, 3, 4, 4))
        h, w = (k + int(torch.randint(0, 5, (), generator=gen)) for _ in range(2))
        shapes.append((b, c_in, c_out, h, w, k))
    cases = []
    for b, c_in, c_out, h, w, k in shapes:
        x = torch.randn(b, c_in, h, w, generator=gen)
        weight = torch.randn(c_out, c_in, k, k, generator=gen)
        bias = torch.randn(c_out, generator=gen)
        cases.append(Case(f"x {tuple(x.shape)}, weight {tuple(weight.shape)}", (x, weight, bias)))
    return cases


def _diagnose_conv(got: Any, args: tuple) -> str | None:
    x, weight, bias = args
    if matches(got, F.conv2d(x, weight.flip(-2, -1), bias)):
        return ("your kernel is flipped. Deep-learning 'convolutions' do not flip the filter: "
                "out[i, j] uses weight[u, v] * x[i + u, j + v].")
    if matches(got, F.conv2d(x, weight)):
        return "you forgot the bias: add bias[c] to every value of output channel c."
    return None


def _output_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _output_size_cases(gen: torch.Generator) -> list[Case]:
    cases = [(28, 3, 1, 0), (28, 3, 1, 1), (28, 3, 2, 1), (7, 7, 1, 0), (5, 2, 2, 0), (1, 3, 1, 1)]
    for _ in range(6):
        k, s, p = (int(torch.randint(lo, hi, (), generator=gen)) for lo, hi in ((1, 8), (1, 4), (0, 4)))
        n = max(1, k - 2 * p) + int(torch.randint(0, 30, (), generator=gen))
        cases.append((n, k, s, p))
    return [Case(f"n={n}, k={k}, s={s}, p={p}", (n, k, s, p)) for n, k, s, p in cases]


def _diagnose_output_size(got: Any, args: tuple) -> str | None:
    if isinstance(got, float) and got.is_integer() and int(got) == _output_size(*args):
        return "return an int, not a float: use integer division //."
    n, k, s, p = args
    if got == _output_size(n, k, s, p / 2):
        return "padding adds p cells on *both* sides of the input."
    return None


def _diagnose_strided(got: Any, args: tuple) -> str | None:
    if matches(got, F.conv2d(*args)):
        return "that is the lesson's stride-1 convolution: move the kernel 2 cells at a time (rows 2i + u, columns 2j + v)."
    return _diagnose_conv(got, args)


def _diagnose_padded(got: Any, args: tuple) -> str | None:
    if matches(got, F.conv2d(*args)):
        return "that is the lesson's convolution without padding: surround x with one row and column of zeros on every side first."
    return _diagnose_conv(got, args)


def _dilated_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - 2 * (k - 1) - 1) // s + 1


def _dilated_size_cases(gen: torch.Generator) -> list[Case]:
    cases = [(28, 3, 1, 0), (28, 3, 1, 2), (28, 3, 2, 1), (9, 5, 1, 0), (5, 2, 2, 0), (3, 2, 1, 0)]
    for _ in range(6):
        k, s, p = (int(torch.randint(lo, hi, (), generator=gen)) for lo, hi in ((1, 8), (1, 4), (0, 4)))
        n = max(1, 2 * k - 1 - 2 * p) + int(torch.randint(0, 30, (), generator=gen))
        cases.append((n, k, s, p))
    return [Case(f"n={n}, k={k}, s={s}, p={p}, dilation 2", (n, k, s, p)) for n, k, s, p in cases]


def _diagnose_dilated_size(got: Any, args: tuple) -> str | None:
    if got == _output_size(*args):
        return "that is the size without dilation: k taps 2 cells apart span 2(k - 1) + 1 cells of the input."
    return None


CONV2D_LOOPS = Exercise(id="01.conv2d_loops", signature="conv2d_loops(x, weight, bias) -> (B, C_out, H-k+1, W-k+1)",
             hint="out[b, o, i, j] = bias[o] + the sum over c, u, v of weight[o, c, u, v] * x[b, c, i+u, j+v] "
                  "(stride 1, no padding, the kernel is not flipped).",
             cases=_conv_cases, reference=lambda x, weight, bias: F.conv2d(x, weight, bias),
             compare=same_tensor, diagnose=_diagnose_conv,
             does_the_work=("conv2d", "Conv2d", "convolution", "conv_transpose2d"), form="loops")
OUTPUT_SIZE = Exercise(id="01.output_size", signature="output_size(n, k, s, p) -> int",
             hint="count the positions where the kernel fits: the padded input has n + 2p cells and the "
                  "kernel moves s cells at a time. Return an int (use //).",
             cases=_output_size_cases, reference=_output_size, compare=compare_int,
             diagnose=_diagnose_output_size, does_the_work=("conv_output_size",), form="closed")

def _conv_variant(name: str, text: str, out_shape: str, hint: str, diagnose: Callable, **conv_args: int) -> Exercise:
    """A class variant of `conv2d_loops` whose reference is `F.conv2d` with `conv_args` (stride=, padding=)."""
    return variant(CONV2D_LOOPS, name, text, signature=f"conv2d_loops(x, weight, bias) -> {out_shape}", hint=hint,
                   reference=lambda x, weight, bias: F.conv2d(x, weight, bias, **conv_args), diagnose=diagnose)


register(
    CONV2D_LOOPS, OUTPUT_SIZE,
    # Class variants (see engine.variant): the public solutions do not pass them.
    _conv_variant("stride2",
                  "**Stride 2.** `conv2d_loops` moves the kernel **2 cells at a time**, as `F.conv2d(x, weight, bias, "
                  "stride=2)` does: the output has shape (B, C_out, (H - k) // 2 + 1, (W - k) // 2 + 1).",
                  "(B, C_out, (H-k)//2+1, (W-k)//2+1)",
                  "out[b, o, i, j] = bias[o] + the sum over c, u, v of weight[o, c, u, v] * x[b, c, 2i+u, 2j+v] "
                  "(stride 2, no padding, the kernel is not flipped).",
                  _diagnose_strided, stride=2),
    _conv_variant("padding1",
                  "**Zero padding 1.** `conv2d_loops` first surrounds `x` with **one row and column of zeros on "
                  "every side**, as `F.conv2d(x, weight, bias, padding=1)` does: the output has shape (B, C_out, "
                  "H - k + 3, W - k + 3).",
                  "(B, C_out, H-k+3, W-k+3)",
                  "pad x with zeros (F.pad(x, (1, 1, 1, 1)) is allowed), then out[b, o, i, j] = bias[o] + the sum "
                  "over c, u, v of weight[o, c, u, v] * padded[b, c, i+u, j+v].",
                  _diagnose_padded, padding=1),
    variant(OUTPUT_SIZE, "dilation2",
            "**Dilation 2.** `output_size(n, k, s, p)` is the output size of a convolution whose k taps are "
            "**2 cells apart** (`dilation=2` in `nn.Conv2d`), so that the kernel spans 2(k - 1) + 1 cells.",
            hint="the kernel spans 2(k - 1) + 1 cells; count the positions where that span fits in the n + 2p "
                 "cells of the padded input, moving s cells at a time. Return an int (use //).",
            cases=_dilated_size_cases, reference=_dilated_size, diagnose=_diagnose_dilated_size),
)
