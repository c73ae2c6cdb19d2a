"""CNN, dilated CNN (TCN), LSTM and CNN-LSTM sequence classifiers, tasks with a
controllable dependency distance, and the measurements that compare them.

Introduced in lesson 03 (CNN vs LSTM vs CNN-LSTM, measured instead of asserted).

The module has three parts (the models train with ``course_utils.fit``, with
``stop_at_accuracy`` to stop once a task is solved):

* Tasks: ``pair_task`` (the label depends on two tokens k steps apart) and
  ``adding_task`` (Hochreiter & Schmidhuber, 1997: add two marked numbers k steps apart).
* Models: ``ConvClassifier`` (a causal 1D CNN, plain or dilated), ``LSTMClassifier``
  and ``CNNLSTMClassifier``; all map (B, T, F) inputs, with optional lengths (B,),
  to (B, C) scores. ``make_model`` builds the lesson's four models of similar size.
* Measurements: ``saved_activation_bytes`` and ``seconds_per_step``, the
  ``sequence_cost`` table, and ``verdicts``, which turns a run's recorded metrics
  into the lesson's claim/verdict table.

Shapes use B = batch size, T = time steps, F = input features, C = classes,
H = hidden or channel size.
"""

from __future__ import annotations

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

MODEL_NAMES = ("cnn", "tcn", "lstm", "cnn_lstm")
MODEL_LABELS = {"cnn": "CNN", "tcn": "dilated CNN (TCN)", "lstm": "LSTM", "cnn_lstm": "CNN-LSTM"}
CLAIMS = {
    1: "A CNN captures local patterns with shared weights; an LSTM captures long-range dependencies.",
    2: "A CNN-LSTM trains faster and needs less memory than an LSTM on long sequences.",
    3: "A CNN-LSTM is worse than an LSTM at long-range dependencies.",
    4: "An LSTM has more parameters and overfits more easily.",
    5: "A CNN needs fixed-size input; an LSTM handles variable lengths.",
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


def chrono_init(lstm: nn.LSTM, max_steps: int) -> None:
    """The "chrono" initialisation of an LSTM's gate biases (Tallec & Ollivier, 2018).
    Introduced in lesson 03.

    A forget gate f = sigmoid(b_f) keeps a fraction f of the cell state per step, so
    the cell remembers for about 1 / (1 - f) steps. Drawing b_f = log(u), u ~ U(1,
    max_steps - 1), spreads these memory spans over 2 ... max_steps steps; the input
    gate bias is -b_f, and the other biases are 0. With PyTorch's default (biases
    near 0, a span of about 2 steps) the LSTM of lesson 03 needed far more training,
    in trial runs, to learn dependencies a hundred steps or more long.
    """
    if not isinstance(max_steps, int) or max_steps < 3:
        raise ValueError(f"max_steps must be an int >= 3, got {max_steps!r}")
    hidden = lstm.hidden_size
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            forget = torch.log(torch.empty(hidden).uniform_(1, max_steps - 1))
            bias_ih, bias_hh = getattr(lstm, f"bias_ih_l{layer}"), getattr(lstm, f"bias_hh_l{layer}")
            bias_ih.zero_()
            bias_hh.zero_()
            bias_ih[:hidden], bias_ih[hidden:2 * hidden] = -forget, forget  # gate order i, f, g, o


def _last_hidden(lstm: nn.LSTM, x: Tensor, lengths: Tensor | None) -> Tensor:
    """The top layer's hidden state at each sequence's last valid step: (B, T, F) -> (B, H)."""
    if lengths is not None:
        x = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    _, (h_n, _) = lstm(x)
    return h_n[-1]


def make_model(name: str, features: int, classes: int, max_steps: int = 100) -> nn.Module:
    """One of the lesson's four models, each with 15-25k parameters for a handful of
    input features. Introduced in lesson 03.

    - "cnn": 4 causal convolutions, kernel 5, 32 channels (receptive field 17);
    - "tcn": 8 causal convolutions, kernel 2, dilations 1..128, 32 channels (receptive field 256);
    - "lstm": one LSTM layer of 64 units;
    - "cnn_lstm": 2 causal convolutions (kernel 5, 32 channels), max-pool 4, an LSTM of 48 units.

    `max_steps`, the longest sequence expected, sets the LSTMs' `chrono_init`.
    """
    if name == "cnn":
        return ConvClassifier(features, classes, channels=32, kernel_size=5, layers=4)
    if name == "tcn":
        return ConvClassifier(features, classes, channels=32, kernel_size=2, layers=8, dilated=True)
    if name == "lstm":
        return LSTMClassifier(features, classes, hidden=64, max_steps=max_steps)
    if name == "cnn_lstm":
        return CNNLSTMClassifier(features, classes, channels=32, kernel_size=5, conv_layers=2, pool=4,
                                 hidden=48, max_steps=max_steps)
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
                  batch_size: int = 32, min_run_time: float = 0.2) -> pd.DataFrame:
    """Time per training step and saved activations for each model at each sequence
    length, on random inputs, each model on its own device. Introduced in lesson 03.

    Returns one row per (model, length): model, T, ms_per_step, saved_mb (10^6 bytes).
    """
    rows = []
    for length in lengths:
        x = torch.randn(batch_size, length, features)
        y = torch.randint(classes, (batch_size,))
        for name, model in models.items():
            device = model_device(model)
            xd, yd = x.to(device), y.to(device)
            rows.append({"model": name, "T": length,
                         "ms_per_step": 1000 * seconds_per_step(model, xd, yd, min_run_time=min_run_time),
                         "saved_mb": saved_activation_bytes(model, xd, yd) / 1e6})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts

