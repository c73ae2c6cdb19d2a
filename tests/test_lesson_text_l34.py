"""Lessons 03 and 04: the rules and sentences added for the review of lessons 03 and 04, on synthetic numbers."""

import math

import pytest
import torch

from course_utils import verdicts as V
from course_utils.verdicts import crossover_pool, rule_statement, timing_margin, verdicts

from test_sequence import _metrics, _sd


@pytest.mark.parametrize("outcomes,expected", [
    (["within spread", "within spread", "within spread", "lower", "lower"], 32),
    # pool 4 lower because a seed failed to train, pool 16 solved: not a crossover
    (["within spread", "lower", "within spread", "lower", "lower"], 32),
    (["within spread", "lower", "lower", "lower", "lower"], 4),
    (["within spread"] * 5, 0),
    (["lower", "lower", "lower", "lower", "within spread"], 0),   # the largest pool keeps the order
    (["higher", "within spread", "within spread", "within spread", "lower"], 64),
])
def test_crossover_pool_needs_every_larger_pool_lower(outcomes, expected):
    assert crossover_pool([1, 4, 16, 32, 64], outcomes) == expected


def test_crossover_pool_rejects_bad_input():
    with pytest.raises(ValueError):
        crossover_pool([4, 1], ["lower", "lower"])
    with pytest.raises(ValueError):
        crossover_pool([1, 4], ["lower"])


def test_timing_margin_is_the_larger_of_the_constant_and_the_repeat():
    assert timing_margin({"timing_repeat_ratio": 1.1}) == V.TIMING_MARGIN
    assert timing_margin({"timing_repeat_ratio": 1.4}) == 1.4
    with pytest.raises(KeyError, match="timing_repeat_ratio"):
        timing_margin({})


@pytest.mark.parametrize("changes,expected,absent", [
    ({}, "a dilated CNN solves k=48 too, and a causal CNN with masking takes variable lengths exactly", None),
    (_sd("tcn_acc_k48", 0.3), "holds only for a CNN whose receptive field is shorter than the dependency: a causal CNN "
                              "with masking takes variable lengths exactly", "dilated"),
    ({"lstm_packed_max_diff": 0.1}, "shorter than the dependency: a dilated CNN solves k=48 too", "masking"),
])
def test_claim_1_says_only_what_was_measured(changes, expected, absent):
    verdict = verdicts(_metrics(**changes)).verdict[1]
    assert expected in verdict
    if absent:
        assert absent not in verdict


def test_claim_7_names_attention_growth_only_when_measured():
    slow_attention = {"ms_per_step_attention_T1024_threadsall": 300.0}
    grows = verdicts(_metrics(**slow_attention)).verdict[7]
    assert grows.startswith("holds only against convolutions") and "its one-thread time grows faster with T" in grows
    flat = verdicts(_metrics(**slow_attention, growth_ms_attention=0.2)).verdict[7]
    assert "its one-thread time grows more slowly with T" in flat


def test_timing_verdicts_respect_the_repeat_ratio():
    # the LSTM is 190 / 45 = 4.2x slower than the CNN-LSTM: beyond a repeat of 1.1, within a repeat of 5
    assert verdicts(_metrics()).verdict[4].startswith("holds only when the pooling shortens")
    assert verdicts(_metrics(timing_repeat_ratio=5.0)).verdict[4].startswith("holds only for memory")
    assert verdicts(_metrics(timing_repeat_ratio=5.0)).verdict[7].startswith(
        "inconclusive: against the CNN and the dilated CNN (TCN) the LSTM's step lies on the edge of the timing margin")
    assert "two timings of the same model differed by 5.00x" in verdicts(_metrics(timing_repeat_ratio=5.0)).numbers[4]


def test_claim_7_reads_a_ratio_on_the_margins_edge_as_neither_way():
    # the post18 case: LSTM / TCN 1.273 against the 1.25x margin, while one model's two timings differed by 1.14x
    edge = _metrics(timing_repeat_ratio=1.14, ms_per_step_tcn_T1024_threads1=190 / 1.273 * 1.25,
                    ms_per_step_tcn_T1024_threadsall=152.0 / 1.273)
    verdict = verdicts(edge).verdict[7]
    assert verdict.startswith("inconclusive: against the dilated CNN (TCN) the LSTM's step lies on the edge"), verdict
    assert "LSTM / dilated CNN (TCN) 1.273" in verdict and "moved by 1.14x" in verdict
    clear = _metrics(timing_repeat_ratio=1.14, ms_per_step_tcn_T1024_threadsall=152.0 / 1.6)
    assert verdicts(clear).verdict[7].startswith("holds only against convolutions")
    # the LSTM faster than a CNN beyond the margin is no edge case: the claim does not hold
    faster = _metrics(ms_per_step_cnn_T1024_threads1=400, ms_per_step_cnn_T1024_threadsall=300.0)
    assert verdicts(faster).verdict[7].startswith("does not hold")
    # faster on the edge of 1 / margin: faster or level, and the claim fails either way
    level = _metrics(timing_repeat_ratio=1.14, ms_per_step_cnn_T1024_threads1=190 * 1.273,
                     ms_per_step_cnn_T1024_threadsall=152.0 * 1.273)
    assert verdicts(level).verdict[7].startswith("does not hold"), verdicts(level).verdict[7]


