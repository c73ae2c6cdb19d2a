"""Lesson 02's exercises: one step of an LSTM cell, and sampling probabilities with a temperature."""

from __future__ import annotations

import itertools
from typing import Any

import torch
from torch import Tensor, nn

from .engine import Case, Exercise, compare_tensor, describe, matches, register, same_tensor, variant

def _lstm_cases(gen: torch.Generator) -> list[Case]:
    # (B, input_size, hidden_size)
    shapes = [(1, 1, 1), (1, 3, 2), (4, 5, 1)]
    shapes += [tuple(int(torch.randint(1, 7, (), generator=gen)) for _ in range(3)) for _ in range(4)]
    cases = []
    for b, i, h in shapes:
        args = (torch.randn(b, i, generator=gen), torch.randn(b, h, generator=gen),
                torch.randn(b, h, generator=gen), 0.5 * torch.randn(4 * h, i, generator=gen),
                0.5 * torch.randn(4 * h, h, generator=gen), 0.5 * torch.randn(4 * h, generator=gen))
        cases.append(Case(f"B={b}, input_size={i}, hidden_size={h}", args))
    return cases


@torch.no_grad()
def _lstm_step_reference(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                         bias: Tensor) -> tuple[Tensor, Tensor]:
    """torch.nn.LSTMCell with the given weights (bias_ih = bias, bias_hh = 0)."""
    cell = nn.LSTMCell(x.shape[1], h.shape[1])
    cell.weight_ih.copy_(weight_ih)
    cell.weight_hh.copy_(weight_hh)
    cell.bias_ih.copy_(bias)
    cell.bias_hh.zero_()
    return cell(x, (h, c))


def _compare_lstm(got: Any, expected: tuple[Tensor, Tensor], args: tuple) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a tuple (h_new, c_new), got {describe(got)}"
    return compare_tensor(got[0], expected[0], "h_new") or compare_tensor(got[1], expected[1], "c_new")


def _diagnose_lstm(got: Any, args: tuple) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return None
    h_new, c_new = _lstm_step_reference(*args)
    if matches(got[0], c_new) and matches(got[1], h_new):
        return "you returned (c_new, h_new); return (h_new, c_new)."
    x, h, c, weight_ih, weight_hh, bias = args
    for order in itertools.permutations(range(4)):
        # The gates of an answer that reads the four row blocks in this order.
        blocks = [torch.cat([t.chunk(4)[k] for k in order]) for t in (weight_ih, weight_hh, bias)]
        wrong = _lstm_step_reference(x, h, c, *blocks)
        if order != (0, 1, 2, 3) and matches(got[0], wrong[0]) and matches(got[1], wrong[1]):
            names = ", ".join("ifgo"[k] for k in order)
            return (f"your gates read the four row blocks of the weights as ({names}); "
                    "torch.nn.LSTM's order is (i, f, g, o): input, forget, cell candidate, output.")
    return None


def _temperature_cases(gen: torch.Generator) -> list[Case]:
    cases = [(torch.tensor([3.0]), 1.0), (torch.tensor([1000.0, 999.0, 0.0]), 1.0),
             (torch.tensor([2.0, 2.0, 2.0, 2.0]), 0.5), (torch.tensor([1.0, 2.0, 3.0]), 0.05),
             (torch.tensor([1.0, 2.0, 3.0]), 10.0)]
    for _ in range(5):
        v = int(torch.randint(2, 21, (), generator=gen))
        temperature = [0.3, 0.7, 1.0, 1.5, 3.0][int(torch.randint(0, 5, (), generator=gen))]
        cases.append((3 * torch.randn(v, generator=gen), temperature))
    return [Case(f"{len(logits)} logits up to {logits.max().item():.3g}, temperature {t}", (logits, t))
            for logits, t in cases]


