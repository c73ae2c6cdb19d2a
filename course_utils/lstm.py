"""A from-scratch LSTM that matches ``torch.nn.LSTM`` number for number.

Introduced in lesson 02 (character-level LSTM language model on Tiny Shakespeare).

The module has two parts:

* ``LSTMLayer`` and ``LSTM``: the model itself, with parameters laid out exactly
  like ``torch.nn.LSTM`` so that weights can be copied across and the outputs,
  final states and gradients compared.
* ``input_gradient_norms``: measures how much the loss at the last time step
  depends on each earlier input, for the lesson's "why a plain RNN struggles"
  section.

``course_utils.benchmarks.lstm_benchmark`` times our ``LSTM`` against ``torch.nn.LSTM``.

Shapes use B = batch size, T = time steps, I = input size, H = hidden size,
L = number of layers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .checks import check_positive_int

State = tuple[Tensor, Tensor]


def _check_input(x: object, input_size: int) -> None:
    """Raise a clear error unless ``x`` is a float tensor of shape (B, T, input_size), B, T >= 1."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected x to be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"expected x to have a floating-point dtype, got {x.dtype}")
    if x.dim() != 3:
        raise ValueError(
            f"expected x of shape (batch, steps, {input_size}) (3 dimensions, batch first), "
            f"got {x.dim()} dimensions with shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"expected at least one sequence and one time step, got shape {tuple(x.shape)}"
        )
    if x.shape[2] != input_size:
        raise ValueError(
            f"expected x to have {input_size} features in its last dimension, "
            f"got shape {tuple(x.shape)}"
        )


def _check_state(state: object, expected_shape: tuple[int, ...]) -> None:
    """Raise a clear error unless ``state`` is a pair (h, c) of tensors of ``expected_shape``."""
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(
            f"expected state to be a pair (h, c) of tensors, got {type(state).__name__}"
        )
    for name, tensor in zip(("h", "c"), state):
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"expected state {name} to be a torch.Tensor, got {type(tensor).__name__}"
            )
        if tuple(tensor.shape) != expected_shape:
            raise ValueError(
                f"expected state {name} of shape {expected_shape}, got {tuple(tensor.shape)}"
            )