def test_claim_7_does_not_count_a_second_thread_that_slowed_a_step():
    # all threads slower than one (contention on a shared machine): the one-thread time is used and named
    slowed = _metrics(ms_per_step_lstm_T1024_threadsall=260.0, ms_per_step_lstm_T1024_threadsall_unfused=260.0)
    row = verdicts(slowed).loc[7]
    assert "LSTM 190," in row.numbers and "all threads were slower than one for the LSTM" in row.numbers
    assert "all threads were slower" not in verdicts(_metrics()).numbers[7]


def test_an_edge_note_does_not_restate_the_margin_as_its_own_reason():
    # margin == repeat ratio (the post18 verdict 10): the note gives the repeat as a moved timing, not a comparison
    m = _metrics(timing_repeat_ratio=1.29, ms_per_step_cnn_T1024_threads1=45 / 1.256)
    verdict = verdicts(m).verdict[10]
    assert "on the edge of the 1.29x timing margin (one model's step, timed twice in this run, moved by 1.29x" in verdict
    assert "closer than" not in verdict


def test_claim_10_names_what_the_memory_cheapest_model_fails():
    verdict = verdicts(_metrics()).verdict[10]
    assert "the CNN keeps less memory (30 MB vs 41)" in verdict and "reaches only 0.25 on the pair task at k=48" in verdict
    solved = verdicts(_metrics(**_sd("cnn_acc_k48", 0.95))).verdict[10]
    assert "CNN keeps less memory" in solved and "reaches only" not in solved
    assert "the amount of data is not varied" in verdicts(_metrics()).numbers[10]


def test_claim_5_counts_the_pretraining_and_names_its_source():
    row = verdicts(_metrics(**_sd("pretrained_steps", 40, 5))).loc[5]
    assert "the whole pretrained route took 250 ± 10" in row.numbers and "multiples of 64" in row.numbers
    assert "not from other data" in row.verdict


def test_claim_9_needs_each_model_ahead_somewhere():
    assert verdicts(_metrics()).verdict[9].startswith("inconclusive")
    assert "bidirectional LSTM is not tested" in verdicts(_metrics()).verdict[9]


def test_rule_statements_use_the_constants_the_rules_apply():
    assert f"{V.TIMING_MARGIN}x" in rule_statement(4) and f"{V.TIMING_MARGIN}x" in rule_statement(7)
    assert f"{V.FITS}" in rule_statement(8)
    assert f"{V.SOLVED}" in rule_statement(5)
    assert f"{V.EXACT:.0e}" in rule_statement(1) and f"{V.SOLVED}" in rule_statement(1)
    for claim in (1, 2, 3, 4, 6, 7, 8, 9, 10):
        assert f"Claim {claim}" in rule_statement(claim)
    with pytest.raises(KeyError, match="1 to 10"):
        rule_statement(11)
    assert "`crossover_pool`" in V.crossover_statement()


def _hits(right: int, n: int = 2000, offset: int = 0) -> torch.Tensor:
    """(n,) bool: `right` clips right, starting at clip `offset` (wrapping round)."""
    return torch.roll(torch.arange(n) < right, offset)


def test_cnn_free_sentence_never_ranks_the_architectures():
    from course_utils.verdicts import cnn_free_sentence
    text = cnn_free_sentence({"CNN-LSTM": _hits(1284), "frame pooling": _hits(1410)}, "pixel LSTM", _hits(600))
    assert "CNN-LSTM 0.642 (0.342 higher, beyond 2 paired standard errors" in text
    assert "one seed" in text and "not the architectures" in text and "same 2,000 test clips" in text
    # paired: the same clips right in both models leave a 0.010 gap with a tiny error; disjoint clips a large one
    nested = cnn_free_sentence({"CNN-LSTM": _hits(1200)}, "pixel LSTM", _hits(1220))
    assert "(0.010 lower, beyond 2 paired standard errors (0.004))" in nested
    shuffled = cnn_free_sentence({"CNN-LSTM": _hits(1200)}, "pixel LSTM", _hits(1220, offset=1000))
    assert "(0.010 lower, within 2 paired standard errors" in shuffled
    # the gap is taken between the 3-digit numbers it prints: 0.705 - 0.652, not 0.7049... - 0.6524...
    assert "frame pooling 0.705 (0.053 higher" in cnn_free_sentence({"frame pooling": _hits(14098, 20000)},
                                                                    "pixel LSTM", _hits(13048, 20000))
    with pytest.raises(ValueError, match="at least one model"):
        cnn_free_sentence({}, "pixel LSTM", _hits(5, 10))
    with pytest.raises(ValueError, match="same test clips"):
        cnn_free_sentence({"CNN-LSTM": _hits(5, 10)}, "pixel LSTM", _hits(5, 12))


