"""Lessons 03 and 04: the rules and sentences added for the review of lessons 03 and 04, on synthetic numbers."""

import pytest

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
    assert grows.startswith("holds only against convolutions") and "its time grows faster with T" in grows
    flat = verdicts(_metrics(**slow_attention, growth_ms_attention=0.9)).verdict[7]
    assert "does not grow faster with T than the LSTM's" in flat


def test_timing_verdicts_respect_the_repeat_ratio():
    # the LSTM is 190 / 45 = 4.2x slower than the CNN-LSTM: beyond a repeat of 1.1, within a repeat of 5
    assert verdicts(_metrics()).verdict[4].startswith("holds only when the pooling shortens")
    assert verdicts(_metrics(timing_repeat_ratio=5.0)).verdict[4].startswith("holds only for memory")
    assert verdicts(_metrics(timing_repeat_ratio=5.0)).verdict[7] == "does not hold"
    assert "two timings of the same model differed by 5.00x" in verdicts(_metrics(timing_repeat_ratio=5.0)).numbers[4]


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
    for claim in (4, 5, 7, 8, 9, 10):
        assert f"Claim {claim}" in rule_statement(claim) or claim == 5
    with pytest.raises(KeyError):
        rule_statement(1)
    assert "`crossover_pool`" in V.crossover_statement()


def test_per_frame_cnn_sentence_covers_every_branch():
    from course_utils.verdicts import per_frame_cnn_sentence
    dear = per_frame_cnn_sentence(pool_ms=89.0, cnn_lstm_ms=90.0, pixel_ms=27.7, repeat_ratio=1.1)
    assert "3.2x the pixel LSTM's whole step" in dear and "not the LSTM, is what makes" in dear
    both = per_frame_cnn_sentence(pool_ms=60.0, cnn_lstm_ms=120.0, pixel_ms=20.0, repeat_ratio=1.1)
    assert "adds a measurable share" in both and "what makes" not in both
    close = per_frame_cnn_sentence(pool_ms=30.0, cnn_lstm_ms=90.0, pixel_ms=28.0, repeat_ratio=1.2)
    assert "not beyond the pixel LSTM's whole step" in close and "what makes" not in close
    with pytest.raises(ValueError):
        per_frame_cnn_sentence(0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError):
        per_frame_cnn_sentence(1.0, 1.0, 1.0, 0.9)


def test_cnn_free_sentence_never_ranks_the_architectures():
    from course_utils.verdicts import cnn_free_sentence
    text = cnn_free_sentence({"CNN-LSTM": 0.642, "frame pooling": 0.705}, "pixel LSTM", 0.30, 2000)
    assert "CNN-LSTM 0.642 (0.342 higher, beyond 2 standard errors" in text
    assert "one seed" in text and "not the architectures" in text
    close = cnn_free_sentence({"CNN-LSTM": 0.60}, "pixel LSTM", 0.61, 2000)
    assert "(0.010 lower, within 2 standard errors" in close
    with pytest.raises(ValueError):
        cnn_free_sentence({}, "pixel LSTM", 0.5, 10)


def test_timing_sentences_do_not_read_inconsistent_timings():
    from course_utils.verdicts import lstm_share_sentence, per_frame_cnn_sentence
    noisy = lstm_share_sentence(303.9, 131.6, repeat_ratio=1.9)
    assert "noisier than that repeat shows" in noisy and "too small" not in noisy
    bound = per_frame_cnn_sentence(303.9, 131.6, 37.6, repeat_ratio=1.9)
    assert "cannot say where a CNN-LSTM's step goes" in bound and "what makes" not in bound
