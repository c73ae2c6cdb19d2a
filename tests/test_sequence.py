"""Lesson 03's tasks, sequence models, measurements and verdict rules."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.cnn import receptive_field
from course_utils.sequence import (MODEL_NAMES, CausalConv1d, CNNLSTMClassifier, ConvClassifier,
                                   LSTMClassifier, adding_task, make_model, pair_task,
                                   saved_activation_bytes, seconds_per_step, sequence_cost,
                                   verdicts)
from course_utils.train import count_parameters


def test_pair_task_labels_the_two_content_symbols():
    x, y = pair_task(50, k=6, length=10, vocab=3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (50, 10, 6) and y.shape == (50,) and y.dtype == torch.int64
    assert torch.equal(x.sum(-1), torch.ones(50, 10))  # one symbol per step
    symbols = x.argmax(-1)
    content = symbols < 3
    assert content[:, [3, 9]].all() and content.sum() == 100  # only at 10 - 1 - 6 and at the end
    assert torch.equal(y, symbols[:, 3] * 3 + symbols[:, 9])
    assert len(y.unique()) > 5


def test_adding_task_sums_the_two_marked_numbers():
    x, y = adding_task(20, k=5, length=8)
    assert x.shape == (20, 8, 2)
    assert torch.equal(x[0, :, 1], torch.tensor([0, 0, 1, 0, 0, 0, 0, 1.0]))
    torch.testing.assert_close(y, x[:, 2, 0] + x[:, 7, 0])


@pytest.mark.parametrize("task", [pair_task, adding_task])
def test_tasks_reject_a_distance_that_does_not_fit(task):
    with pytest.raises(ValueError, match="at least k \\+ 1 = 9"):
        task(4, k=8, length=8)
    with pytest.raises(ValueError, match="n must be a positive int"):
        task(0, k=2, length=8)


def test_causal_convolution_ignores_the_future():
    conv = CausalConv1d(2, 3, kernel_size=3, dilation=2)
    x = torch.randn(1, 2, 12)
    changed = x.clone()
    changed[:, :, 7:] = torch.randn(1, 2, 5)
    assert conv(x).shape == (1, 3, 12)
    torch.testing.assert_close(conv(x)[:, :, :7], conv(changed)[:, :, :7])
    assert not torch.allclose(conv(x)[:, :, 7:], conv(changed)[:, :, 7:])


@pytest.mark.parametrize("dilated,kernel,layers", [(False, 5, 4), (True, 3, 5), (True, 2, 3)])
def test_receptive_field_is_what_the_last_step_sees(dilated, kernel, layers):
    torch.manual_seed(0)
    model = ConvClassifier(3, 2, channels=8, kernel_size=kernel, layers=layers, dilated=dilated)
    x = torch.randn(4, 80, 3, requires_grad=True)
    model(x).sum().backward()
    seen = (x.grad.abs().sum(dim=(0, 2)) > 0).nonzero().flatten()
    field = model.receptive_field()
    assert field == receptive_field(model.layer_specs())
    assert seen.tolist() == list(range(80 - field, 80))


def test_the_four_models_have_similar_sizes_and_shapes():
    models = {name: make_model(name, features=8, classes=16, max_steps=300) for name in MODEL_NAMES}
    sizes = [count_parameters(m) for m in models.values()]
    assert max(sizes) / min(sizes) < 1.5
    x = torch.randn(3, 40, 8)
    for model in models.values():
        assert model(x).shape == (3, 16)
    assert models["cnn"].receptive_field() == 17 and models["tcn"].receptive_field() == 256
    with pytest.raises(ValueError, match="must be one of"):
        make_model("gru", 5, 4)


@pytest.mark.parametrize("model", [
    ConvClassifier(3, 4, channels=8, readout="last"),
    ConvClassifier(3, 4, channels=8, kernel_size=3, layers=3, dilated=True, readout="mean"),
    LSTMClassifier(3, 4, hidden=8),
    CNNLSTMClassifier(3, 4, channels=8, pool=2, hidden=8),
], ids=["cnn-last", "tcn-mean", "lstm-packed", "cnn-lstm-packed"])
def test_a_padded_batch_gives_each_sequence_its_own_output(model):
    torch.manual_seed(0)
    sequences = [torch.randn(n, 3) for n in (9, 4, 6)]
    padded = torch.nn.utils.rnn.pad_sequence(sequences, batch_first=True, padding_value=5.0)
    lengths = torch.tensor([9, 4, 6])
    together = model(padded, lengths)
    alone = torch.cat([model(s[None]) for s in sequences])
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(model(padded)[1:], alone[1:], atol=1e-4)  # without lengths the padding counts


def test_models_reject_bad_inputs():
    model = LSTMClassifier(3, 2, hidden=4)
    with pytest.raises(ValueError, match=r"\(batch, steps, 3\)"):
        model(torch.randn(2, 5, 4))
    with pytest.raises(TypeError, match="float tensor"):
        model(torch.zeros(2, 5, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"lengths must lie in \[1, 5\]"):
        model(torch.randn(2, 5, 3), torch.tensor([5, 6]))
    with pytest.raises(TypeError, match="int64 tensor of shape \\(2,\\)"):
        model(torch.randn(2, 5, 3), torch.tensor([5.0, 2.0]))
    with pytest.raises(ValueError, match="readout must be"):
        ConvClassifier(3, 2, readout="max")


@pytest.mark.parametrize("steps, pool", [(7, 4), (6, 4), (9, 2), (3, 4), (8, 4)])
def test_cnn_lstm_sees_the_last_step_whatever_the_length(steps, pool):
    """The last T mod pool steps are pooled too, so a label on the final token can be learned."""
    torch.manual_seed(0)
    model = CNNLSTMClassifier(3, 2, channels=8, kernel_size=3, pool=pool, hidden=8)
    x = torch.randn(2, steps, 3)
    changed = x.clone()
    changed[:, -1] += 3.0
    assert not torch.allclose(model(x), model(changed)), "the final step must reach the output"
    lengths = torch.tensor([steps, max(1, steps - 1)])
    changed_in_padding = x.clone()
    changed_in_padding[1, -1] += 3.0  # beyond sequence 1's length when steps > 1
    if steps > 1:
        torch.testing.assert_close(model(x, lengths)[1], model(changed_in_padding, lengths)[1])


def test_saved_activations_grow_with_the_sequence_and_leave_out_parameters():
    torch.manual_seed(0)
    model = LSTMClassifier(2, 3, hidden=16)
    y = torch.tensor([0, 1])
    short, long = (saved_activation_bytes(model, torch.randn(2, t, 2), y) for t in (50, 100))
    assert 1.8 < long / short < 2.2
    linear = torch.nn.Linear(1000, 3)
    x = torch.randn(1, 1000)
    saved = saved_activation_bytes(linear, x, torch.tensor([0]))
    # the input is saved (for the weight's gradient); the 12,000-byte weight is not counted
    assert x.nbytes <= saved < x.nbytes + linear.weight.nbytes


def test_cost_table_and_step_timer():
    models = {"lstm": LSTMClassifier(2, 3, hidden=4), "cnn": ConvClassifier(2, 3, channels=4)}
    table = sequence_cost(models, [8, 16], features=2, classes=3, batch_size=4, min_run_time=0.01)
    assert list(table.columns) == ["model", "T", "ms_per_step", "saved_mb"]
    assert len(table) == 4 and (table.ms_per_step > 0).all() and (table.saved_mb > 0).all()
    with pytest.raises(ValueError, match="threads must be a positive int"):
        seconds_per_step(models["cnn"], torch.randn(2, 8, 2), torch.tensor([0, 1]), threads=0)


def _metrics(**changes):
    metrics = {"cnn_receptive_field": 17, "tcn_receptive_field": 256,
               "ms_per_step_lstm_T1024": 100.0, "ms_per_step_cnn_lstm_T1024": 30.0,
               "ms_per_step_cnn_lstm_nopool_T1024": 140.0, "saved_mb_lstm_T1024": 50.0,
               "saved_mb_cnn_lstm_T1024": 15.0, "saved_mb_cnn_lstm_nopool_T1024": 70.0,
               "ms_per_step_lstm_T64": 1.0, "seconds_per_epoch_lstm": 9.0, "seconds_per_epoch_cnn_lstm": 3.0,
               "pixels_test_acc_lstm": 0.7, "pixels_test_acc_cnn_lstm": 0.8,
               "lstm_layer_parameters": 33_000, "conv_layer_parameters": 20_000,
               "lstm_packed_max_diff": 1e-7, "cnn_masked_max_diff": 1e-7, "cnn_unmasked_max_diff": 0.3}
    for name in MODEL_NAMES:
        metrics[f"rows_gap_{name}"] = 0.02
        metrics[f"rows_parameters_{name}"] = 20_000
    for k in (8, 32, 256):
        metrics.update({f"cnn_acc_k{k}": 1.0 if k < 17 else 0.25, f"tcn_acc_k{k}": 1.0 if k < 256 else 0.25,
                        f"lstm_acc_k{k}": 1.0, f"cnn_lstm_acc_k{k}": 1.0})
    metrics.update(changes)
    return metrics


def test_verdicts_follow_the_numbers():
    table = verdicts(_metrics())
    assert list(table.index) == [1, 2, 3, 4, 5]
    assert list(table.columns) == ["claim", "experiment", "numbers", "verdict"]
    assert table.verdict[1].startswith("holds only when k exceeds")
    assert "failures match the receptive fields: yes" in table.numbers[1]
    assert table.verdict[2].startswith("holds only when the convolutions shorten")
    assert table.verdict[3].startswith("does not hold")
    assert table.verdict[4].startswith("holds only when layers of equal width")
    assert table.verdict[5].startswith("does not hold")


@pytest.mark.parametrize("changes,claim,verdict", [
    ({"lstm_acc_k256": 0.3}, 1, "does not hold in this run"),
    ({"tcn_acc_k32": 0.3}, 1, "holds"),
    ({"ms_per_step_cnn_lstm_nopool_T1024": 50.0, "saved_mb_cnn_lstm_nopool_T1024": 20.0}, 2, "holds"),
    ({"ms_per_step_cnn_lstm_nopool_T1024": 95.0, "saved_mb_cnn_lstm_nopool_T1024": 45.0}, 2,
     "holds only when the convolutions shorten the sequence (here by pooling)"),
    ({"ms_per_step_cnn_lstm_T1024": 120.0}, 2, "holds only for memory, not for time"),
    ({"cnn_lstm_acc_k256": 0.5}, 3, "holds"),
    ({"rows_gap_lstm": 0.1}, 4, "holds"),
    ({"cnn_masked_max_diff": 0.1}, 5, "holds"),
])
def test_each_verdict_changes_with_its_numbers(changes, claim, verdict):
    metrics = _metrics(**changes)
    if claim == 1 and "tcn_acc_k32" in changes:  # no CNN solves beyond the plain CNN's field
        metrics["tcn_acc_k256"] = 0.25
    text = verdicts(metrics).verdict[claim]
    assert text == verdict or text.startswith(verdict + ":") or text.startswith(verdict + ";")


def test_verdicts_name_a_missing_metric():
    metrics = _metrics()
    del metrics["lstm_packed_max_diff"]
    with pytest.raises(KeyError, match="lstm_packed_max_diff"):
        verdicts(metrics)
    with pytest.raises(KeyError, match="no distance k"):
        verdicts({})


def test_chrono_init_spreads_the_forget_gate_memory():
    torch.manual_seed(0)
    model = LSTMClassifier(2, 2, hidden=200, max_steps=100)
    hidden = 200
    forget = model.lstm.bias_ih_l0[hidden:2 * hidden] + model.lstm.bias_hh_l0[hidden:2 * hidden]
    span = 1 / (1 - torch.sigmoid(forget))  # steps the cell remembers at the start
    assert 1.9 < span.min() < 10 and 50 < span.max() < 100.1
    torch.testing.assert_close(model.lstm.bias_ih_l0[:hidden], -model.lstm.bias_ih_l0[hidden:2 * hidden])
    with pytest.raises(ValueError, match="max_steps must be an int >= 3"):
        LSTMClassifier(2, 2, max_steps=2)