def test_claim_10_names_every_model_that_keeps_less_memory_and_what_it_fails():
    # the CNN-LSTM at 100 MB: the CNN (30), the GRU (80) and the TCN (64) keep less
    verdict = verdicts(_metrics(saved_mb_cnn_lstm_T1024=100.0)).verdict[10]
    assert verdict.startswith("holds only against the LSTM and the self-attention (Transformer)")
    assert "the CNN keeps less memory (30 MB vs 100) and reaches only 0.25 on the pair task at k=48" in verdict
    assert "the GRU keeps less memory (80 MB vs 100) and solves the pair task at k=48 and the order task too" in verdict
    assert "the dilated CNN (TCN) keeps less memory (64 MB vs 100) and solves the pair task at k=48 too" in verdict
    # a memory-cheaper model that fails the order task is named with that failure
    failing = verdicts(_metrics(saved_mb_cnn_lstm_T1024=100.0, **_sd("window_acc_gru", 0.6, 0.01))).verdict[10]
    assert "the GRU keeps less memory (80 MB vs 100) and reaches only 0.60 on the order task" in failing
    # never "the LSTM and the GRU" when the GRU is the one that keeps less
    assert "against the LSTM and the GRU" not in verdict
    # no model keeps less: the claim holds (only while the order survives the pooling)
    assert verdicts(_metrics(saved_mb_cnn_T1024=100.0)).verdict[10] == (
        "holds only when the task's order survives the pooling (the CNN-LSTM fell below the LSTM from pool 32 on)"
            " (the same reading without the fused LSTM kernel, with its own numbers)")


# ---------------------------------------------------------------- lesson 03: sentences rendered from the cost section

def test_recurrent_multiply_adds_reads_the_weight_matrices():
    from course_utils.sequence import make_model, recurrent_multiply_adds
    assert recurrent_multiply_adds(make_model("lstm", 1, 10)) == 4 * 64 * (64 + 1)
    assert recurrent_multiply_adds(make_model("gru", 1, 10)) == 3 * 72 * (72 + 1)
    assert recurrent_multiply_adds(make_model("cnn", 1, 10)) == 0


LSTM_MS = {64: 5.0, 256: 20.0, 1024: 106.0}


@pytest.mark.parametrize("gru_ms,expected", [
    ({64: 9.0, 256: 36.0, 1024: 180.0}, "slower than its arithmetic predicts by more than the timing margin at every T"),
    ({64: 3.0, 256: 12.0, 1024: 60.0}, "faster than its arithmetic predicts by more than the timing margin at every T"),
    ({64: 4.8, 256: 19.0, 1024: 100.0}, "the time ratio matches the arithmetic within the timing margin (1.25x) at every T"),
    ({64: 12.0, 256: 50.0, 1024: 100.0}, "the ratio depends on the length: slower than its arithmetic predicts at "
                                         "T=64, 256; within the timing margin of its arithmetic at T=1024"),
])
def test_gru_speed_sentence_names_no_unmeasured_cause(gru_ms, expected):
    text = V.gru_speed_sentence(gru_ms, LSTM_MS, 15_768, 16_640, 1.25, 1.5, 2)
    assert expected in text and "15,768 multiply-adds per step against the LSTM's 16,640 (0.95x" in text
    assert "wider" not in text and "kernels" not in text and "slower than on one" not in text
    assert f"{gru_ms[64] / 5.0:.2f}x at T=64" in text


def test_gru_speed_sentence_reports_a_slowdown_on_more_threads():
    slow = {64: 9.0, 256: 36.0, 1024: 183.0}
    assert "On 2 threads the GRU's step was slower than on one (0.78x, beyond the timing margin)" in V.gru_speed_sentence(
        slow, LSTM_MS, 15_768, 16_640, 1.125, 0.78, 2)
    assert "slower than on one" not in V.gru_speed_sentence(slow, LSTM_MS, 15_768, 16_640, 1.125, 0.78, 1)
    with pytest.raises(ValueError):
        V.gru_speed_sentence({64: 0.0}, {64: 1.0}, 1, 1, 1.2, 1.0, 2)
    with pytest.raises(ValueError, match="same lengths"):
        V.gru_speed_sentence({64: 1.0}, {128: 1.0}, 1, 1, 1.2, 1.0, 2)


