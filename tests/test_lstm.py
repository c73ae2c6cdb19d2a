"""Tests for course_utils.lstm: our LSTM must match torch.nn.LSTM exactly."""

import pytest
import torch
from torch import nn

from course_utils.lstm import LSTM, LSTMLayer, input_gradient_norms
from course_utils.benchmarks import lstm_benchmark as benchmark

ATOL = 1e-5


def _pair(num_layers: int, input_size: int, hidden_size: int, dropout: float = 0.0):
    """A random torch.nn.LSTM and our LSTM holding the same weights."""
    torch_lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
    return torch_lstm, LSTM.from_torch(torch_lstm)


def _run(model, x, state, probes):
    """Forward, a loss touching output, h and c, and the gradients w.r.t. inputs and parameters."""
    output, (h, c) = model(x, state)
    loss = (output * probes[0]).sum() + (h * probes[1]).sum() + (c * probes[2]).sum()
    inputs = [x] if state is None else [x, *state]
    grads = torch.autograd.grad(loss, inputs + list(model.parameters()))
    return output, h, c, grads


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize(
    "batch, steps, input_size, hidden_size", [(3, 5, 4, 6), (1, 9, 7, 3), (4, 1, 2, 5)]
)
def test_matches_torch_lstm(num_layers, with_state, batch, steps, input_size, hidden_size):
    torch.manual_seed(batch * 100 + steps * 10 + num_layers)
    torch_lstm, ours = _pair(num_layers, input_size, hidden_size)
    x = torch.randn(batch, steps, input_size, requires_grad=True)
    state = None
    if with_state:
        shape = (num_layers, batch, hidden_size)
        state = (torch.randn(shape, requires_grad=True), torch.randn(shape, requires_grad=True))
    # Random weights for output, h and c in the loss, so every gradient path is checked.
    probes = [
        torch.randn(batch, steps, hidden_size),
        *torch.randn(2, num_layers, batch, hidden_size),
    ]

    expected = _run(torch_lstm, x, state, probes)
    actual = _run(ours, x, state, probes)

    for name, a, e in zip(("output", "h", "c"), actual[:3], expected[:3]):
        assert a.shape == e.shape, name
        torch.testing.assert_close(a, e, atol=ATOL, rtol=0, msg=name)
    # Parameters are in the same order: layer by layer, weight_ih, weight_hh, bias_ih, bias_hh.
    assert len(actual[3]) == len(expected[3])
    for a, e in zip(actual[3], expected[3]):
        torch.testing.assert_close(a, e, atol=ATOL, rtol=0)


def test_step_matches_torch_lstm_cell():
    torch.manual_seed(0)
    torch_cell = nn.LSTMCell(4, 6)
    ours = LSTMLayer(4, 6)
    ours.load_state_dict(torch_cell.state_dict())
    x, h, c = torch.randn(3, 4), torch.randn(3, 6), torch.randn(3, 6)
    x_proj = x @ ours.weight_ih.T + ours.bias_ih + ours.bias_hh
    actual = ours.step(x_proj, h, c)
    expected = torch_cell(x, (h, c))
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a, e, atol=ATOL, rtol=0)


def test_parameters_start_uniform_in_plus_minus_one_over_sqrt_hidden():
    torch.manual_seed(0)
    layer = LSTMLayer(30, 25)  # bound 1/sqrt(25) = 0.2
    for parameter in layer.parameters():
        assert parameter.min() < -0.15 and parameter.max() > 0.15
        assert parameter.abs().max() <= 0.2


def test_parameter_layout_matches_torch_layer_0():
    torch_lstm = nn.LSTM(4, 6)
    cell_shapes = {name: p.shape for name, p in LSTMLayer(4, 6).named_parameters()}
    torch_shapes = {name.removesuffix("_l0"): p.shape for name, p in torch_lstm.named_parameters()}
    assert cell_shapes == torch_shapes


def test_dropout_between_layers():
    torch.manual_seed(0)
    torch_lstm, ours = _pair(2, 3, 8, dropout=0.5)
    assert ours.dropout.p == 0.5
    x = torch.randn(4, 6, 3)
    torch_lstm.eval()
    ours.eval()
    torch.testing.assert_close(ours(x)[0], torch_lstm(x)[0], atol=ATOL, rtol=0)
    ours.train()
    assert not torch.allclose(ours(x)[0], torch_lstm(x)[0], atol=1e-3)