class LSTMLayer(nn.Module):
    """One LSTM layer, run over a whole sequence. Introduced in lesson 02.

    At each time step t, with input x_t (B, I) and previous state h, c (B, H):

        i = sigmoid(W_ii x_t + b_ii + W_hi h + b_hi)   input gate       (B, H)
        f = sigmoid(W_if x_t + b_if + W_hf h + b_hf)   forget gate      (B, H)
        g = tanh(   W_ig x_t + b_ig + W_hg h + b_hg)   cell candidate   (B, H)
        o = sigmoid(W_io x_t + b_io + W_ho h + b_ho)   output gate      (B, H)
        c' = f * c + i * g                             new cell state   (B, H)
        h' = o * tanh(c')                              new hidden state (B, H)

    The weights of the three gates and the candidate g are stacked into one matrix,
    so a single matrix multiply computes all four blocks, and ``chunk(4)`` splits the result:

        weight_ih (4H, I) = [W_ii; W_if; W_ig; W_io]    bias_ih (4H,)
        weight_hh (4H, H) = [W_hi; W_hf; W_hg; W_ho]    bias_hh (4H,)

    These are the names, shapes and gate order (i, f, g, o) of
    ``torch.nn.LSTM``'s ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0`` and
    ``bias_hh_l0``, so weights can be copied across (see ``LSTM.from_torch``).

    The name says what it is: a whole layer over time. ``torch.nn.LSTMCell``
    does one time step per call (our ``step``); this module runs the time loop
    itself, so that the input part of the gates can
    be computed for all time steps at once (see ``forward``).

    Args:
        input_size: I, the number of features of each input vector.
        hidden_size: H, the size of the hidden and cell states.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)), as ``torch.nn.LSTM`` does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def step(self, x_proj_t: Tensor, h: Tensor, c: Tensor) -> State:
        """Advance the state by one time step.

        Args:
            x_proj_t: (B, 4H), the input part of the gates for this step,
                ``x_t @ weight_ih.T + bias_ih + bias_hh``.
            h: (B, H), the previous hidden state.
            c: (B, H), the previous cell state.

        Returns:
            The new (h, c), each (B, H).
        """
        # The one matrix multiply of the step: the three gates and the candidate at once, (B, 4H).
        gates = x_proj_t + h @ self.weight_hh.T
        i, f, g, o = gates.chunk(4, dim=1)  # each (B, H), in PyTorch's order
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c

    def _initial_state(self, x: Tensor, state: State | None) -> State:
        """Check x (B, T, I) and the optional (h, c), each (B, H); zeros if None."""
        _check_input(x, self.input_size)
        batch = x.shape[0]
        if state is None:
            zeros = x.new_zeros(batch, self.hidden_size)
            state = (zeros, zeros)
        _check_state(state, (batch, self.hidden_size))
        return state

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run the layer over a whole sequence.

        Args:
            x: (B, T, I), the input sequence, batch first.
            state: optional initial (h, c), each (B, H); zeros if None.

        Returns:
            output: (B, T, H), the hidden state h_t at every time step.
            (h, c): the final hidden and cell states, each (B, H).
        """
        h, c = self._initial_state(x, state)
        return self._scan(x, h, c)

    def _scan(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, State]:
        """``forward`` once its arguments are checked: x (B, T, I), h and c (B, H)."""
        # Speed-up: the input part of the gates, x_t @ W_ih^T + b_ih, does not
        # depend on h, so we do not need to wait for the previous step to
        # compute it. One big matrix multiply over all B*T input vectors at
        # once, (B, T, I) @ (I, 4H) -> (B, T, 4H), is much faster than T small
        # ones inside the loop. Both biases are added here, once, too.
        # Only the recurrent part, h @ W_hh^T, must stay in the loop (see step).
        x_proj = x @ self.weight_ih.T + (self.bias_ih + self.bias_hh)

        # unbind(dim=1) splits x_proj into T views of shape (B, 4H) in one
        # operation. Indexing x_proj[:, t] inside the loop would give the same
        # forward pass, but its backward pass builds a full (B, T, 4H) gradient
        # for every t, which made the whole LSTM about 2.5x slower.
        outputs = []
        for x_proj_t in x_proj.unbind(dim=1):
            h, c = self.step(x_proj_t, h, c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)

    @torch.no_grad()
    def trace(self, x: Tensor, state: State | None = None) -> dict[str, Tensor]:
        """Run the layer over a sequence and record every gate, to look inside it.

        The same computation as ``forward`` (and ``step``), without gradients,
        keeping the intermediate values that ``forward`` throws away.

        Args:
            x: (B, T, I), the input sequence, batch first.
            state: optional initial (h, c), each (B, H); zeros if None.

        Returns:
            {"input": i, "forget": f, "cell_candidate": g, "output": o,
            "cell": c, "hidden": h}, each (B, T, H): the values at every step.
        """
        h, c = self._initial_state(x, state)
        x_proj = x @ self.weight_ih.T + (self.bias_ih + self.bias_hh)  # as in forward
        names = ("input", "forget", "cell_candidate", "output", "cell", "hidden")
        record: dict[str, list[Tensor]] = {name: [] for name in names}
        for x_proj_t in x_proj.unbind(dim=1):
            i, f, g, o = (x_proj_t + h @ self.weight_hh.T).chunk(4, dim=1)
            i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
            c = f * c + i * g
            h = o * torch.tanh(c)
            for name, value in zip(names, (i, f, g, o, c, h)):
                record[name].append(value)
        return {name: torch.stack(values, dim=1) for name, values in record.items()}