SPEEDUP = {"CNN": 1.98, "TCN": 1.63, "attention": 1.73, "LSTM": 1.53, "GRU": 0.78, "CNN-LSTM": 1.64}


def test_thread_prediction_sentence_sorts_each_sequential_model():
    text = V.thread_prediction_sentence(SPEEDUP, ["LSTM", "GRU", "CNN-LSTM"], ["CNN", "TCN", "attention"], 1.125, 2)
    assert "the lowest speed-up of a fully parallel model was TCN's (1.63x)" in text
    assert "two speed-ups differ only beyond 1.27x (the timing margin, 1.12x, squared)" in text
    assert "as predicted" not in text
    # 1.64 against 1.63 is a tie, not a refutation: a speed-up must exceed the lowest by the margin too
    assert "against the prediction" not in text
    assert "Within that of it, above or below, so these timings cannot tell: LSTM 1.53x, CNN-LSTM 1.64x." in text
    above = V.thread_prediction_sentence({**SPEEDUP, "CNN-LSTM": 2.1}, ["CNN-LSTM"], ["TCN"], 1.125, 2)
    assert "Above it by more than that, against the prediction: CNN-LSTM 2.10x." in above
    # 0.78 x 1.125 < 1: a speed-up is one ratio of two timings, so a slowdown beyond the margin itself is
    # reported apart, never as support
    assert "Slower with 2 threads than with one by more than the timing margin (1.12x): GRU 0.78x." in text
    assert "not counted as support" in text
    near_one = V.thread_prediction_sentence({**SPEEDUP, "GRU": 0.92}, ["GRU"], ["TCN"], 1.125, 2)  # 0.92 x 1.125 > 1
    assert "as predicted: GRU 0.92x." in near_one and "read as no gain" in near_one and "Slower" not in near_one
    assert "within 1.12x of it is read as no gain" in near_one
    below_margin = V.thread_prediction_sentence({**SPEEDUP, "GRU": 0.82}, ["GRU"], ["TCN"], 1.125, 2)  # 0.82 x 1.125 < 1
    assert "Slower with 2 threads" in below_margin and "as predicted" not in below_margin
    shown_as_one = V.thread_prediction_sentence({**SPEEDUP, "GRU": 0.998}, ["GRU"], ["TCN"], 1.125, 2)
    assert "as predicted: GRU 1.00x." in shown_as_one and "below 1x" not in shown_as_one  # as printed, not below 1
    gain = V.thread_prediction_sentence({**SPEEDUP, "GRU": 1.1}, ["GRU"], ["TCN"], 1.125, 2)
    assert "as predicted: GRU 1.10x." in gain and "no gain" not in gain
    # 1.63 / 1.37 = 1.19: beyond the margin 1.125 itself, within its square 1.27
    assert "cannot tell: LSTM 1.37x" in V.thread_prediction_sentence({**SPEEDUP, "LSTM": 1.37}, ["LSTM"], ["TCN"], 1.125, 2)
    only_agree = V.thread_prediction_sentence({**SPEEDUP, "GRU": 1.0}, ["GRU"], ["CNN", "TCN"], 1.125, 2)
    assert "as predicted: GRU" in only_agree and "against the prediction" not in only_agree and "cannot tell" not in only_agree
    assert "cannot test" in V.thread_prediction_sentence(SPEEDUP, ["GRU"], ["CNN"], 1.125, 1)
    with pytest.raises(ValueError):
        V.thread_prediction_sentence(SPEEDUP, [], ["CNN"], 1.1, 2)


def test_pool_caveat_sentence_never_calls_a_pool_with_a_stuck_seed_safe():
    stuck = V.pool_caveat_sentence(4, [0.52, 1.0, 1.0, 1.0, 1.0], 32, 0.6)
    assert "pool 4, the pool timed here, it reached 0.90 ± 0.21 over 5 seeds" in stuck
    assert "but 1 of 5 seeds stayed near chance (0.52)" in stuck and "from pool 32 on it lost the order" in stuck
    assert "safe even below" in stuck
    clean = V.pool_caveat_sentence(4, [1.0, 1.0, 0.99], 32, 0.6)
    assert "every seed above 0.6; from pool 32 on it lost the order." in clean
    assert "no pool tried lost the order" in V.pool_caveat_sentence(4, [1.0, 1.0], 0, 0.6)
    assert "that pool already loses the order (the crossover is pool 4)" in V.pool_caveat_sentence(4, [0.5, 0.5], 4, 0.6)
    assert "±" not in V.pool_caveat_sentence(4, [1.0], 0, 0.6)
    missing = V.pool_caveat_sentence(4, [], 32, 0.6)
    assert "did not run pool 4" in missing and "does not show how safe it is; from pool 32 on" in missing