def _metric(metrics: Mapping[str, Any], name: str) -> float:
    if name not in metrics:
        raise KeyError(f"the verdicts need the metric {name!r}, which was not recorded")
    return float(metrics[name])


def distances(metrics: Mapping[str, Any]) -> list[int]:
    """The distances k for which all four models' ``{model}_acc_k{k}`` were recorded, sorted.
    Introduced in lesson 03."""
    found = [{int(key.rsplit("_acc_k", 1)[1]) for key in metrics
              if key.startswith(f"{name}_acc_k") and key.rsplit("_acc_k", 1)[1].isdigit()}
             for name in MODEL_NAMES]
    ks = sorted(set.intersection(*found))
    if not ks:
        raise KeyError("no distance k has a recorded accuracy ({model}_acc_k{k}) for all four models")
    return ks


def _claim_1(m: Mapping[str, Any]) -> tuple[str, str]:
    ks = distances(m)
    acc = {name: {k: _metric(m, f"{name}_acc_k{k}") for k in ks} for name in MODEL_NAMES}
    field = {name: int(_metric(m, f"{name}_receptive_field")) for name in ("cnn", "tcn")}
    # A CNN reading the last step can only solve k if its field spans k + 1 steps.
    explained = all((acc[c][k] >= SOLVED) == (k + 1 <= field[c]) for c in field for k in ks)
    long_cnn = [(c, k) for c in field for k in ks if k + 1 > field["cnn"] and acc[c][k] >= SOLVED]
    numbers = (f"k={ks[-1]}: LSTM {acc['lstm'][ks[-1]]:.2f}, CNN {acc['cnn'][ks[-1]]:.2f}, "
               f"TCN {acc['tcn'][ks[-1]]:.2f}; " +
               "; ".join(f"{c.upper()} (receptive field {field[c]}) solves (>= {SOLVED}) k in "
                         f"{[k for k in ks if acc[c][k] >= SOLVED]}" for c in field) +
               f"; failures match the receptive fields: {'yes' if explained else 'no'}")
    if acc["lstm"][ks[-1]] < SOLVED:
        return numbers, f"does not hold in this run: the LSTM does not solve k={ks[-1]}"
    if long_cnn:
        return numbers, ("holds only when k exceeds the CNN's receptive field; "
                         "a dilated CNN with a large field solves long distances too")
    return numbers, "holds"


def _claim_2(m: Mapping[str, Any]) -> tuple[str, str]:
    lengths = sorted(int(key.rsplit("_T", 1)[1]) for key in m if key.startswith("ms_per_step_lstm_T"))
    if not lengths:
        raise KeyError("the verdicts need ms_per_step_lstm_T{T} for at least one T")
    t = lengths[-1]
    ms = {name: _metric(m, f"ms_per_step_{name}_T{t}") for name in ("lstm", "cnn_lstm", "cnn_lstm_nopool")}
    mb = {name: _metric(m, f"saved_mb_{name}_T{t}") for name in ms}
    faster, smaller = ms["cnn_lstm"] < ms["lstm"], mb["cnn_lstm"] < mb["lstm"]
    # Without pooling, does the CNN-LSTM still beat the LSTM by a clear margin (25 %) in both?
    nopool_wins = ms["lstm"] > 1.25 * ms["cnn_lstm_nopool"] and mb["lstm"] > 1.25 * mb["cnn_lstm_nopool"]
    numbers = (f"T={t}: ms per step LSTM {ms['lstm']:.0f}, CNN-LSTM {ms['cnn_lstm']:.0f}, "
               f"without pooling {ms['cnn_lstm_nopool']:.0f}; saved activations (MB) LSTM {mb['lstm']:.1f}, "
               f"CNN-LSTM {mb['cnn_lstm']:.1f}, without pooling {mb['cnn_lstm_nopool']:.1f}; "
               f"seconds per epoch on 196 pixels: LSTM {_metric(m, 'seconds_per_epoch_lstm'):.1f}, "
               f"CNN-LSTM {_metric(m, 'seconds_per_epoch_cnn_lstm'):.1f}")
    if faster and smaller:
        if nopool_wins:
            return numbers, "holds"
        return numbers, ("holds only when the convolutions shorten the sequence (here by pooling); "
                         "without pooling it is not 25% better in both time and memory")
    if faster or smaller:
        return numbers, f"holds only for {'time' if faster else 'memory'}, not for {'memory' if faster else 'time'}"
    return numbers, "does not hold"


