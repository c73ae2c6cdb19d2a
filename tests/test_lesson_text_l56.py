"""Every branch of the sentences that lessons 05 and 06 render from their results, on synthetic numbers."""

import math

import pandas as pd
import pytest

from course_utils.verdicts import (BAND_RULE, PROFILE_RULE, ban_control_sentence, band_length_sentence, communication_sentence, curve_sentence,
                                   dev_test_gap_sentence, one_seed_sentence, quartiles, same_type_sentence)


# ---- lesson 05: the learning curve ----------------------------------------------------------------

def test_curve_sentence_with_one_epoch_reads_no_curve():
    assert curve_sentence([0.5], [3.0]) == "The run trained one epoch only, so it has no learning curve to read."


def test_curve_sentence_credits_later_epochs_only_when_the_best_comes_after_halfway():
    text = curve_sentence([0.70, 0.80, 0.85, 0.90], [3.0, 2.0, 1.0, 0.5])
    assert "was 80.00 after epoch 2; the 2 later epochs averaged 87.50, 7.50 points higher (their best, 90.00 after epoch 4" in text
    assert "largest fall between neighbouring epochs (0.00 points), so the later epochs raised it" in text
    assert "from 2.000 to 0.500" in text


def test_curve_sentence_reads_the_later_epochs_mean_not_their_best():
    # lesson 05's committed run: epoch 6 at 90.59, epochs 7-12 average 90.72 (best 90.97), largest fall 0.28
    dev = [0.80, 0.85, 0.88, 0.89, 0.9031, 0.9059, 0.9031, 0.9058, 0.9097, 0.9079, 0.9077, 0.9088]
    text = curve_sentence(dev, [1.0 - e / 20 for e in range(12)])
    assert "the 6 later epochs averaged 90.72, 0.13 points higher (their best, 90.97 after epoch 9" in text
    assert "largest fall between neighbouring epochs (0.28 points)" in text
    assert "does not show that the later epochs raised it" in text and "so the later epochs raised it" not in text


@pytest.mark.parametrize("dev_f1", [[0.70, 0.90, 0.85, 0.88], [0.95, 0.90, 0.85, 0.80]])
def test_curve_sentence_never_credits_later_epochs_with_an_earlier_best(dev_f1):
    text = curve_sentence(dev_f1, [3.0, 2.0, 1.0, 0.5])
    assert "did not raise it" in text and "raised it by" not in text


def test_curve_sentence_rejects_mismatched_lists():
    with pytest.raises(ValueError):
        curve_sentence([0.5, 0.6], [1.0])


# ---- lesson 05: the dev-test gap --------------------------------------------------------------------

def test_gap_sentence_without_a_gap():
    text = dev_test_gap_sentence(0.80, 0.79, 0.82, 0.1, 0.2)
    assert "not below" in text and "flatters" not in text


def test_gap_sentence_small_selection_and_more_unseen_words_in_test():
    text = dev_test_gap_sentence(0.9097, 0.9088, 0.8525, 0.181, 0.285)
    assert "5.72 points below" in text and "0.09 points" in text and "explains little" in text
    assert "2% of the gap, so the choice of epoch explains little" in text and "half of it" not in text
    assert "28.5%" in text and "does not measure how much of the gap" in text


def test_gap_sentence_calls_a_selection_effect_little_only_below_a_tenth_of_the_gap():
    middle = dev_test_gap_sentence(0.90, 0.8775, 0.85, 0.2, 0.3)      # 2.25 of 5 points: 45%
    assert "45% of the gap, less than half of it" in middle and "explains little" not in middle


def test_gap_sentence_large_selection_is_not_dismissed():
    text = dev_test_gap_sentence(0.90, 0.86, 0.87, 0.2, 0.1)
    assert "part of the gap may come from that choice" in text and "explains little" not in text
    assert "by little" not in text  # the size of the effect is said only after the branch is chosen
    assert "does not hold more entity tokens unseen" in text


# ---- lesson 05: one seed against the check ---------------------------------------------------------

@pytest.mark.parametrize("f1, spread", [(0.8525, 0.0508), (0.90, 0.02), (0.84, 0.05)])
def test_one_seed_sentence_draws_no_conclusion_from_another_models_spread(f1, spread):
    text = one_seed_sentence(f1, 0.85, spread, "BiLSTM-CRF")
    assert f"{100 * abs(f1 - 0.85):.2f} points {'above' if f1 >= 0.85 else 'below'} it" in text
    assert f"spread over {100 * spread:.2f} points" in text and "For scale only" in text
    assert "cannot say whether another seed would land on the same side" in text
    assert "other side of the check" not in text and "larger than the widest spread" not in text
    assert "(seed 0)" in text
    full = one_seed_sentence(f1, 0.85, spread, "BiLSTM-CRF", seed=3, mode="full")
    assert "(seed 3)" in full and "a full-mode run, with other settings, so that check does not apply" in full
    assert "points above it" not in full and "points below it" not in full