def test_claim_2_and_8_say_what_their_experiments_do_not_test():
    two = verdicts(_metrics()).verdict[2]
    assert two.startswith("inconclusive: untrained, the LSTM's gradient 48 steps back is 10^-1.0 of the last step's with "
                          "chrono init (gate biases set for long memory spans) and 10^-5.0 with PyTorch's default init, "
                          "and the plain RNN's (default init) 10^-9.0; trained from the default init the LSTM reaches "
                          "only 0.25 at k=48 within this budget, against 1.00 with chrono init")
    assert "its best last validation accuracy was 0.30: within these three rates the initialisation decided" in two
    assert "whether it needs only more steps is not tested" in two
    other_rate = verdicts(_metrics(lstm_default_rate_best_k48=0.95)).verdict[2]
    assert "another rate let it learn, so the rate, not the initialisation alone, decided it" in other_rate
    assert "no run compares the gates with the RNN in training" in two
    neither = verdicts(_metrics(**_sd("lstm_acc_k48", 0.3))).verdict[2]
    assert "neither LSTM solves k=48" in neither and "initialised" not in neither
    assert "holds" not in two + neither  # the plain RNN is never trained: nothing here can make claim 2 hold
    assert "trained on the pair task at k=48: LSTM default init 0.25" in verdicts(_metrics()).numbers[2]
    assert str(V.SOLVED) in rule_statement(2) and "orthogonal" in rule_statement(2)
    eight = verdicts(_metrics(**_sd("rows_train_acc_cnn", 0.8, 0.01))).verdict[8]
    assert V.FITS_SOURCE in eight and "this experiment does not test that part of the claim" in eight
    assert V.FITS_SOURCE in rule_statement(8)


# ---------------------------------------------------------------- lesson 04: the window test and the timing sentence

def test_window_test_sentence_draws_no_conclusion_without_a_trained_3d_cnn():
    failed = V.window_test_sentence([1, 4, 8], [False, False, False], 9, [24, 12, 4])
    assert "failed to train even at gaps 1 and 4, where its 9-frame window can hold" in failed and "draws no conclusion about the window" in failed
    trained = V.window_test_sentence([1, 4, 8], [True, False, False], 9, [24, 12, 4])
    assert trained.startswith("The 3D CNN trained (its loss left chance) at gap 1, where its window can hold both moves in some clips") and "one run from one seed" in trained
    # clips at different gaps differ beyond the spacing: the sentence names it and never calls the sweep a test
    assert "(allowed timings of the two moves: 24 at gap 1, 12 at gap 4, 4 at gap 8)" in trained
    assert "does not isolate the window" in trained and "can be read as a test" not in trained
    assert "cannot test its window" in V.window_test_sentence([8, 12], [True, True], 9, [4, 2])
    with pytest.raises(ValueError):
        V.window_test_sentence([1, 4], [True], 9, [24, 12])
    with pytest.raises(ValueError, match="timing count"):
        V.window_test_sentence([1, 4], [True, True], 9, [24])


def test_claim_4_names_which_half_fails_without_pooling():
    both = verdicts(_metrics()).verdict[4]
    assert ("without pooling the CNN-LSTM is not clearly faster than the LSTM (1.06x, against the 1.25x margin) but "
            "1.08x smaller (at T=1024 only)") in both
    slower = verdicts(_metrics(ms_per_step_cnn_lstm_nopool_T1024_threads1=250.0)).verdict[4]
    assert "without pooling the CNN-LSTM is not faster than the LSTM (1.32x its time, one timing each)" in slower
    larger = verdicts(_metrics(saved_mb_cnn_lstm_nopool_T1024=140, saved_mb_cnn_lstm_nopool_T1024_unfused=140)).verdict[4]
    assert larger.endswith("without pooling the CNN-LSTM is not clearly faster than the LSTM (1.06x, against the "
                           "1.25x margin) and not smaller "
                           "(at T=1024 only) (the same reading without the fused LSTM kernel, with its own numbers)")
    faster = verdicts(_metrics(ms_per_step_cnn_lstm_nopool_T1024_threads1=95.0, saved_mb_cnn_lstm_nopool_T1024=140)).verdict[4]
    assert ("without pooling the CNN-LSTM is 2.00x faster than the LSTM but not smaller (at T=1024 only); the "
            "CNN-LSTM's LSTM is narrower (48 units against the LSTM's 64), so a saving without pooling is not the "
            "convolutions' alone") in faster
    assert "narrower" in verdicts(_metrics(ms_per_step_cnn_lstm_nopool_T1024_threads1=95.0,
                                           saved_mb_cnn_lstm_nopool_T1024=1.0)).verdict[4]