def _claim_3(m: Mapping[str, Any]) -> tuple[str, str]:
    ks = distances(m)
    lstm, cnn_lstm = _metric(m, f"lstm_acc_k{ks[-1]}"), _metric(m, f"cnn_lstm_acc_k{ks[-1]}")
    numbers = (f"k={ks[-1]}: LSTM {lstm:.2f}, CNN-LSTM {cnn_lstm:.2f}; Fashion-MNIST pixel by pixel (196 steps): "
               f"LSTM {_metric(m, 'pixels_test_acc_lstm'):.3f}, CNN-LSTM {_metric(m, 'pixels_test_acc_cnn_lstm'):.3f}")
    if lstm - cnn_lstm > 0.05:
        return numbers, "holds"
    return numbers, "does not hold in this run"


def _claim_4(m: Mapping[str, Any]) -> tuple[str, str]:
    lstm_layer, conv_layer = _metric(m, "lstm_layer_parameters"), _metric(m, "conv_layer_parameters")
    gap = {name: _metric(m, f"rows_gap_{name}") for name in MODEL_NAMES}
    params = {name: int(_metric(m, f"rows_parameters_{name}")) for name in MODEL_NAMES}
    overfits_more = gap["lstm"] > max(gap["cnn"], gap["tcn"]) + 0.01
    numbers = (f"one layer of width 64: LSTM {lstm_layer:,.0f}, convolution {conv_layer:,.0f} parameters; "
               "Fashion-MNIST rows, train-test accuracy gap: " +
               ", ".join(f"{MODEL_LABELS[name]} {gap[name]:+.3f} ({params[name]:,} parameters)" for name in MODEL_NAMES))
    if lstm_layer > conv_layer and overfits_more:
        return numbers, "holds"
    if lstm_layer > conv_layer:
        return numbers, ("holds only when layers of equal width are compared; at similar parameter "
                         "counts the LSTM's train-test gap is not above both CNNs'")
    if overfits_more:
        return numbers, "holds only for overfitting, not for parameters"
    return numbers, "does not hold"


def _claim_5(m: Mapping[str, Any]) -> tuple[str, str]:
    lstm, cnn = _metric(m, "lstm_packed_max_diff"), _metric(m, "cnn_masked_max_diff")
    unmasked = _metric(m, "cnn_unmasked_max_diff")
    numbers = (f"padded batch vs one sequence at a time, largest difference: packed LSTM {lstm:.1e}, "
               f"CNN with masked pooling {cnn:.1e}, CNN pooling over the padding too {unmasked:.1e}")
    if lstm < 1e-5 and cnn < 1e-5:
        return numbers, ("does not hold: a CNN with masked global pooling handles variable lengths; "
                         "only a head that flattens a fixed T needs a fixed size")
    if lstm < 1e-5:
        return numbers, "holds"
    return numbers, "does not hold: the LSTM's padded outputs differ too"


def verdicts(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The lesson's claim/verdict table, computed from a run's recorded metrics by fixed
    rules, so that the verdicts cannot disagree with the numbers. Introduced in lesson 03.

    Args:
        metrics: name -> value, as ``course_utils.lesson.read_metrics`` returns them.

    Returns:
        One row per claim (index 1-5), columns claim, experiment, numbers, verdict.
        Each verdict starts with "holds", "holds only ..." or "does not hold".
    """
    experiments = {
        1: "pair task: accuracy against the distance k; receptive fields",
        2: "time per training step and saved activations at growing T; epoch time on 196 pixels",
        3: "pair task at the largest k; Fashion-MNIST pixel by pixel",
        4: "parameters of one layer; train-test gap on Fashion-MNIST rows",
        5: "padded batch vs each sequence alone: packing, masked pooling",
    }
    rules = {1: _claim_1, 2: _claim_2, 3: _claim_3, 4: _claim_4, 5: _claim_5}
    rows = []
    for number, rule in rules.items():
        numbers, verdict = rule(metrics)
        rows.append({"claim": CLAIMS[number], "experiment": experiments[number],
                     "numbers": numbers, "verdict": verdict})
    return pd.DataFrame(rows, index=pd.Index(list(rules), name="#"))
