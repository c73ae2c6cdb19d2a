"""Class variants of the implement exercises (``assign --class-key``): a correct answer to each
variant passes, the lesson's public solution fails it with a hint that names the difference,
and the class key picks the same variants every time."""

import pytest
import torch
import torch.nn.functional as F

from course_utils.exercises import EXERCISES, run_check
from course_utils.exercises.engine import Exercise, class_exercise, lesson_exercises, variant

from test_exercises import SOLUTIONS

# -- a learner's correct answer to each variant ---------------------------------


def conv2d_stride2(x, weight, bias):
    batch, _, height, width = x.shape
    c_out, _, k, _ = weight.shape
    out = torch.zeros(batch, c_out, (height - k) // 2 + 1, (width - k) // 2 + 1)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            patch = x[:, :, 2 * i:2 * i + k, 2 * j:2 * j + k]
            out[:, :, i, j] = (patch[:, None] * weight).sum(dim=(2, 3, 4)) + bias
    return out


def conv2d_padding1(x, weight, bias):
    return SOLUTIONS["01.conv2d_loops"](F.pad(x, (1, 1, 1, 1)), weight, bias)


def output_size_dilation2(n, k, s, p):
    return (n + 2 * p - 2 * (k - 1) - 1) // s + 1


def lstm_step_ifog(x, h, c, weight_ih, weight_hh, bias):
    i, f, o, g = (x @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def log_probs(logits, temperature):
    z = logits / temperature
    z = z - z.max()
    return z - torch.log(torch.exp(z).sum())


def tcn_field_base3(kernel_size, layers):
    return 1 + (kernel_size - 1) * (3 ** layers - 1) // 2


def masked_max(h, lengths):
    padded = torch.arange(h.shape[1])[None, :] >= lengths[:, None]
    return h.masked_fill(padded[:, :, None], float("-inf")).max(dim=1).values


def cnn_lstm_pooled(x, state):
    conv = torch.nn.Conv1d(state["conv.weight"].shape[1], state["conv.weight"].shape[0], state["conv.weight"].shape[2])
    lstm = torch.nn.LSTM(conv.out_channels, conv.out_channels, batch_first=True)
    head = torch.nn.Linear(*state["head.weight"].shape[::-1])
    model = torch.nn.ModuleDict({"conv": conv, "lstm": lstm, "head": head})
    model.load_state_dict(state)
    z = torch.nn.functional.max_pool1d(torch.relu(conv(x.transpose(1, 2))), 2)
    out, _ = lstm(z.transpose(1, 2))
    return head(out[:, -1])


def fold_time_major(clips):
    return clips.transpose(0, 1).reshape(clips.shape[0] * clips.shape[1], *clips.shape[2:])


def unfold_time_major(features, batch_size):
    return features.reshape(-1, batch_size, features.shape[1]).transpose(0, 1)


def viterbi_transposed(emissions, transitions, start, end):
    return SOLUTIONS["05.viterbi"](emissions, transitions.T, start, end)


def bio_spans_inclusive(tags):
    return [(kind, start, end - 1) for kind, start, end in SOLUTIONS["05.bio_spans"](tags)]


def average_gradients_sum(model):
    import torch.distributed as dist

    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)


VARIANTS = {
    "01.conv2d_loops@stride2": (conv2d_stride2, "move the kernel 2 cells at a time"),
    "01.conv2d_loops@padding1": (conv2d_padding1, "without padding"),
    "01.output_size@dilation2": (output_size_dilation2, "the size without dilation"),
    "02.lstm_step@ifog": (lstm_step_ifog, "this class's weights are (i, f, o, g)"),
    "02.temperature_probs@log_probs": (log_probs, "those are probabilities"),
    "03.tcn_receptive_field@base3": (tcn_field_base3, "this class's dilations are 1, 3, 9"),
    "03.masked_mean@max": (masked_max, "that is the mean over the real steps"),
    "03.cnn_lstm@maxpool2": (cnn_lstm_pooled, "that is the CNN-LSTM without pooling"),
    "04.fold_time@time_major": (fold_time_major, "this class's version is time-major"),
    "04.unfold_time@time_major": (unfold_time_major, "you read the rows as clip-major"),
    "05.viterbi@transposed": (viterbi_transposed, "it is the move from j to i"),
    "05.bio_spans@inclusive": (bio_spans_inclusive, "end is inclusive in this class's version"),
    "06.average_gradients@sum": (average_gradients_sum, "that is the mean"),
}


def test_every_variant_is_tested_here_and_every_exercise_has_one():
    assert sorted(VARIANTS) == sorted(id for id, e in EXERCISES.items() if id != e.base)
    assert {EXERCISES[id].base for id in VARIANTS} == set(SOLUTIONS)


@pytest.mark.parametrize("exercise", sorted(VARIANTS))
def test_a_correct_answer_to_a_variant_passes(exercise):
    result = run_check(exercise, VARIANTS[exercise][0], seed=3)
    assert result.passed, result.message


@pytest.mark.parametrize("exercise", sorted(VARIANTS))
def test_the_public_solution_fails_a_variant_with_a_hint_that_names_the_difference(exercise):
    result = run_check(exercise, SOLUTIONS[EXERCISES[exercise].base])
    assert not result.passed
    assert VARIANTS[exercise][1] in result.message


@pytest.mark.parametrize("exercise", sorted(VARIANTS))
def test_a_variant_answer_fails_the_lesson_exercise(exercise):
    assert not run_check(EXERCISES[exercise].base, VARIANTS[exercise][0]).passed


def test_log_of_softmax_gets_the_stable_hint():
    result = run_check("02.temperature_probs@log_probs",
                       lambda logits, t: torch.log(torch.softmax(logits / t, dim=-1)))
    assert not result.passed and "underflows to -inf" in result.message


def test_a_class_key_picks_the_same_variants_every_time_and_keys_differ():
    ids = [id for id, e in EXERCISES.items() if id == e.base]
    assert lesson_exercises("01") == ["01.conv2d_loops", "01.output_size"]
    picks = {key: [class_exercise(id, key) for id in ids] for key in ("spring", "autumn", "x", "y", "z", "w")}
    assert picks["spring"] == [class_exercise(id, "spring") for id in ids]
    assert all(EXERCISES[p].base == id and p != id for chosen in picks.values() for p, id in zip(chosen, ids))
    conv = {chosen[0] for chosen in picks.values()}
    assert conv == {"01.conv2d_loops@stride2", "01.conv2d_loops@padding1"}  # six keys reach both variants
    assert lesson_exercises("01", "spring") == [class_exercise(id, "spring") for id in ("01.conv2d_loops", "01.output_size")]
    with pytest.raises(ValueError, match="class key is empty"):
        class_exercise("01.conv2d_loops", "  ")


def test_a_variant_needs_an_identifier_and_a_statement():
    base = EXERCISES["01.output_size"]
    with pytest.raises(ValueError, match="Python identifier"):
        variant(base, "two words", "a statement")
    with pytest.raises(ValueError, match="a statement"):
        variant(base, "ok", "")
    made = variant(base, "ok", "Asks something else.")
    assert isinstance(made, Exercise) and made.id == "01.output_size@ok" and made.function == "output_size"
    assert made.base == "01.output_size" and "ok" not in EXERCISES