def test_lesson04_quotes_lesson01_as_it_is():
    """Lesson 04 compares its garment training with lesson 01's cpu settings and CNN, written out in its text:
    they must be lesson 01's (its settings cell and `make_cnn`), or the comparison goes stale silently."""
    import ast
    import json
    from pathlib import Path

    from torch import nn

    from course_utils.cnn import make_cnn

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    lesson01 = json.loads((notebooks / "01_cnn_image_classification.ipynb").read_text())
    settings_cell = next("".join(c["source"]) for c in lesson01["cells"]
                         if c["cell_type"] == "code" and "SETTINGS = settings_for(" in "".join(c["source"]))
    call = next(node for node in ast.walk(ast.parse(settings_cell))
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "settings_for")
    cpu = ast.literal_eval(call.args[1])["cpu"]
    lesson04 = json.loads((notebooks / "04_cnn_lstm_video.ipynb").read_text())
    text = "\n".join("".join(c["source"]) for c in lesson04["cells"])
    assert f"LESSON01_CPU_IMAGES, LESSON01_CPU_EPOCHS = {cpu['train_size']:_}, {cpu['epochs']}" in text
    channels = [m.out_channels for m in make_cnn() if isinstance(m, nn.Conv2d)]
    assert "with {}, {} and {} channels, batch norm and dropout".format(*channels) in text


def test_claim_7_reads_growth_exponents_with_their_timing_noise():
    assert V.exponent_margin([64, 256, 1024], 1.29) == pytest.approx(math.log(1.29) / math.log(4))
    with pytest.raises(ValueError, match="ratio >= 1"):
        V.exponent_margin([64, 256, 1024], 0.9)
    margin = V.exponent_margin([64, 256, 1024])  # log 1.25 / log 4 = 0.16: one ratio of two timings
    assert abs(margin - 0.161) < 0.001
    close = verdicts(_metrics(growth_ms_attention=1.8, growth_ms_lstm=1.58)).verdict[7]  # 0.22 < 2 x 0.16
    assert "cannot be told" in close and "grows faster with T (" not in close and "within the 0.32" in close
    far = verdicts(_metrics(growth_ms_attention=2.3, growth_ms_lstm=1.0)).verdict[7]
    assert "its one-thread time grows faster with T (exponent 1.30 higher, beyond the 0.32" in far
    assert "growth exponent of the one-thread time" in verdicts(_metrics()).numbers[7]


def test_gru_slowdown_on_threads_needs_the_margin():
    same = V.gru_speed_sentence({64: 2.0}, {64: 1.0}, 2, 1, 1.25, 0.99, 2)
    assert "slower than on one" not in same
    slower = V.gru_speed_sentence({64: 2.0}, {64: 1.0}, 2, 1, 1.25, 0.7, 2)
    assert "slower than on one (0.70x, beyond the timing margin)" in slower


# oneDNN on and off (claims 4, 7, 10), and the post12 review's findings on claims 2, 6 and the parameter counts

def _fused_memory(**changes):
    """A run in which oneDNN's fused LSTM kernel keeps far more than PyTorch's separate operations:
    with it off, the CNN-LSTM keeps the least memory of all (the review's measurement at T=1024)."""
    return _metrics(**{"saved_mb_lstm_T1024_unfused": 59, "saved_mb_cnn_lstm_T1024_unfused": 27,
                       "saved_mb_cnn_lstm_nopool_T1024_unfused": 69}, **changes)


def test_a_cost_verdict_that_changes_with_onednn_is_not_credited_to_the_architecture():
    table = verdicts(_fused_memory())
    ten = table.verdict[10]
    assert ten.startswith("inconclusive as a claim about the architectures: it depends on PyTorch's fused oneDNN "
                          "LSTM kernel")
    on, off = ten.split("With it: ")[1].split(". Without it: ")
    assert on.startswith("holds only against") and "the CNN keeps less memory (30 MB vs 41)" in on
    assert off.startswith("holds only when the task's order survives the pooling") and "CNN keeps less" not in off
    assert "the models with an LSTM timed again without its fused kernel" in table.numbers[10]
    assert "CNN-LSTM 27 / 45" in table.numbers[10]


def test_a_cost_verdict_that_onednn_does_not_change_says_so():
    table = verdicts(_metrics())
    for claim in (4, 7, 10):
        assert table.verdict[claim].endswith("(the same reading without the fused LSTM kernel, with its own numbers)"), table.verdict[claim]
        assert "the models with an LSTM timed again without its fused kernel" in table.numbers[claim]
        assert "without that fused kernel (the other layers unchanged)" in rule_statement(claim)
    for claim in (1, 2, 3, 5, 6, 8, 9):
        assert "fused LSTM kernel" not in table.verdict[claim]