# ---- lesson 05: rarity within one length -------------------------------------------------------------

def _table(unseen: tuple[float, float], frequent: tuple[float, float]) -> pd.DataFrame:
    rows = [{"band": band, "length": length, "entities": n, "recall": r}
            for band, recalls, counts in [("unseen", unseen, (800, 1000)), ("rare (1-2)", (0.8, 0.7), (400, 200)),
                                          ("frequent (3+)", frequent, (2400, 800))]
            for length, r, n in zip(("1 token", "2+ tokens"), recalls, counts)]
    return pd.DataFrame(rows).set_index(["band", "length"])


@pytest.mark.parametrize("unseen, frequent, words", [
    ((0.70, 0.60), (0.90, 0.85), "Within every length the unseen band's recall is lower"),
    ((0.92, 0.88), (0.90, 0.85), "Within no length is the unseen band's recall lower"),
    ((0.90, 0.85), (0.90, 0.85), "Within no length is the unseen band's recall lower"),  # ties are not lower
    ((0.89, 0.84), (0.90, 0.85), "Within no length is the unseen band's recall lower"),  # within the sampling error
    ((0.70, 0.88), (0.90, 0.85), "for 1 token entities and not for 2+ tokens entities"),
    ((0.89, 0.60), (0.90, 0.85), "for 2+ tokens entities and not for 1 token entities"),
])
def test_band_length_sentence_has_a_branch_for_each_case(unseen, frequent, words):
    text = band_length_sentence(_table(unseen, frequent))
    assert words in text and "One trained model" in text and "standard error of the difference" in text
    assert "56% of the unseen band" in text and "25% of the frequent (3+) band" in text
    assert "mixes rarity with length" in text
    assert "does not separate rarity from length" not in text  # a within-length split is what separates them
    assert "twice its standard error" in BAND_RULE


def test_band_length_sentence_reads_the_recorded_interaction():
    """The committed run's table (lesson 05, c62): a large cost for 1-token entities, none for longer ones."""
    rows = [("unseen", "1 token", 831, 0.568), ("unseen", "2+ tokens", 1036, 0.869),
            ("rare (1-2)", "1 token", 390, 0.803), ("rare (1-2)", "2+ tokens", 248, 0.899),
            ("frequent (3+)", "1 token", 2353, 0.915), ("frequent (3+)", "2+ tokens", 790, 0.861)]
    table = pd.DataFrame(rows, columns=["band", "length", "entities", "recall"]).set_index(["band", "length"])
    text = band_length_sentence(table)
    assert "for 1 token entities and not for 2+ tokens entities" in text and "an interaction" in text
    assert "does not measure why" in text and "(+0.347) exceeds that for 2+ tokens entities (-0.008)" in text


def test_band_length_sentence_names_no_interaction_the_difference_of_costs_does_not_show():
    """Lower beyond the error in one length only, but the two lengths' costs are within their own error."""
    rows = [("unseen", "1 token", 300, 0.80), ("unseen", "2+ tokens", 300, 0.83),
            ("frequent (3+)", "1 token", 300, 0.87), ("frequent (3+)", "2+ tokens", 300, 0.87)]
    table = pd.DataFrame(rows, columns=["band", "length", "entities", "recall"]).set_index(["band", "length"])
    text = band_length_sentence(table)
    assert "for 1 token entities and not for 2+ tokens entities" in text
    assert "an interaction" not in text and "cannot tell whether the cost depends on the length" in text
    assert "depend on the length only where" in BAND_RULE


def test_band_length_sentence_when_the_bands_have_the_same_lengths():
    table = _table((0.7, 0.6), (0.9, 0.8))
    table.loc[("frequent (3+)", "1 token"), "entities"] = 640  # 56% longer, as unseen
    assert "hardly differ in length" in band_length_sentence(table)


def test_band_length_sentence_without_comparable_lengths():
    table = _table((0.7, 0.6), (0.9, 0.8))
    table["entities"] = 0
    assert "cannot be compared" in band_length_sentence(table)


# ---- lesson 05: the same-type contrasts -------------------------------------------------------------

def test_same_type_sentence_reads_transitions_only_and_compares_no_signs():
    text = same_type_sentence({"LOC": -0.09, "MISC": 0.2, "PER": float("nan")}, {"LOC": 11, "MISC": 35}, 14041)
    assert "undefined for PER" in text and "negative for 1 of the 2 types (LOC)" in text
    assert "not about the tagger's output" in text and "LOC 11, MISC 35, PER 0" in text
    assert "draws no conclusion from whether their signs agree" in text and "14,041" in text
    assert "matches" not in text
    assert "run from -0.09 to 0.20" in text and "the sign of a value near 0 may differ in another run" in text