class LSTM(nn.Module):
    """A multi-layer, batch-first LSTM built from ``LSTMLayer``. Introduced in lesson 02.

    Same semantics as ``torch.nn.LSTM(input_size, hidden_size, num_layers,
    batch_first=True, dropout=dropout)``: layer 0 reads the input, layer k reads
    the outputs of layer k-1, and in training mode dropout is applied to the
    outputs of every layer except the last.

    Args:
        input_size: I, the number of features of each input vector.
        hidden_size: H, the size of the hidden and cell states of every layer.
        num_layers: L, the number of stacked layers.
        dropout: probability of zeroing an element between layers (0 = off).
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        check_positive_int("num_layers", num_layers)
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout <= 1.0:
            raise ValueError(f"expected dropout to be a number in [0, 1], got {dropout!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.layers = nn.ModuleList(
            LSTMLayer(input_size if k == 0 else hidden_size, hidden_size) for k in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Run all layers over a sequence.

        Args:
            x: (B, T, I), the input sequence, batch first.
            state: optional initial (h, c), each (L, B, H); zeros if None.

        Returns:
            output: (B, T, H), the last layer's hidden state at every time step.
            (h, c): the final hidden and cell states of every layer, each (L, B, H).
        """
        _check_input(x, self.input_size)
        if state is None:
            zeros = x.new_zeros(self.num_layers, x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        _check_state(state, (self.num_layers, x.shape[0], self.hidden_size))
        final_h, final_c = [], []
        output = x
        for k, layer in enumerate(self.layers):
            if k > 0:
                output = self.dropout(output)
            output, (h, c) = layer._scan(output, state[0][k], state[1][k])
            final_h.append(h)
            final_c.append(c)
        return output, (torch.stack(final_h), torch.stack(final_c))

    def copy_weights_from(self, torch_lstm: nn.LSTM) -> None:
        """Copy every weight and bias of ``torch_lstm`` into this model.

        Args:
            torch_lstm: a unidirectional ``torch.nn.LSTM`` with biases, no
                projection, and the same input size, hidden size and number of
                layers as this model. Its ``batch_first`` does not matter (the
                weights are the same), but this model always reads (B, T, I).
        """
        if not isinstance(torch_lstm, nn.LSTM):
            raise TypeError(f"expected a torch.nn.LSTM, got {type(torch_lstm).__name__}")
        if torch_lstm.bidirectional or torch_lstm.proj_size != 0 or not torch_lstm.bias:
            raise ValueError(
                "expected a torch.nn.LSTM with bidirectional=False, proj_size=0 and bias=True, "
                f"got bidirectional={torch_lstm.bidirectional}, "
                f"proj_size={torch_lstm.proj_size}, bias={torch_lstm.bias}"
            )
        ours = (self.input_size, self.hidden_size, self.num_layers)
        theirs = (torch_lstm.input_size, torch_lstm.hidden_size, torch_lstm.num_layers)
        if ours != theirs:
            raise ValueError(
                f"expected a torch.nn.LSTM with (input_size, hidden_size, num_layers) = {ours}, "
                f"got {theirs}"
            )
        with torch.no_grad():
            for k, layer in enumerate(self.layers):
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    source = getattr(torch_lstm, f"{name}_l{k}")
                    target = getattr(layer, name)
                    if source.shape != target.shape:
                        raise ValueError(
                            f"expected {name}_l{k} of shape {tuple(target.shape)}, "
                            f"got {tuple(source.shape)}"
                        )
                    target.copy_(source)

    @classmethod
    def from_torch(cls, torch_lstm: nn.LSTM) -> LSTM:
        """Build an ``LSTM`` with the sizes, dropout and weights of ``torch_lstm``.

        The new model is on the default device and dtype (float32) unless moved.

        Args:
            torch_lstm: see ``copy_weights_from``.

        Returns:
            A new ``LSTM`` whose outputs equal ``torch_lstm``'s for batch-first input.
        """
        if not isinstance(torch_lstm, nn.LSTM):
            raise TypeError(f"expected a torch.nn.LSTM, got {type(torch_lstm).__name__}")
        model = cls(
            torch_lstm.input_size, torch_lstm.hidden_size, torch_lstm.num_layers, torch_lstm.dropout
        )
        model.copy_weights_from(torch_lstm)
        return model


def input_gradient_norms(
    model: nn.Module, seq_len: int, input_size: int, batch: int = 16, seed: int = 0, *,
    inputs: Tensor | None = None,
) -> Tensor:
    """How strongly the last output depends on each earlier input. Introduced in lesson 02.

    Feeds a random sequence x (batch, seq_len, input_size) through a batch-first
    recurrent model (``torch.nn.RNN``, ``torch.nn.LSTM`` or our ``LSTM``), takes
    the loss L = sum of the LAST time step's output, and measures the norm of
    dL/dx_t over the batch and features. ``norms[k]`` belongs to the input k
    steps before the end, x_{seq_len-1-k}, so ``plt.semilogy(norms)`` plots
    the gradient against the distance k. The norms of a plain tanh RNN shrink
    roughly geometrically with k (vanishing gradients). How fast an LSTM's
    shrink depends on its forget gates: an untrained LSTM's can shrink about as
    fast as a plain RNN's (lesson 02 measures both).

    The model's parameter gradients are left untouched, and its train/eval
    mode is used as it is (call ``model.eval()`` first to switch dropout off).

    Args:
        model: a batch-first recurrent module returning (output, state) or output,
            with output of shape (batch, seq_len, H).
        seq_len: T, the length of the random sequence.
        input_size: I, the model's input size.
        batch: B, the number of random sequences.
        seed: seed of the random input, so that runs are repeatable. The input depends on the model's
            dtype as well: torch draws different numbers from one seed in float32 and float64, so to
            compare two dtypes, pass the same ``inputs`` to both.
        inputs: (batch, seq_len, input_size) inputs to use instead of random ones, for example
            what a layer reads inside a stack (cast to the model's dtype).

    Returns:
        norms: (seq_len,), ``norms[k] = ||dL/dx_{seq_len-1-k}||``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected model to be a torch.nn.Module, got {type(model).__name__}")
    for name, value in (("seq_len", seq_len), ("input_size", input_size), ("batch", batch)):
        check_positive_int(name, value)
    if getattr(model, "batch_first", True) is False:
        raise ValueError("expected a batch first model (batch_first=True), got batch_first=False")
    parameter = next(model.parameters(), None)
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()
    device = parameter.device if parameter is not None else torch.device("cpu")

    if inputs is None:
        x = torch.randn(batch, seq_len, input_size, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    elif not isinstance(inputs, Tensor) or tuple(inputs.shape) != (batch, seq_len, input_size):
        raise ValueError(f"expected inputs of shape ({batch}, {seq_len}, {input_size}), "
                         f"got {getattr(inputs, 'shape', type(inputs).__name__)}")
    else:
        x = inputs.detach().to(dtype)
    x = x.to(device).requires_grad_()
    output = model(x)
    if isinstance(output, tuple):  # nn.RNN and LSTMs return (output, state)
        output = output[0]
    if not isinstance(output, Tensor):
        raise TypeError(f"expected the model to return a tensor, got {type(output).__name__}")
    if output.dim() != 3 or output.shape[:2] != (batch, seq_len):
        raise ValueError(
            f"expected the model's output of shape ({batch}, {seq_len}, H) (is it batch first?), "
            f"got {tuple(output.shape)}"
        )
    loss = output[:, -1].sum()
    (grad,) = torch.autograd.grad(loss, x)  # (B, T, I), parameter .grad untouched
    norms = grad.norm(dim=(0, 2))  # (T,), indexed by t
    return norms.flip(0).detach().cpu()  # indexed by k = T - 1 - t
