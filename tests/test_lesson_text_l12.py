"""Lesson 02's rendered sentences, each branch on made-up numbers, and the figure helpers it changed."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

from course_utils.text import plot_activations, plot_text_heatmap
from course_utils.verdicts import kernel_sentence, stack_decay_sentence, why_lstm_answer


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
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([12, 12, 13], [10, 10, 10]), FUSED_LSTM)
    assert text.startswith("Turn by turn, a GRU pass takes 2.00 to 2.20 times an LSTM pass with oneDNN on, "
                           "1.20 to 1.30 times with it off (3 turns each).")
    assert "explains part of it" in text and "compares PyTorch's implementations" in text


def test_kernel_all_when_unfused_the_gru_is_not_always_slower():
    text = kernel_sentence(_turns([20, 21, 22], [10, 10, 10]), _turns([9, 10, 11], [10, 10, 10]), FUSED_LSTM)
    assert "explains all of it, within these turns" in text


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
    text = kernel_sentence(_turns([20, 21], [10, 10]), _turns([12, 12], [10, 10]), FUSED_LSTM, race_on_cpu=False)
    assert "did not run on the CPU" in text and "explains part of it" in text
    assert "equal-time race" not in text


def test_kernel_rejects_unequal_turns():
    with pytest.raises(ValueError, match="same positive number of turns"):
        kernel_sentence(_turns([20, 21], [10, 10]), _turns([12], [10]), FUSED_LSTM)
    with pytest.raises(ValueError, match="same positive number of turns"):
        kernel_sentence(_turns([], []), _turns([], []), FUSED_LSTM)


# why_lstm_answer --------------------------------------------------------------------------------------------

def test_lstm_win_at_equal_time_and_steps():
    text = why_lstm_answer("LSTM", "LSTM")
    assert "at equal time the LSTM ends lower" in text and "at equal steps the LSTM is lower too" in text
    assert "pay for themselves" not in text


@pytest.mark.parametrize("steps", ["plain RNN", "neither"])
def test_lstm_win_at_equal_time_only_may_be_the_steps(steps):
    assert "may come from its extra steps alone" in why_lstm_answer("LSTM", steps)


def test_lstm_win_without_an_equal_steps_comparison():
    assert "no comparison at equal steps" in why_lstm_answer("LSTM", None)


@pytest.mark.parametrize("time,words", [("plain RNN", "the plain RNN ends lower than the LSTM"),
                                        ("neither", "neither the LSTM nor the plain RNN ends lower")])
@pytest.mark.parametrize("steps", ["LSTM", "plain RNN", "neither", None])
def test_no_lstm_win_shows_no_advantage(time, words, steps):
    text = why_lstm_answer(time, steps)
    assert words in text and "shows no advantage of the LSTM" in text


@pytest.mark.parametrize("time,steps", [("GRU", None), (None, None), ("LSTM", "GRU")])
def test_why_lstm_answer_rejects_other_names(time, steps):
    with pytest.raises(ValueError, match="expected equal_"):
        why_lstm_answer(time, steps)


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