def test_same_type_sentence_with_no_negative_contrast():
    text = same_type_sentence({"LOC": 0.1, "ORG": 0.3}, {"LOC": 1, "ORG": 2}, 10)
    assert "negative for none of the 2 types" in text and "undefined" not in text
    assert "none for" not in text


def test_same_type_sentence_names_the_types_whose_data_contrast_has_no_count():
    text = same_type_sentence({"LOC": 0.1, "PER": 0.3}, {"LOC": 11, "PER": 0}, 14041)
    assert "(none for PER: there it would come from the one added to every count alone" in text


# ---- lesson 06: the profile --------------------------------------------------------------------------

def test_quartiles():
    assert quartiles([2.0]) == (2.0, 2.0, 2.0)
    assert quartiles([1.0, 2.0, 3.0, 4.0, 5.0]) == (2.0, 3.0, 4.0)
    with pytest.raises(ValueError):
        quartiles([])


@pytest.mark.parametrize("communication, all_reduce, words", [
    ([-2.0, -1.0, 0.5, 1.0, 3.0], [3.0] * 5, "not resolved from the step-to-step noise"),
    ([5.0, 6.0, 7.0, 8.0], [1.0, 2.0, 2.5, 3.0], "That is more than a bare all-reduce"),
    ([1.0, 1.2, 1.4, 1.6], [3.0, 3.2, 3.4, 3.6], "That is less than a bare all-reduce"),
    ([2.0, 3.0, 4.0, 5.0], [3.0, 3.5, 4.0, 4.5], "cannot be told apart from a bare all-reduce"),
])
def test_communication_sentence_has_a_branch_for_each_case(communication, all_reduce, words):
    text = communication_sentence(communication, all_reduce)
    assert words in text and f"over {len(communication)} steps" in text
    assert "waits for the slower one" not in text and "has its own cost" not in text  # causes never measured
    assert "would explain" not in text
    if "cost time in this run" in text:  # the difference holds more than the synchronisation
        assert "and whatever else differs between the two passes" in text
    assert "middle halves" in PROFILE_RULE and not math.isnan(quartiles(communication)[1])
    assert "paired on the same batch" in PROFILE_RULE  # the rule for the cost itself is the one applied


def test_communication_sentence_gives_the_medians_where_the_rule_cannot_separate_them():
    text = communication_sentence([1.0, 2.0, 8.7, 9.0, 15.0], [1.0, 1.5, 1.9, 9.5, 10.0])
    assert "cannot be told apart" in text and "medians differ by a factor of 4.6" in text


# ---- lesson 05: the ban on invalid sequences, alone ----------------------------------------------------

SOFTMAX = [0.47, 0.48, 0.49]


@pytest.mark.parametrize("constrained, crf, words", [
    ([0.55, 0.56, 0.57], [0.55, 0.57, 0.56], "these seeds neither show nor exclude a gain from training with a CRF"),
    ([0.55, 0.56, 0.57], [0.60, 0.61, 0.62], "the ban on invalid sequences alone raised test F1, and training with a CRF (its"),
    ([0.48, 0.49, 0.48], [0.60, 0.61, 0.62], "the ban alone does not raise test F1 by the rule, while training with a CRF"),
    ([0.48, 0.49, 0.48], [0.48, 0.50, 0.47], "draws no further conclusion"),
    ([0.40, 0.41, 0.42], [0.30, 0.31, 0.32], "draws no further conclusion"),
])
def test_ban_control_sentence_has_a_branch_for_each_case(constrained, crf, words):
    text = ban_control_sentence(SOFTMAX, constrained, crf)
    assert words in text and "By the paired rule:" in text
    assert "learned transitions alone" not in text  # the control does not split training with a CRF
    assert "unpaired" not in text  # the runs of one seed share their batches


def test_ban_control_sentence_reads_both_comparisons_seed_by_seed():
    # the CRF's leads +5, +5, +5 pass the paired rule; leads +12, +1, +6 do not (smallest 1 < spread 11)
    passes = ban_control_sentence(SOFTMAX, [0.55, 0.56, 0.57], [0.60, 0.61, 0.62])
    assert "the BiLSTM-CRF minus the constrained softmax tagger is +5.0, +5.0, +5.0 points" in passes
    scattered = ban_control_sentence(SOFTMAX, [0.55, 0.56, 0.57], [0.67, 0.57, 0.63])
    assert "these runs do not show that the BiLSTM-CRF is better" in scattered
    assert "neither show nor exclude a gain" in scattered and "adds nothing" not in scattered