def _diagnose_temperature(got: Any, args: tuple) -> str | None:
    logits, temperature = args
    if isinstance(got, Tensor) and got.is_floating_point() and got.isnan().any():
        return ("exp overflowed to inf (and inf / inf is nan): subtract the largest logit before "
                "exp, which does not change the softmax, or use torch.softmax.")
    if temperature != 1 and matches(got, torch.softmax(logits * temperature, dim=-1)):
        return "divide the logits by the temperature; you multiplied."
    if temperature != 1 and matches(got, torch.softmax(logits, dim=-1)):
        return "your probabilities do not depend on the temperature: divide the logits by it."
    return None


def _ifog_reference(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                    bias: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM step with the row blocks stored as (i, f, o, g), through torch's (i, f, g, o)."""
    reorder = lambda t: torch.cat([t.chunk(4)[k] for k in (0, 1, 3, 2)])  # noqa: E731
    return _lstm_step_reference(x, h, c, reorder(weight_ih), reorder(weight_hh), reorder(bias))


def _diagnose_ifog(got: Any, args: tuple) -> str | None:
    if isinstance(got, (tuple, list)) and len(got) == 2:
        h_new, c_new = _lstm_step_reference(*args)
        if matches(got[0], h_new) and matches(got[1], c_new):
            return "you read the blocks in torch.nn.LSTM's order (i, f, g, o); this class's weights are (i, f, o, g)."
    return None


def _diagnose_log_probs(got: Any, args: tuple) -> str | None:
    logits, temperature = args
    if matches(got, torch.softmax(logits / temperature, dim=-1)):
        return "those are probabilities: return their logarithms."
    if isinstance(got, Tensor) and got.is_floating_point() and got.isinf().any():
        return ("log(softmax) underflows to -inf for very unlikely tokens: compute log-probabilities directly, "
                "z - max(z) - log(sum(exp(z - max(z)))) with z = logits / temperature (torch.log_softmax does).")
    return None


LSTM_STEP = Exercise(id="02.lstm_step", signature="lstm_step(x, h, c, weight_ih, weight_hh, bias) -> (h_new, c_new)",
             hint="gates = x @ weight_ih.T + h @ weight_hh.T + bias, split into 4 blocks (i, f, g, o); sigmoid "
                  "for i, f, o and tanh for g; c_new = f * c + i * g; h_new = o * tanh(c_new).",
             cases=_lstm_cases, reference=_lstm_step_reference, compare=_compare_lstm, diagnose=_diagnose_lstm,
             does_the_work=("LSTMCell", "LSTM", "lstm_cell", "lstm"))
TEMPERATURE_PROBS = Exercise(id="02.temperature_probs", signature="temperature_probs(logits, temperature) -> probs",
             hint="probs = softmax(logits / temperature); compute the softmax stably (torch.softmax does).",
             cases=_temperature_cases, reference=lambda logits, t: torch.softmax(logits / t, dim=-1),
             compare=same_tensor, diagnose=_diagnose_temperature)

register(
    LSTM_STEP, TEMPERATURE_PROBS,
    # Class variants (see engine.variant): the public solutions do not pass them.
    variant(LSTM_STEP, "ifog",
            "**Gates stored as (i, f, o, g).** The four row blocks of `weight_ih`, `weight_hh` and `bias` hold the "
            "input, forget, **output** and cell-candidate gates, in that order (torch.nn.LSTM stores (i, f, g, o)).",
            hint="gates = x @ weight_ih.T + h @ weight_hh.T + bias, split into 4 blocks (i, f, o, g); sigmoid for "
                 "i, f, o and tanh for g; c_new = f * c + i * g; h_new = o * tanh(c_new).",
            reference=_ifog_reference, diagnose=_diagnose_ifog),
    variant(TEMPERATURE_PROBS, "log_probs",
            "**Log-probabilities.** `temperature_probs` returns the **logarithms** of the probabilities, "
            "log softmax(logits / temperature), computed stably (no -inf for unlikely tokens).",
            signature="temperature_probs(logits, temperature) -> log-probabilities",
            hint="log_probs = log_softmax(logits / temperature): z - max(z) - log(sum(exp(z - max(z)))).",
            reference=lambda logits, t: torch.log_softmax(logits / t, dim=-1), diagnose=_diagnose_log_probs),
)