def test_no_dropout_on_the_input_nor_after_the_last_layer():
    """As in torch.nn.LSTM: one layer never drops anything; with two, only layer 1's input is dropped."""
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3)
    one = LSTM(3, 8, num_layers=1, dropout=0.5)
    torch.testing.assert_close(one.train()(x), one.eval()(x), atol=0, rtol=0)
    two = LSTM(3, 8, num_layers=2, dropout=1.0)  # drops every input of layer 1
    out, (h, c) = two.train()(x)
    _, (h_eval, c_eval) = two.eval()(x)
    torch.testing.assert_close((h[0], c[0]), (h_eval[0], c_eval[0]), atol=0, rtol=0)
    on_zeros, (h1, _) = two.layers[1](torch.zeros(4, 6, 8))
    torch.testing.assert_close(out, on_zeros, atol=ATOL, rtol=0)
    torch.testing.assert_close(h[1], h1, atol=ATOL, rtol=0)


def test_each_layer_starts_from_its_own_initial_state():
    torch.manual_seed(0)
    torch_lstm, ours = _pair(3, 2, 4)
    x = torch.randn(2, 5, 2)
    state = (torch.randn(3, 2, 4), torch.randn(3, 2, 4))
    for got, want in zip(ours(x, state)[1], torch_lstm(x, state)[1]):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    "x, error, message",
    [
        (torch.randn(5, 3), ValueError, "3 dimensions"),
        (torch.randn(2, 5, 3, 1), ValueError, "3 dimensions"),
        (torch.randn(2, 5, 4), ValueError, "3 features"),
        (torch.randn(2, 0, 3), ValueError, "one time step"),
        (torch.randn(0, 5, 3), ValueError, "at least one sequence"),
        (torch.ones(2, 5, 3, dtype=torch.long), TypeError, "floating-point"),
        ([[[0.0, 1.0, 2.0]]], TypeError, "torch.Tensor"),
    ],
)
def test_bad_input_raises(x, error, message):
    model = LSTM(3, 4, num_layers=2)
    with pytest.raises(error, match=message):
        model(x)
    with pytest.raises(error, match=message):
        model.layers[0](x)


@pytest.mark.parametrize(
    "h_shape, c_shape",
    [((1, 2, 4), (2, 2, 4)), ((2, 3, 4), (2, 3, 4)), ((2, 2, 5), (2, 2, 5)), ((2, 4), (2, 4))],
)
def test_bad_state_shape_raises(h_shape, c_shape):
    model = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=r"expected state [hc] of shape \(2, 2, 4\)"):
        model(torch.randn(2, 5, 3), (torch.zeros(h_shape), torch.zeros(c_shape)))


def test_bad_state_type_raises():
    model = LSTM(3, 4)
    with pytest.raises(TypeError, match="pair"):
        model(torch.randn(2, 5, 3), torch.zeros(1, 2, 4))
    with pytest.raises(TypeError, match=r"a pair \(h, c\) of tensors, got tuple"):
        model(torch.randn(2, 5, 3), (torch.zeros(1, 2, 4),) * 3)
    with pytest.raises(ValueError, match=r"expected state c of shape \(1, 2, 4\), got \(1, 2, 5\)"):
        model(torch.randn(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 5)))
    with pytest.raises(ValueError, match=r"state h of shape \(2, 4\)"):
        model.layers[0](torch.randn(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))


@pytest.mark.parametrize(
    "torch_lstm, error",
    [
        (nn.LSTM(3, 4, num_layers=1), ValueError),  # too few layers
        (nn.LSTM(5, 4, num_layers=2), ValueError),  # wrong input size
        (nn.LSTM(3, 4, num_layers=2, bidirectional=True), ValueError),
        (nn.LSTM(3, 4, num_layers=2, bias=False), ValueError),
        (nn.GRU(3, 4, num_layers=2), TypeError),
    ],
)
def test_copy_weights_from_rejects_mismatch(torch_lstm, error):
    with pytest.raises(error, match="expected"):
        LSTM(3, 4, num_layers=2).copy_weights_from(torch_lstm)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_layers": 0}, "num_layers must be a positive int, got 0"),
    ({"dropout": 1.5}, r"expected dropout to be a number in \[0, 1\], got 1.5"),
    ({"hidden_size": 0}, "hidden_size must be a positive int, got 0"),
    ({"input_size": True}, "input_size must be a positive int, got True"),
])
def test_bad_constructor_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(**{"input_size": 3, "hidden_size": 4, **kwargs})


def test_input_gradient_norms_shape_and_no_zeros_for_lstm():
    torch.manual_seed(0)
    model = LSTM(3, 8, num_layers=2)
    norms = input_gradient_norms(model, seq_len=12, input_size=3, batch=4)
    assert norms.shape == (12,)
    assert torch.all(norms > 0)
    assert all(p.grad is None for p in model.parameters())


def test_input_gradient_norms_agrees_between_our_lstm_and_torch():
    torch.manual_seed(0)
    torch_lstm, ours = _pair(1, 3, 8)
    expected = input_gradient_norms(torch_lstm, seq_len=10, input_size=3, seed=1)
    actual = input_gradient_norms(ours, seq_len=10, input_size=3, seed=1)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


