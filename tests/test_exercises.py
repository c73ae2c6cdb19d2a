"""The exercise checks: every reference solution passes, and wrong answers get a friendly message.

The solutions below are written as they stand in the lesson notebooks, between
nbgrader's markers; tests/test_grading.py puts them into notebooks.
"""

import json
import re
import subprocess
import sys

import pytest
import torch
from torch import nn

from course_utils import crf, exercises
from course_utils.exercises import engine
from course_utils.tooling import notebooks, runner
from course_utils.exercises import NOT_IMPLEMENTED, check, run_check

# -- reference solutions, one per exercise ------------------------------------


def conv2d_loops(x, weight, bias):
    ### BEGIN SOLUTION
    batch, _, height, width = x.shape
    c_out, _, k, _ = weight.shape
    out = torch.zeros(batch, c_out, height - k + 1, width - k + 1)
    for i in range(height - k + 1):
        for j in range(width - k + 1):
            patch = x[:, :, i:i + k, j:j + k]                       # (B, C_in, k, k)
            out[:, :, i, j] = (patch[:, None] * weight).sum(dim=(2, 3, 4)) + bias
    return out
    ### END SOLUTION


def output_size(n, k, s, p):
    ### BEGIN SOLUTION
    return (n + 2 * p - k) // s + 1
    ### END SOLUTION


