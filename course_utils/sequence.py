"""CNN, dilated CNN (TCN), LSTM, GRU, CNN-LSTM and self-attention sequence classifiers,
tasks with a controllable dependency distance, and the measurements that compare them.

Introduced in lesson 03 (CNN vs LSTM vs CNN-LSTM, measured instead of asserted).

The module has four parts (the models train with ``course_utils.fit``, with
``stop_at_accuracy`` to stop once a task is solved):

* Tasks: ``pair_task`` (the label depends on two tokens k steps apart), ``order_task``
  (which of two events came first: what a CNN-LSTM's pooling can lose) and
  ``adding_task`` (Hochreiter & Schmidhuber, 1997: add two marked numbers k steps apart).
* Models: ``ConvClassifier`` (a causal 1D CNN, plain or dilated), ``LSTMClassifier``,
  ``GRUClassifier``, ``CNNLSTMClassifier`` and ``AttentionClassifier`` (a small
  Transformer encoder); all map (B, T, F) inputs, with optional lengths (B,), to (B, C)
  scores. ``make_model`` builds the lesson's six models of similar size.
* Measurements: ``saved_activation_bytes`` and ``seconds_per_step``, the
  ``sequence_cost`` table (one thread and all threads) and ``growth_exponent``.
* Verdicts: ``mean_sd`` and ``compare`` (is a difference beyond the run-to-run spread
  over seeds?), and ``verdicts``, which turns a run's recorded metrics into the
  lesson's table of ten claims, by the rules ``RULES``.

Shapes use B = batch size, T = time steps, F = input features, C = classes,
H = hidden or channel size.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from .cnn import receptive_field
from .timing import median_time
from .train import model_device

MODEL_NAMES = ("cnn", "tcn", "lstm", "gru", "cnn_lstm", "attention")
MODEL_LABELS = {"cnn": "CNN", "tcn": "dilated CNN (TCN)", "lstm": "LSTM", "gru": "GRU", "cnn_lstm": "CNN-LSTM",
                "attention": "self-attention (Transformer)"}
CLAIMS = {
    1: "A CNN finds local patterns with sliding, shared weights (grids such as images); an LSTM carries "
       "context through time (variable-length sequences such as text or audio).",
    2: "The LSTM's gates and cell state solve the plain RNN's vanishing and exploding gradients.",
    3: "In a CNN-LSTM, the convolutions extract the local structure before the LSTM models it over time.",
    4: "A CNN-LSTM is cheaper: shared weights and local receptive fields cut training time and compute.",
    5: "A CNN-LSTM can start from a pretrained CNN, which speeds up training.",
    6: "A CNN-LSTM is worse than an LSTM at long-term dependencies.",
    7: "An LSTM is computationally heavy, and slow to train on long sequences.",
    8: "An LSTM has many parameters, overfits easily and needs more compute.",
    9: "GRU (a simplified LSTM) and the bidirectional LSTM are variants that suit different tasks.",
    10: "With large data and limited memory, the CNN-LSTM is the more economical choice.",
}
SOLVED = 0.9  # the accuracy at which a model counts as having solved a task


# --------------------------------------------------------------------------- tasks

def _check_task_args(n: int, k: int, length: int) -> None:
    for name, value in (("n", n), ("k", k), ("length", length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if length < k + 1:
        raise ValueError(f"a sequence of length {length} cannot hold two positions {k} steps apart "
                         f"(length must be at least k + 1 = {k + 1})")


def pair_task(n: int, k: int, length: int, vocab: int = 4,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Sequences whose label depends on two tokens k steps apart. Introduced in lesson 03.

    There are 2 * vocab symbols: `vocab` "content" symbols and `vocab` "noise"
    symbols. Position ``length - 1 - k`` and the last position hold random content
    symbols a and b; every other step holds a random noise symbol. The label is the
    pair (a, b), numbered ``a * vocab + b``: vocab ** 2 classes. A model that sees
    only b can reach at most 1/vocab accuracy; to solve the task it must see (or
    remember) both, across a gap of k steps.

    Returns:
        x: (n, length, 2 * vocab) float one-hot symbols, content symbols first.
        y: (n,) int64 labels in [0, vocab ** 2).
    """
    _check_task_args(n, k, length)
    if not isinstance(vocab, int) or vocab < 2:
        raise ValueError(f"vocab must be an int >= 2, got {vocab!r}")
    symbols = vocab + torch.randint(vocab, (n, length), generator=generator)  # noise everywhere
    a, b = torch.randint(vocab, (2, n), generator=generator)
    symbols[:, length - 1 - k], symbols[:, -1] = a, b
    return F.one_hot(symbols, 2 * vocab).float(), a * vocab + b