def test_input_gradient_norms_index_is_distance_from_end():
    # A per-step linear layer: the last output depends only on the last input.
    torch.manual_seed(0)
    model = nn.Linear(3, 5)
    norms = input_gradient_norms(model, seq_len=6, input_size=3, batch=4)
    expected_last = 4**0.5 * model.weight.detach().sum(dim=0).norm()
    torch.testing.assert_close(norms[0], expected_last)
    assert torch.all(norms[1:] == 0)


def test_input_gradient_norms_decay_for_rnn_with_small_weights():
    torch.manual_seed(0)
    rnn = nn.RNN(3, 8, batch_first=True)
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(0.2)
    norms = input_gradient_norms(rnn, seq_len=10, input_size=3)
    assert torch.all(norms > 0)
    assert torch.all(norms[1:] < norms[:-1])


def test_input_gradient_norms_bad_arguments_raise():
    with pytest.raises(TypeError, match="nn.Module"):
        input_gradient_norms(lambda x: x, seq_len=5, input_size=3)
    with pytest.raises(ValueError, match="seq_len"):
        input_gradient_norms(LSTM(3, 4), seq_len=0, input_size=3)
    with pytest.raises(ValueError, match="batch first"):
        input_gradient_norms(nn.RNN(3, 4), seq_len=5, input_size=3)


def test_benchmark_returns_one_row_per_size():
    table = benchmark(sizes=[(4, 2, 3, 1), (4, 2, 3, 2)], input_size=3, warmup=0, min_run_time=0.01)
    columns = ["hidden", "batch", "steps", "layers", "ours_ms", "torch_ms", "ratio"]
    assert list(table.columns) == columns
    assert table["layers"].tolist() == [1, 2]
    assert (table[["ours_ms", "torch_ms", "ratio"]] > 0).all().all()
    with pytest.raises(ValueError, match="hidden, batch, steps, layers"):
        benchmark(sizes=[(4, 2, 3)], input_size=3)


def test_benchmark_ratio_is_ours_over_torch(monkeypatch):
    from course_utils import benchmarks as bench

    monkeypatch.setattr(bench, "_forward_backward_ms",
                        lambda model, x, warmup, min_run_time: 6.0 if isinstance(model, LSTM) else 2.0)
    row = benchmark(sizes=[(4, 2, 3, 1)], input_size=3).iloc[0]
    assert (row.ours_ms, row.torch_ms, row.ratio) == (6.0, 2.0, 3.0)


def test_input_gradient_norms_follow_the_model_dtype_and_check_its_output():
    model = LSTM(3, 4).double()
    assert input_gradient_norms(model, seq_len=5, input_size=3).dtype == torch.float64

    class DropsAStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(3, 3)

        def forward(self, x):
            return self.linear(x)[:, 1:]  # (B, T - 1, 3): not one output per step

    with pytest.raises(ValueError, match=r"expected the model's output of shape \(16, 5, H\)"):
        input_gradient_norms(DropsAStep(), seq_len=5, input_size=3)


def test_trace_keeps_no_graph():
    x = torch.randn(2, 3, 3, requires_grad=True)
    assert not any(v.requires_grad for v in LSTMLayer(3, 4).trace(x).values())


def test_input_gradient_norms_defaults_are_the_documented_ones():
    torch.manual_seed(0)
    model = LSTM(3, 4)
    torch.testing.assert_close(input_gradient_norms(model, seq_len=6, input_size=3),
                               input_gradient_norms(model, seq_len=6, input_size=3, batch=16, seed=0))
    assert not torch.equal(input_gradient_norms(model, seq_len=6, input_size=3, batch=17),
                           input_gradient_norms(model, seq_len=6, input_size=3, batch=16))


def test_trace_records_the_gates_of_forward():
    torch.manual_seed(0)
    cell = LSTMLayer(3, 5)
    x = torch.randn(2, 7, 3)
    state = (torch.randn(2, 5), torch.randn(2, 5))
    output, (h, c) = cell(x, state)
    trace = cell.trace(x, state)
    assert list(trace) == ["input", "forget", "cell_candidate", "output", "cell", "hidden"]
    assert all(v.shape == (2, 7, 5) for v in trace.values())
    torch.testing.assert_close(trace["hidden"], output, atol=ATOL, rtol=0)
    torch.testing.assert_close(trace["cell"][:, -1], c, atol=ATOL, rtol=0)
    for gate in ("input", "forget", "output"):
        assert ((trace[gate] > 0) & (trace[gate] < 1)).all()
    # The first step's cell state from the recorded gates and the initial c.
    first = trace["forget"][:, 0] * state[1] + trace["input"][:, 0] * trace["cell_candidate"][:, 0]
    torch.testing.assert_close(trace["cell"][:, 0], first)