def test_onednn_that_changes_only_the_numbers_changes_no_verdict():
    # oneDNN off: every recurrent model 10% slower and 20% leaner; the same branches
    changes = {f"{key}_unfused": value * factor for key, value in _metrics().items()
               for prefix, factor in (("ms_per_step_", 1.1), ("saved_mb_", 0.8))
               if key.startswith(prefix) and "_unfused" not in key and ("lstm" in key or "gru" in key)}
    table = verdicts(_metrics(**changes))
    for claim in (4, 7, 10):
        assert table.verdict[claim].endswith("(the same reading without the fused LSTM kernel, with its own numbers)")
    assert "keeps less memory (30 MB vs 41)" in table.verdict[10] and "CNN-LSTM 33 / 50" in table.numbers[10]


def test_cost_verdicts_need_the_costs_measured_without_the_fused_kernel():
    recorded_fused_only = {k: v for k, v in _metrics().items() if not k.endswith(V.UNFUSED)}
    with pytest.raises(KeyError, match="measured without the fused LSTM kernel"):
        verdicts(recorded_fused_only)


def test_with_unfused_lstm_replaces_only_the_measured_twins_and_keeps_the_larger_repeat_ratio():
    m = V.with_unfused_lstm({"saved_mb_lstm_T64": 9.0, "saved_mb_lstm_T64_unfused": 4.0, "seeds": 3,
                             "timing_repeat_ratio": 1.1, "timing_repeat_ratio_unfused": 1.4})
    assert m == {"saved_mb_lstm_T64": 4.0, "seeds": 3, "timing_repeat_ratio": 1.4}
    assert V.with_unfused_lstm({"timing_repeat_ratio": 1.3, "timing_repeat_ratio_unfused": 1.1})["timing_repeat_ratio"] == 1.3


def test_a_verdict_whose_conclusion_survives_the_kernel_states_it_once_with_both_details():
    # without the fused kernel the CNN-LSTM without pooling is no longer 1.25x faster: only claim 4's details change
    table = verdicts(_metrics(ms_per_step_cnn_lstm_nopool_T1024_threads1=120, ms_per_step_lstm_T1024_threads1_unfused=140,
                              saved_mb_cnn_lstm_nopool_T1024=140, saved_mb_cnn_lstm_nopool_T1024_unfused=140))
    four = table.verdict[4]
    assert four.startswith("holds only when the pooling shortens the sequence, with PyTorch's fused oneDNN LSTM "
                           "kernel and without it; the details differ: with it: without pooling")
    assert ". Without it: without pooling the CNN-LSTM is not clearly faster" in four and "inconclusive" not in four


def test_claim_2_says_exploding_gradients_are_not_tested():
    for changes in ({}, _sd("lstm_default_acc_k48", 0.99)):
        two = verdicts(_metrics(**changes)).verdict[2]
        assert two.startswith("inconclusive") and "exploding gradients are not tested" in two
    assert "Exploding gradients are not tested" in rule_statement(2)


def test_claim_6_names_both_conditions_of_the_lost_order():
    six = verdicts(_metrics()).verdict[6]
    assert "fall into one pooling window and lie farther apart than its convolutions' field" in six
    assert "events 16 steps apart with a field of 9 steps, from pool 32 on" in six
    assert "events 4 steps apart kept 0.99 at pool 64" in six


def test_parameter_counts_belong_to_the_models_they_stand_beside():
    table = verdicts(_metrics())
    assert "parameters of these timed models LSTM 17,802, CNN-LSTM 21,578" in table.numbers[4]
    assert "19,984" not in table.numbers[4]
    nine = table.numbers[9]
    assert "parameters of the pair-task models 18,880 vs 19,984" in nine
    assert "the timed models of 16,930 vs 17,802 parameters" in nine and "the LSTM without its fused kernel 190" in nine


def test_gru_speed_sentence_names_the_lstm_kernel_and_never_a_cause_it_did_not_measure():
    slow = {64: 2.0, 128: 4.0}
    lstm = {64: 1.0, 128: 2.0}
    on = V.gru_speed_sentence(slow, lstm, 10, 10, 1.25, 1.0, 2)
    off = V.gru_speed_sentence(slow, lstm, 10, 10, 1.25, 1.0, 2, fused=False)
    assert on.startswith("- On one thread, the LSTM with its fused oneDNN kernel (the default), the GRU's")
    assert "the next line compares it with the LSTM run without its fused kernel" in on
    assert off.startswith("- On one thread, the LSTM without its fused kernel, the GRU's")
    assert "so that kernel does not explain all of it" in off


