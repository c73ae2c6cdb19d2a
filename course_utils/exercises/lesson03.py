"""Lesson 03's exercises: the receptive field of a TCN, a mean over the real steps of padded sequences, and a
CNN-LSTM built from nn modules."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cnn import receptive_field
from .engine import Case, Exercise, compare_int, describe, matches, register, same_tensor, variant

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


def _base3_reference(kernel_size: int, layers: int) -> int:
    """The field of a TCN whose dilations triple, by composing the layers one at a time."""
    return receptive_field([(kernel_size, 1, 3 ** i) for i in range(layers)])


def _diagnose_base3(got: Any, args: tuple) -> str | None:
    if got == _tcn_field_reference(*args):
        return "that is the field with dilations 1, 2, 4, ...; this class's dilations are 1, 3, 9, ..., 3**(layers - 1)."
    return None


def _masked_max_reference(h: Tensor, lengths: Tensor) -> Tensor:
    """One sequence at a time: the largest value of each feature over its first lengths[b] steps."""
    return torch.stack([h[b, :length].max(dim=0).values for b, length in enumerate(lengths.tolist())])


def _diagnose_masked_max(got: Any, args: tuple) -> str | None:
    h, lengths = args
    if matches(got, h.max(dim=1).values):
        return "you took the max over all T steps, padding included: keep only the first lengths[b] steps."
    if matches(got, _masked_mean_reference(h, lengths)):
        return "that is the mean over the real steps; this class's version asks for their max."
    return None


def _cnn_lstm_cases(gen: torch.Generator) -> list[Case]:
    # (B, T, F, H, C, k): small cases first (one feature, kernel 1), then random ones.
    sizes = [(1, 3, 1, 2, 2, 1), (2, 5, 3, 4, 3, 3), (1, 4, 2, 3, 2, 2)]
    for _ in range(4):
        k = int(torch.randint(1, 4, (), generator=gen))
        sizes.append((int(torch.randint(1, 4, (), generator=gen)), k + 1 + int(torch.randint(0, 8, (), generator=gen)),
                      *(int(torch.randint(lo, hi, (), generator=gen)) for lo, hi in ((1, 5), (2, 7), (2, 5))), k))
    cases = []
    for b, t, f, h, c, k in sizes:
        shapes = {"conv.weight": (h, f, k), "conv.bias": (h,), "lstm.weight_ih_l0": (4 * h, h),
                  "lstm.weight_hh_l0": (4 * h, h), "lstm.bias_ih_l0": (4 * h,), "lstm.bias_hh_l0": (4 * h,),
                  "head.weight": (c, h), "head.bias": (c,)}
        state = {name: 0.5 * torch.randn(shape, generator=gen) for name, shape in shapes.items()}
        cases.append(Case(f"x ({b}, {t}, {f}), hidden {h}, {c} classes, kernel {k}",
                          (torch.randn(b, t, f, generator=gen), state)))
    return cases


@torch.no_grad()
def _cnn_lstm_reference(x: Tensor, state: dict[str, Tensor], pool: int = 1, readout: str = "last",
                        relu: bool = True) -> Tensor:
    """The CNN-LSTM of the exercise in torch.nn.functional (and an nn.LSTM holding the state's weights):
    x (B, T, F) -> (B, C). `pool`, `readout` and `relu` give the variant and the usual mistakes."""
    z = F.conv1d(x.transpose(1, 2), state["conv.weight"], state["conv.bias"])  # (B, H, T - k + 1)
    z = torch.relu(z) if relu else z
    z = F.max_pool1d(z, pool) if pool > 1 else z
    hidden = state["conv.weight"].shape[0]
    lstm = nn.LSTM(hidden, hidden, batch_first=True)
    lstm.load_state_dict({name[5:]: value for name, value in state.items() if name.startswith("lstm.")})
    out, _ = lstm(z.transpose(1, 2))                                              # (B, T', H)
    read = out[:, -1] if readout == "last" else out[:, 0] if readout == "first" else out.mean(dim=1)
    return F.linear(read, state["head.weight"], state["head.bias"])


def _diagnose_cnn_lstm(got: Any, args: tuple, pool: int = 1) -> str | None:
    if not isinstance(got, Tensor):
        return None
    if matches(got.detach(), _cnn_lstm_reference(*args, pool=pool, relu=False)):
        return "apply a ReLU to the convolution's output before the LSTM reads it."
    for readout in ("first", "mean"):
        if matches(got.detach(), _cnn_lstm_reference(*args, pool=pool, readout=readout)):
            return ("the head reads the LSTM's output at the last step, out[:, -1]; you used "
                    f"{'the first step' if readout == 'first' else 'the mean over the steps'}.")
    if pool > 1 and matches(got.detach(), _cnn_lstm_reference(*args)):
        return "that is the CNN-LSTM without pooling: max-pool the convolution's outputs over time (2 steps) first."
    return None


def _compare_scores(got: Any, expected: Tensor, args: tuple) -> str | None:
    if isinstance(got, Tensor):
        got = got.detach()
    return same_tensor(got, expected, args) if isinstance(got, Tensor) else (
        f"expected the class scores, a tensor of shape {tuple(expected.shape)}, got {describe(got)}")


TCN_RECEPTIVE_FIELD = Exercise(id="03.tcn_receptive_field", signature="tcn_receptive_field(kernel_size, layers) -> int",
             hint="each layer adds (kernel_size - 1) * dilation steps to the field of one step; add up the "
                  "dilations 1 + 2 + ... + 2**(layers - 1) with the formula for a geometric series.",
             cases=_tcn_field_cases, reference=_tcn_field_reference, compare=compare_int,
             diagnose=_diagnose_tcn_field, does_the_work=("receptive_field",), form="closed")
CNN_LSTM = Exercise(id="03.cnn_lstm", signature="cnn_lstm(x, state) -> (B, C)",
             hint="make an nn.Module with conv = nn.Conv1d(F, H, k), lstm = nn.LSTM(H, H, batch_first=True) and "
                  "head = nn.Linear(H, C), sizes read from the state's shapes; load_state_dict(state); forward: "
                  "conv over time (x.transpose(1, 2)), ReLU, back to (B, T', H), the LSTM, then the head on out[:, -1].",
             cases=_cnn_lstm_cases, reference=_cnn_lstm_reference, compare=_compare_scores,
             diagnose=_diagnose_cnn_lstm, does_the_work=("CNNLSTMClassifier", "make_model"))
MASKED_MEAN = Exercise(id="03.masked_mean", signature="masked_mean(h, lengths) -> (B, H)",
             hint="build a (B, T) mask with torch.arange(T) < lengths[:, None], zero the padded steps, sum "
                  "over time and divide by lengths[:, None] (as a float).",
             cases=_masked_mean_cases, reference=_masked_mean_reference, compare=same_tensor,
             diagnose=_diagnose_masked_mean)

register(
    TCN_RECEPTIVE_FIELD, MASKED_MEAN, CNN_LSTM,
    # Class variants (see engine.variant): the public solutions do not pass them.
    variant(TCN_RECEPTIVE_FIELD, "base3",
            "**Dilations that triple.** Layer i of this TCN has dilation **3\\*\\*i** (1, 3, 9, ...) instead of "
            "2\\*\\*i; `tcn_receptive_field(kernel_size, layers)` returns its receptive field, with a closed formula.",
            hint="each layer adds (kernel_size - 1) * dilation steps to the field of one step; add up the dilations "
                 "1 + 3 + ... + 3**(layers - 1) with the formula for a geometric series.",
            reference=_base3_reference, diagnose=_diagnose_base3),
    variant(MASKED_MEAN, "max",
            "**Max instead of mean.** `masked_mean(h, lengths)` returns, for each sequence and feature, the "
            "**largest** value over its real steps (the padded steps must never win), shape (B, H).",
            hint="set the padded steps to -inf with masked_fill (mask: torch.arange(T) >= lengths[:, None]), then "
                 "take the max over time (.max(dim=1).values).",
            reference=_masked_max_reference, diagnose=_diagnose_masked_max),
    variant(CNN_LSTM, "maxpool2",
            "**Pooling between the CNN and the LSTM.** After the ReLU, max-pool the convolution's outputs over "
            "time with windows of **2 steps** (`nn.MaxPool1d(2)`, as the lesson's CNN-LSTM pools), so that the "
            "LSTM reads (T - k + 1) // 2 steps.",
            hint="conv over time (x.transpose(1, 2)), ReLU, nn.MaxPool1d(2) over time, back to (B, T', H), the LSTM, "
                 "then the head on out[:, -1]; the state's names are conv.*, lstm.*, head.* (the pool has no weights).",
            reference=lambda x, state: _cnn_lstm_reference(x, state, pool=2),
            diagnose=lambda got, args: _diagnose_cnn_lstm(got, args, pool=2)),
)