def lstm_step(x, h, c, weight_ih, weight_hh, bias):
    ### BEGIN SOLUTION
    i, f, g, o = (x @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new
    ### END SOLUTION


def temperature_probs(logits, temperature):
    ### BEGIN SOLUTION
    scaled = logits / temperature
    weights = torch.exp(scaled - scaled.max())
    return weights / weights.sum()
    ### END SOLUTION


def tcn_receptive_field(kernel_size, layers):
    ### BEGIN SOLUTION
    return 1 + (kernel_size - 1) * (2 ** layers - 1)
    ### END SOLUTION


def masked_mean(h, lengths):
    ### BEGIN SOLUTION
    mask = torch.arange(h.shape[1])[None, :] < lengths[:, None]    # (B, T)
    return (h * mask[:, :, None]).sum(dim=1) / lengths[:, None].to(h.dtype)
    ### END SOLUTION


def cnn_lstm(x, state):
    ### BEGIN SOLUTION
    class SmallCNNLSTM(nn.Module):
        def __init__(self, features, hidden, classes, kernel_size):
            super().__init__()
            self.conv = nn.Conv1d(features, hidden, kernel_size)
            self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
            self.head = nn.Linear(hidden, classes)

        def forward(self, x):
            z = torch.relu(self.conv(x.transpose(1, 2)))
            out, _ = self.lstm(z.transpose(1, 2))
            return self.head(out[:, -1])

    hidden, features, kernel_size = state["conv.weight"].shape
    model = SmallCNNLSTM(features, hidden, state["head.weight"].shape[0], kernel_size)
    model.load_state_dict(state)
    return model(x)
    ### END SOLUTION


def fold_time(clips):
    ### BEGIN SOLUTION
    return clips.reshape(clips.shape[0] * clips.shape[1], *clips.shape[2:])
    ### END SOLUTION


def unfold_time(features, batch_size):
    ### BEGIN SOLUTION
    return features.reshape(batch_size, -1, features.shape[1])
    ### END SOLUTION


def viterbi(emissions, transitions, start, end):
    ### BEGIN SOLUTION
    score = start + emissions[0]                                   # (T,)
    pointers = []
    for emission in emissions[1:]:
        best, previous = (score[:, None] + transitions).max(dim=0)  # over the previous tag
        score = best + emission
        pointers.append(previous)
    score = score + end
    path = [int(score.argmax())]
    for previous in reversed(pointers):
        path.append(int(previous[path[-1]]))
    return score.max().item(), path[::-1]
    ### END SOLUTION


def bio_spans(tags):
    ### BEGIN SOLUTION
    spans = []
    for i, tag in enumerate(tags):
        if tag.startswith("B-"):
            spans.append([tag[2:], i, i + 1])
        elif tag.startswith("I-") and spans and spans[-1][2] == i and spans[-1][0] == tag[2:]:
            spans[-1][2] = i + 1
    return [tuple(span) for span in spans]
    ### END SOLUTION


def average_gradients(model: nn.Module) -> None:
    ### BEGIN SOLUTION
    import torch.distributed as dist

    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= dist.get_world_size()
    ### END SOLUTION


SOLUTIONS = {
    "01.conv2d_loops": conv2d_loops, "01.output_size": output_size,
    "02.lstm_step": lstm_step, "02.temperature_probs": temperature_probs,
    "03.tcn_receptive_field": tcn_receptive_field, "03.masked_mean": masked_mean, "03.cnn_lstm": cnn_lstm,
    "04.fold_time": fold_time, "04.unfold_time": unfold_time,
    "05.viterbi": viterbi, "05.bio_spans": bio_spans,
    "06.average_gradients": average_gradients,
}

# -- deliberately wrong answers, and the hint each must get --------------------


def conv2d_flipped(x, weight, bias):
    return conv2d_loops(x, weight.flip(-2, -1), bias)


def output_size_float(n, k, s, p):
    return (n + 2 * p - k) / s + 1


def lstm_step_ifog(x, h, c, weight_ih, weight_hh, bias):
    i, f, o, g = (x @ weight_ih.T + h @ weight_hh.T + bias).chunk(4, dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


def lstm_step_c_first(*args):
    return lstm_step(*args)[::-1]


def temperature_times(logits, temperature):
    return torch.softmax(logits * temperature, dim=-1)


def temperature_naive(logits, temperature):
    weights = torch.exp(logits / temperature)
    return weights / weights.sum()


def tcn_field_no_dilation(kernel_size, layers):
    return 1 + (kernel_size - 1) * layers


def tcn_field_off_by_one(kernel_size, layers):
    return (kernel_size - 1) * (2 ** layers - 1)


def masked_mean_all_steps(h, lengths):
    return h.mean(dim=1)


def masked_mean_over_t(h, lengths):
    return masked_mean(h, lengths) * lengths[:, None] / h.shape[1]


def fold_time_major(clips):
    return fold_time(clips.transpose(0, 1))


def fold_time_view(clips):
    return clips.view(-1, *clips.shape[2:])


def unfold_time_major(features, batch_size):
    return features.reshape(-1, batch_size, features.shape[1]).transpose(0, 1)


def viterbi_greedy(emissions, transitions, start, end):
    path = emissions.argmax(1).tolist()
    return 0.0, path


def viterbi_no_end(emissions, transitions, start, end):
    return viterbi(emissions, transitions, start, torch.zeros_like(end))


def viterbi_subtracts(emissions, transitions, start, end):
    return viterbi(emissions, -transitions, start, end)


def bio_spans_inclusive(tags):
    return [(t, s, e - 1) for t, s, e in bio_spans(tags)]


def bio_spans_with_prefix(tags):
    return [(tags[s], s, e) for _, s, e in bio_spans(tags)]


def cnn_lstm_reading(readout, relu=True):
    """A CNN-LSTM answer that skips the ReLU, or reads the LSTM's first step or its mean."""
    def answer(x, state):
        from course_utils.exercises.lesson03 import _cnn_lstm_reference

        return _cnn_lstm_reference(x, state, readout=readout, relu=relu)
    return answer


WRONG = [
    ("01.conv2d_loops", conv2d_flipped, "kernel is flipped"),
    ("03.cnn_lstm", cnn_lstm_reading("last", relu=False), "apply a ReLU"),
    ("03.cnn_lstm", cnn_lstm_reading("first"), "you used the first step"),
    ("03.cnn_lstm", cnn_lstm_reading("mean"), "you used the mean over the steps"),
    ("03.cnn_lstm", lambda x, state: "scores", "expected the class scores, a tensor of shape"),
    ("01.output_size", output_size_float, "return an int"),
    ("02.lstm_step", lstm_step_ifog, "order is (i, f, g, o)"),
    ("02.lstm_step", lstm_step_c_first, "return (h_new, c_new)"),
    ("02.temperature_probs", temperature_times, "you multiplied"),
    ("02.temperature_probs", temperature_naive, "subtract the largest logit"),
    ("03.tcn_receptive_field", tcn_field_no_dilation, "left out the dilations"),
    ("03.tcn_receptive_field", tcn_field_off_by_one, "start from 1"),
    ("03.masked_mean", masked_mean_all_steps, "padding included"),
    ("03.masked_mean", masked_mean_over_t, "not by T"),
    ("04.fold_time", fold_time_major, "frames of one clip must stay together"),
    ("04.fold_time", fold_time_view, "view fails on tensors that are not contiguous"),
    ("04.unfold_time", unfold_time_major, "the batch comes first"),
    ("05.viterbi", viterbi_greedy, "ignores the transitions"),
    ("05.viterbi", viterbi_no_end, "add end[tag]"),
    ("05.viterbi", viterbi_subtracts, "you subtracted it"),
    ("05.bio_spans", bio_spans_inclusive, "end is exclusive"),
    ("05.bio_spans", bio_spans_with_prefix, "without its prefix"),
]


def test_every_exercise_has_a_solution_here():
    assert sorted(SOLUTIONS) == sorted(id for id, e in exercises.EXERCISES.items() if id == e.base)
    assert exercises.lesson_exercises("01") == ["01.conv2d_loops", "01.output_size"]
    assert exercises.lesson_exercises("03") == ["03.tcn_receptive_field", "03.masked_mean", "03.cnn_lstm"]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("exercise", sorted(SOLUTIONS))
def test_solution_passes(exercise, seed):
    result = run_check(exercise, SOLUTIONS[exercise], seed=seed)
    assert result.passed, result.message
    assert result.message.startswith("passed all ")


@pytest.mark.parametrize("exercise", sorted(SOLUTIONS))
def test_random_cases_change_with_the_seed_and_edge_cases_do_not(exercise):
    def cases(seed):
        generator = torch.Generator().manual_seed(seed)
        return [(case.description, [repr(a) for a in case.args])
                for case in exercises.EXERCISES[exercise].cases(generator)]

    first, second = cases(0), cases(1)
    # a case that starts processes (lesson 06) costs seconds: three of them suffice there
    assert len(first) >= (3 if exercises.EXERCISES[exercise].run else 5)
    assert first != second
    assert first[0][0] == second[0][0]  # the first case is an edge case of fixed shape


@pytest.mark.parametrize("exercise", sorted(SOLUTIONS))
def test_not_implemented(exercise):
    stub_source = notebooks.strip_solutions(_source(SOLUTIONS[exercise]))
    namespace = {"torch": torch, "nn": nn}
    exec(stub_source, namespace)
    result = run_check(exercise, namespace[SOLUTIONS[exercise].__name__])
    assert not result.passed
    assert result.message == NOT_IMPLEMENTED
    assert "not implemented yet" in result.message


@pytest.mark.parametrize("exercise, answer, hint", WRONG, ids=[f"{e}-{a.__name__}" for e, a, _ in WRONG])
def test_wrong_answer_gets_the_hint(exercise, answer, hint):
    result = run_check(exercise, answer)
    assert not result.passed
    assert "Hint: " in result.message and hint in result.message, result.message
    assert result.message.startswith("test case ")


def test_the_check_tolerates_float_rounding_but_not_a_percent():
    """An answer that differs from the reference by float32 rounding passes; one 1% off fails."""
    def scaled(factor):
        return lambda x, weight, bias: conv2d_loops(x, weight, bias) * factor
    assert run_check("01.conv2d_loops", scaled(1 + 1e-6)).passed
    one_percent = run_check("01.conv2d_loops", scaled(1.01))
    assert not one_percent.passed and "wrong values" in one_percent.message
    assert not run_check("01.conv2d_loops", scaled(1 + 1e-3)).passed


def test_a_failing_case_says_what_was_expected_and_what_came_back():
    result = run_check("01.conv2d_loops", lambda x, weight, bias: x)
    assert not result.passed
    assert "expected the result to have shape (1, 1, 1, 1), got shape (1, 1, 3, 3)" in result.message
    result = run_check("01.conv2d_loops", lambda x, weight, bias: conv2d_loops(x, weight, bias) + 0.5)
    assert "wrong values: at index (0, 0, 0, 0) expected" in result.message
    assert "largest difference 0.5" in result.message
    result = run_check("01.conv2d_loops", lambda x, weight, bias: conv2d_loops(x, weight, bias).double())
    assert "expected the result to have dtype torch.float32, got torch.float64" in result.message
    assert "its values are right, so only the dtype is wrong" in result.message and ".to(torch.float32)" in result.message
    result = run_check("01.conv2d_loops", lambda x, weight, bias: (conv2d_loops(x, weight, bias) + 0.5).double())
    assert "got torch.float64 (build it with" in result.message  # the values are wrong too: no such claim
    result = run_check("01.output_size", lambda n, k, s, p: "26")
    assert "expected the int 26, got str '26'" in result.message
    result = run_check("05.viterbi", lambda *args: [0, 1])
    assert "expected best_path to be a list of 3 tag ids in [0, 1], got int 1" in result.message
    result = run_check("05.viterbi", lambda *args: (1.0, viterbi(*args)[1]))
    assert "your path is a best one, but expected best_score" in result.message


def test_an_exception_gives_a_message_not_a_traceback():
    def conv2d_loops(x, weight, bias):
        out = x.flatten(1) @ weight  # shapes do not fit
        return out

    result = run_check("01.conv2d_loops", conv2d_loops)
    assert not result.passed
    assert "your function raised RuntimeError: " in result.message
    assert "`out = x.flatten(1) @ weight  # shapes do not fit`" in result.message
    assert "Traceback" not in result.message and "\n" not in result.message
    assert "Hint: out[b, o, i, j]" in result.message


def test_check_shows_the_result(capsys):
    check("01.output_size", output_size)
    check("01.output_size", 42)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "✅ 01.output_size: passed all 12 test cases"
    assert out[1] == "❌ 01.output_size: expected a function output_size(n, k, s, p) -> int, got int 42"


def test_every_id_names_the_function_the_learner_writes():
    for exercise in exercises.EXERCISES.values():
        assert exercise.signature.startswith(exercise.function + "("), exercise.id
        assert re.fullmatch(r"\d\d\.[a-z_][a-z0-9_]*(@[a-z0-9_]+)?", exercise.id), exercise.id  # "NN.function@variant"
        assert exercise.base in exercises.lesson_exercises(exercise.id[:2])


def test_unknown_exercise_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown exercise '01.conv3d'.*: 01.conv2d_loops, 01.output_size"):
        run_check("01.conv3d", conv2d_loops)


@pytest.mark.parametrize("seed", [2**63, -1, 1.5, True, "0"])
def test_a_seed_out_of_range_is_a_clear_error(seed):
    """Probe: a seed above 2**63 raised torch's overflow error from inside the check."""
    with pytest.raises(ValueError, match=r"seed must be an int from 0 to 2\*\*63 - 1, got "):
        run_check("01.conv2d_loops", conv2d_loops, seed=seed)
    assert run_check("01.conv2d_loops", conv2d_loops, seed=2**63 - 1).passed


def test_check_keeps_the_random_state_and_the_inputs_safe():
    def scribbles(x, h, c, weight_ih, weight_hh, bias):
        x.zero_()
        torch.rand(3)
        return lstm_step(torch.ones_like(x), h, c, weight_ih, weight_hh, bias)

    state = torch.get_rng_state()
    result = run_check("02.lstm_step", scribbles)
    assert torch.equal(torch.get_rng_state(), state)
    assert not result.passed and "h_new has wrong values" in result.message
    assert run_check("02.lstm_step", lstm_step).passed


def test_an_answer_that_changes_its_inputs_is_compared_with_the_reference_on_the_original_inputs():
    """The learner gets copies: zeroing x and answering for the zeroed x must not pass, and the case's own
    tensors are untouched (a package review planted `copy_args` returning the originals; nothing failed)."""
    def zeroes_then_answers(x, h, c, weight_ih, weight_hh, bias):
        x.zero_()
        return lstm_step(x, h, c, weight_ih, weight_hh, bias)

    result = run_check("02.lstm_step", zeroes_then_answers)
    assert not result.passed and "h_new has wrong values" in result.message
    case = exercises.EXERCISES["02.lstm_step"].cases(torch.Generator().manual_seed(0))[-1]
    before = [a.clone() for a in case.args]
    copies = engine.copy_args(case.args)
    copies[0].zero_()
    assert all(torch.equal(a, b) for a, b in zip(case.args, before))


def test_viterbi_reference_matches_the_crf_and_accepts_ties():
    for case in exercises.EXERCISES["05.viterbi"].cases(torch.Generator()):
        emissions, transitions, start, end = case.args
        layer = crf.CRF(emissions.shape[1])
        with torch.no_grad():
            layer.transitions.copy_(transitions)
            layer.start_transitions.copy_(start)
            layer.end_transitions.copy_(end)
        best_score, best_path = exercises.lesson05._viterbi_reference(emissions, transitions, start, end)
        assert layer.decode(emissions[None]) == [best_path]
        score = layer.score(emissions[None], torch.tensor([best_path])).item()
        assert score == pytest.approx(best_score, abs=1e-5)
    ties = (torch.zeros(2, 2), torch.zeros(2, 2), torch.zeros(2), torch.zeros(2))
    compare = exercises.EXERCISES["05.viterbi"].compare
    assert compare((0.0, [1, 0]), (0.0, [0, 0]), ties) is None
    assert compare((0.0, torch.tensor([1, 1])), (0.0, [0, 0]), ties) is None


def test_lstm_reference_matches_torch_lstm():
    last_case = exercises.EXERCISES["02.lstm_step"].cases(torch.Generator())[-1]
    x, h, c, weight_ih, weight_hh, bias = last_case.args
    lstm = nn.LSTM(x.shape[1], h.shape[1])
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(weight_ih)
        lstm.weight_hh_l0.copy_(weight_hh)
        lstm.bias_ih_l0.copy_(bias)
        lstm.bias_hh_l0.zero_()
        _, (h_new, c_new) = lstm(x[None], (h[None], c[None]))
    ours = exercises.lesson02._lstm_step_reference(x, h, c, weight_ih, weight_hh, bias)
    torch.testing.assert_close(ours, (h_new[0], c_new[0]))


# -- the exercise cells of the lesson notebooks --------------------------------


def _source(function) -> str:
    import inspect

    return inspect.getsource(function)


def _lesson_exercise_cells():
    cells = []
    for notebook in runner.lesson_notebooks():
        for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            calls = notebooks.check_calls(source) if cell["cell_type"] == "code" else []
            if calls and notebooks.SOLUTION_BEGIN in source:
                cells.append(pytest.param(source, id=calls[0]))
    return cells


@pytest.mark.parametrize("source", _lesson_exercise_cells())
def test_lesson_solution_passes_its_check(source):
    """Each exercise cell of a lesson is self-contained (it may use torch, nn, F, dist and math)."""
    import math

    results = []
    namespace = {"torch": torch, "nn": nn, "F": torch.nn.functional, "dist": torch.distributed, "math": math,
                 "check": lambda exercise, answer: results.append(run_check(exercise, answer))}
    exec(source, namespace)
    assert results and all(r.passed for r in results), [r.message for r in results]


# -- what the learner's code does never escapes check() as a traceback (probes X14, X15, X17) --------


class _ReprExplodes:
    def __repr__(self):
        raise RuntimeError("repr exploded")


class _EqExplodes(int):
    def __eq__(self, other):
        raise RuntimeError("eq exploded")

    __hash__ = int.__hash__


class _EqLies(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize("answer, expected", [
    (lambda n, k, s, p: _ReprExplodes(), "got _ReprExplodes <repr raised RuntimeError>"),
    (lambda n, k, s, p: _EqExplodes(7), "comparing your answer raised RuntimeError (got _EqExplodes 7)"),
    (lambda n, k, s, p: _EqLies(7), "expected the int 26, got _EqLies 7"),
    (lambda n, k, s, p: __import__("sys").exit(0), "your function raised SystemExit"),
])
def test_a_hostile_answer_is_a_failed_case_not_a_traceback(answer, expected, capsys):
    result = run_check("01.output_size", answer)
    assert not result.passed and expected in result.message, result.message
    check("01.output_size", answer)
    assert capsys.readouterr().out.startswith("❌ 01.output_size: test case 1 of 12")


def test_the_exercises_do_not_import_the_distributed_module():
    """No import cycle: the lesson-06 harness lives in exercises.lesson06, not in distributed.py."""
    code = ("import sys, course_utils.exercises; "
            "print('course_utils.distributed' in sys.modules, 'course_utils.tooling.grading' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_every_lesson_registers_its_exercises_in_its_own_module():
    for exercise in exercises.EXERCISES.values():
        module = sys.modules[f"course_utils.exercises.lesson{exercise.lesson}"]
        assert exercise in [e for e in exercises.EXERCISES.values() if e.lesson == module.__name__[-2:]]
    assert {e.lesson for e in exercises.EXERCISES.values()} == {"01", "02", "03", "04", "05", "06"}


class _Custom(BaseException):
    pass


@pytest.mark.parametrize("error", [GeneratorExit, _Custom])
def test_any_base_exception_of_the_learner_is_a_failed_case(error):
    """Re-probe: GeneratorExit or a BaseException subclass escaped check()."""
    def answer(*args):
        raise error("from the learner")

    result = run_check("01.conv2d_loops", answer)
    assert not result.passed and error.__name__ in result.message


def test_ctrl_c_in_the_learner_code_still_stops_the_check():
    def answer(*args):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_check("01.conv2d_loops", answer)


def test_a_path_a_little_worse_than_the_best_is_not_a_best_path():
    """The Viterbi check's tolerance is for float rounding (1e-4), not for near-best paths."""
    exercise = exercises.EXERCISES["05.viterbi"]
    args = (torch.tensor([[0.0, -0.005]]), torch.zeros(2, 2), torch.zeros(2), torch.zeros(2))
    expected = exercise.reference(*args)
    assert expected[1] == [0]
    assert "scores -0.0050, but the best path [0] scores 0.0000" in exercise.compare((-0.005, [1]), expected, args)
    assert "expected best_score 0.0000, got 0.0050" in exercise.compare((0.005, [0]), expected, args)
    assert exercise.compare((1e-6, [0]), expected, args) is None