@pytest.mark.parametrize("ratio, reading", [(1.26, "above"), (1.25, "within"), (1.0, "within"), (0.8, "within"),
                                            (0.79, "below"), (3.0, "above")])
def test_ratio_reading_is_the_one_timing_rule(ratio, reading):
    assert V.ratio_reading(ratio) == reading
    assert V.ratio_reading(ratio, margin=10.0) == "within"


@pytest.mark.parametrize("ratio, margin", [(0.0, 1.25), (float("nan"), 1.25), (float("inf"), 1.25), (1.0, 0.9)])
def test_ratio_reading_refuses_what_is_not_a_ratio(ratio, margin):
    with pytest.raises(ValueError, match="positive, finite ratio"):
        V.ratio_reading(ratio, margin)


def test_cnn_share_sentence_reads_every_round_against_half_the_step():
    most = V.cnn_share_sentence([40.0, 42.0, 41.0], [50.0, 52.0, 51.0])  # 80% of the step: 1.6x half, beyond 1.25x
    assert "took 40.0 to 42.0 ms, the whole CNN-LSTM step 50.0 to 52.0 ms" in most and "80% to 81%" in most
    assert "not the LSTM, took most of a CNN-LSTM step in this run" in most
    least = V.cnn_share_sentence([10.0, 11.0, 10.0], [50.0, 52.0, 51.0])
    assert "the LSTM and the head took most of a CNN-LSTM step" in least
    # one round at 60% (1.2x half: within the margin) leaves it open, however far the others lie
    open_ = V.cnn_share_sentence([40.0, 30.0, 41.0], [50.0, 50.0, 51.0])
    assert "cannot say whether the CNN takes most of the step" in open_ and "took most" not in open_
    with pytest.raises(ValueError, match="one CNN timing per step timing"):
        V.cnn_share_sentence([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        V.cnn_share_sentence([0.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        V.cnn_share_sentence([float("nan")], [1.0])


@pytest.mark.parametrize("ratio, repeat, edge", [(1.2497, 1.05, True), (1.31, 1.05, True), (1.32, 1.05, False),
                                                 (1.2, 1.0, False), (1.24, 1.0, True), (0.8001, 1.0, True),
                                                 (0.5, 1.5, False)])
def test_on_the_edge_measures_the_distance_to_the_margin_by_the_repeat_spread(ratio, repeat, edge):
    assert V.on_the_edge(ratio, 1.25, repeat) is edge


def test_on_the_edge_rejects_impossible_inputs():
    with pytest.raises(ValueError):
        V.on_the_edge(0.0, 1.25, 1.0)
    with pytest.raises(ValueError):
        V.on_the_edge(1.1, 1.25, 0.9)


def test_claim_10_names_a_rival_on_the_edge_of_the_timing_margin():
    # the post16 review's run without the fused kernel: the CNN 48.55 ms against the CNN-LSTM's 60.67 (1.2497x),
    # with two timings of one model 1.05x apart: the CNN is a rival that cannot be ruled faster or not
    m = _metrics(timing_repeat_ratio=1.05, saved_mb_cnn_T1024=120, ms_per_step_cnn_T1024_threads1=48.55,
                 ms_per_step_cnn_lstm_T1024_threads1=60.67)
    verdict = V._claim_10(m)[1]
    assert "the CNN is 1.250x faster" in verdict and "on the edge of the 1.25x timing margin" in verdict
    assert "holds only against the LSTM" in verdict and "against the CNN" not in verdict
    # a CNN 1.2x faster with timings that repeat to 1.0x is outside the edge: more memory, so beaten
    clear = V._claim_10(_metrics(timing_repeat_ratio=1.0, saved_mb_cnn_T1024=120, ms_per_step_cnn_T1024_threads1=50.0,
                                 ms_per_step_cnn_lstm_T1024_threads1=60.0))[1]
    assert "on the edge" not in clear



def test_the_runs_repeat_ratio_counts_section_4s_repeat_too():
    # one repeat ratio for every timing verdict: section 5's repeats and section 4's repeat of the unfused LSTM
    assert V.repeat_ratio({"timing_repeat_ratio": 1.1}) == 1.1
    assert V.repeat_ratio({"timing_repeat_ratio": 1.1, "timing_repeat_ratio_unfused": 1.4}) == 1.4
    assert timing_margin({"timing_repeat_ratio": 1.1, "timing_repeat_ratio_unfused": 1.4}) == 1.4
    assert "moved by 1.40x" in verdicts(_metrics(timing_repeat_ratio_unfused=1.4, timing_repeat_ratio=1.1,
                                                 ms_per_step_cnn_T1024_threads1=45 / 1.3)).verdict[10]
