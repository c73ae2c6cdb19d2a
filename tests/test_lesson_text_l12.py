"""Lesson 02's rendered sentences, each branch on made-up numbers, and the figure helpers it changed."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from course_utils.text import plot_activations, plot_text_heatmap
from course_utils.verdicts import (kernel_sentence, paired_rule, paired_verdict, stack_decay_sentence,
                                   unfused_switch_sentence, why_lstm_answer)


# stack_decay_sentence ---------------------------------------------------------------------------------------

def test_stack_decay_matches_the_slower_layer():
    text = stack_decay_sentence(0.581, [0.550, 0.577])
    assert "layer 1 0.550, layer 2 0.577" in text and "the whole stack, on the same inputs, by 0.581" in text
    assert "within 5% of the slower-decaying layer's (layer 2)" in text and "not within" not in text


def test_stack_decay_that_the_layers_do_not_give_claims_no_cause():
    text = stack_decay_sentence(0.70, [0.40, 0.55])
    assert "is not within 5% of the slower-decaying layer's (layer 2, 0.550)" in text
    assert "does not say what else sets it" in text and "as expected" not in text


def test_stack_decay_picks_the_slower_layer_whichever_it_is():
    assert "(layer 1)" in stack_decay_sentence(0.60, [0.60, 0.30])


@pytest.mark.parametrize("stack,layers", [(0.5, []), (0.0, [0.5]), (0.5, [0.5, -0.1])])
def test_stack_decay_rejects_bad_rates(stack, layers):
    with pytest.raises(ValueError, match="positive rates"):
        stack_decay_sentence(stack, layers)


# kernel_sentence --------------------------------------------------------------------------------------------

FUSED_LSTM = {"LSTM": True, "GRU": False}


def _turns(gru, lstm):
    return {"GRU": list(gru), "LSTM": list(lstm)}


def test_kernel_part_when_the_gru_is_slower_unfused_too():
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([14, 14, 15], [10, 10, 10]), FUSED_LSTM)
    assert text.startswith("Turn by turn, a GRU pass takes 2.00 to 2.20 times an LSTM pass with oneDNN on, "
                           "1.40 to 1.50 times with it off (3 turns each).")
    assert "brings the two passes closer" in text and "compares PyTorch's implementations" in text
    assert "still slower in every turn by more than the timing margin (1.25x)" in text
    assert "the LSTM's pass 10.0 ms on, 10.0 ms off; the GRU's 21.0 ms on, 14.0 ms off" in text
    assert "not the fused node alone" in text and "explains" not in text


def test_kernel_all_when_unfused_the_gru_is_not_always_slower():
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([9, 10, 11], [10, 10, 10]), FUSED_LSTM)
    assert "brings the two passes closer (" in text and "GRU's extra time" not in text
    assert "cannot tell the two unfused passes apart" in text and "no difference left" not in text
    assert "not the fused node alone" in text and "all of it" not in text


def test_kernel_unfused_gru_faster_beyond_the_margin_in_every_turn_is_a_reversal():
    # the post16 review's case: unfused GRU / LSTM 0.73 to 0.74 in every turn is no closed gap
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([7.3, 7.4, 7.3], [10, 10, 10]), FUSED_LSTM)
    assert "reverses the gap" in text and "faster than the LSTM's in every turn" in text
    assert "closes the gap" not in text and "within the timing margin" not in text


def test_kernel_unfused_turns_on_both_sides_of_the_margin_settle_nothing():
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([7.0, 13.0, 7.0], [10, 10, 10]), FUSED_LSTM)
    assert "do not say which unfused pass is faster" in text and "closes the gap" not in text


def test_kernel_unfused_ratios_within_the_margin_are_not_called_slower():
    # the post14 review's run: with oneDNN off, 1.03 to 1.07 (within 1.25x): no difference left to name
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([10.3, 10.7, 10.7], [10, 10, 10]), FUSED_LSTM)
    assert "within the timing margin (1.25x) of the LSTM's in at least one turn" in text
    assert "still slower" not in text and "unfused code" not in text


def test_kernel_overlapping_turns_name_no_cause():
    text = kernel_sentence(_turns([12, 15, 14], [10, 10, 10]), _turns([13, 11, 12], [10, 10, 10]), FUSED_LSTM)
    assert "cannot tell the fused kernel's effect from the timing noise" in text and "explains" not in text


def test_kernel_without_the_fused_difference_names_no_cause():
    for fused in ({"LSTM": True, "GRU": True}, {"LSTM": False, "GRU": False}, {"LSTM": False, "GRU": True}):
        text = kernel_sentence(_turns([20, 21], [10, 10]), _turns([10, 10], [10, 10]), fused)
        assert "names no kernel cause" in text and "explains" not in text
    assert "the LSTM runs as one fused node and the GRU does," in kernel_sentence(
        _turns([20], [10]), _turns([10], [10]), {"LSTM": True, "GRU": True})


def test_kernel_gru_not_slower_in_every_turn_names_no_cause():
    text = kernel_sentence(_turns([9, 21], [10, 10]), _turns([10, 10], [10, 10]), FUSED_LSTM)
    assert "not slower than the LSTM in every turn" in text and "explains" not in text


def test_kernel_race_elsewhere_is_said_and_not_explained():
    text = kernel_sentence(_turns([20, 21], [10, 10]), _turns([14, 14], [10, 10]), FUSED_LSTM, race_on_cpu=False)
    assert "did not run on the CPU" in text and "brings the two passes closer" in text
    assert "compares PyTorch's implementations" not in text
    assert "equal-time race" not in text


def test_kernel_rejects_unequal_turns():
    with pytest.raises(ValueError, match="same positive number of turns"):
        kernel_sentence(_turns([20, 21], [10, 10]), _turns([12], [10]), FUSED_LSTM)
    with pytest.raises(ValueError, match="same positive number of turns"):
        kernel_sentence(_turns([], []), _turns([], []), FUSED_LSTM)


def test_unfused_switch_reports_a_change_only_beyond_the_spread():
    assert "did not change beyond its turn-to-turn spread (on: 41.0 to 44.0 ms, off: 42.0 to 43.0 ms)" in \
        unfused_switch_sentence("plain RNN", [41, 42.6, 44], [42, 42.1, 43])
    changed = unfused_switch_sentence("plain RNN", [40, 41], [50, 52])
    assert "changed the plain RNN's pass" in changed and "beyond its turn-to-turn spread" in changed
    assert "changed" in unfused_switch_sentence("plain RNN", [50, 52], [40, 41])
    with pytest.raises(ValueError, match="at least one turn"):
        unfused_switch_sentence("plain RNN", [], [1.0])


# why_lstm_answer --------------------------------------------------------------------------------------------

def test_lstm_win_at_equal_time_and_steps():
    text = why_lstm_answer("LSTM", "LSTM", 0, 9)
    assert "at equal time the LSTM ends lower" in text and "at equal steps the LSTM is lower too" in text
    assert "pay for themselves" not in text


@pytest.mark.parametrize("steps", ["plain RNN", "neither"])
def test_lstm_win_at_equal_time_only_may_be_the_steps(steps):
    assert "may come from its extra steps alone" in why_lstm_answer("LSTM", steps, 0, 9)


def test_lstm_win_without_an_equal_steps_comparison():
    assert "no comparison at equal steps" in why_lstm_answer("LSTM", None, 0, 9)


@pytest.mark.parametrize("time,words", [("plain RNN", "the plain RNN ends lower than the LSTM"),
                                        ("neither", "the paired rule finds neither the LSTM nor the plain RNN lower")])
@pytest.mark.parametrize("steps", ["LSTM", "plain RNN", "neither", None])
def test_no_lstm_win_does_not_show_an_advantage(time, words, steps):
    text = why_lstm_answer(time, steps, 0, 9)
    assert words in text and "does not show an advantage of the LSTM per second" in text
    assert "not the same as showing that there is none" in text and "shows no advantage" not in text


@pytest.mark.parametrize("time", ["plain RNN", "neither"])
@pytest.mark.parametrize("steps,words", [
    ("plain RNN", "At equal steps the plain RNN is lower"),
    ("neither", "At equal steps the paired rule finds neither lower"),
    ("LSTM", "At equal steps the LSTM is lower by the paired rule"),
    (None, "This run has no comparison at equal steps")])
def test_no_lstm_win_always_reports_the_equal_steps_verdict(time, steps, words):
    text = why_lstm_answer(time, steps, 0, 9)
    assert words in text
    if steps == "LSTM":
        assert "at equal time the rule does not find that lead" in text
    if steps == "plain RNN":
        assert ("lower too by the paired rule" in text) == (time == "plain RNN")


@pytest.mark.parametrize("steps,words", [("plain RNN", "does not find it lower (the plain RNN is lower)"),
                                         ("neither", "does not find it lower (neither is lower)")])
def test_lstm_win_at_equal_time_names_the_equal_steps_winner(steps, words):
    assert words in why_lstm_answer("LSTM", steps, 0, 9)


@pytest.mark.parametrize("time,steps", [("GRU", None), (None, None), ("LSTM", "GRU")])
def test_why_lstm_answer_rejects_other_names(time, steps):
    with pytest.raises(ValueError, match="expected equal_"):
        why_lstm_answer(time, steps, 0, 9)


# figures ----------------------------------------------------------------------------------------------------

def test_activations_in_zero_one_use_a_sequential_map_and_signed_ones_a_diverging_map():
    gates = plot_activations(torch.rand(5, 3), "hello", title="gates")
    assert gates.axes[0].images[0].get_cmap().name == "viridis" and gates.axes[0].images[0].get_clim() == (0, 1)
    signed = plot_activations(torch.rand(5, 3) * 2 - 1, "hello", title="cells")
    assert signed.axes[0].images[0].get_cmap().name == "coolwarm" and signed.axes[0].images[0].get_clim() == (-1, 1)
    plt.close("all")


def test_text_heatmap_limit_sets_a_shared_scale():
    assert plot_text_heatmap("ab\nc", [0.1, -0.2, 0.3, 0.0]).axes[0].images[0].get_clim() == pytest.approx((-0.3, 0.3))
    assert plot_text_heatmap("ab\nc", [0.1, -0.2, 0.3, 0.0], limit=1.0).axes[0].images[0].get_clim() == (-1.0, 1.0)
    plt.close("all")


# input_gradient_norms(inputs=...) ----------------------------------------------------------------------------

def test_input_gradient_norms_with_given_inputs():
    from course_utils.lstm import input_gradient_norms

    torch.manual_seed(0)
    rnn = torch.nn.RNN(3, 5, batch_first=True).double()
    x = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(1))
    given = input_gradient_norms(rnn, 7, 3, batch=2, inputs=x)
    assert given.shape == (7,) and bool((given > 0).all())
    assert torch.allclose(given, input_gradient_norms(rnn, 7, 3, batch=2, inputs=x.double()))  # cast to the dtype
    assert not torch.allclose(given, input_gradient_norms(rnn, 7, 3, batch=2, seed=5))  # not the random input
    with pytest.raises(ValueError, match=r"expected inputs of shape \(2, 7, 3\)"):
        input_gradient_norms(rnn, 7, 3, batch=2, inputs=torch.randn(2, 6, 3))


# split_sentence ---------------------------------------------------------------------------------------------

from course_utils.text import split_sentence, underflow_sentence  # noqa: E402

_SHREW = "PETRUCHIO:\nCome, Kate.\n\nKATHARINA:\nNo.\n\n"


def test_split_names_the_plays_when_it_finds_the_tempest():
    val = _SHREW + "Master:\nBoatswain!\n\nPROSPERO:\nPeace.\n\n"
    text = split_sentence("PETRUCHIO:\nHere.\n\n", val)
    start = val.find("Master:")
    assert f"its first {start:,} characters" in text and "*The Tempest*" in text
    assert "25% of its 4 speeches" in text  # PETRUCHIO only


def test_split_names_no_play_when_the_tempest_is_in_training_or_absent():
    val = _SHREW + "Master:\nBoatswain!\n\n"
    for train in ("PROSPERO:\nPeace.\n\n", "PETRUCHIO:\nHere.\n\n"):
        text = split_sentence(train, val if "PROSPERO" in train else _SHREW)
        assert "Tempest" not in text and "end of this mode's text" in text


def test_a_verse_line_ending_in_a_colon_is_not_a_speech():
    # the post14 review: "Whereof I know she is not ignorant:" was counted as a speaker
    val = "PETRUCHIO:\nCome, Kate.\nWhereof I know she is not ignorant:\nBe collected:\n\nKATHARINA:\nNo.\n"
    assert "50% of its 2 speeches" in split_sentence("PETRUCHIO:\nHere.\n\n", val)


def test_split_without_speakers_says_so():
    assert "no speaker names to compare" in split_sentence("abc", "just words here")


# underflow_sentence -----------------------------------------------------------------------------------------

def _norms(values):
    return torch.tensor(values, dtype=torch.float64)


def test_underflow_from_a_k_on_and_too_low_before():
    n64 = _norms([1.0, 1e-5, 4.3e-22, 2.4e-22, 1e-22])
    n32 = _norms([1.0, 1e-5, 2.4e-22, 0.0, 0.0])
    text = underflow_sentence("RNN", n32, n64, 1024)
    assert "exactly 0 from k = 3 on" in text and "at k = 2" in text and "already wrong before it reaches 0" in text
    assert "below float32's normal range" in text


def test_underflow_at_some_k_only_says_so():
    text = underflow_sentence("RNN", _norms([1.0, 0.0, 1e-30]), _norms([1.0, 1e-23, 1e-30]), 4)
    assert "from k = 1 on" not in text and "a later norm comes back above 0" in text


def test_underflow_agreeing_before_and_unexplained_error():
    agree = underflow_sentence("RNN", _norms([1.0, 1e-20, 0.0]), _norms([1.0, 1.001e-20, 1e-24]), 4)
    assert "agrees with float64 to 1%" in agree and "already" not in agree
    off = underflow_sentence("RNN", _norms([1.0, 0.5, 0.0]), _norms([1.0, 1.0, 1e-24]), 4)
    assert "for a reason this lesson does not measure" in off and "normal range (" not in off


def test_underflow_at_k_zero_and_none():
    assert "from k = 0 on" in underflow_sentence("RNN", _norms([0.0, 0.0]), _norms([1e-24, 1e-25]), 4)
    none = underflow_sentence("LSTM", _norms([1.0, 0.5]), _norms([1.0, 0.5]), 4)
    assert "no float32 norm of the LSTM reached exactly 0" in none and "+0%" in none


def test_underflow_rejects_bad_shapes():
    with pytest.raises(ValueError):
        underflow_sentence("RNN", _norms([1.0]), _norms([1.0, 2.0]), 4)


def test_activations_name_their_rows_and_colour_bar():
    fig = plot_activations(torch.rand(5, 3), "hello", title="gates", unit_name="cell", value_name="output gate")
    assert fig.axes[0].get_ylabel() == "cell" and fig.axes[1].get_ylabel() == "output gate"
    plt.close(fig)


def test_time_against_work_needs_every_repeat_beyond_the_margin_on_either_side():
    from course_utils.verdicts import TIMING_MARGIN, time_against_work_sentence
    why = "Candidates: batch norm."
    faster = time_against_work_sentence([12.4, 12.8, 13.1], 8.6, why)
    assert "12.8 times as long" in faster and "more than that in every repeat" in faster and faster.endswith(why)
    # one repeat within the margin (8.6 x 1.25 = 10.75): no verdict, and no causes offered
    mixed = time_against_work_sentence([10.0, 12.8, 13.1], 8.6, why)
    assert "cannot tell" in mixed and why not in mixed
    # far below the work ratio (a GPU's launch overhead could do this): not "within the margin"
    slower = time_against_work_sentence([1.1, 1.2, 1.3], 8.6, why)
    assert "less than that in every repeat" in slower and why not in slower and "within" not in slower
    assert "cannot tell" in time_against_work_sentence([8.6 / TIMING_MARGIN], 8.6, why)
    with pytest.raises(ValueError, match="positive"):
        time_against_work_sentence([], 8.6, why)
    with pytest.raises(ValueError, match="positive"):
        time_against_work_sentence([float("nan")], 8.6, why)


def test_time_against_work_with_repeats_on_both_sides_says_none_is_within():
    from course_utils.verdicts import time_against_work_sentence
    straddle = time_against_work_sentence([12.3, 5.5, 18.8], 8.6, "why")  # the committed run of 81555d4
    assert "do not all lie beyond 1.25x of it" in straddle and "(0 of 3 within it)" in straddle


@pytest.mark.parametrize("time", ["LSTM", "plain RNN", "neither"])
@pytest.mark.parametrize("steps", ["LSTM", "plain RNN", "neither", None])
def test_every_branch_names_the_configurations(time, steps):
    for finished in (0, 4, 9):
        assert "not the cell types alone" in why_lstm_answer(time, steps, finished, 9)


@pytest.mark.parametrize("time,words", [("LSTM", "the LSTM ends lower than the plain RNN"),
                                        ("plain RNN", "the plain RNN ends lower than the LSTM"),
                                        ("neither", "the paired rule finds neither the LSTM nor the plain RNN lower")])
def test_a_race_that_reached_section_4s_steps_is_no_short_race(time, words):
    text = why_lstm_answer(time, "neither", 9, 9)
    assert "equal time is equal steps here" in text and words in text
    assert "short" not in text and "does not hold the number of steps equal" not in text


def test_a_race_that_only_some_runs_finished_is_called_mixed():
    # the post16 review's case: some runs reach section 4's steps, the clock stops the others
    text = why_lstm_answer("neither", "plain RNN", 4, 9)
    assert "Only 4 of the 9 runs reached section 4's number of steps" in text
    assert "The race is short" not in text
    assert "The race is short" in why_lstm_answer("neither", "plain RNN", 0, 9)
    with pytest.raises(ValueError):
        why_lstm_answer("neither", "plain RNN", 10, 9)


def test_time_against_work_says_how_far_the_closest_repeat_clears_the_bound():
    from course_utils.verdicts import time_against_work_sentence
    # bound 8.63 x 1.25 = 10.79; the closest repeat 10.9 clears it by 1%, the repeats spread by 38%
    fragile = time_against_work_sentence([10.9, 14.5, 15.0], 8.63, "Why.")
    assert "the closest repeat, 10.9, lies 1.01x above the bound 10.8" in fragile and "a fragile verdict" in fragile
    firm = time_against_work_sentence([20.0, 21.0], 8.0, "Why.")  # 2x the bound, spread 5%
    assert "lies 2.00x above the bound 10.0, more than the repeats' own spread of 1.05x" in firm
    below = time_against_work_sentence([2.0, 2.1], 8.0, "Why.")
    assert "the closest repeat, 2.1, lies 3.05x below the bound 6.4" in below and "fragile" not in below


def test_underflow_sentence_does_not_blame_squares_it_shows_are_representable():
    # at k = 1 the float32 norm is 0 while the float64 entries' mean square (1e-40 / 4 = 2.5e-41)
    # lies above float32's smallest positive number: squaring alone cannot explain that 0
    text = underflow_sentence("RNN", _norms([1.0, 0.0]), _norms([1.0, 1e-20]), 4)
    assert "is not below" in text and "squaring alone does not explain the 0 here" in text
    below = underflow_sentence("RNN", _norms([1.0, 1e-5, 2.4e-22, 0.0]), _norms([1.0, 1e-5, 4.3e-22, 2.4e-22]), 1024)
    assert "There its 1,024 entries" in below and "The mean square of its entries at k = 2, " in below


# speed_ratio_sentence and line_reset_sentence --------------------------------------------------------------------

from course_utils.text import RESET_GATE, line_reset_sentence, speed_ratio_sentence  # noqa: E402


@pytest.mark.parametrize("ratios, spread, words", [
    ([1.28, 1.30], 1.05, "slower beyond it in every repeat, so ours was slower"),
    ([0.70, 0.75], 1.05, "faster beyond it in every repeat, so ours was faster"),
    ([1.34, 1.30], 1.50, "not beyond it in every repeat"),      # the post14 review's case: within a 1.50x spread
    ([1.28, 1.20], 1.05, "not beyond it in every repeat"),
    ([0.85, 1.10], 1.00, "not beyond it in every repeat"),
])
def test_speed_ratio_sentence_reads_the_repeats_by_the_course_margin(ratios, spread, words):
    text = speed_ratio_sentence(ratios, spread)
    assert text.startswith(f"Our LSTM took {ratios[0]:.2f}x and {ratios[1]:.2f}x the time of nn.LSTM (2 repeats")
    assert words in text and f"counts only beyond {max(1.25, spread):.2f}x" in text


@pytest.mark.parametrize("ratios", [[0.0], [-1.0], [float("nan")], [float("inf")], []])
def test_speed_ratio_sentence_rejects_a_ratio_that_is_not_a_time_ratio(ratios):
    with pytest.raises(ValueError, match="positive, finite"):
        speed_ratio_sentence(ratios, 1.0)


def test_line_reset_sentence_claims_one_line_only_where_the_cell_empties_at_most_line_ends():
    line = line_reset_sentence(0.0, 0.8, 1.0)
    assert "at 100% of the newlines (mean 0.00 there, 0.80 at the other characters)" in line
    assert "its memory is mostly one line" in line and ": at every line end it lets" in line
    # low everywhere: empties at line ends too, but that is no line memory
    everywhere = line_reset_sentence(0.02, 0.01, 0.9)
    assert "not about line ends" in everywhere and "mostly one line" not in everywhere
    # most line ends empty it although the mean gate there is above the reset level
    mostly = line_reset_sentence(0.12, 0.8, 0.8)
    assert "mostly one line" in mostly and "at 80% of the newlines" in mostly
    assert "at more than half of the line ends it lets" in mostly
    # a mean below the reset level, but only a third of the newlines below it: not most
    few = line_reset_sentence(0.05, 0.8, 0.3)
    assert "no more than half of the line ends" in few and "keeps less across a line end" in few
    assert "mostly one line" not in few
    assert "keeps no less" in line_reset_sentence(0.9, 0.8, 0.0)
    assert str(RESET_GATE) in few
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        line_reset_sentence(0.5, 1.5, 0.1)


# paired_verdict (lessons 01 and 02) --------------------------------------------------------------------------

@pytest.mark.parametrize("differences, starts", [
    ([0.040, 0.045, 0.042], "CNN is more accurate than MLP:"),       # ahead in every seed, beyond the spread
    ([-0.040, -0.045, -0.042], "MLP is more accurate than CNN:"),    # the other model leads
    ([0.010, 0.010, 0.080], "CNN is ahead of MLP in every seed"),     # one sign, mean 3.3 within 2 SE 4.7
    ([-0.010, -0.010, -0.080], "MLP is ahead of CNN in every seed"),
    ([0.01, 0.02, 0.02], "CNN is more accurate than MLP:"),          # mean 1.67 beyond 2 SE 0.67
    ([0.030, 0.030, 0.100], "CNN is more accurate than MLP:"),       # a larger lead in one seed still counts here
    ([0.040, 0.010, 0.060], "CNN is more accurate than MLP:"),       # mean 3.67 beyond 2 SE 2.91
    ([0.020, -0.010, 0.005], "CNN minus MLP is +2.0, -1.0, +0.5 points over the seeds, not of one sign"),
    ([0.0, 0.0, 0.0], "CNN minus MLP is +0.0, +0.0, +0.0 points over the seeds: level in every seed"),
    ([0.0004, 0.0003, 0.0001], "CNN minus MLP is +0.0, +0.0, +0.0 points over the seeds: level in every seed"),
    ([0.005, 0.0, 0.003], "CNN is ahead of MLP in some seeds and level in the others"),   # not "not of one sign"
    ([-0.005, 0.0, -0.003], "MLP is ahead of CNN in some seeds and level in the others"),
    ([0.0012, 0.0011, 0.0015], "CNN is more accurate than MLP:"),  # leads all print as 0.1: spread 0.0
    ([0.004, 0.005, 0.030], "CNN is ahead of MLP in every seed"),  # mean 1.30 within 2 SE 1.70
    ([0.0104, 0.0196, 0.015], "CNN is more accurate than MLP:"),  # 1.0, 2.0, 1.5: mean 1.50 beyond 2 SE 0.58
])
def test_paired_verdict_applies_its_stated_rule(differences, starts):
    """Every branch, on synthetic differences: a model is called better only when it leads in every
    seed and its mean lead is more than twice the standard error of the leads, read as the sentence prints them."""
    import statistics
    winner, verdict = paired_verdict("CNN", "MLP", differences)
    assert verdict.startswith(starts), verdict
    printed = [round(100 * d, 1) for d in differences]
    leads = [abs(p) for p in printed]
    one_sign = all(p > 0 for p in printed) or all(p < 0 for p in printed)
    beyond = round(statistics.mean(leads), 2) > round(2 * statistics.stdev(leads) / len(leads) ** 0.5, 2)
    assert (winner is not None) == (one_sign and beyond) == ("more accurate than" in verdict)
    assert winner in (None, "CNN" if printed[0] > 0 else "MLP")


def test_paired_verdict_reads_a_loss_lower_is_better():
    winner, verdict = paired_verdict("the LSTM", "the plain RNN", [-0.050, -0.040, -0.060], better="lower",
                                     unit="nats", scale=1, digits=3, higher_is_better=False)
    assert winner == "the LSTM" and verdict.startswith("the LSTM is lower than the plain RNN: the LSTM minus")
    assert "-0.050, -0.040, -0.060 nats" in verdict and "mean lead, 0.0500 nats, is more than twice" in verdict
    # the standard error and its double both printed, so that neither is read as the other (post19 01-1)
    assert "twice the standard error of the leads (2 x 0.00577 = 0.0115)" in verdict
    # the post19pre case: the LSTM lower in every seed, one lead twice the others: the rule still finds it
    assert paired_verdict("the LSTM", "the plain RNN", [-0.030, -0.029, -0.064], better="lower", unit="nats",
                          scale=1, digits=3, higher_is_better=False)[0] == "the LSTM"
    assert paired_verdict("a", "b", [0.05, 0.04, 0.06], higher_is_better=False, scale=1, digits=3)[0] == "b"


@pytest.mark.parametrize("differences", [[0.1], [], [0.1, float("nan")], [float("inf"), 0.1]])
def test_paired_verdict_refuses_too_few_or_non_finite_differences(differences):
    with pytest.raises(ValueError, match="finite differences for at least two seeds"):
        paired_verdict("a", "b", differences)


def test_paired_rule_says_what_it_does_not_guard_against():
    rule = paired_rule("more accurate", "points")
    assert "ahead in every seed and its mean lead is more than twice the standard error of the leads" in rule
    assert "can hide the lead the other seeds show" in rule
    assert "not a significance test" in rule and "paired by their seed" in rule