def adding_task(n: int, k: int, length: int,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The adding problem with the two marked numbers exactly k steps apart. Introduced in lesson 03.

    Each step holds a number drawn from U(0, 1) and a marker bit; the markers sit at
    positions ``length - 1 - k`` and ``length - 1``. The target is the sum of the two
    marked numbers. Predicting the mean, 1.0, gives a mean squared error of 1/6.

    Returns:
        x: (n, length, 2) float, (number, marker) per step.
        y: (n,) float targets in [0, 2).
    """
    _check_task_args(n, k, length)
    values = torch.rand(n, length, generator=generator)
    markers = torch.zeros(n, length)
    markers[:, [length - 1 - k, length - 1]] = 1.0
    x = torch.stack([values, markers], dim=-1)
    return x, (values * markers).sum(dim=1)


def order_task(n: int, length: int, gap: int, align: int = 16,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Which of two events came first? The events lie `gap` steps apart. Introduced in lesson 03.

    There are 2 event symbols (A, B) and 4 noise symbols. One event sits at a position
    s, a random multiple of `align` with s >= align (so a convolution never sees the
    left padding), the other at s + gap; every other step holds noise. The label is 1
    if A comes first, 0 if B does. When gap < align and both align and the pool size p
    are powers of two, the two events share one max-pooling window if p > gap, and
    never if p <= gap.

    Returns:
        x: (n, length, 6) float one-hot symbols, A and B first.
        y: (n,) int64 labels in {0, 1}.
    """
    for name, value in (("n", n), ("length", length), ("gap", gap), ("align", align)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    starts = torch.tensor(list(range(align, length - gap, align)), dtype=torch.int64)  # first event's positions
    if len(starts) == 0:
        raise ValueError(f"length {length} is too short: the first event sits at a multiple of align "
                         f"({align}) >= align, and the second {gap} steps later, before the end")
    symbols = 2 + torch.randint(4, (n, length), generator=generator)  # noise everywhere
    first = starts[torch.randint(len(starts), (n,), generator=generator)]
    y = torch.randint(2, (n,), generator=generator)
    rows = torch.arange(n)
    symbols[rows, first], symbols[rows, first + gap] = 1 - y, y  # A (0) first when y == 1
    return F.one_hot(symbols, 6).float(), y


# --------------------------------------------------------------------------- models

def _check_lengths(x: Tensor, lengths: Tensor | None) -> None:
    if lengths is None:
        return
    if not isinstance(lengths, Tensor) or lengths.dtype != torch.int64 or lengths.shape != (x.shape[0],):
        raise TypeError(f"lengths must be an int64 tensor of shape ({x.shape[0]},), got "
                        f"{getattr(lengths, 'dtype', type(lengths).__name__)} {tuple(getattr(lengths, 'shape', ()))}")
    if int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
        raise ValueError(f"lengths must lie in [1, {x.shape[1]}] (the padded length), "
                         f"got values from {int(lengths.min())} to {int(lengths.max())}")


def _check_sequence(x: Any, features: int) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a float tensor, got {getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim != 3 or x.shape[2] != features:
        raise ValueError(f"x must have shape (batch, steps, {features}), got {tuple(x.shape)}")


class CausalConv1d(nn.Conv1d):
    """A 1D convolution that sees only the present and the past. Introduced in lesson 03.

    Pads (kernel_size - 1) * dilation zeros on the left only, so output t depends on
    inputs t - (kernel_size - 1) * dilation, ..., t and the output has the input's
    length: (B, C_in, T) -> (B, C_out, T).
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, (self.dilation[0] * (self.kernel_size[0] - 1), 0)))


class ConvClassifier(nn.Module):
    """A causal 1D CNN classifier: plain, or dilated like a TCN. Introduced in lesson 03.

    A first causal convolution maps F features to H channels; each further layer adds
    ``relu(causal_conv(h))`` to h (a residual connection). With ``dilated=True`` the
    dilation doubles at every layer (1, 2, 4, ...), as in the temporal convolutional
    network (TCN) of Bai, Kolter & Koltun (2018), so the receptive field grows
    exponentially with depth instead of linearly.

    Readout: ``"last"`` classifies from the last (valid) time step, as the TCN does
    for sequential MNIST; it sees exactly ``receptive_field()`` inputs. ``"mean"``
    averages the features over the valid steps (masked global pooling), which sees
    the whole sequence.

    Args:
        features: F; classes: C; channels: H; kernel_size and layers of the stack.

    Forward: x (B, T, F) and optional lengths (B,) int64 -> (B, C) scores. Steps at
    or after a sequence's length are padding: thanks to the causal convolutions,
    they never change the outputs at valid steps.
    """

    def __init__(self, features: int, classes: int, channels: int = 32, kernel_size: int = 5,
                 layers: int = 4, dilated: bool = False, readout: str = "last") -> None:
        super().__init__()
        if readout not in ("last", "mean"):
            raise ValueError(f"readout must be 'last' or 'mean', got {readout!r}")
        if min(features, classes, channels, kernel_size, layers) < 1:
            raise ValueError("features, classes, channels, kernel_size and layers must all be >= 1")
        self.features, self.readout = features, readout
        dilations = [2 ** i if dilated else 1 for i in range(layers)]
        self.convs = nn.ModuleList(
            CausalConv1d(features if i == 0 else channels, channels, kernel_size, dilation=d)
            for i, d in enumerate(dilations))
        self.head = nn.Linear(channels, classes)

    def layer_specs(self) -> list[tuple[int, int, int]]:
        """(kernel, stride, dilation) per layer, input side first, for `receptive_field`."""
        return [(conv.kernel_size[0], 1, conv.dilation[0]) for conv in self.convs]

    def receptive_field(self) -> int:
        """How many input steps the last step's features see."""
        return receptive_field(self.layer_specs())

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence(x, self.features)
        _check_lengths(x, lengths)
        h = torch.relu(self.convs[0](x.transpose(1, 2)))      # (B, H, T)
        for conv in self.convs[1:]:
            h = h + torch.relu(conv(h))                        # (B, H, T)
        if lengths is None:
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64, device=x.device)
        if self.readout == "last":
            features = h[torch.arange(len(h)), :, lengths - 1]  # (B, H)
        else:
            mask = torch.arange(x.shape[1], device=x.device) < lengths[:, None]  # (B, T)
            features = (h * mask[:, None]).sum(-1) / lengths[:, None]           # (B, H)
        return self.head(features)


class LSTMClassifier(nn.Module):
    """An LSTM that classifies from its last hidden state. Introduced in lesson 03.

    The gate biases get the "chrono" initialisation (see `chrono_init`) for
    sequences of up to `max_steps` steps.

    Forward: x (B, T, F) and optional lengths (B,) int64 -> (B, C) scores. With
    lengths, the batch is packed (`pack_padded_sequence`), so the LSTM stops at each
    sequence's own last step and never reads the padding.
    """

    def __init__(self, features: int, classes: int, hidden: int = 64, max_steps: int = 100) -> None:
        super().__init__()
        self.features = features
        self.lstm = nn.LSTM(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)
        chrono_init(self.lstm, max_steps)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence(x, self.features)
        _check_lengths(x, lengths)
        return self.head(_last_hidden(self.lstm, x, lengths))


class CNNLSTMClassifier(nn.Module):
    """Causal convolutions and max-pooling, then an LSTM over the shorter sequence.
    Introduced in lesson 03.

    The convolutions (kernel_size, ``conv_layers`` of them, H_conv channels) find
    local patterns; max-pooling keeps the strongest response in each block of
    `pool` steps, so the LSTM runs ceil(T / pool) steps instead of T. The last
    block may be shorter than `pool` (``ceil_mode``): no step is dropped, so a
    label that depends on the final token can still be learned. Steps past a
    sequence's length are zeroed before pooling (after the ReLU every response
    is >= 0, so a zero never wins a block that holds a real step).

    The LSTM gets the chrono initialisation for max_steps // pool steps.

    Forward: x (B, T, F) and optional lengths (B,) int64 -> (B, C) scores; with
    lengths, the pooled sequences (ceil(lengths / pool) steps) are packed.
    """

    def __init__(self, features: int, classes: int, channels: int = 32, kernel_size: int = 5,
                 conv_layers: int = 2, pool: int = 4, hidden: int = 48, max_steps: int = 100) -> None:
        super().__init__()
        self.features, self.pool = features, pool
        self.convs = nn.ModuleList(CausalConv1d(features if i == 0 else channels, channels, kernel_size)
                                   for i in range(conv_layers))
        self.lstm = nn.LSTM(channels, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)
        chrono_init(self.lstm, max(max_steps // pool, 3))

    def layer_specs(self) -> list[tuple[int, int]]:
        """(kernel, stride) of the convolutions and the pooling, for `receptive_field`."""
        return [(conv.kernel_size[0], 1) for conv in self.convs] + [(self.pool, self.pool)]

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence(x, self.features)
        _check_lengths(x, lengths)
        h = x.transpose(1, 2)                                   # (B, F, T)
        for conv in self.convs:
            h = torch.relu(conv(h))                             # (B, H_conv, T)
        if lengths is not None:
            real = torch.arange(x.shape[1], device=x.device) < lengths.to(x.device).unsqueeze(1)  # (B, T)
            h = h * real.unsqueeze(1)
            lengths = (lengths + self.pool - 1) // self.pool    # ceil(lengths / pool)
        h = F.max_pool1d(h, self.pool, ceil_mode=True).transpose(1, 2)  # (B, ceil(T / pool), H_conv)
        return self.head(_last_hidden(self.lstm, h, lengths))


class GRUClassifier(nn.Module):
    """A GRU that classifies from its last hidden state. Introduced in lesson 03.

    A GRU (Cho et al., 2014) has no separate cell state and three gate blocks instead
    of the LSTM's four: a reset gate r, an update gate z and a candidate n, with
    h_t = (1 - z) * n + z * h_{t-1}. So a layer has 3/4 of an LSTM layer's parameters.
    The update gate plays the forget gate's part, and gets its chrono initialisation.

    Forward: x (B, T, F) and optional lengths (B,) int64 -> (B, C) scores, packed as
    in `LSTMClassifier`.
    """

    def __init__(self, features: int, classes: int, hidden: int = 64, max_steps: int = 100) -> None:
        super().__init__()
        self.features = features
        self.gru = nn.GRU(features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)
        chrono_init(self.gru, max_steps)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence(x, self.features)
        _check_lengths(x, lengths)
        return self.head(_last_hidden(self.gru, x, lengths))


def positional_encoding(length: int, width: int) -> Tensor:
    """The sinusoidal positional encoding of Vaswani et al. (2017). Introduced in lesson 03.

    Column 2i holds sin(t / 10000^(2i / width)) and column 2i + 1 the cosine, so each
    position t gets its own pattern, and a shift by a fixed distance is a linear map
    of it: attention can learn "look k steps back".

    Returns: (length, width).
    """
    if width % 2:
        raise ValueError(f"width must be even, got {width}")
    t = torch.arange(length, dtype=torch.float32)[:, None]                     # (T, 1)
    frequencies = 10000 ** (-torch.arange(0, width, 2, dtype=torch.float32) / width)  # (width / 2,)
    encoding = torch.zeros(length, width)
    encoding[:, 0::2], encoding[:, 1::2] = torch.sin(t * frequencies), torch.cos(t * frequencies)
    return encoding


class SelfAttentionBlock(nn.Module):
    """One Transformer encoder layer, written out (pre-norm). Introduced in lesson 03.

    h = x + attention(layer_norm(x)); out = h + feed_forward(layer_norm(h)): two
    residual connections, so each block adds to its input instead of replacing it.
    The attention computes, per head, weights = softmax(q k^T / sqrt(d)) of shape
    (T, T): every step looks at every step in one matrix multiply, with no
    recurrence, and autograd keeps that (B, heads, T, T) matrix for the backward pass.

    Forward: x (B, T, W) and an optional key mask (B, T) bool (False: padding, never
    attended to) -> (B, T, W).
    """

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)   # queries, keys and values in one matrix
        self.out = nn.Linear(width, width)
        self.feed_forward = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Linear(hidden, width))

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        b, t, w = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-1, -2) / (w // self.heads) ** 0.5        # (B, heads, T, T)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        mixed = scores.softmax(dim=-1) @ v                                  # (B, heads, T, d)
        h = x + self.out(mixed.transpose(1, 2).reshape(b, t, w))           # residual connection
        return h + self.feed_forward(self.norm2(h))                         # residual connection


class AttentionClassifier(nn.Module):
    """A small Transformer encoder that classifies from its last step. Introduced in lesson 03.

    A linear embedding of the F features to W, plus the sinusoidal positional encoding
    (without it, attention cannot tell the order of the steps), then `layers`
    `SelfAttentionBlock`s, a final layer norm, and a linear head on the last (valid) step.

    Forward: x (B, T, F) and optional lengths (B,) int64 -> (B, C) scores; with lengths,
    padded steps are masked out as keys and the head reads step lengths - 1.
    """

    def __init__(self, features: int, classes: int, width: int = 32, heads: int = 2, layers: int = 2,
                 hidden: int = 64) -> None:
        super().__init__()
        self.features, self.width = features, width
        self.embed = nn.Linear(features, width)
        self.blocks = nn.ModuleList(SelfAttentionBlock(width, heads, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence(x, self.features)
        _check_lengths(x, lengths)
        h = self.embed(x) + positional_encoding(x.shape[1], self.width).to(x.device)  # (B, T, W)
        key_mask = None
        if lengths is not None:
            key_mask = torch.arange(x.shape[1], device=x.device) < lengths.to(x.device)[:, None]  # (B, T)
        for block in self.blocks:
            h = block(h, key_mask)                                           # (B, T, W)
        last = (lengths.to(x.device) - 1) if lengths is not None else torch.full((len(h),), x.shape[1] - 1,
                                                                                 device=x.device)
        return self.head(self.norm(h[torch.arange(len(h), device=x.device), last]))


def chrono_init(rnn: nn.LSTM | nn.GRU, max_steps: int) -> None:
    """The "chrono" initialisation of an LSTM's (or GRU's) gate biases (Tallec &
    Ollivier, 2018). Introduced in lesson 03.

    A forget gate f = sigmoid(b_f) keeps a fraction f of the cell state per step, so
    the cell remembers for about 1 / (1 - f) steps. Drawing b_f = log(u), u ~ U(1,
    max_steps - 1), spreads these memory spans over 2 ... max_steps steps; the input
    gate bias is -b_f, and the other biases are 0. With PyTorch's default (biases
    near 0, a span of about 2 steps) the LSTM of lesson 03 needed far more training,
    in trial runs, to learn dependencies a hundred steps or more long. In a GRU the
    update gate z keeps z * h_{t-1}: it gets b_f, and the other biases are 0.
    """
    if not isinstance(max_steps, int) or max_steps < 3:
        raise ValueError(f"max_steps must be an int >= 3, got {max_steps!r}")
    hidden = rnn.hidden_size
    with torch.no_grad():
        for layer in range(rnn.num_layers):
            forget = torch.log(torch.empty(hidden).uniform_(1, max_steps - 1))
            bias_ih, bias_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
            bias_ih.zero_()
            bias_hh.zero_()
            if isinstance(rnn, nn.GRU):
                bias_ih[hidden:2 * hidden] = forget                           # gate order r, z, n
            else:
                bias_ih[:hidden], bias_ih[hidden:2 * hidden] = -forget, forget  # gate order i, f, g, o


def _last_hidden(rnn: nn.LSTM | nn.GRU, x: Tensor, lengths: Tensor | None) -> Tensor:
    """The top layer's hidden state at each sequence's last valid step: (B, T, F) -> (B, H)."""
    if lengths is not None:
        x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, state = rnn(x)
    h_n = state[0] if isinstance(state, tuple) else state  # an LSTM returns (h_n, c_n), a GRU h_n
    return h_n[-1]


def make_model(name: str, features: int, classes: int, max_steps: int = 100, pool: int = 4) -> nn.Module:
    """One of the lesson's six models, each with 15-25k parameters for a handful of
    input features. Introduced in lesson 03.

    - "cnn": 4 causal convolutions, kernel 5, 32 channels (receptive field 17);
    - "tcn": 8 causal convolutions, kernel 2, dilations 1..128, 32 channels (receptive field 256);
    - "lstm": one LSTM layer of 64 units;
    - "gru": one GRU layer of 72 units;
    - "cnn_lstm": 2 causal convolutions (kernel 5, 32 channels), max-pool `pool`, an LSTM of 48 units;
    - "attention": 2 Transformer encoder layers, width 32, 2 heads, feed-forward 64.

    `max_steps`, the longest sequence expected, sets the recurrent layers' `chrono_init`.
    """
    if name == "cnn":
        return ConvClassifier(features, classes, channels=32, kernel_size=5, layers=4)
    if name == "tcn":
        return ConvClassifier(features, classes, channels=32, kernel_size=2, layers=8, dilated=True)
    if name == "lstm":
        return LSTMClassifier(features, classes, hidden=64, max_steps=max_steps)
    if name == "gru":
        return GRUClassifier(features, classes, hidden=72, max_steps=max_steps)
    if name == "cnn_lstm":
        if not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool must be a positive int, got {pool!r}")
        return CNNLSTMClassifier(features, classes, channels=32, kernel_size=5, conv_layers=2, pool=pool,
                                 hidden=48, max_steps=max_steps)
    if name == "attention":
        return AttentionClassifier(features, classes, width=32, heads=2, layers=2, hidden=64)
    raise ValueError(f"model name must be one of {MODEL_NAMES}, got {name!r}")


# --------------------------------------------------------------------------- training

# --------------------------------------------------------------------------- measurements

def saved_activation_bytes(model: nn.Module, x: Tensor, y: Tensor,
                           loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy) -> int:
    """Bytes of the tensors autograd keeps for the backward pass of one training step.
    Introduced in lesson 03.

    A ``saved_tensors_hooks`` context sees every tensor that the forward pass saves for
    backward; we add up the sizes of their distinct storages, leaving out the
    parameters (they exist anyway). These saved activations are the part of training
    memory that grows with the batch size and the sequence length. Parameters,
    gradients, optimizer state and the allocator's own overhead are not included.

    Args:
        x: (B, T, F) inputs; y: (B,) targets for `loss_fn`.
    """
    parameters = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: Tensor) -> Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in parameters:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn(model(x), y)
    del loss
    return sum(storages.values())


def seconds_per_step(model: nn.Module, x: Tensor, y: Tensor,
                     loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
                     min_run_time: float = 0.2, threads: int | None = None) -> float:
    """Median seconds of one forward and backward pass on (x, y), after warm-up,
    timed with course_utils.timing.median_time. Introduced in lesson 03.

    On a GPU, each pass is timed until the GPU has finished it (CUDA runs asynchronously).

    Args:
        x: (B, T, F) inputs; y: (B,) targets for `loss_fn`, on the model's device.
        min_run_time: seconds of timed passes, at least.
        threads: torch CPU threads (None: torch's current setting).
    """
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()

    return median_time(step, threads=threads, warmup=1, min_run_time=min_run_time)


def sequence_cost(models: Mapping[str, nn.Module], lengths: Sequence[int], features: int, classes: int,
                  batch_size: int = 32, min_run_time: float = 0.2,
                  threads: Sequence[int] = (1,)) -> pd.DataFrame:
    """Time per training step and saved activations for each model at each sequence
    length and each number of CPU threads, on random inputs, each model on its own
    device. Introduced in lesson 03.

    Returns one row per (model, T, threads): model, T, threads, ms_per_step,
    saved_mb (10^6 bytes; it does not depend on the threads).
    """
    if not threads or any(not isinstance(t, int) or t < 1 for t in threads):
        raise ValueError(f"threads must be a non-empty sequence of positive ints, got {threads!r}")
    rows = []
    for length in lengths:
        x = torch.randn(batch_size, length, features)
        y = torch.randint(classes, (batch_size,))
        for name, model in models.items():
            device = model_device(model)
            xd, yd = x.to(device), y.to(device)
            saved_mb = saved_activation_bytes(model, xd, yd) / 1e6
            for count in threads:
                rows.append({"model": name, "T": length, "threads": count, "saved_mb": saved_mb,
                             "ms_per_step": 1000 * seconds_per_step(model, xd, yd, min_run_time=min_run_time,
                                                                    threads=count)})
    return pd.DataFrame(rows, columns=["model", "T", "threads", "ms_per_step", "saved_mb"])


def growth_exponent(lengths: Sequence[float], values: Sequence[float]) -> float:
    """The exponent e in value ~ T^e between the two longest lengths. Introduced in lesson 03.

    e = log(v2 / v1) / log(T2 / T1): 1 for a cost that doubles when T doubles (linear),
    2 for one that quadruples (quadratic).
    """
    if len(lengths) != len(values) or len(lengths) < 2:
        raise ValueError(f"need at least two (length, value) pairs, got {len(lengths)} lengths and {len(values)} values")
    (t1, v1), (t2, v2) = sorted(zip(lengths, values))[-2:]
    if min(t1, t2, v1, v2) <= 0 or t1 == t2:
        raise ValueError("lengths must be distinct and positive, and values positive")
    return math.log(v2 / v1) / math.log(t2 / t1)


# --------------------------------------------------------------------------- seeds and spread

def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of one measurement repeated over seeds (sd 0 for
    a single value). Introduced in lesson 03."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_sd needs at least one value")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def compare(metrics: Mapping[str, Any], a: str, b: str, floor: float = 0.01) -> str:
    """Is measurement `a` "higher" or "lower" than `b`, or "within spread"? Introduced in lesson 03.

    Reads ``{a}_mean``, ``{a}_sd``, ``{b}_mean``, ``{b}_sd`` and ``seeds`` (n). The difference
    of the means counts only if it exceeds twice its standard error,
    2 * sqrt((sd_a^2 + sd_b^2) / n), and `floor` (so that two sets of identical runs are
    never "different"); otherwise it lies within the run-to-run spread.
    """
    n = _metric(metrics, "seeds")
    if n < 1:
        raise ValueError(f"seeds must be >= 1, got {n}")
    mean_a, mean_b = _metric(metrics, f"{a}_mean"), _metric(metrics, f"{b}_mean")
    spread = 2 * math.sqrt((_metric(metrics, f"{a}_sd") ** 2 + _metric(metrics, f"{b}_sd") ** 2) / n)
    if abs(mean_a - mean_b) <= max(spread, floor):
        return "within spread"
    return "higher" if mean_a > mean_b else "lower"


def _metric(metrics: Mapping[str, Any], name: str) -> float:
    if name not in metrics:
        raise KeyError(f"the verdicts need the metric {name!r}, which was not recorded")
    return float(metrics[name])


def _pm(metrics: Mapping[str, Any], name: str, digits: int = 2) -> str:
    """'mean ± sd' of a measurement over seeds."""
    return f"{_metric(metrics, name + '_mean'):.{digits}f} ± {_metric(metrics, name + '_sd'):.{digits}f}"


def _suffixes(metrics: Mapping[str, Any], prefix: str, suffix: str = "") -> list[int]:
    """The sorted integers n of the recorded keys ``{prefix}{n}{suffix}``."""
    found = sorted({int(key[len(prefix):len(key) - len(suffix)]) for key in metrics
                    if key.startswith(prefix) and key.endswith(suffix)
                    and key[len(prefix):len(key) - len(suffix)].isdigit()})
    if not found:
        raise KeyError(f"the verdicts need metrics named {prefix}<n>{suffix}, and none was recorded")
    return found


def distances(metrics: Mapping[str, Any]) -> list[int]:
    """The distances k of the pair task with a recorded ``lstm_acc_k{k}_mean``, sorted.
    Introduced in lesson 03."""
    return _suffixes(metrics, "lstm_acc_k", "_mean")


def _longest(metrics: Mapping[str, Any]) -> int:
    return _suffixes(metrics, "saved_mb_lstm_T")[-1]


# --------------------------------------------------------------------------- the ten rules

def _claim_1(m: Mapping[str, Any]) -> tuple[str, str]:
    near, far = distances(m)[0], distances(m)[-1]
    field = int(_metric(m, "cnn_receptive_field"))
    solved = {(name, k): _metric(m, f"{name}_acc_k{k}_mean") >= SOLVED for name in ("cnn", "tcn", "lstm")
              for k in (near, far)}
    exact = max(_metric(m, "lstm_packed_max_diff"), _metric(m, "cnn_masked_max_diff")) < 1e-5
    numbers = (f"pair task, k={near} / k={far}: CNN (field {field}) {_pm(m, f'cnn_acc_k{near}')} / "
               f"{_pm(m, f'cnn_acc_k{far}')}, TCN (field {int(_metric(m, 'tcn_receptive_field'))}) "
               f"{_pm(m, f'tcn_acc_k{far}')} at k={far}, LSTM {_pm(m, f'lstm_acc_k{far}')} at k={far}; "
               f"padded batch vs one at a time: packed LSTM {_metric(m, 'lstm_packed_max_diff'):.0e}, "
               f"masked CNN {_metric(m, 'cnn_masked_max_diff'):.0e}")
    if not solved["lstm", far]:
        return numbers, f"does not hold: the LSTM does not solve k={far}"
    if not solved["cnn", near] or solved["cnn", far]:
        return numbers, "does not hold: the plain CNN's accuracy does not follow its receptive field"
    if solved["tcn", far] or exact:
        return numbers, (f"holds only when the CNN's receptive field is shorter than the dependency: a dilated "
                         f"CNN solves k={far} too, and a causal CNN with masking takes variable lengths exactly")
    return numbers, "holds"


def _claim_2(m: Mapping[str, Any]) -> tuple[str, str]:
    k = int(_metric(m, "gradient_distance"))
    log = {name: _metric(m, f"gradient_log10_{name}_mean") for name in ("rnn", "lstm_default", "lstm", "gru")}
    numbers = (f"log10 of |dL/dx| {k} steps back over |dL/dx| at the last step, untrained, over seeds: RNN "
               f"{_pm(m, 'gradient_log10_rnn', 1)}, LSTM default init {_pm(m, 'gradient_log10_lstm_default', 1)}, "
               f"LSTM chrono init {_pm(m, 'gradient_log10_lstm', 1)}, GRU {_pm(m, 'gradient_log10_gru', 1)}")
    gated_better = compare(m, "gradient_log10_lstm", "gradient_log10_rnn", floor=2.0) == "higher"
    default_better = compare(m, "gradient_log10_lstm_default", "gradient_log10_rnn", floor=2.0) == "higher"
    if gated_better and default_better and log["lstm_default"] > -3:
        return numbers, "holds"
    if gated_better:
        return numbers, (f"holds only when the forget gate starts open (chrono init): with PyTorch's default "
                         f"init the LSTM's gradient {k} steps back is 10^{log['lstm_default']:.0f} of the last "
                         "step's; exploding gradients are still clipped")
    return numbers, "does not hold"


def _window(m: Mapping[str, Any]) -> tuple[list[int], int]:
    pools = _suffixes(m, "window_acc_pool", "_mean")
    return pools, int(_metric(m, "window_crossover_pool"))


def _claim_3(m: Mapping[str, Any]) -> tuple[str, str]:
    pools, _ = _window(m)
    field, gap, near_gap = (int(_metric(m, name)) for name in ("window_conv_field", "window_gap", "window_near_gap"))
    numbers = (f"order task, pool {pools[-1]}: events {near_gap} steps apart (inside the convolutions' field of "
               f"{field}) {_pm(m, 'window_near_acc')}, {gap} steps apart {_pm(m, f'window_acc_pool{pools[-1]}')}; "
               f"LSTM {_pm(m, 'window_acc_lstm')}")
    near_solved = _metric(m, "window_near_acc_mean") >= SOLVED
    far_lost = compare(m, f"window_acc_pool{pools[-1]}", "window_acc_lstm") == "lower"
    if near_solved and far_lost:
        return numbers, (f"holds only when the local structure fits in the convolutions' receptive field "
                         f"({field} steps): the order of events {gap} steps apart is lost in a pool of {pools[-1]}")
    if near_solved:
        return numbers, "holds"
    return numbers, "does not hold"


def _claim_4(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    ms = {name: _metric(m, f"ms_per_step_{name}_T{t}_threads1") for name in ("lstm", "cnn_lstm", "cnn_lstm_nopool")}
    mb = {name: _metric(m, f"saved_mb_{name}_T{t}") for name in ms}
    numbers = (f"T={t}, one thread: ms per step LSTM {ms['lstm']:.0f}, CNN-LSTM (pool 4) {ms['cnn_lstm']:.0f}, "
               f"without pooling {ms['cnn_lstm_nopool']:.0f}; saved MB {mb['lstm']:.1f}, {mb['cnn_lstm']:.1f}, "
               f"{mb['cnn_lstm_nopool']:.1f}; parameters LSTM {int(_metric(m, 'parameters_lstm')):,}, "
               f"CNN-LSTM {int(_metric(m, 'parameters_cnn_lstm')):,}")
    faster, smaller = ms["cnn_lstm"] < ms["lstm"], mb["cnn_lstm"] < mb["lstm"]
    nopool_wins = ms["lstm"] > 1.25 * ms["cnn_lstm_nopool"] and mb["lstm"] > 1.25 * mb["cnn_lstm_nopool"]
    if faster and smaller:
        if nopool_wins:
            return numbers, "holds"
        return numbers, ("holds only when the pooling shortens the sequence: without pooling the CNN-LSTM "
                         "is not 25% cheaper in both time and memory")
    if faster or smaller:
        return numbers, f"holds only for {'time' if faster else 'memory'}, not for {'memory' if faster else 'time'}"
    return numbers, "does not hold"


def _claim_5(m: Mapping[str, Any]) -> tuple[str, str]:
    after = int(_metric(m, "pretrain_compare_steps"))
    numbers = (f"steps to {SOLVED} validation accuracy: pretrained CNN {_pm(m, 'pretrained_steps', 0)}, from "
               f"scratch {_pm(m, 'scratch_steps', 0)}; accuracy after {after} steps: "
               f"{_pm(m, 'pretrained_acc_after')} vs {_pm(m, 'scratch_acc_after')}")
    steps = compare(m, "pretrained_steps", "scratch_steps", floor=1.0)
    accuracy = compare(m, "pretrained_acc_after", "scratch_acc_after")
    if steps == "lower" and accuracy != "lower":
        return numbers, "holds"
    if steps == "higher" or accuracy == "lower":
        return numbers, "does not hold"
    if accuracy == "higher":
        return numbers, "holds only for the accuracy after equal steps; the steps to the target are within the spread"
    return numbers, "inconclusive: both differences lie within the run-to-run spread"


def _claim_6(m: Mapping[str, Any]) -> tuple[str, str]:
    far = distances(m)[-1]
    pools, crossover = _window(m)
    distance = compare(m, f"cnn_lstm_acc_k{far}", f"lstm_acc_k{far}")
    numbers = (f"pair task k={far}: CNN-LSTM (pool 4) {_pm(m, f'cnn_lstm_acc_k{far}')}, LSTM "
               f"{_pm(m, f'lstm_acc_k{far}')}; order task: LSTM {_pm(m, 'window_acc_lstm')}, CNN-LSTM by pool " +
               ", ".join(f"{p}: {_metric(m, f'window_acc_pool{p}_mean'):.2f}" for p in pools))
    if distance == "lower":
        return numbers, "holds"
    if crossover:
        return numbers, (f"holds only when a pooling window swallows the order of two events farther apart than "
                         f"the convolutions see (here pool >= {crossover}); over a distance of {far} steps the "
                         f"CNN-LSTM is {'as good' if distance == 'within spread' else 'better'}")
    return numbers, "does not hold"


def _claim_7(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    ms = {name: _metric(m, f"ms_per_step_{name}_T{t}_threadsall") for name in ("lstm", "cnn", "tcn", "attention")}
    growth = {name: _metric(m, f"growth_ms_{name}") for name in ("lstm", "tcn", "attention")}
    numbers = (f"T={t}, all threads, ms per step: LSTM {ms['lstm']:.0f}, CNN {ms['cnn']:.0f}, TCN {ms['tcn']:.0f}, "
               f"attention {ms['attention']:.0f}; growth exponent of the time (1 = linear in T): LSTM "
               f"{growth['lstm']:.2f}, TCN {growth['tcn']:.2f}, attention {growth['attention']:.2f}")
    if ms["lstm"] > 1.25 * max(ms["cnn"], ms["tcn"]):
        if ms["lstm"] > 1.25 * ms["attention"]:
            return numbers, "holds"
        return numbers, (f"holds only against convolutions: at T={t} self-attention is "
                         f"{'slower' if ms['attention'] > ms['lstm'] else 'about as slow'}, and its time grows faster")
    return numbers, "does not hold"


def _claim_8(m: Mapping[str, Any]) -> tuple[str, str]:
    lstm_layer, conv_layer = _metric(m, "lstm_layer_parameters"), _metric(m, "conv_layer_parameters")
    gaps = {name: compare(m, "rows_gap_lstm", f"rows_gap_{name}") for name in ("cnn", "tcn")}
    numbers = (f"one layer 64 -> 64: LSTM {lstm_layer:,.0f}, convolution (kernel 5) {conv_layer:,.0f} parameters; "
               "Fashion-MNIST rows, train-test accuracy gap: " +
               ", ".join(f"{MODEL_LABELS[name]} {_pm(m, f'rows_gap_{name}', 3)}" for name in ("lstm", "cnn", "tcn")))
    more = lstm_layer > conv_layer
    if more and all(g == "higher" for g in gaps.values()):
        return numbers, "holds"
    if more and any(g == "lower" for g in gaps.values()):
        return numbers, ("holds only for parameters at equal width: the LSTM's train-test gap is lower than "
                         "a CNN's")
    if more:
        return numbers, ("holds only for parameters at equal width: the train-test gaps lie within the "
                         "run-to-run spread")
    return numbers, "does not hold"


def _claim_9(m: Mapping[str, Any]) -> tuple[str, str]:
    far, t = distances(m)[-1], _longest(m)
    tasks = {f"pair k={far}": f"acc_k{far}", "order task": "window_acc", "Fashion rows": "rows_test_acc"}
    pairs = {"pair": (f"gru_acc_k{far}", f"lstm_acc_k{far}"), "order": ("window_acc_gru", "window_acc_lstm"),
             "rows": ("rows_test_acc_gru", "rows_test_acc_lstm")}
    outcome = {task: compare(m, *names) for task, names in pairs.items()}
    numbers = (f"GRU vs LSTM: parameters {int(_metric(m, 'parameters_gru')):,} vs {int(_metric(m, 'parameters_lstm')):,}; "
               f"ms per step at T={t} (one thread) {_metric(m, f'ms_per_step_gru_T{t}_threads1'):.0f} vs "
               f"{_metric(m, f'ms_per_step_lstm_T{t}_threads1'):.0f}; accuracy " +
               ", ".join(f"{label}: {_pm(m, a)} vs {_pm(m, b)}" for label, (a, b) in zip(tasks, pairs.values())))
    differ = [task for task, o in outcome.items() if o != "within spread"]
    if differ:
        return numbers, ("holds: on " + ", ".join(f"{task} the GRU is {outcome[task]}" for task in differ)
                         + "; the bidirectional LSTM is taken up in lesson 05")
    return numbers, ("inconclusive: on these tasks the GRU's accuracy lies within the LSTM's run-to-run spread, "
                     "with fewer parameters; the bidirectional LSTM is taken up in lesson 05")


def _claim_10(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    names = ("lstm", "gru", "cnn_lstm", "tcn", "attention")
    mb = {name: _metric(m, f"saved_mb_{name}_T{t}") for name in names}
    ms = {name: _metric(m, f"ms_per_step_{name}_T{t}_threads1") for name in names}
    _, crossover = _window(m)
    numbers = (f"T={t}, saved MB / ms per step (one thread): " +
               ", ".join(f"{MODEL_LABELS[n]} {mb[n]:.0f} / {ms[n]:.0f}" for n in names) +
               f"; order task: the CNN-LSTM falls below the LSTM at pool {crossover or 'none'}")
    if not (mb["cnn_lstm"] < mb["lstm"] and ms["cnn_lstm"] < ms["lstm"]):
        return numbers, "does not hold"
    best = min(names, key=mb.get)
    condition = f"the task's order survives the pooling (pool < {crossover})" if crossover else ""
    if best != "cnn_lstm":
        return numbers, (f"holds only against the LSTM and the GRU, and only when {condition or 'the pooling loses nothing'}"
                         f": the {MODEL_LABELS[best]} keeps less memory ({mb[best]:.0f} MB vs {mb['cnn_lstm']:.0f})")
    if condition:
        return numbers, f"holds only when {condition}"
    return numbers, "holds"


EXPERIMENTS = {
    1: "pair task at a short and a long distance k; receptive fields; padded batches",
    2: "gradient of the last output with respect to earlier inputs, untrained models",
    3: "order task at the largest pool: events inside vs outside the convolutions' field",
    4: "time per step and saved activations at the longest T, with and without pooling",
    5: "CNN-LSTM whose convolutions come from the pair task at the short k, vs from scratch",
    6: "pair task at the long k; order task swept over the pool size",
    7: "time per step at growing T on all threads; growth exponents",
    8: "parameters of one layer at equal width; train-test gap on Fashion-MNIST rows",
    9: "GRU vs LSTM: parameters, time, accuracy on three tasks",
    10: "saved activations and time at the longest T; the order task's crossover",
}
RULES = {1: _claim_1, 2: _claim_2, 3: _claim_3, 4: _claim_4, 5: _claim_5, 6: _claim_6, 7: _claim_7,
         8: _claim_8, 9: _claim_9, 10: _claim_10}
VERDICT_STARTS = ("holds", "does not hold", "inconclusive")


def verdicts(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The lesson's claim/verdict table, computed from a run's recorded metrics by fixed
    rules, so that the verdicts cannot disagree with the numbers. Introduced in lesson 03.

    Args:
        metrics: name -> value, as ``course_utils.lesson.read_metrics`` returns them.

    Returns:
        One row per claim (index 1-10), columns claim, experiment, numbers, verdict.
        Each verdict starts with "holds" (or "holds only when ..."), "does not hold" or
        "inconclusive".
    """
    rows = []
    for number, rule in RULES.items():
        numbers, verdict = rule(metrics)
        rows.append({"claim": CLAIMS[number], "experiment": EXPERIMENTS[number],
                     "numbers": numbers, "verdict": verdict})
    return pd.DataFrame(rows, index=pd.Index(list(RULES), name="#"))