def test_ban_control_sentence_weighs_the_ban_against_the_crfs_whole_gain():
    # the post16 review's run: the ban +3.8, +3.4, +3.3; the CRF ahead of the constrained tagger by +5.3, +8.1, +3.5
    both = ban_control_sentence([0.700, 0.690, 0.720], [0.738, 0.724, 0.753], [0.791, 0.805, 0.788])
    assert "the ban on invalid sequences alone raised test F1, and training with a CRF" in both
    # the CRF ahead by +1.0, +1.0, +8.0: ahead in every seed, its mean within twice its standard error
    text = ban_control_sentence([0.700, 0.690, 0.720], [0.738, 0.724, 0.753], [0.748, 0.734, 0.833])
    assert "by 3.5 points on average, against the CRF's 6.8 over the unconstrained tagger" in text
    assert "ahead of the constrained tagger in every seed, but the paired rule does not resolve" in text
    # behind in every seed, within the scatter: no "lead" to speak of
    behind = ban_control_sentence([0.50, 0.50, 0.50], [0.55, 0.56, 0.57], [0.54, 0.50, 0.565])
    assert "ahead of the constrained tagger in 0 of 3 seeds only" in behind and "that lead" not in behind
    with pytest.raises(ValueError):
        ban_control_sentence([], [0.5], [0.5])
    with pytest.raises(ValueError, match="one F1 per seed"):
        ban_control_sentence([0.5, 0.6], [0.5], [0.5, 0.6])


def test_ban_control_sentence_counts_the_paired_seeds():
    assert "in 3 of 3 seeds" in ban_control_sentence(SOFTMAX, [0.55, 0.56, 0.57], [0.60, 0.61, 0.62])
    assert "in 1 of 3 seeds" in ban_control_sentence(SOFTMAX, [0.46, 0.47, 0.50], [0.60, 0.61, 0.62])


def test_band_length_sentence_measures_length_from_the_shortest_length_even_when_a_band_lacks_it():
    """Smoke mode can leave a band without 1-token entities: the share must still be of entities longer than 1 token."""
    table = _table((0.7, 0.6), (0.9, 0.8))
    table.loc[("unseen", "1 token"), "entities"] = 0
    text = band_length_sentence(table)
    assert "100% of the unseen band's entities are longer than 1 token" in text
    assert "longer than 2+ tokens" not in text and "2+ tokens: 0.600 against 0.800" in text


def test_lesson_05_states_the_taggers_sizes_as_its_config_sets_them():
    """Lesson 05 writes the tagger's sizes out in its text: they must be `TaggerConfig`'s defaults."""
    import json
    from pathlib import Path

    from course_utils.ner import TaggerConfig

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "05_ner_bilstm_cnn_crf.ipynb"
    text = " ".join(" ".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"]).split())
    c = TaggerConfig()
    for stated in (f"its word embedding ({c.word_dim} numbers", f"its casing embedding ({c.casing_dim})",
                   f"its character vector ({c.char_filters} filters over character embeddings of {c.char_dim})",
                   f"applies dropout (rate {c.dropout},", f"bidirectional LSTM ({c.hidden_size} units each way)",
                   f"(D = {c.word_dim} + {c.casing_dim} + {c.char_filters})", f"(2 x {c.hidden_size} numbers)"):
        assert stated in text, stated


def test_type_extremes_sentence_tests_both_ends_by_one_rule():
    import pandas as pd

    from course_utils.verdicts import type_extremes_sentence

    # the post18 run: LOC and PER within 2 SE (0.016 < 0.021), MISC below ORG beyond it (0.059 > 0.038)
    types = pd.DataFrame({"f1": [0.903, 0.752, 0.811, 0.887], "support": [1668, 702, 1661, 1617]},
                         index=["LOC", "MISC", "ORG", "PER"])
    text = type_extremes_sentence(types)
    assert "the easiest type cannot be told between LOC (0.903) and PER (0.887)" in text
    assert "the hardest is MISC (F1 0.752, against ORG's 0.811, a difference beyond twice its standard error)" in text
    apart = type_extremes_sentence(types.assign(f1=[0.95, 0.752, 0.811, 0.887]))
    assert "the easiest type is LOC (F1 0.950, against PER's 0.887, a difference beyond" in apart
    tied = type_extremes_sentence(types.assign(f1=[0.903, 0.800, 0.811, 0.887]))
    assert "the hardest cannot be told between MISC (0.800) and ORG (0.811)" in tied
    with pytest.raises(ValueError, match="at least two types"):
        type_extremes_sentence(types.iloc[:1])
