"""CNN, dilated CNN (TCN), LSTM, GRU, CNN-LSTM and self-attention sequence classifiers,
tasks with a controllable dependency distance, and the measurements that compare them.

Introduced in lesson 03 (CNN vs LSTM vs CNN-LSTM, measured instead of asserted).

The module has four parts (the models train with ``course_utils.fit``, with
``stop_at_accuracy`` to stop once a task is solved):

* Tasks: ``pair_task`` (the label depends on two tokens k steps apart), ``order_task``
  (which of two events came first: what a CNN-LSTM's pooling can lose) and
  ``adding_task`` (Hochreiter & Schmidhuber, 1997: add two marked numbers k steps apart).
* Models: ``ConvClassifier`` (a causal 1D CNN, plain or dilated), ``RNNClassifier``
  (an LSTM or a GRU), ``CNNLSTMClassifier`` and ``AttentionClassifier`` (a small
  Transformer encoder); all map (B, T, F) inputs, with optional lengths (B,), to (B, C)
  scores. ``make_model`` builds the lesson's six models of similar size.
* Measurements: ``saved_activation_bytes`` and ``seconds_per_step``, the
  ``sequence_cost`` table (one thread and all threads) and ``growth_exponent``.
* Spread over seeds: ``mean_sd``. Whether a difference is beyond that spread, and the
  lesson's table of ten claims, are rules of course_utils.verdicts.

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

from .checks import check_positive_int
from .cnn import receptive_field
from .timing import median_time
from .train import model_device

MODEL_NAMES = ("cnn", "tcn", "lstm", "gru", "cnn_lstm", "attention")
RECURRENT_UNITS = {"lstm": 64, "gru": 72, "cnn_lstm": 48}  # hidden units of make_model's recurrent layers
MODEL_LABELS = {"cnn": "CNN", "tcn": "dilated CNN (TCN)", "lstm": "LSTM", "gru": "GRU", "cnn_lstm": "CNN-LSTM",
                "attention": "self-attention (Transformer)"}
SOLVED = 0.9  # the accuracy at which a model counts as having solved a task


# --------------------------------------------------------------------------- tasks

def _check_task_args(n: int, k: int, length: int) -> None:
    for name, value in (("n", n), ("k", k), ("length", length)):
        check_positive_int(name, value)
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
        check_positive_int(name, value)
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
        lengths = lengths.to(x.device)  # lengths may come on the CPU while x is on a GPU
        if self.readout == "last":
            features = h[torch.arange(len(h)), :, lengths - 1]  # (B, H)
        else:
            mask = torch.arange(x.shape[1], device=x.device) < lengths[:, None]  # (B, T)
            features = (h * mask[:, None]).sum(-1) / lengths[:, None]           # (B, H)
        return self.head(features)


RECURRENT_LAYERS = {"lstm": nn.LSTM, "gru": nn.GRU}


class RNNClassifier(nn.Module):
    """An LSTM or a GRU that classifies from its last hidden state. Introduced in lesson 03.

    ``cell="lstm"``: the LSTM of lesson 02. ``cell="gru"``: a GRU (Cho et al., 2014),
    with no separate cell state and two gates instead of the LSTM's three, so three weight
    blocks instead of four (a reset gate r, an update gate z and the candidate n,
    h_t = (1 - z) * n + z * h_{t-1}),
    so a layer of the same width has 3/4 of an LSTM layer's parameters (`make_model`
    widens its GRU to 72 units against the LSTM's 64, for about as many). The gate biases get the
    "chrono" initialisation (see `chrono_init`; the GRU's update gate plays the
    forget gate's part) for sequences of up to `max_steps` steps.

    Forward: x (B, T, F) and optional lengths (B,) int64 -> (B, C) scores. With
    lengths, the batch is packed (`pack_padded_sequence`), so the recurrent layer
    stops at each sequence's own last step and never reads the padding.
    """

    def __init__(self, features: int, classes: int, hidden: int = 64, max_steps: int = 100,
                 cell: str = "lstm") -> None:
        super().__init__()
        if cell not in RECURRENT_LAYERS:
            raise ValueError(f"cell must be one of {sorted(RECURRENT_LAYERS)}, got {cell!r}")
        self.features = features
        self.rnn = RECURRENT_LAYERS[cell](features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, classes)
        chrono_init(self.rnn, max_steps)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        _check_sequence(x, self.features)
        _check_lengths(x, lengths)
        return self.head(_last_hidden(self.rnn, x, lengths))


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
    gate bias is -b_f, and the other biases are 0. PyTorch's default (biases near 0)
    gives a span of about 2 steps; lesson 03, section 3, trains an LSTM from it at the
    longest k beside the chrono-initialised one. In a GRU the
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
        return RNNClassifier(features, classes, hidden=RECURRENT_UNITS["lstm"], max_steps=max_steps, cell="lstm")
    if name == "gru":
        return RNNClassifier(features, classes, hidden=RECURRENT_UNITS["gru"], max_steps=max_steps, cell="gru")
    if name == "cnn_lstm":
        check_positive_int("pool", pool)
        return CNNLSTMClassifier(features, classes, channels=32, kernel_size=5, conv_layers=2, pool=pool,
                                 hidden=RECURRENT_UNITS["cnn_lstm"], max_steps=max_steps)
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


def recurrent_multiply_adds(model: nn.Module) -> int:
    """Multiply-adds one time step of the model's recurrent layers costs (their input and hidden
    weight matrices: gates x hidden x (inputs + hidden) for each layer), read from the weights
    themselves; 0 for a model without ``nn.RNNBase`` layers. Biases and the head are left out.

    Introduced in lesson 03 (the GRU against the LSTM, section 4)."""
    return sum(weight.numel() for module in model.modules() if isinstance(module, nn.RNNBase)
               for name, weight in module.named_parameters() if name.startswith(("weight_ih", "weight_hh")))
