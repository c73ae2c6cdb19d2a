"""The rules that turn the lessons' measurements into sentences (lessons 01 to 06).

A sentence about a run's results is only as good as the rule behind it, so each
rule lives here once: the lesson applies it to its numbers and renders its text,
and the tests run every branch on synthetic numbers (tests/test_sequence.py,
tests/test_video.py and tests/test_lesson_text_*.py), so that no sentence can say
more than the numbers it is given.

* Spread over seeds: `spread_verdict` (is a difference beyond the run-to-run
  spread?), read from recorded metrics by `compare` (lesson 03) and from lists of
  accuracies by `SeedRule` (lesson 04).
* Lessons 01 and 02: `paired_rule` and `paired_verdict` (runs paired by their seed).
* Lesson 01: `time_against_work_sentence`.
* Lesson 02: `stack_decay_sentence`, `kernel_sentence`, `unfused_switch_sentence`, `why_lstm_answer`.
* Lesson 03: `verdicts(metrics)`, the table of ten claims about CNNs, LSTMs and
  CNN-LSTMs, one rule per claim (``_claim_1`` ... ``_claim_10``; the lesson invites
  learners to print one with ``inspect.getsource``). Each writes the numbers it reads
  and a verdict starting with "holds" (or "holds only when ..."), "does not hold"
  or "inconclusive".
* Lesson 04: `ChanceLossRule` (did a model train at all?), `SeedRule`, the sentences
  that read the video experiments, and `SweepPrediction`.
* Lesson 05: `curve_sentence`, `dev_test_gap_sentence`, `BAND_RULE`, `band_length_sentence`, `ban_control_sentence`,
  `same_type_sentence`, `one_seed_sentence`.
* Lesson 06: `PROFILE_RULE` and `communication_sentence`.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from .sequence import MODEL_LABELS, RECURRENT_UNITS, SOLVED, mean_sd

# --------------------------------------------------------------------------- spread over seeds


def spread_verdict(mean_a: float, sd_a: float, mean_b: float, sd_b: float, n: int, floor: float = 0.01) -> str:
    """Is measurement a "higher" or "lower" than b, or "within spread"? Introduced in lesson 03.

    a and b are means (and sample standard deviations) over the same n seeds. Their difference
    counts only if it exceeds twice its standard error, 2 * sqrt((sd_a^2 + sd_b^2) / n), and
    `floor` (so that two sets of identical runs are never "different"); otherwise it lies
    within the run-to-run spread.
    """
    if n < 1:
        raise ValueError(f"seeds must be >= 1, got {n}")
    spread = 2 * math.sqrt((sd_a ** 2 + sd_b ** 2) / n)
    if abs(mean_a - mean_b) <= max(spread, floor):
        return "within spread"
    return "higher" if mean_a > mean_b else "lower"


def compare(metrics: Mapping[str, Any], a: str, b: str, floor: float = 0.01) -> str:
    """`spread_verdict` of recorded measurements: reads ``{a}_mean``, ``{a}_sd``, ``{b}_mean``,
    ``{b}_sd`` and ``seeds`` (n). Introduced in lesson 03."""
    return spread_verdict(recorded(metrics, f"{a}_mean"), recorded(metrics, f"{a}_sd"), recorded(metrics, f"{b}_mean"),
                          recorded(metrics, f"{b}_sd"), int(recorded(metrics, "seeds")), floor)


def recorded(metrics: Mapping[str, Any], name: str) -> float:
    """The recorded value of measurement `name`, as a float; a KeyError names a missing one."""
    if name not in metrics:
        raise KeyError(f"the verdicts need the metric {name!r}, which was not recorded")
    return float(metrics[name])


def paired_rule(better: str, unit: str) -> str:
    """The rule of ``paired_verdict`` in words, for a lesson to render before its runs. Introduced in lesson 01."""
    return (f"A model counts as {better} than another when it is ahead in every seed and its mean lead is more than "
            "twice the standard error of the leads (their standard deviation over the seeds, divided by the square "
            f"root of the number of seeds), all in {unit} as printed; otherwise these runs cannot tell the two apart. "
            "It compares runs that share a seed, so it needs runs paired by their seed (the same examples in the same "
            "order; their other random draws, such as dropout, may still differ). With three seeds it screens out "
            "differences smaller than the seeds' own scatter; it is not a significance test, nothing in it bounds what "
            "another seed could give, and like every rule built on a spread, one seed's much larger lead widens the "
            "spread and can hide the lead the other seeds show.")


def paired_verdict(name_a: str, name_b: str, differences: Sequence[float], *, better: str = "more accurate",
                   unit: str = "points", scale: float = 100.0, digits: int = 1,
                   higher_is_better: bool = True) -> tuple[str | None, str]:
    """``paired_rule`` applied to the per-seed differences a - b of two models' results (one per seed,
    the runs of a seed paired), in one sentence. The rule reads each difference as the sentence prints
    it (``scale`` times it, rounded to ``digits``), and compares the mean lead with twice its standard
    error as the sentence prints them, so every number it quotes supports its words: a lead that prints
    as zero is no lead. ``higher_is_better``: False for a loss.

    Returns the name of the model the rule finds ``better`` (None if it finds neither) and the sentence.
    Introduced in lesson 01; lesson 02 reads its race by it.
    """
    if len(differences) < 2 or not all(math.isfinite(d) for d in differences):
        raise ValueError(f"expected finite differences for at least two seeds, got {list(differences)}")
    printed = [round(scale * d, digits) + 0.0 for d in differences]  # + 0.0 turns -0.0 into 0.0
    listed = ", ".join(f"{p:+.{digits}f}" for p in printed)
    sign = 1 if higher_is_better else -1
    a_leads = [sign * p for p in printed]
    leader, other = (name_a, name_b) if sum(a_leads) > 0 else (name_b, name_a)
    leads = a_leads if leader == name_a else [-p for p in a_leads]
    mean = round(statistics.mean(leads), digits + 1)
    se = statistics.stdev(leads) / math.sqrt(len(leads))
    twice_se = round(2 * se, digits + 1)
    shown = f"{name_a} minus {name_b} is {listed} {unit} over the seeds"
    weighed = (f"its mean lead, {mean:.{digits + 1}f} {unit}, is {'more' if mean > twice_se else 'not more'} than "
               f"twice the standard error of the leads (2 x {se:.{digits + 2}f} = {twice_se:.{digits + 1}f})")
    if min(leads) > 0 and mean > twice_se:
        return leader, f"{leader} is {better} than {other}: {shown}; it leads in every seed, and {weighed}."
    if min(leads) > 0:
        return None, (f"{leader} is ahead of {other} in every seed ({shown}), but {weighed}: by the rule, these runs "
                      f"do not show that {leader} is {better}.")
    if max(leads) == 0:
        return None, f"{shown}: level in every seed as printed, so these runs cannot tell the two apart."
    if min(leads) == 0:
        return None, (f"{leader} is ahead of {other} in some seeds and level in the others as printed ({shown}; a lead "
                      f"that prints as zero is none): these runs cannot tell the two apart.")
    return None, f"{shown}, not of one sign: these runs cannot tell {name_a} and {name_b} apart."


# --------------------------------------------------------------------------- lesson 01: time against work

def _clearance(closest: float, bound: float, spread: float) -> str:
    """How far the repeat closest to a verdict's bound lies beyond it, against the repeats' own spread
    (largest over smallest): a clearance smaller than the spread is a fragile verdict."""
    clearance = max(closest, bound) / min(closest, bound)
    side = "above" if closest > bound else "below"
    return (f" (the closest repeat, {closest:.1f}, lies {clearance:.2f}x {side} the bound {bound:.1f}"
            + (f", less than the repeats' own spread of {spread:.2f}x (largest over smallest), so one more repeat "
               "could fall within it: a fragile verdict)" if clearance < spread else
               f", more than the repeats' own spread of {spread:.2f}x, largest over smallest)"))


def time_against_work_sentence(time_ratios: Sequence[float], work_ratio: float, why: str) -> str:
    """Whether one model's pass took more time relative to another's than its multiply-adds predict.

    time_ratios: model A's step time over model B's, one per interleaved repeat; work_ratio: A's
    multiply-adds over B's. Time is said to grow faster (or slower) than the work only when every
    repeat's ratio is beyond ``TIMING_MARGIN`` times (or below 1 / ``TIMING_MARGIN`` times) the work
    ratio; ``why`` (the lesson's candidate causes, none of them timed) is added only when it grew faster.
    Introduced in lesson 01.
    """
    if not time_ratios or min(*time_ratios, work_ratio) <= 0 or any(map(math.isnan, [*time_ratios, work_ratio])):
        raise ValueError(f"expected positive time ratios and a positive work ratio, got {list(time_ratios)}, {work_ratio}")
    shown = ", ".join(f"{r:.1f}" for r in time_ratios)
    head = (f"A forward and backward pass took {statistics.median(time_ratios):.1f} times as long for the CNN as for the "
            f"MLP (median of {len(time_ratios)} interleaved repeats: {shown}), against {work_ratio:.1f} times the "
            "multiply-adds of a training step")
    spread = max(time_ratios) / min(time_ratios)
    if min(time_ratios) > work_ratio * TIMING_MARGIN:
        return (head + f": more than that in every repeat, by more than {TIMING_MARGIN}x (the course's timing margin for a "
                "ratio of timings), so multiply-adds are not all a pass costs"
                + _clearance(min(time_ratios), work_ratio * TIMING_MARGIN, spread) + ". " + why)
    if max(time_ratios) < work_ratio / TIMING_MARGIN:
        return (head + f": less than that in every repeat, by more than {TIMING_MARGIN}x, so the MLP's pass cost more "
                "per multiply-add than the CNN's here" + _clearance(max(time_ratios), work_ratio / TIMING_MARGIN, spread)
                + "; this lesson does not time why.")
    within = sum(work_ratio / TIMING_MARGIN <= r <= work_ratio * TIMING_MARGIN for r in time_ratios)
    return (head + f": the repeats do not all lie beyond {TIMING_MARGIN}x of it (the course's timing margin for a ratio of "
            f"timings) on the same side ({within} of {len(time_ratios)} within it), so these timings cannot tell "
            "whether time grew faster or slower than the work.")


# --------------------------------------------------------------------------- lesson 03: ten claims

CLAIMS = {
    1: "A CNN finds local patterns with sliding, shared weights (grids such as images); an LSTM carries "
       "context through time (variable-length sequences such as text or audio).",
    2: "The LSTM's gates and cell state solve the plain RNN's vanishing and exploding gradients.",
    3: "In a CNN-LSTM, the convolutions extract the local structure before the LSTM models it over time.",
    4: "A CNN-LSTM is cheaper: shared weights and local receptive fields cut training time and compute.",
    5: "A CNN-LSTM can start from a pretrained CNN, which speeds up training.",
    6: "A CNN-LSTM is worse than an LSTM at long-term dependencies.",
    7: "An LSTM is computationally heavy, and slow to train on long sequences.",
    8: "An LSTM has many parameters, overfits easily and needs more compute.",
    9: "GRU (a simplified LSTM) and the bidirectional LSTM are variants that suit different tasks.",
    10: "With large data and limited memory, the CNN-LSTM is the more economical choice.",
}


def _mean_pm_sd(metrics: Mapping[str, Any], name: str, digits: int = 2) -> str:
    """'mean ± sd' of a measurement over seeds."""
    return f"{recorded(metrics, name + '_mean'):.{digits}f} ± {recorded(metrics, name + '_sd'):.{digits}f}"


def _suffixes(metrics: Mapping[str, Any], prefix: str, suffix: str = "") -> list[int]:
    """The sorted integers n of the recorded keys ``{prefix}{n}{suffix}``."""
    found = sorted({int(key[len(prefix):len(key) - len(suffix)]) for key in metrics
                    if key.startswith(prefix) and key.endswith(suffix)
                    and key[len(prefix):len(key) - len(suffix)].isdigit()})
    if not found:
        raise KeyError(f"the verdicts need metrics named {prefix}<n>{suffix}, and none was recorded")
    return found


def distances(metrics: Mapping[str, Any]) -> list[int]:
    """The distances k of the pair task with a recorded ``lstm_acc_k{k}_mean``, sorted.
   """
    return _suffixes(metrics, "lstm_acc_k", "_mean")


def _longest(metrics: Mapping[str, Any]) -> int:
    return _suffixes(metrics, "saved_mb_lstm_T")[-1]


# --------------------------------------------------------------------------- the ten rules

EXACT = 1e-5  # the largest difference between a padded batch and one sequence at a time read as "exact" (claim 1)


def _claim_1(m: Mapping[str, Any]) -> tuple[str, str]:
    near, far = distances(m)[0], distances(m)[-1]
    field = int(recorded(m, "cnn_receptive_field"))
    solved = {(name, k): recorded(m, f"{name}_acc_k{k}_mean") >= SOLVED for name in ("cnn", "tcn", "lstm")
              for k in (near, far)}
    exact = max(recorded(m, "lstm_packed_max_diff"), recorded(m, "cnn_masked_max_diff")) < EXACT
    numbers = (f"pair task, k={near} / k={far}: CNN (field {field}) {_mean_pm_sd(m, f'cnn_acc_k{near}')} / "
               f"{_mean_pm_sd(m, f'cnn_acc_k{far}')}, TCN (field {int(recorded(m, 'tcn_receptive_field'))}) "
               f"{_mean_pm_sd(m, f'tcn_acc_k{far}')} at k={far}, LSTM {_mean_pm_sd(m, f'lstm_acc_k{far}')} at k={far}; "
               f"padded batch vs one at a time: packed LSTM {recorded(m, 'lstm_packed_max_diff'):.0e}, "
               f"masked CNN {recorded(m, 'cnn_masked_max_diff'):.0e}")
    if not solved["lstm", far]:
        return numbers, f"does not hold: the LSTM does not solve k={far}"
    if not solved["cnn", near] or solved["cnn", far]:
        return numbers, "does not hold: the plain CNN's accuracy does not follow its receptive field"
    parts = ([f"a dilated CNN solves k={far} too"] if solved["tcn", far] else []) + (
        ["a causal CNN with masking takes variable lengths exactly (within its field)"] if exact else [])
    if parts:
        return numbers, ("holds only for a CNN whose receptive field is shorter than the dependency: "
                         + ", and ".join(parts))
    return numbers, "holds"


def _default_rates(m: Mapping[str, Any], far: int) -> str:
    """What the default-init LSTM's rate check (a third of the rate, the rate, three times it; seed 0) says."""
    best = recorded(m, f"lstm_default_rate_best_k{far}")
    found = (f"; at a third of that rate and at three times it (seed 0) its best last validation accuracy was "
             f"{best:.2f}")
    if best >= SOLVED:
        return found + ": another rate let it learn, so the rate, not the initialisation alone, decided it"
    return (found + ": within these three rates the initialisation decided whether the LSTM learned; whether it "
            "needs only more steps is not tested")


def _claim_2(m: Mapping[str, Any]) -> tuple[str, str]:
    k, far = int(recorded(m, "gradient_distance")), distances(m)[-1]
    log = {name: recorded(m, f"gradient_log10_{name}_mean") for name in ("rnn", "lstm_default", "lstm", "gru")}
    trained = {"default": recorded(m, f"lstm_default_acc_k{far}_mean"), "chrono": recorded(m, f"lstm_acc_k{far}_mean")}
    numbers = (f"log10 of |dL/dx| {k} steps back over |dL/dx| at the last step, untrained, over seeds: RNN "
               f"{_mean_pm_sd(m, 'gradient_log10_rnn', 1)}, LSTM default init {_mean_pm_sd(m, 'gradient_log10_lstm_default', 1)}, "
               f"LSTM chrono init {_mean_pm_sd(m, 'gradient_log10_lstm', 1)}, GRU {_mean_pm_sd(m, 'gradient_log10_gru', 1)}; "
               f"trained on the pair task at k={far}: LSTM default init {_mean_pm_sd(m, f'lstm_default_acc_k{far}')}, "
               f"chrono init {_mean_pm_sd(m, f'lstm_acc_k{far}')}")
    untested = ("; exploding gradients are not tested (every training run here clips the gradient norm, because an "
                "LSTM's gradient can still explode), so the verdict is about vanishing gradients only; the plain RNN is "
                "never trained on the task (nor given an identity or orthogonal start, exercise 6), so no run compares "
                "the gates with the RNN in training")
    if compare(m, "gradient_log10_lstm", "gradient_log10_rnn", floor=2.0) != "higher":
        return numbers, ("does not hold: even with chrono init, the untrained LSTM's gradient "
                         f"{k} steps back is not above the plain RNN's by more than 2 orders of magnitude and the "
                         "spread" + untested)
    start = (f"inconclusive: untrained, the LSTM's gradient {k} steps back is 10^{log['lstm']:.1f} of the last step's "
             f"with chrono init (gate biases set for long memory spans) and 10^{log['lstm_default']:.1f} with "
             f"PyTorch's default init, and the plain RNN's (default init) 10^{log['rnn']:.1f}")
    if trained["default"] >= SOLVED:
        return numbers, start + (f"; trained from the default init the LSTM still solves k={far} "
                                 f"({trained['default']:.2f})" + untested)
    if trained["chrono"] >= SOLVED:
        return numbers, start + (f"; trained from the default init the LSTM reaches only {trained['default']:.2f} at k={far} within "
                                 f"this budget, against {trained['chrono']:.2f} with chrono init (the same budget of epochs, "
                                 "which a run leaves early once it reaches the stopping accuracy, so the two need not "
                                 "train the same epochs: section 2's table gives each model's; and the learning rate "
                                 "set for the chrono runs)" + _default_rates(m, far) + untested)
    return numbers, start + (f"; neither LSTM solves k={far} within the budget" + untested)


def _window(m: Mapping[str, Any]) -> tuple[list[int], int]:
    pools = _suffixes(m, "window_acc_pool", "_mean")
    return pools, int(recorded(m, "window_crossover_pool"))


def _claim_3(m: Mapping[str, Any]) -> tuple[str, str]:
    pools, _ = _window(m)
    field, gap, near_gap = (int(recorded(m, name)) for name in ("window_conv_field", "window_gap", "window_near_gap"))
    numbers = (f"order task, pool {pools[-1]}: events {near_gap} steps apart (inside the convolutions' field of "
               f"{field}) {_mean_pm_sd(m, 'window_near_acc')}, {gap} steps apart {_mean_pm_sd(m, f'window_acc_pool{pools[-1]}')}; "
               f"LSTM {_mean_pm_sd(m, 'window_acc_lstm')}")
    near_solved = recorded(m, "window_near_acc_mean") >= SOLVED
    far_lost = compare(m, f"window_acc_pool{pools[-1]}", "window_acc_lstm") == "lower"
    if near_solved and far_lost:
        return numbers, (f"holds only when the pooling keeps apart what the convolutions' field ({field} steps) "
                         f"cannot see together: the order of events {gap} steps apart is lost in a pool of {pools[-1]}, "
                         "where both events' windows fall in one pooling block (section 5 gives the smaller pools)")
    if near_solved:
        return numbers, "holds"
    return numbers, "does not hold"


TIMING_MARGIN = 1.25  # the least ratio of two step times that claims 4 and 7 read as a difference


def time_margin(repeat_ratio: float) -> float:
    """The ratio two step times, each timed once, must exceed to count as different: ``TIMING_MARGIN``,
    or ``repeat_ratio`` (larger over smaller of two timings of one model in the same run) if that is larger.
    Lessons 03 and 04 read every time ratio by it."""
    if repeat_ratio < 1:
        raise ValueError(f"a repeat ratio is the larger timing over the smaller, so it is >= 1; got {repeat_ratio}")
    return max(TIMING_MARGIN, repeat_ratio)


def ratio_reading(ratio: float, margin: float = TIMING_MARGIN) -> str:
    """The one timing rule for a ratio of two timings (or of a timing ratio to a predicted one):
    "above" beyond ``margin``, "below" beyond 1 / ``margin``, otherwise "within" (not told apart)."""
    if not 0 < ratio < math.inf or margin < 1:
        raise ValueError(f"expected a positive, finite ratio and a margin >= 1, got {ratio} and {margin}")
    return "above" if ratio > margin else "below" if ratio < 1 / margin else "within"


def exponent_margin(lengths: Sequence[int], margin: float = TIMING_MARGIN) -> float:
    """How far a growth exponent read from the two longest lengths (``sequence.growth_exponent``) can
    move by timing noise. The exponent is log(ratio of the two timings) / log(T_last / T_before), and a
    ratio of two timings counts only beyond ``margin`` (``time_margin``: the course's margin, or the ratio
    between two timings of one model in the run if that is larger, which is itself a ratio of two single
    timings), so the exponent is uncertain by log(margin) / log(T_last / T_before). A difference of two
    exponents, which rests on two such ratios, counts only beyond twice this."""
    if margin < 1:
        raise ValueError(f"a timing margin is a ratio >= 1, got {margin}")
    before, last = sorted(lengths)[-2:]
    return math.log(margin) / math.log(last / before)


def repeat_ratio(m: Mapping[str, Any]) -> float:
    """How far two timings of one model differed in lesson 03's run: the largest of section 5's repeats
    (``timing_repeat_ratio``) and, where recorded, section 4's repeat of the LSTM without its fused kernel
    (``timing_repeat_ratio_unfused``). Every timing verdict reads timings against this one ratio."""
    ratios = [recorded(m, "timing_repeat_ratio")]
    if "timing_repeat_ratio" + UNFUSED in m:
        ratios.append(recorded(m, "timing_repeat_ratio" + UNFUSED))
    return max(ratios)


def timing_margin(m: Mapping[str, Any]) -> float:
    """``time_margin`` of lesson 03's ``repeat_ratio``."""
    return time_margin(repeat_ratio(m))


def on_the_edge(ratio: float, margin: float, repeat_ratio: float) -> bool:
    """Whether a ratio of two step times lies so close to ``margin`` that a timing moved by the run's
    own repeat spread could put it on the other side: ratio and margin differ by less than
    ``repeat_ratio`` (larger over smaller of two timings of one model), a factor at least 1.01 so that
    a ratio within 1% of the margin always counts as on its edge. A ratio below 1 is read against
    1 / ``margin``, the bound ``ratio_reading`` gives that side."""
    if not 0 < ratio < math.inf or margin < 1 or repeat_ratio < 1:
        raise ValueError(f"expected a positive ratio, a margin >= 1 and a repeat ratio >= 1, got {ratio}, "
                         f"{margin} and {repeat_ratio}")
    size = max(ratio, 1 / ratio)
    return max(size, margin) / min(size, margin) < max(repeat_ratio, 1.01)


def _edge_words(m: Mapping[str, Any]) -> str:
    """Why a ratio on the margin's edge is not read either way, in the run's own numbers."""
    return (f"one model's step, timed twice in this run, moved by {repeat_ratio(m):.2f}x, more "
            "than the distance to the margin, so the verdict reads neither a difference nor its absence")


def _clearly_above(ratio: float, m: Mapping[str, Any]) -> bool:
    """Whether a ratio of two step times counts as a difference in a lesson-03 verdict: beyond
    ``timing_margin`` and not on its edge (``on_the_edge``)."""
    margin = timing_margin(m)
    return ratio > margin and not on_the_edge(ratio, margin, repeat_ratio(m))


def _edge_note(m: Mapping[str, Any], ratios: Mapping[str, float]) -> str:
    """A note for each named ratio of step times that lies on the timing margin's edge (``on_the_edge``):
    the verdict does not count it as a difference either way. Empty when none does."""
    margin, repeat = timing_margin(m), repeat_ratio(m)
    close = {name: ratio for name, ratio in ratios.items() if on_the_edge(ratio, margin, repeat)}
    bounds = f"the {margin:.2f}x margin" + (f" (1/{margin:.2f} = {1 / margin:.3f} for a ratio below 1)"
                                           if any(ratio < 1 for ratio in close.values()) else "")
    return (f" (on the edge: {', '.join(f'{name} {ratio:.3f}' for name, ratio in close.items())} against {bounds}; "
            f"{_edge_words(m)})" if close else "")


UNFUSED = "_unfused"  # suffix of a lesson-03 cost measured again with nn.LSTM run without its fused kernel
FUSED = "PyTorch's fused oneDNN LSTM kernel"  # on by default on a CPU: nn.LSTM as one node; nn.GRU has none


def with_unfused_lstm(m: Mapping[str, Any]) -> dict[str, Any]:
    """Lesson 03's metrics with every cost that section 4 measured a second time with each ``nn.LSTM``
    run without its fused oneDNN kernel (``timing.unfused_lstm``; recorded as ``<name>_unfused``) in place
    of the default measurement, and ``repeat_ratio`` as the repeat ratio; every other
    metric unchanged. On a CPU, PyTorch runs ``nn.LSTM`` as one fused oneDNN node by default and ``nn.GRU``
    as separate operations (lesson 02 counts the nodes), so what an LSTM keeps for the backward pass and how
    long its step takes depend on that kernel."""
    twins = {key[:-len(UNFUSED)] for key in m if key.endswith(UNFUSED)}
    if not twins:
        raise KeyError(f"the verdicts need the costs measured without the fused LSTM kernel (metrics named "
                       f"<name>{UNFUSED}), and none was recorded")
    unfused = {key: (m[key + UNFUSED] if key in twins else value) for key, value in m.items() if not key.endswith(UNFUSED)}
    if "timing_repeat_ratio" in m:  # both runs read their timings against the run's one repeat ratio
        unfused["timing_repeat_ratio"] = repeat_ratio(m)
    return unfused


def _reading(verdict: str) -> str:
    """A verdict's words without its numbers: two verdicts of one rule read alike when these agree."""
    return re.sub(r"\d[\d,.]*", "#", verdict)


def _head(verdict: str) -> tuple[str, str]:
    """A verdict's conclusion (up to its first colon) and the rest, which gives the details."""
    head, colon, rest = verdict.partition(":")
    return head, colon + rest


def _on_both_kernels(rule: Callable[[Mapping[str, Any]], tuple[str, str]]) -> Callable[[Mapping[str, Any]], tuple[str, str]]:
    """A cost rule applied twice: to the costs measured with the fused LSTM kernel (PyTorch's default) and
    to the same costs with every LSTM's measured again without it (``with_unfused_lstm``). Two verdicts
    read alike when their words agree (not only their numbers: ``_reading``). Where their conclusions (up
    to the first colon) differ, the claim is inconclusive as a claim about the architectures and the
    verdict gives both, so that no ranking of LSTMs is credited to the architecture when it belongs to one
    kernel; where only their details differ, the verdict gives the conclusion once and both details."""
    @functools.wraps(rule)  # inspect.getsource shows the rule itself
    def judged(m: Mapping[str, Any]) -> tuple[str, str]:
        numbers, on = rule(m)
        off_numbers, off = rule(with_unfused_lstm(m))
        numbers += f"; the models with an LSTM timed again without its fused kernel: {off_numbers}"
        if _reading(off) == _reading(on):
            return numbers, on + " (the same reading without the fused LSTM kernel, with its own numbers)"
        (on_head, on_rest), (off_head, off_rest) = _head(on), _head(off)
        if _reading(on_head) == _reading(off_head):
            return numbers, (f"{on_head}, with {FUSED} and without it; the details differ: with it{on_rest or ''}. "
                             f"Without it{off_rest or ''}")
        return (numbers,
                f"inconclusive as a claim about the architectures: it depends on {FUSED} (on by default on a CPU). "
                f"With it: {on}. Without it: {off}")
    return judged


_NARROWER = (f"; the CNN-LSTM's LSTM is narrower ({RECURRENT_UNITS['cnn_lstm']} units against the LSTM's "
             f"{RECURRENT_UNITS['lstm']}), so a saving without pooling is not the convolutions' alone")


def _claim_4(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    ms = {name: recorded(m, f"ms_per_step_{name}_T{t}_threads1") for name in ("lstm", "cnn_lstm", "cnn_lstm_nopool")}
    mb = {name: recorded(m, f"saved_mb_{name}_T{t}") for name in ms}
    numbers = (f"T={t}, one thread: ms per step LSTM {ms['lstm']:.0f}, CNN-LSTM (pool 4) {ms['cnn_lstm']:.0f}, "
               f"without pooling {ms['cnn_lstm_nopool']:.0f}; saved MB {mb['lstm']:.1f}, {mb['cnn_lstm']:.1f}, "
               f"{mb['cnn_lstm_nopool']:.1f}; parameters of these timed models LSTM "
               f"{int(recorded(m, 'cost_parameters_lstm')):,}, CNN-LSTM {int(recorded(m, 'cost_parameters_cnn_lstm')):,}; "
               f"one timing each, and two timings of the "
               f"same model differed by {repeat_ratio(m):.2f}x")
    faster, smaller = _clearly_above(ms["lstm"] / ms["cnn_lstm"], m), mb["cnn_lstm"] < mb["lstm"]
    margin = timing_margin(m)
    nopool_faster = _clearly_above(ms["lstm"] / ms["cnn_lstm_nopool"], m)
    nopool_wins = nopool_faster and mb["lstm"] > mb["cnn_lstm_nopool"]  # memory: exact
    edge = _edge_note(m, {"LSTM / CNN-LSTM": ms["lstm"] / ms["cnn_lstm"],
                          "LSTM / CNN-LSTM without pooling": ms["lstm"] / ms["cnn_lstm_nopool"]})
    numbers += edge
    if faster and smaller:
        if nopool_wins:
            return numbers, "holds" + _NARROWER
        ratio = ms["lstm"] / ms["cnn_lstm_nopool"]
        speed = (f"{ratio:.2f}x faster than the LSTM" if nopool_faster else
                 f"not faster than the LSTM ({1 / ratio:.2f}x its time, one timing each)" if ratio < 1 else
                 f"not clearly faster than the LSTM ({ratio:.2f}x, against the {margin:.2f}x margin)")
        nopool_smaller = mb["lstm"] > mb["cnn_lstm_nopool"]
        size = f"{mb['lstm'] / mb['cnn_lstm_nopool']:.2f}x smaller" if nopool_smaller else "not smaller"
        return numbers, (f"holds only when the pooling shortens the sequence: without pooling the CNN-LSTM is {speed} "
                         f"{'but' if nopool_faster != nopool_smaller else 'and'} {size} (at T={t} only)"
                         + (_NARROWER if nopool_faster or nopool_smaller else ""))
    if faster or smaller:
        return numbers, f"holds only for {'time' if faster else 'memory'}, not for {'memory' if faster else 'time'}"
    return numbers, "does not hold"


def _route_words(m: Mapping[str, Any], total: str) -> str:
    """The pretrained route's steps (pretraining counted) against training from scratch, with its direction."""
    route, scratch = recorded(m, "pretrained_total_steps_mean"), recorded(m, "scratch_steps_mean")
    if total == "higher":
        return "longer"
    direction = ("longer on average" if route > scratch else "shorter on average" if route < scratch
                 else "as long on average")
    return f"{direction} ({route:.0f} against {scratch:.0f} steps), within the spread"


def _claim_5(m: Mapping[str, Any]) -> tuple[str, str]:
    after = int(recorded(m, "pretrain_compare_steps"))
    numbers = (f"steps to {SOLVED} validation accuracy (validation once per epoch of {after} steps, so steps come in "
               f"multiples of {after}): CNN copied from the short-k model {_mean_pm_sd(m, 'pretrained_steps', 0)}, from "
               f"scratch {_mean_pm_sd(m, 'scratch_steps', 0)}; the short-k model's own training, until section 2's stopping "
               f"rule (an accuracy stricter than {SOLVED}: the copied CNN is the one it ended with), "
               f"{_mean_pm_sd(m, 'pretrain_source_steps', 0)} steps, so the whole pretrained route took "
               f"{_mean_pm_sd(m, 'pretrained_total_steps', 0)}; accuracy after {after} steps: "
               f"{_mean_pm_sd(m, 'pretrained_acc_after')} vs {_mean_pm_sd(m, 'scratch_acc_after')}")
    steps = compare(m, "pretrained_steps", "scratch_steps", floor=1.0)
    total = compare(m, "pretrained_total_steps", "scratch_steps", floor=1.0)
    accuracy = compare(m, "pretrained_acc_after", "scratch_acc_after")
    near, far, field = distances(m)[0], distances(m)[-1], int(recorded(m, "window_conv_field"))
    span = ("both content symbols at both distances, so for them the two tasks look alike, the most favourable "
            "case for a transfer" if field >= far + 1 else
            f"both content symbols at k={near} but not at k={far}" if field >= near + 1 else
            "one content symbol at a time at either distance, so for them the two tasks look alike, the most "
            "favourable case for a transfer")
    source = ("; the convolutions come from the same task at a shorter distance, not from other data, which this "
              f"lesson does not test; they see {field} steps, which span {span}; the pretraining is charged one step "
              f"per step, although its sequences are shorter (k={near} against k={far}), and it lasts as long as "
              "section 2's stopping rule lets it, a length this lesson does not vary")
    if steps == "higher" or accuracy == "lower":
        return numbers, "does not hold" + source
    if steps == "lower" and total == "lower":
        return numbers, "holds only for transfer within one task family: it is faster even counting the pretraining" + source
    if steps == "lower":
        return numbers, ("holds only when the pretraining is already paid for: counting its steps, the pretrained "
                         f"route is {_route_words(m, total)}" + source)
    if accuracy == "higher":
        return numbers, ("holds only for the accuracy after equal steps; the steps to the target are within the spread"
                         + source)
    return numbers, "inconclusive: both differences lie within the run-to-run spread" + source


def _claim_6(m: Mapping[str, Any]) -> tuple[str, str]:
    far = distances(m)[-1]
    pools, crossover = _window(m)
    distance = compare(m, f"cnn_lstm_acc_k{far}", f"lstm_acc_k{far}")
    numbers = (f"pair task k={far}: CNN-LSTM (pool 4) {_mean_pm_sd(m, f'cnn_lstm_acc_k{far}')}, LSTM "
               f"{_mean_pm_sd(m, f'lstm_acc_k{far}')}; order task: LSTM {_mean_pm_sd(m, 'window_acc_lstm')}, CNN-LSTM by pool " +
               ", ".join(f"{p}: {recorded(m, f'window_acc_pool{p}_mean'):.2f}" for p in pools))
    resolution = (f"; what the CNN-LSTM does lose is the order of two events that fall into one pooling window and "
                  f"lie farther apart than its convolutions' field (on the order task, events "
                  f"{int(recorded(m, 'window_gap'))} steps apart with a field of {int(recorded(m, 'window_conv_field'))} "
                  f"steps, from pool {crossover} on, while events {int(recorded(m, 'window_near_gap'))} steps apart kept "
                  f"{recorded(m, 'window_near_acc_mean'):.2f} at pool {pools[-1]}): "
                  "a loss of resolution inside one pool, not of reach over a distance, so it counts neither for nor "
                  "against this claim" if crossover else "")
    if distance == "lower":
        return numbers, f"holds: at k={far} the CNN-LSTM is lower than the LSTM on the pair task" + resolution
    if distance == "higher":
        return numbers, f"does not hold: at k={far} the CNN-LSTM is higher than the LSTM on the pair task" + resolution
    ceiling = all(recorded(m, f"{name}_acc_k{far}_mean") >= SOLVED for name in ("cnn_lstm", "lstm"))
    far_words = (f"both solve the pair task at k={far} (mean accuracy >= {SOLVED}), a ceiling at which this task "
                 "cannot tell them apart, and no longer distance was tried" if ceiling else
                 f"at k={far} the pair task does not tell them apart beyond the spread")
    return numbers, "inconclusive at the distances tried: " + far_words + resolution


def _best_step_ms(m: Mapping[str, Any], name: str, t: int) -> tuple[float, bool]:
    """A model's step time at length ``t`` for claim 7: the faster of its one-thread and all-thread timings
    (the best this machine gave it), and whether the all-thread one was the slower, which a second thread
    does on a shared machine when the threads wait for each other or for other jobs."""
    one, every = (recorded(m, f"ms_per_step_{name}_T{t}_threads{threads}") for threads in ("1", "all"))
    return min(one, every), every > one


def _claim_7(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    best = {name: _best_step_ms(m, name, t) for name in ("lstm", "cnn", "tcn", "attention")}
    ms = {name: step for name, (step, _) in best.items()}
    slowed = [MODEL_LABELS[name] for name, (_, slower) in best.items() if slower]
    growth = {name: recorded(m, f"growth_ms_{name}") for name in ("lstm", "tcn", "attention")}
    numbers = (f"T={t}, ms per step, the faster of one thread and all threads: LSTM {ms['lstm']:.0f}, CNN "
               f"{ms['cnn']:.0f}, TCN {ms['tcn']:.0f}, attention {ms['attention']:.0f}"
               + (f" (all threads were slower than one for {_the_list(slowed)}, so its one-thread time is used)"
                  if slowed else "") +
               f"; growth exponent of the one-thread time (1 = linear in T): LSTM "
               f"{growth['lstm']:.2f}, TCN {growth['tcn']:.2f}, attention {growth['attention']:.2f}")
    margin = timing_margin(m)
    numbers += (f"; one timing each: a difference counts beyond {margin:.2f}x (two timings of the same model "
                f"differed by {repeat_ratio(m):.2f}x)")
    ratios = {name: ms["lstm"] / ms[name] for name in ("cnn", "tcn", "attention")}
    at = (f" (judged by the time of one training step at T={t}, the longest length timed, not by the time to reach an "
          "accuracy; at shorter lengths the table may rank the models otherwise)"
          + _edge_note(m, {f"LSTM / {MODEL_LABELS[n]}": ratio for n, ratio in ratios.items()}))
    slower_than = {name: _clearly_above(ratio, m) for name, ratio in ratios.items()}
    repeat = repeat_ratio(m)
    edge = [name for name, ratio in ratios.items() if on_the_edge(ratio, margin, repeat)]
    if slower_than["cnn"] and slower_than["tcn"]:
        if slower_than["attention"]:
            return numbers, "holds" + at
        spread = 2 * exponent_margin(_suffixes(m, "saved_mb_lstm_T"), margin)  # two exponents, two ratios of timings
        difference = growth["attention"] - growth["lstm"]
        grows = (f"; its one-thread time grows faster with T (exponent {difference:.2f} higher, beyond the "
                 f"{spread:.2f} two exponents can differ by timing noise)" if difference > spread else
                 f"; its one-thread time grows more slowly with T (exponent {-difference:.2f} lower, beyond "
                 f"{spread:.2f})" if -difference > spread else
                 f"; whether its one-thread time grows faster with T cannot be told (exponents {difference:+.2f} "
                 f"apart, within the {spread:.2f} timing noise allows)")
        pace = ("slower" if _clearly_above(1 / ratios["attention"], m) else
                "not told apart from the LSTM (on the margin's edge)" if "attention" in edge else "about as slow")
        return numbers, f"holds only against convolutions: at T={t} self-attention is {pace}{grows}" + at
    # on the edge above 1 only: a ratio near 1 / margin says "faster or level", and either way the claim fails
    unsettled = [name for name in ("cnn", "tcn") if not slower_than[name] and name in edge and ratios[name] > 1]
    if unsettled and all(slower_than[name] or name in edge for name in ("cnn", "tcn")):
        return numbers, (f"inconclusive: against {_the_list([MODEL_LABELS[n] for n in unsettled])} the LSTM's step "
                         "lies on the edge of the timing margin" + at)
    return numbers, "does not hold" + at


FITS = 0.95  # the training accuracy from which a train-test gap reads as overfitting (claim 8): this
# course's choice, not a published standard; FITS_SOURCE says so wherever the lesson states it
FITS_SOURCE = "a threshold this lesson chooses, not a published standard"


def _claim_8(m: Mapping[str, Any]) -> tuple[str, str]:
    lstm_layer, conv_layer = recorded(m, "lstm_layer_parameters"), recorded(m, "conv_layer_parameters")
    gaps = {name: compare(m, "rows_gap_lstm", f"rows_gap_{name}") for name in ("cnn", "tcn")}
    compared = ("lstm", "cnn", "tcn")
    numbers = (f"one layer 64 -> 64: LSTM {lstm_layer:,.0f}, convolution (kernel 5) {conv_layer:,.0f} parameters; "
               "Fashion-MNIST rows, train-test accuracy gap: " +
               ", ".join(f"{MODEL_LABELS[name]} {_mean_pm_sd(m, f'rows_gap_{name}', 3)}" for name in compared)
               + "; training accuracy: " + ", ".join(f"{MODEL_LABELS[name]} {_mean_pm_sd(m, f'rows_train_acc_{name}', 3)}"
                                                  for name in compared)
               + "; the compute part of the claim is read in claim 7")
    more = lstm_layer > conv_layer
    underfit = [MODEL_LABELS[name] for name in compared if recorded(m, f"rows_train_acc_{name}_mean") < FITS]
    if more and underfit:
        return numbers, (f"holds only for parameters at equal width and kernel 5; \"overfits easily\" is inconclusive: "
                         f"{', '.join(underfit)} did not fit the training images within this run's training budget "
                         f"(training accuracy below {FITS}, {FITS_SOURCE}), so their train-test gaps can show neither "
                         "overfitting nor its absence, and this experiment does not test that part of the claim; "
                         "compute is claim 7's")
    if more and all(g == "higher" for g in gaps.values()):
        return numbers, "holds"
    if more and any(g == "lower" for g in gaps.values()):
        return numbers, ("holds only for parameters at equal width: the LSTM's train-test gap is lower than "
                         "a CNN's")
    if more:
        return numbers, ("holds only for parameters at equal width: the train-test gaps lie within the "
                         "run-to-run spread")
    return numbers, "does not hold"


def _claim_9(m: Mapping[str, Any]) -> tuple[str, str]:
    far, t = distances(m)[-1], _longest(m)
    tasks = {f"pair k={far}": f"acc_k{far}", "order task": "window_acc", "Fashion rows": "rows_test_acc"}
    pairs = {"pair": (f"gru_acc_k{far}", f"lstm_acc_k{far}"), "order": ("window_acc_gru", "window_acc_lstm"),
             "rows": ("rows_test_acc_gru", "rows_test_acc_lstm")}
    outcome = {task: compare(m, *names) for task, names in pairs.items()}
    numbers = (f"GRU vs LSTM: parameters of the pair-task models {int(recorded(m, 'parameters_gru')):,} vs "
               f"{int(recorded(m, 'parameters_lstm')):,}; ms per step at T={t} (one thread, the timed models of "
               f"{int(recorded(m, 'cost_parameters_gru')):,} vs {int(recorded(m, 'cost_parameters_lstm')):,} parameters) "
               f"{recorded(m, f'ms_per_step_gru_T{t}_threads1'):.0f} vs {recorded(m, f'ms_per_step_lstm_T{t}_threads1'):.0f}, "
               f"the LSTM without its fused kernel {recorded(m, f'ms_per_step_lstm_T{t}_threads1{UNFUSED}'):.0f}; accuracy " +
               ", ".join(f"{label}: {_mean_pm_sd(m, a)} vs {_mean_pm_sd(m, b)}" for label, (a, b) in zip(tasks, pairs.values())))
    gru_wins = [task for task, o in outcome.items() if o == "higher"]
    lstm_wins = [task for task, o in outcome.items() if o == "lower"]
    untested = ("; one shared learning rate per task, the GRU widened to near the LSTM's parameters, and the "
                "bidirectional LSTM is not tested here (lesson 05 uses one)")
    if gru_wins and lstm_wins:
        return numbers, (f"holds for the GRU and the LSTM: the GRU is higher on {', '.join(gru_wins)}, the LSTM on "
                         f"{', '.join(lstm_wins)}" + untested)
    if gru_wins or lstm_wins:
        better, where = ("GRU", gru_wins) if gru_wins else ("LSTM", lstm_wins)
        tied = [task for task in outcome if task not in where]
        return numbers, (f"inconclusive: the {better} is higher on {', '.join(where)} and the two lie within the "
                         f"run-to-run spread on {', '.join(tied)}; \"different tasks\" would need a task on which each "
                         "is higher, and these three tasks, two of them easy, show none" + untested)
    return numbers, ("inconclusive: on these tasks the GRU's accuracy lies within the LSTM's run-to-run spread"
                     + untested)


def crossover_pool(pools: list[int], outcomes: list[str]) -> int:
    """The smallest pool from which on the CNN-LSTM is "lower" than the LSTM at *every* larger pool too,
    or 0 if there is none. outcomes[i] is ``compare``'s answer for pools[i] (increasing). A pool that is
    lower while a larger pool is not (a seed that failed to train) is not a crossover.

    Introduced in lesson 03."""
    if list(pools) != sorted(pools) or len(pools) != len(outcomes):
        raise ValueError(f"expected increasing pools and one outcome each, got {pools} and {outcomes}")
    crossover = 0
    for pool, outcome in zip(reversed(pools), reversed(outcomes)):
        if outcome != "lower":
            break
        crossover = pool
    return crossover


def _the_list(labels: Sequence[str]) -> str:
    """'the A', 'the A and the B', 'the A, the B and the C'."""
    named = [f"the {label}" for label in labels]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]


def _claim_10(m: Mapping[str, Any]) -> tuple[str, str]:
    t, far = _longest(m), distances(m)[-1]
    names = ("cnn", "lstm", "gru", "cnn_lstm", "tcn", "attention")
    mb = {name: recorded(m, f"saved_mb_{name}_T{t}") for name in names}
    ms = {name: recorded(m, f"ms_per_step_{name}_T{t}_threads1") for name in names}
    _, crossover = _window(m)
    numbers = (f"T={t}, saved MB / ms per step (one thread): " +
               ", ".join(f"{MODEL_LABELS[n]} {mb[n]:.0f} / {ms[n]:.0f}" for n in names) +
               f"; order task: the CNN-LSTM falls below the LSTM from pool {crossover or 'none'}; "
               "the amount of data is not varied here")
    if not (mb["cnn_lstm"] < mb["lstm"] and _clearly_above(ms["lstm"] / ms["cnn_lstm"], m)):
        return numbers, "does not hold" + _edge_note(m, {"LSTM / CNN-LSTM": ms["lstm"] / ms["cnn_lstm"]})
    condition = (f"the task's order survives the pooling (the CNN-LSTM fell below the LSTM from pool {crossover} on)"
                 if crossover else "")
    others = [n for n in names if n != "cnn_lstm"]
    margin = timing_margin(m)
    leaner = [n for n in others if mb[n] < mb["cnn_lstm"]]  # memory is counted exactly: any difference counts
    quicker = [n for n in others if _clearly_above(ms["cnn_lstm"] / ms[n], m)]  # time only beyond the timing margin
    repeat = repeat_ratio(m)
    edge = [n for n in others if n not in quicker and ms["cnn_lstm"] > ms[n]
            and on_the_edge(ms["cnn_lstm"] / ms[n], margin, repeat)]  # faster, but too close to the margin to rule out
    rivals = [n for n in others if n in leaner or n in quicker or n in edge]
    if not rivals:
        return numbers, (f"holds only when {condition}" if condition else "holds")
    # the LSTM is always beaten: the first test above requires it
    beaten = [MODEL_LABELS[n] for n in others if n not in rivals and mb[n] > mb["cnn_lstm"]]
    against = f"holds only against {_the_list(beaten)} (more memory, and not faster by the timing margin)"
    described = []
    for n in rivals:
        fails = []
        if recorded(m, f"{n}_acc_k{far}_mean") < SOLVED:
            fails.append(f"{recorded(m, f'{n}_acc_k{far}_mean'):.2f} on the pair task at k={far}")
        if f"window_acc_{n}_mean" in m and recorded(m, f"window_acc_{n}_mean") < SOLVED:
            fails.append(f"{recorded(m, f'window_acc_{n}_mean'):.2f} on the order task")
        solved = [f"the pair task at k={far}"] + (["the order task"] if f"window_acc_{n}_mean" in m else [])
        edges = ([f"keeps less memory ({mb[n]:.0f} MB vs {mb['cnn_lstm']:.0f})"] if n in leaner else []) + (
            [f"is faster by the timing margin ({ms[n]:.0f} vs {ms['cnn_lstm']:.0f} ms per step)"] if n in quicker else
            [f"is {ms['cnn_lstm'] / ms[n]:.3f}x faster ({ms[n]:.0f} vs {ms['cnn_lstm']:.0f} ms per step), on the edge "
             f"of the {margin:.2f}x timing margin ({_edge_words(m)})"] if n in edge else [])
        described.append(f"the {MODEL_LABELS[n]} " + " and ".join(edges)
                         + (f" and reaches only {' and '.join(fails)}" if fails
                            else f" and solves {' and '.join(solved)} too"))
    return numbers, (against + (f", and only when {condition}" if condition else "") + ": " + "; ".join(described))


_KERNEL_RULE = ("The rule is applied twice, to the costs measured with PyTorch's default kernels (on a CPU, oneDNN "
                "runs nn.LSTM as one fused kernel) and with every LSTM run without that fused kernel (the other "
                "layers unchanged); if the two conclusions differ, the claim is inconclusive as a claim about the "
                "architectures, and the verdict gives both.")


def rule_statement(claim: int) -> str:
    """The rule of claim `claim` (1-10) in words, written from the same constants the rule applies, for
    the lesson to render before the numbers. Introduced in lesson 03."""
    margin = (f"each configuration is timed once, so a time ratio counts only beyond {TIMING_MARGIN}x and beyond the "
              "ratio between two timings of the same model in this run (`timing_margin`), and not when it lies so "
              "close to that margin that the same repeat spread could move it across (`on_the_edge`)")
    statements = {
        1: ("Claim 1 does not hold if the LSTM does not solve the longest k, or if the plain CNN's accuracy does not "
            "follow its receptive field (it must solve the shortest k, inside its field, and not the longest, outside "
            "it). Otherwise it holds only for a CNN whose receptive field is shorter than the dependency if the "
            "dilated CNN (TCN), whose field is longer, also solves the longest k, or if a causal CNN with masking "
            "takes a padded batch exactly as it takes one sequence at a time (every output within "
            f"{EXACT:.0e} of it, as the packed LSTM's must be too): then a CNN takes variable-length sequences as well, "
            "though it carries context only within its receptive field. Otherwise it holds. A model *solves* a task "
            f"at mean accuracy >= {SOLVED}. Every task here is a synthetic sequence: the claim's examples (images, "
            "text, audio) are not tested in this lesson (lesson 01 runs a CNN on images)."),
        3: ("Claim 3 holds only when the pooling keeps apart what the convolutions' receptive field cannot see "
            "together if, at the largest pool, the CNN-LSTM solves the near control (events inside that field) and is "
            "lower than the LSTM on the far order (`compare`); it holds if it solves the near control and keeps the far order too; it does not "
            "hold if it fails the near control."),
        6: ("Claim 6 is about distance, so it is judged on the pair task at the longest k: it holds if the CNN-LSTM "
            "(pool 4) is lower than the LSTM there (`compare`), does not hold if it is higher, and is inconclusive at "
            "the distances tried if the two lie within the spread (the verdict says whether both solve it, a ceiling "
            "at which the task cannot tell them apart). Where the order task has a crossover, the verdict adds it: "
            "order lost inside one pooling window is a loss of resolution, not of reach, and counts neither for "
            "nor against the claim."),
        2: ("Claim 2 does not hold if even the chrono-initialised LSTM's untrained gradient ratio does not exceed the "
            "plain RNN's by more than 2 orders of magnitude and the spread (`compare`; the floor of 2 orders is this "
            "lesson's choice, to stand clear of the seeds' scatter). Otherwise it is inconclusive: the plain RNN is "
            "never trained here (nor given an identity or orthogonal start), so no run compares the gates with the RNN "
            "in learning. The verdict then reports the untrained gradients with both initialisations, and whether the "
            f"LSTM trained from PyTorch's default init and with chrono init solves the longest k (mean accuracy >= "
            f"{SOLVED}), and, where only the chrono LSTM does, whether a third or three times the rate lets the default "
            "init reach it (seed 0): that says whether the initialisation, at those rates, decides learning. Exploding gradients are not tested "
            "(every run clips the gradient norm), so the verdict is about vanishing gradients only."),
        4: (f"Claim 4 holds if, at the longest T on one thread, the CNN-LSTM's training step (forward and backward on "
            f"one batch; not the time to reach an accuracy) is faster than the LSTM's and it keeps less "
            f"memory ({margin}); it holds only when the pooling shortens the sequence if the CNN-LSTM without pooling "
            "is not both faster by that margin and smaller than the LSTM (memory is counted exactly, in bytes of saved "
            "tensors, so any difference counts). " + _KERNEL_RULE),
        7: (f"Claim 7 holds if the LSTM's training step (forward and backward on one batch; not the time to reach an "
            f"accuracy) is slower than both CNNs' and than attention's ({margin}); each model's step is the faster "
            "of its one-thread and all-thread timings, so that a second thread that slowed a step on this shared "
            "machine is not counted against the model. It holds only against convolutions if attention is not "
            "faster; it is inconclusive if against each CNN the LSTM's step is slower, beyond the margin or by a "
            "ratio on its edge, and on the edge against at least one. Whether attention's time grows faster with T is read from the growth exponents. "
            + _KERNEL_RULE),
        5: (f"We count the training steps until the validation accuracy first reaches {SOLVED} (a run that never does "
            "counts as its whole budget); validation runs once per epoch, so a count is a whole number of epochs. "
            "The pretrained route is charged the steps its source model trained as well. The claim does not hold if "
            "the copied convolutions need more steps or are worse after the first epoch; it holds only for transfer "
            "within one task family if they need fewer steps even counting the pretraining, and only when the "
            "pretraining is already paid for if they need fewer steps only without it; it holds only for the accuracy "
            "after equal steps if only that is higher; inconclusive if both differences lie within the spread. The source is the same task at a shorter distance, so a CNN "
            "pretrained on other data is not tested."),
        8: (f"Claim 8 holds if an LSTM layer has more parameters than a convolution of the same width (kernel 5) and "
            f"the LSTM's train-test gap is higher than both CNNs' (`compare`). If any of the three stays below a "
            f"training accuracy of {FITS} ({FITS_SOURCE}: a model that does not fit its training set has not yet had the "
            "chance to overfit it), the gaps cannot show overfitting or its absence, and \"overfits easily\" "
            "is inconclusive: the experiment then does not test that part of the claim. The compute part of the claim is claim 7's."),
        9: ("Claim 9 compares the GRU with the LSTM on the pair task at the long k, the order task and the rows "
            "(`compare`). \"Suit different tasks\" holds only if each is higher on some task; otherwise it is "
            "inconclusive (three tasks, two of them easy, cannot show that no task suits one better). The bidirectional LSTM is not tested in this lesson."),
        10: ("Claim 10 holds if the CNN-LSTM is faster than the LSTM (by the timing margin of claim 4) and keeps less "
             "memory at the longest T, and no other model keeps less memory or is faster by that margin (memory is "
             "counted exactly, in bytes of saved tensors, so any difference counts; time only beyond the margin); if "
             "another does, the claim holds only against the models that keep more memory and are not faster by that "
             f"margin, and the verdict names each model that keeps less or is faster, and what it fails (accuracy below {SOLVED} on the pair task at the long k or on the order "
             "task); it holds only while the order survives the pooling if the order task has a crossover (the "
             "verdict names the crossover pool; smaller pools are not thereby shown safe). The "
             "amount of data is not varied, so the \"large data\" part is not tested. " + _KERNEL_RULE),
    }
    if claim not in statements:
        raise KeyError(f"claims are numbered 1 to 10, got {claim!r}")
    return statements[claim]


def crossover_statement() -> str:
    """How the order task's crossover is defined (``crossover_pool``), in words. Introduced in lesson 03."""
    return ("The *crossover* is the smallest pool from which on the CNN-LSTM's accuracy is lower than the LSTM's "
            "(`compare`) at that pool and at every larger pool (`crossover_pool`): a pool where a seed failed to "
            "train while a larger pool is solved is not a crossover.")

def gru_speed_sentence(gru_ms: Mapping[int, float], lstm_ms: Mapping[int, float], gru_macs: int, lstm_macs: int,
                       margin: float, gru_speedup: float, threads: int, fused: bool = True) -> str:
    """The GRU's one-thread step time against the LSTM's at every sequence length T timed
    (``gru_ms`` / ``lstm_ms``: {T: ms per step}), beside the multiply-adds per step of their recurrent
    layers (``sequence.recurrent_multiply_adds``). A time ratio counts only beyond ``margin``
    (``timing_margin``). The time ratio is said to match the arithmetic only if it does at every T.
    The sentence never names a cause it did not measure. ``gru_speedup``: one thread's time over
    ``threads`` threads' time at the longest T; below 1 / ``margin`` it says the GRU got slower.
    ``fused``: whether the LSTM ran with PyTorch's fused oneDNN kernel (the default on a CPU; nn.GRU has
    none and runs as separate operations) or without it (``timing.unfused_lstm``); lesson 03 prints both.

    Introduced in lesson 03."""
    lengths = sorted(gru_ms)
    if (not lengths or sorted(lstm_ms) != lengths or min(*gru_ms.values(), *lstm_ms.values(), gru_macs, lstm_macs) <= 0
            or margin < 1 or gru_speedup <= 0):
        raise ValueError(f"expected positive times at the same lengths, positive counts and a margin >= 1, got "
                         f"{dict(gru_ms)}, {dict(lstm_ms)}, {gru_macs}, {lstm_macs}, {margin}, {gru_speedup}")
    work = gru_macs / lstm_macs
    ratio = {t: gru_ms[t] / lstm_ms[t] for t in lengths}
    words = {"above": "slower", "below": "faster", "within": "matches"}
    reading = {t: words[ratio_reading(r / work, margin)] for t, r in ratio.items()}
    times = ", ".join(f"{ratio[t]:.2f}x at T={t}" for t in lengths)
    arithmetic = (f"its recurrent layer does {gru_macs:,} multiply-adds per step against the LSTM's {lstm_macs:,} "
                  f"({work:.2f}x, from the weight matrices)")
    state = "with its fused oneDNN kernel (the default)" if fused else "without its fused kernel"
    head = (f"- On one thread, the LSTM {state}, the GRU's step time over the LSTM's was {times} (one timing each), "
            f"and {arithmetic}: ")
    found = set(reading.values())
    if found == {"matches"}:
        sentence = head + f"the time ratio matches the arithmetic within the timing margin ({margin:.2f}x) at every T."
    elif found == {"slower"}:
        sentence = head + ("it is slower than its arithmetic predicts by more than the timing margin at every T"
                           + ("; the next line compares it with the LSTM run without its fused kernel (lesson 02 "
                              "counts the nodes)." if fused else
                              ", against the LSTM without its fused kernel too, so that kernel does not explain all of "
                              "it; this lesson does not measure what does."))
    elif found == {"faster"}:
        sentence = head + ("it is faster than its arithmetic predicts by more than the timing margin at every T, and "
                           "this lesson does not measure why.")
    else:
        words = {"slower": "slower than its arithmetic predicts", "faster": "faster than its arithmetic predicts",
                 "matches": "within the timing margin of its arithmetic"}
        sentence = head + ("the ratio depends on the length: " + "; ".join(
            f"{words[kind]} at T={', '.join(str(t) for t in lengths if reading[t] == kind)}"
            for kind in ("slower", "faster", "matches") if kind in found)
            + f" (timing margin {margin:.2f}x). This lesson does not measure why.")
    if threads > 1 and gru_speedup * margin < 1:
        sentence += (f" On {threads} threads the GRU's step was slower than on one ({gru_speedup:.2f}x, beyond the "
                     "timing margin); one timing each, and this lesson does not measure why.")
    return sentence


def thread_prediction_sentence(speedup: Mapping[str, float], sequential: Sequence[str], parallel: Sequence[str],
                               margin: float, threads: int) -> str:
    """Test the textbook table's prediction that models with sequential steps (``sequential``) gain
    less from ``threads`` threads than fully parallel ones (``parallel``), model by model. A
    speed-up is a ratio of two timings, so it differs from 1 only beyond ``margin``; two speed-ups are
    two such ratios, so they differ only beyond ``margin`` squared. A sequential model agrees with the
    prediction when its speed-up times ``margin`` squared is still below every parallel model's, but it
    is not a slowdown beyond ``margin``: the reasoning behind the prediction (a step waits for the one
    before it) predicts a speed-up near 1x, not a loss, so a model that is slower with more threads is
    reported apart and not counted as support. It contradicts the prediction when its speed-up exceeds
    the lowest parallel one by ``margin`` squared; within that on either side, the timings cannot tell.
    Names no cause.
    Introduced in lesson 03."""
    if not sequential or not parallel or margin < 1:
        raise ValueError("need at least one sequential and one parallel model, and a margin >= 1")
    if threads <= 1:
        return "- With one CPU thread available, this run cannot test what a second thread adds."
    lowest = min(parallel, key=speedup.__getitem__)
    between = margin ** 2  # two speed-ups: two ratios of timings, each counted beyond the margin
    slower = [n for n in sequential if speedup[n] * margin < 1]
    agree = [n for n in sequential if speedup[n] * between < speedup[lowest] and n not in slower]
    against = [n for n in sequential if speedup[n] > speedup[lowest] * between]
    unclear = [n for n in sequential if n not in agree + against + slower]
    def shown(names: list[str]) -> str:
        return ", ".join(f"{n} {speedup[n]:.2f}x" for n in names)

    parts = [(f"- The prediction, tested: the lowest speed-up of a fully parallel model was {lowest}'s "
              f"({speedup[lowest]:.2f}x). Each speed-up is a ratio of two timings, so two speed-ups differ only "
              f"beyond {between:.2f}x (the timing margin, {margin:.2f}x, squared).")]
    if agree:
        parts.append(f"Below it by more than that, as predicted: {shown(agree)}."
                     + (f" A speed-up below 1x but within {margin:.2f}x of it is read as no gain, which is what the "
                        "reasoning predicts, not as a slowdown." if any(round(speedup[n], 2) < 1 for n in agree) else ""))
    if against:
        parts.append(f"Above it by more than that, against the prediction: {shown(against)}.")
    if unclear:
        parts.append(f"Within that of it, above or below, so these timings cannot tell: {shown(unclear)}.")
    if slower:
        parts.append(f"Slower with {threads} threads than with one by more than the timing margin ({margin:.2f}x): "
                     f"{shown(slower)}. The "
                     "prediction expects a smaller gain, not a loss, so a slowdown is not counted as support; it "
                     "points to a cost of the threads themselves that this lesson does not measure.")
    parts.append("Each speed-up rests on one timing per thread count, and this lesson does not split a step into "
                 "its parts, so where the prediction fails it does not say why.")
    return " ".join(parts)


def pool_caveat_sentence(pool: int, accuracies: Sequence[float], crossover: int, near_chance: float) -> str:
    """What the order task says about a CNN-LSTM with pool ``pool`` (the one the cost section timed):
    its accuracy over seeds, how many seeds stayed near chance (below ``near_chance``) there, and
    the crossover (``crossover_pool``; 0 for none). It never calls the model safe while a seed at
    its pool stayed near chance. Introduced in lesson 03."""
    lost = (f"from pool {crossover} on it lost the order" if crossover else "no pool tried lost the order")
    if not accuracies:
        return (f"the order task did not run pool {pool}, the pool timed here, in this mode, so this run does not "
                f"show how safe it is; {lost}.")
    n, stuck = len(accuracies), [a for a in accuracies if a < near_chance]
    mean = sum(accuracies) / n
    spread = f" ± {statistics.stdev(accuracies):.2f}" if n > 1 else ""
    at_pool = f"on the order task with pool {pool}, the pool timed here, it reached {mean:.2f}{spread} over {n} seeds"
    if crossover and pool >= crossover:
        return at_pool + f": that pool already loses the order (the crossover is pool {crossover})."
    if stuck:
        return (at_pool + f", but {len(stuck)} of {n} seeds stayed near chance ("
                + ", ".join(f"{a:.2f}" for a in stuck) + f"), so this run does not show it is safe even below the "
                f"crossover; {lost}.")
    return at_pool + f", every seed above {near_chance}; {lost}."


EXPERIMENTS = {
    1: "pair task at a short and a long distance k; receptive fields; padded batches",
    2: "gradient of the last output with respect to earlier inputs, untrained models; an LSTM trained from "
       "PyTorch's default init at the longest k",
    3: "order task at the largest pool: events inside vs outside the convolutions' field",
    4: "time per step and saved activations at the longest T, with and without pooling, the LSTMs with and without their fused kernel",
    5: "CNN-LSTM whose convolutions come from the pair task at the short k (its training counted), vs from scratch",
    6: "pair task at the long k; order task swept over the pool size",
    7: "time per step at growing T on all threads, the LSTMs with and without their fused kernel; growth exponents",
    8: "parameters of one layer at equal width; train-test gap on Fashion-MNIST rows",
    9: "GRU vs LSTM: parameters, time, accuracy on three tasks",
    10: "saved activations and time at the longest T, the LSTMs with and without their fused kernel; the order task's crossover",
}
RULES = {1: _claim_1, 2: _claim_2, 3: _claim_3, 4: _on_both_kernels(_claim_4), 5: _claim_5, 6: _claim_6,
         7: _on_both_kernels(_claim_7), 8: _claim_8, 9: _claim_9, 10: _on_both_kernels(_claim_10)}


def verdicts(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The lesson's claim/verdict table, computed from a run's recorded metrics by fixed
    rules, so that the verdicts cannot disagree with the numbers.

    Args:
        metrics: name -> value, as ``course_utils.tooling.results.read_metrics`` returns them.

    Returns:
        One row per claim (index 1-10), columns claim, experiment, numbers, verdict.
        Each verdict starts with "holds" (or "holds only when ..."), "does not hold" or
        "inconclusive".
    """
    rows = []
    for number, rule in RULES.items():
        numbers, verdict = rule(metrics)
        rows.append({"claim": CLAIMS[number], "experiment": EXPERIMENTS[number],
                     "numbers": numbers, "verdict": verdict})
    return pd.DataFrame(rows, index=pd.Index(list(RULES), name="#"))


# --------------------------------------------------------------------------- lesson 04: the video experiments

@dataclass(frozen=True)
class ChanceLossRule:
    """Did a model train at all? Yes if its training loss fell below ln(classes), the
    cross-entropy of a uniform guess, by more than ``margin`` nats in some epoch.

    A model that fails this rule has learned nothing from its training data, so its test
    accuracy says nothing about what its architecture could learn.

    Introduced in lesson 03.
    """

    margin: float = 0.05

    def trained(self, train_losses: list[float], num_classes: int) -> bool:
        """train_losses: the mean training loss of each epoch."""
        if not train_losses or num_classes < 2:
            raise ValueError(f"need at least one epoch's loss and 2 classes, got {len(train_losses)} losses "
                             f"and {num_classes} classes")
        return min(train_losses) < math.log(num_classes) - self.margin

    def text(self, num_classes: int) -> str:
        return (f"a model trained if its training loss fell more than {self.margin} below "
                f"ln {num_classes} = {math.log(num_classes):.3f} (a uniform guess) in some epoch")


@dataclass(frozen=True)
class SeedRule:
    """Compare two models measured over the same seeds with `spread_verdict`, and say whether a
    model "learned" the task: its accuracy reached ``learned`` in every seed.

    Introduced in lesson 04.
    """

    floor: float = 0.01
    learned: float = 0.9

    def compare(self, a: list[float], b: list[float]) -> str:
        """"higher", "lower" or "within spread": mean of `a` against mean of `b`."""
        if len(a) != len(b) or len(a) < 2:
            raise ValueError(f"need the same seeds (at least 2) for both models, got {len(a)} and {len(b)} values")
        return spread_verdict(*mean_sd(a), *mean_sd(b), len(a), self.floor)

    def text(self) -> str:
        return (f"a difference counts only beyond twice its standard error over the seeds (and beyond "
                f"{self.floor}); a model learned the task if it reached {self.learned} in every seed")


def learned_in_seeds(accuracies: dict[str, list[float]], rule: SeedRule = SeedRule()) -> str:
    """One sentence: which models reached ``rule.learned`` in every seed, in some, in none.

    accuracies: model name -> its test accuracy in each seed.

    Introduced in lesson 04.
    """
    groups: dict[str, list[str]] = {"every seed": [], "some seeds only": [], "no seed": []}
    for name, values in accuracies.items():
        hits = sum(a >= rule.learned for a in values)
        groups["every seed" if hits == len(values) else "some seeds only" if hits else "no seed"].append(name)
    return "; ".join(f"{where}: {', '.join(names)}" for where, names in
                     [(f"reached {rule.learned} in {key}", names) for key, names in groups.items()] if names) + "."


def failed_to_train_sentence(trained: dict[str, list[bool]], seeds: list[int]) -> str:
    """Name every model and seed whose training loss never left chance (``ChanceLossRule``).

    trained: model name -> one ``ChanceLossRule.trained`` result per seed, in the order of `seeds`.

    Introduced in lesson 04.
    """
    failed = {name: [seed for seed, ok in zip(seeds, flags, strict=True) if not ok] for name, flags in trained.items()}
    failed = {name: seeds_failed for name, seeds_failed in failed.items() if seeds_failed}
    if not failed:
        return "Every model trained in every seed (its training loss left chance)."
    return "Failed to train (the training loss never left chance): " + "; ".join(
        f"{name} in seed{'s' if len(found) > 1 else ''} {', '.join(map(str, found))}" for name, found in failed.items()) + "."


def order_free_control_sentence(accuracy: float, trained: bool) -> str:
    """What the order-free control (frame pooling on the two-move clips) shows, from its test
    accuracy and whether its training loss left chance (``ChanceLossRule``).

    Introduced in lesson 04.
    """
    if trained:
        return (f"Frame pooling, which sees the frames but not their order, scores {accuracy:.3f} (chance 0.5), and its "
                "training loss left chance: look at these numbers before trusting the claim that the frames alone "
                "carry no clue.")
    return (f"Frame pooling, which sees the frames but not their order, scores {accuracy:.3f} (chance 0.5), and its "
            "training loss never left chance. On its own that could be a failure to train, which says nothing about "
            "the data; the evidence that the frames alone carry no clue is the direct check above (both classes hold "
            "the same frames), and this control agrees with it.")


def compare_sentence(a_name: str, a: list[float], b_name: str, b: list[float], rule: SeedRule = SeedRule()) -> str:
    """One sentence comparing two models' test accuracies over the same seeds with ``rule``.

    Introduced in lesson 04.
    """
    verdict = rule.compare(a, b)
    mean_a, mean_b, n = statistics.fmean(a), statistics.fmean(b), len(a)
    if verdict == "within spread":
        return (f"{a_name} ({mean_a:.3f}) and {b_name} ({mean_b:.3f}) differ by less than the spread over {n} seeds: "
                "this run cannot rank them.")
    return (f"{a_name}'s mean test accuracy ({mean_a:.3f}) is {verdict} than {b_name}'s ({mean_b:.3f}), beyond the "
            f"spread over {n} seeds.")


def cnn_share_sentence(cnn_ms: Sequence[float], step_ms: Sequence[float]) -> str:
    """What the per-frame CNN costs in a CNN-LSTM training step, measured directly: ``cnn_ms[i]`` is the
    forward and backward pass of the model's CNN alone on one batch's frames, ``step_ms[i]`` the whole
    model's forward and backward pass on the same batch, timed one right after the other in round i, so
    that a change of the machine's load between rounds falls on both. The CNN counts as most of the step
    only where, in every round, its time exceeds half the step's by the timing margin (``ratio_reading``),
    and as less than half only where it falls short of half by the margin in every round. Introduced in
    lesson 04.
    """
    if not cnn_ms or len(cnn_ms) != len(step_ms):
        raise ValueError(f"expected one CNN timing per step timing, got {len(cnn_ms)} and {len(step_ms)}")
    if min(*cnn_ms, *step_ms) <= 0 or not all(math.isfinite(v) for v in (*cnn_ms, *step_ms)):
        raise ValueError(f"step times must be positive and finite, got {list(cnn_ms)} and {list(step_ms)}")
    shares = [c / s for c, s in zip(cnn_ms, step_ms)]
    readings = {ratio_reading(c / (s / 2)) for c, s in zip(cnn_ms, step_ms)}
    text = (f"Timed in {len(shares)} rounds, each the CNN alone and then the whole step on the same batch: the "
            f"per-frame CNN's forward and backward pass took {min(cnn_ms):.1f} to {max(cnn_ms):.1f} ms, the whole "
            f"CNN-LSTM step {min(step_ms):.1f} to {max(step_ms):.1f} ms, so the CNN's share of a round's step was "
            f"{min(shares):.0%} to {max(shares):.0%}"
            + (" (a share above 100% means that the two timings of a round moved by more than the LSTM's part of the "
               "step takes: timing noise). " if max(shares) > 1 else ". "))
    if readings == {"above"}:
        return text + (f"In every round the CNN took more than half of the step by more than the timing margin "
                       f"({TIMING_MARGIN}x): running a CNN on every frame, not the LSTM, took most of a CNN-LSTM step "
                       "in this run.")
    if readings == {"below"}:
        return text + (f"In every round the CNN took less than half of the step by more than the timing margin "
                       f"({TIMING_MARGIN}x): the LSTM and the head took most of a CNN-LSTM step in this run.")
    return text + (f"Against half of the step, some rounds lie within the timing margin ({TIMING_MARGIN}x) or on "
                   "different sides of it: these timings cannot say whether the CNN takes most of the step.")


def cnn_free_sentence(cnn_hits: dict[str, torch.Tensor], cnn_free: str, cnn_free_hits: torch.Tensor) -> str:
    """Compare the garment accuracy of a model without a CNN with models that have one, all trained
    once (one seed), on the same test clips. A gap counts as larger than test-set sampling only beyond 2
    standard errors of the paired difference (per clip: right minus right, so the clips both models get
    right or wrong cancel); seeds are not measured, so the sentence never ranks the architectures.

    cnn_hits: name -> (N,) bool, whether a model with a per-frame CNN got each clip's garment right;
    cnn_free_hits: (N,) bool, the same for the model without one. Accuracies are rounded to the 3 digits
    the sentence prints before any difference is taken, so that its numbers agree with a table of the same
    accuracies at 3 digits. Introduced in lesson 04.
    """
    if not cnn_hits or cnn_free_hits.ndim != 1 or len(cnn_free_hits) < 2:
        raise ValueError(f"need at least one model with a CNN and a (N,) vector of at least 2 test clips, got "
                         f"{list(cnn_hits)} and shape {tuple(cnn_free_hits.shape)}")
    if any(hits.shape != cnn_free_hits.shape for hits in cnn_hits.values()):
        raise ValueError("every model must be scored on the same test clips: the hit vectors differ in shape")
    free = cnn_free_hits.float()
    free_accuracy = round(free.mean().item(), 3)
    parts = []
    for name, hits in cnn_hits.items():
        accuracy = round(hits.float().mean().item(), 3)
        se = (hits.float() - free).std().item() / math.sqrt(len(free))
        gap = accuracy - free_accuracy
        where = ("beyond" if abs(gap) > 2 * se else "within") + f" 2 paired standard errors ({2 * se:.3f})"
        parts.append(f"{name} {accuracy:.3f} ({abs(gap):.3f} {'higher' if gap > 0 else 'lower'}, {where})")
    return (f"Garment accuracy without a CNN ({cnn_free}): {free_accuracy:.3f}; with one: " + "; ".join(parts)
            + f", on the same {len(free):,} test clips. The standard errors cover the test clips' sampling only: each "
            "model was trained once, from one seed, and how far seeds move these numbers is not measured, so the "
            "comparison ranks these trained runs, not the architectures.")


def axis_reading(predicted: torch.Tensor, direction: torch.Tensor) -> dict[str, float]:
    """How much of the axis of motion a direction classifier got right.

    predicted, direction: (N,) int64 indices into ``DIRECTIONS`` (0, 1 horizontal; 2, 3 vertical).
    Returns the fraction of clips whose predicted axis is right ("axis right", chance 0.5 when
    the axes are balanced), its binomial standard error at chance ("chance sd" = 0.5 / sqrt(N)),
    and, for each predicted axis, the fraction of those predictions that fall on clips of that
    axis ("horizontal when predicted horizontal", "vertical when predicted vertical"; NaN when
    the model never predicts that axis).

    Introduced in lesson 04.
    """
    if predicted.shape != direction.shape or predicted.dim() != 1 or len(predicted) == 0:
        raise ValueError(f"expected predicted and direction of the same shape (N,), N >= 1, got "
                         f"{tuple(predicted.shape)} and {tuple(direction.shape)}")
    predicted_axis, true_axis = predicted // 2, direction // 2  # 0 horizontal, 1 vertical
    reading = {"axis right": (predicted_axis == true_axis).float().mean().item(),
               "chance sd": 0.5 / math.sqrt(len(predicted))}
    for axis, name in enumerate(("horizontal", "vertical")):
        chosen = predicted_axis == axis
        reading[f"{name} when predicted {name}"] = (
            (true_axis[chosen] == axis).float().mean().item() if chosen.any() else math.nan)
    return reading


def axis_sentence(name: str, reading: dict[str, float]) -> str:
    """Say, from ``axis_reading``'s numbers, whether a model found the axis beyond chance.

    Beyond chance means more than 2 standard errors above 0.5.

    Introduced in lesson 04.
    """
    above = reading["axis right"] - 0.5
    share = ", ".join(f"{reading[f'{axis} when predicted {axis}']:.2f} of its {axis} answers are {axis} clips"
                      for axis in ("horizontal", "vertical") if not math.isnan(reading[f"{axis} when predicted {axis}"]))
    if above > 2 * reading["chance sd"]:
        return (f"{name} got the axis right in {reading['axis right']:.3f} of the test clips, "
                f"{above / reading['chance sd']:.1f} standard errors above chance (0.5): it partly learned the axis "
                f"({share}), but not the side.")
    return (f"{name} got the axis right in {reading['axis right']:.3f} of the test clips, within 2 standard errors "
            f"({2 * reading['chance sd']:.3f}) of chance (0.5): it did not learn the axis ({share}).")


def gap_sweep_sentence(gaps: list[int], accuracy: dict[str, list[float]], trained: dict[str, list[bool]],
                       window: int, learned: float | Mapping[str, float] = 0.9,
                       ceilings: Mapping[str, Sequence[float]] | None = None) -> str:
    """Say, for each model of the sweep, at which gaps it learned the order and where it failed to train.

    gaps: the time gaps between the two moves, increasing; accuracy[name][i] and
    trained[name][i] (``ChanceLossRule``) belong to gaps[i]; window: the 3D CNN's temporal
    receptive field (from gap window - 1 on, no window of it shows both moves); learned: the
    accuracy from which a model counts as having learned the order, one for all models or one per
    model (the 3D CNN's can be the prediction's bar for its windows, ``SweepPrediction.target``);
    ceilings: per model, one per gap, the accuracy a perfect model with its field can expect
    (``video.window_ceiling``; 1 where nothing limits it). Where that is chance (0.5), a loss that stayed
    at chance is what the model's field predicts, and is reported as that, not as a failure to train.

    Introduced in lesson 04.
    """
    if sorted(gaps) != list(gaps) or any(len(v) != len(gaps) for v in (*accuracy.values(), *trained.values())):
        raise ValueError(f"expected increasing gaps and one accuracy and one 'trained' per gap, got gaps {gaps}")
    bars = learned if isinstance(learned, Mapping) else {name: learned for name in accuracy}
    if set(bars) != set(accuracy):
        raise ValueError(f"expected one 'learned' bar per model {sorted(accuracy)}, got {sorted(bars)}")
    sentences = []
    for name, values in accuracy.items():
        learned_at = [g for g, a in zip(gaps, values) if a >= bars[name]]
        bar = f"accuracy >= {bars[name]}" + (", a lower bar because its field caps what it can reach, as the prediction "
                                             "below says" if bars[name] < max(bars.values()) else "")
        limit = list(ceilings[name]) if ceilings and name in ceilings else [1.0] * len(gaps)
        if len(limit) != len(gaps):
            raise ValueError(f"expected one ceiling per gap for {name}, got {limit}")
        at_chance = [g for g, ok, c in zip(gaps, trained[name], limit) if not ok and c <= 0.5]
        untrained = [g for g, ok, c in zip(gaps, trained[name], limit) if not ok and c > 0.5]
        if len(learned_at) == len(gaps):
            verdict = f"{name} learned the order ({bar}) at every gap tried, up to gap {gaps[-1]}"
        elif not learned_at:
            verdict = f"{name} learned the order ({bar}) at no gap tried"
        else:
            verdict = (f"{name} learned the order ({bar}) at {_gaps(learned_at)} and not at "
                       f"{_gaps([g for g in gaps if g not in learned_at])}")
        if untrained:
            verdict += (f"; at {_gaps(untrained)} its training loss never left chance: it failed to "
                        "train there, so those runs by themselves say nothing about its architecture")
            if learned_at:
                verdict += (f". The same model and recipe did learn at gap {learned_at[0]}, but clips at a larger gap "
                            "differ in more than the spacing of the moves (fewer timings of the two moves fit in a "
                            "clip), and each gap is one run, so this sweep alone does not say why")
        if at_chance:
            verdict += (f"; at {_gaps(at_chance)} its loss stayed at chance, which is all its field allows there (a "
                        "perfect model with it can expect 0.5): that is the predicted result, but at a chance ceiling "
                        "a model that failed to train gives the same loss, so this run cannot tell the two apart")
        sentences.append(verdict + ".")
    far = [g for g in gaps if g >= window - 1]
    if far:
        sentences.append(f"From gap {far[0]} on (the 3D CNN's window is {window} frames), no window of the 3D CNN "
                         "shows both moves.")
    distance, name, gap, value = min((abs(a - bars[n]), n, g, a) for n, values in accuracy.items()
                                     for g, a in zip(gaps, values))
    sentences.append(f"Each accuracy is one run from one seed, and how far another seed would move it is not measured: "
                     f"the closest any lies to its bar is the {name}'s {value:.3f} at gap {gap}, {distance:.3f} "
                     f"{'above' if value >= bars[name] else 'below'} its bar of {bars[name]}.")
    return " ".join(sentences)


def _gaps(gaps: Sequence[int]) -> str:
    """'gap 1', 'gaps 1 and 4', 'gaps 1, 2 and 4'."""
    if len(gaps) == 1:
        return f"gap {gaps[0]}"
    return "gaps " + ", ".join(map(str, gaps[:-1])) + f" and {gaps[-1]}"


def window_test_sentence(gaps: Sequence[int], conv3d_trained: Sequence[bool], window: int,
                         timings: Sequence[int]) -> str:
    """Whether the gap sweep can say anything about the 3D CNN's window: only if the 3D CNN trained at
    a gap where a window of it holds both moves (gap < window - 1). If it failed to train at every
    such gap, the sweep says nothing about where its window runs out, and the sentence says so.
    Where it did train, the sentence still names what else changes with the gap: timings[i] is the
    number of allowed timings of the two moves at gaps[i] (``video.two_move_timings``), and each gap
    is one seed, so a fall at a larger gap agrees with the window without isolating it.

    Introduced in lesson 04."""
    if len(gaps) != len(conv3d_trained) or len(gaps) != len(timings):
        raise ValueError(f"expected one 'trained' and one timing count per gap, got {len(gaps)} gaps, "
                         f"{len(conv3d_trained)} and {len(timings)}")
    near = [g for g in gaps if g < window - 1]
    near_trained = [g for g, ok in zip(gaps, conv3d_trained) if g < window - 1 and ok]
    if not near:
        return (f"No gap tried lies below {window - 1}, where a window of the 3D CNN holds both moves, so this sweep "
                "cannot test its window.")
    if not near_trained:
        return (f"The 3D CNN failed to train even at {_gaps(near)}, where its {window}-frame window can hold both "
                "moves: this sweep does not measure where its window runs out, and the lesson draws "
                "no conclusion about the window from it. Section 4's arithmetic (the temporal receptive field) is "
                "then the only support for the window argument in this run.")
    counts = ", ".join(f"{n} at gap {g}" for g, n in zip(gaps, timings))
    return (f"The 3D CNN trained (its loss left chance) at {_gaps(near_trained)}, where its window can hold both moves "
            "in some clips (the ceiling above says in how many), so its results at the larger gaps can agree or "
            "disagree with the window argument, with three limits: each gap is one run from one seed; at a larger "
            "gap where it sits at chance, a model that failed to train there would give the same result; and clips at "
            f"different gaps differ in more than the spacing of the moves (allowed timings of the two moves: "
            f"{counts}). A fall at a larger gap is what the window predicts, but this sweep does not isolate the "
            "window from those differences.")


@dataclass(frozen=True)
class SweepPrediction:
    """The lesson's prediction for the gap sweep, as numbers: the CNN-LSTM reaches ``learned``
    at every gap; the 3D CNN comes within ``slack`` of ``ceiling`` at the smallest gap (the
    accuracy a perfect model with its window can expect there, ``video.window_ceiling``, capped
    at ``learned``), and stays at or below ``at_most`` (near chance, 0.5) at every gap where no
    window of it shows both moves (gap >= window - 1).

    Introduced in lesson 04.
    """

    learned: float = 0.9
    at_most: float = 0.65
    slack: float = 0.05

    def target(self, ceiling: float) -> float:
        """What the 3D CNN must reach at the smallest gap."""
        return min(self.learned, ceiling - self.slack)

    def holds(self, gaps: list[int], cnn_lstm: list[float], conv3d: list[float], window: int, ceiling: float) -> bool:
        far = [a for g, a in zip(gaps, conv3d) if g >= window - 1]
        if len(cnn_lstm) != len(gaps) or len(conv3d) != len(gaps) or not far or gaps[0] >= window - 1:
            raise ValueError(f"need one accuracy per gap, a gap below {window - 1} and one at or above it, got gaps {gaps}")
        return self.near_holds(cnn_lstm, conv3d, ceiling) and max(far) <= self.at_most

    def near_holds(self, cnn_lstm: list[float], conv3d: list[float], ceiling: float) -> bool:
        """The arms of the prediction that a failure to train cannot meet: the CNN-LSTM learns at every gap
        and the 3D CNN reaches ``target`` at the smallest gap (accuracies in the order of the gaps). The
        third arm, near chance where no window shows both moves, is what an untrained model gives too."""
        return min(cnn_lstm) >= self.learned and conv3d[0] >= self.target(ceiling)

    def text(self, window: int, ceiling: float, stride: int = 1) -> str:
        """The prediction in words; ``stride``: the windows start every ``stride`` frames (1: at every frame)."""
        windows = f"{window}-frame windows" + (f" every {stride} frames" if stride > 1 else "")
        return (f"the CNN-LSTM reaches {self.learned} at every gap; the 3D CNN reaches {self.target(ceiling):.3f} at the "
                f"smallest gap (a perfect model with {windows} can expect {ceiling:.3f} there, because some clips "
                f"have no window that holds both moves) and at most {self.at_most} (chance 0.5) from gap {window - 1} on")


# --------------------------------------------------------------------------- Lesson 02: gradients through a stack, the GRU's speed, why an LSTM


def stack_decay_sentence(stack_rate: float, layer_rates: list[float], tolerance: float = 0.05) -> str:
    """Lesson 02: a sentence comparing a recurrent stack's gradient decay with its layers' decays alone.

    stack_rate: the stack's mean factor per step back; layer_rates: each layer's factor when run alone
    (the same weights, fed the inputs it reads in the stack). The gradient of a stack to an input k steps back is a sum over the step at which a
    path moves from one layer up to the next, so for large k it shrinks like the slowest-decaying layer. The
    sentence says whether this run agrees (within `tolerance`, relative), and claims no cause when it does not.
    """
    if not layer_rates or not all(0 < r for r in [stack_rate, *layer_rates]):
        raise ValueError(f"expected positive rates, got stack {stack_rate!r} and layers {layer_rates!r}")
    slowest = max(layer_rates)
    which = layer_rates.index(slowest) + 1
    alone = ", ".join(f"layer {i} {r:.3f}" for i, r in enumerate(layer_rates, 1))
    head = (f"Run alone with the same weights and fed the inputs it reads in the stack, each layer multiplies the "
            f"gradient per step back by: {alone}; the whole stack, on the same inputs, by {stack_rate:.3f}. ")
    if abs(stack_rate / slowest - 1) <= tolerance:
        return head + (f"The stack's factor is within {tolerance:.0%} of the slower-decaying layer's (layer {which}), "
                       "as expected: the gradient to an input k steps back is a sum over the step at which a path "
                       "moves up a layer, and for large k the paths that stay longest in the slower layer dominate.")
    return head + (f"The stack's factor is not within {tolerance:.0%} of the slower-decaying layer's (layer {which}, "
                   f"{slowest:.3f}): in this run the layers alone do not give the stack's decay, and the lesson "
                   "does not say what else sets it.")


def kernel_sentence(on_turns: dict[str, list[float]], off_turns: dict[str, list[float]],
                    fused: dict[str, bool], race_on_cpu: bool = True) -> str:
    """Lesson 02: what the timing turns say about why a GRU pass is slower or faster than an LSTM pass.

    on_turns / off_turns: {"GRU": [ms per turn], "LSTM": [ms per turn]} with oneDNN on / off, the turns
    taken in alternation so that turn i of every configuration ran at about the same time; fused: {"GRU": bool,
    "LSTM": bool}, whether oneDNN ran the layer as one fused node; race_on_cpu: whether the lesson's
    equal-time race ran on this CPU (otherwise these timings say nothing about it). A cause is named only
    when the GRU is slower in every turn with oneDNN on, the fused kernel is the one difference, and the
    per-turn GRU / LSTM ratios with oneDNN on and off do not overlap. With both unfused, the GRU is called
    still slower only when every turn's ratio lies beyond ``TIMING_MARGIN`` (``ratio_reading``).
    """
    ratios = {state: [g / l for g, l in zip(turns["GRU"], turns["LSTM"])]
              for state, turns in (("on", on_turns), ("off", off_turns))}
    if not ratios["on"] or len(ratios["on"]) != len(ratios["off"]):
        raise ValueError("expected the same positive number of turns with oneDNN on and off")
    span = {state: f"{min(r):.2f} to {max(r):.2f}" for state, r in ratios.items()}
    head = (f"Turn by turn, a GRU pass takes {span['on']} times an LSTM pass with oneDNN on, {span['off']} times "
            f"with it off ({len(ratios['on'])} turns each). ")
    if not race_on_cpu:
        head += "The race above did not run on the CPU, so these CPU timings do not explain its numbers of steps. "
    if min(ratios["on"]) <= 1:
        return head + ("With oneDNN on the GRU is not slower than the LSTM in every turn, so the lesson names no "
                       "cause for a difference in their speeds.")
    if not (fused["LSTM"] and not fused["GRU"]):
        return head + (f"With oneDNN on the LSTM {'runs' if fused['LSTM'] else 'does not run'} as one fused node "
                       f"and the GRU {'does' if fused['GRU'] else 'does not'}, so the lesson names no kernel cause for "
                       "the GRU's extra time here.")
    if min(ratios["on"]) <= max(ratios["off"]):
        return head + ("With oneDNN on only the LSTM runs as one fused node, but the ratios on and off overlap "
                       "across the turns: this run cannot tell the fused kernel's effect from the timing noise.")
    median = {state: {cell: statistics.median(turns[cell]) for cell in ("GRU", "LSTM")}
              for state, turns in (("on", on_turns), ("off", off_turns))}
    moved = (f"medians: the LSTM's pass {median['on']['LSTM']:.1f} ms on, {median['off']['LSTM']:.1f} ms off; the GRU's "
             f"{median['on']['GRU']:.1f} ms on, {median['off']['GRU']:.1f} ms off")
    readings = [ratio_reading(r) for r in ratios["off"]]
    if all(reading == "above" for reading in readings):
        share = (f"switching oneDNN off brings the two passes closer ({moved}); with both unfused the GRU is still "
                 f"slower in every turn by more than the timing margin ({TIMING_MARGIN}x), a difference of PyTorch's "
                 "unfused code for the two cells that this lesson does not split further")
    elif all(reading == "below" for reading in readings):
        share = (f"switching oneDNN off reverses the gap ({moved}): with both unfused, the GRU's pass is faster "
                 f"than the LSTM's in every turn by more than the timing margin ({TIMING_MARGIN}x), a difference of "
                 "PyTorch's unfused code for the two cells (and of their widths: section 8's table gives their "
                 "multiply-adds) that this lesson does not split further")
    elif "within" in readings:
        share = (f"switching oneDNN off brings the two passes closer ({moved}): with both unfused, the GRU's pass is "
                 f"within the timing margin ({TIMING_MARGIN}x) of the LSTM's in at least one turn, so these turns "
                 "cannot tell the two unfused passes apart, though they do not show them equal either (the widths of "
                 "the two cells differ too, section 8's table gives their multiply-adds)")
    else:
        share = (f"switching oneDNN off changes the gap between the two passes ({moved}): with both unfused, the "
                 f"GRU's pass is slower than the LSTM's by more than the timing margin ({TIMING_MARGIN}x) in some "
                 "turns and faster by more than it in others, so these turns do not say which unfused pass is faster")
    return head + ("With oneDNN on only the LSTM runs as one fused node, and every turn's ratio with it on is above "
                   f"every turn's ratio with it off. So {share}. The switch turns off all of oneDNN's CPU kernels, not "
                   "the fused node alone, so this ties the ratio to oneDNN; the fused LSTM node is the difference "
                   "between the two graphs, not a cause measured on its own."
                   + (" The equal-time race on this CPU compares PyTorch's implementations of the two cells, not "
                      "only the cells." if race_on_cpu else ""))


def unfused_switch_sentence(name: str, on_turns: Sequence[float], off_turns: Sequence[float]) -> str:
    """Lesson 02: whether switching oneDNN off changed the pass of a layer that has no fused node either way.

    on_turns / off_turns: ms per pass in each turn with oneDNN on / off. A change is reported only when
    the two sets of turns do not overlap; otherwise the difference is within the turn-to-turn spread.
    """
    if not on_turns or not off_turns:
        raise ValueError("expected at least one turn with oneDNN on and one with it off")
    spans = f"on: {min(on_turns):.1f} to {max(on_turns):.1f} ms, off: {min(off_turns):.1f} to {max(off_turns):.1f} ms"
    if max(on_turns) < min(off_turns) or max(off_turns) < min(on_turns):
        return (f"The switch also changed the {name}'s pass, which has no fused node on or off, beyond its "
                f"turn-to-turn spread ({spans}): the flag changes other kernels too.")
    return (f"The {name}'s pass, which has no fused node on or off, did not change beyond its turn-to-turn "
            f"spread ({spans}).")


_RACE_SETUP = ("The cells also differ in what the race sets for them (each its own width for about equal "
               "parameters, PyTorch's default initialisation, one learning rate for all three, tuned for none), so "
               "this compares these configurations, not the cell types alone. ")


def why_lstm_answer(equal_time: str, equal_steps: str | None, finished_runs: int, runs: int) -> str:
    """Lesson 02's answer to "why an LSTM", from the seed verdicts of its LSTM-vs-plain-RNN race.

    equal_time / equal_steps: which model ends lower by the paired rule (``paired_verdict``): "LSTM",
    "plain RNN" or "neither"; equal_steps is None when no step was reached by every run. finished_runs of the race's
    runs reached section 4's number of steps before their time ran out (when all of them did, equal time is
    equal steps and the race is a full schedule of smaller models, not a short race; when only some did, the
    race mixes full schedules with runs stopped by the clock). Both verdicts are always reported, so
    the answer cannot leave out or contradict the equal-steps paragraph. An LSTM win at equal time is not
    credited to the gates alone: equal time lets the faster layer take more steps.
    """
    if equal_time not in ("LSTM", "plain RNN", "neither"):
        raise ValueError(f"expected equal_time to be 'LSTM', 'plain RNN' or 'neither', got {equal_time!r}")
    if equal_steps not in ("LSTM", "plain RNN", "neither", None):
        raise ValueError(f"expected equal_steps to be 'LSTM', 'plain RNN', 'neither' or None, got {equal_steps!r}")
    verdict = {"LSTM": "the LSTM ends lower than the plain RNN by the paired rule",
               "plain RNN": "the plain RNN ends lower than the LSTM by the paired rule",
               "neither": "the paired rule finds neither the LSTM nor the plain RNN lower"}[equal_time]
    if not 0 <= finished_runs <= runs or runs < 1:
        raise ValueError(f"expected 0 <= finished_runs <= runs and runs >= 1, got {finished_runs} and {runs}")
    if finished_runs == runs:
        return (f"**The answer of this run:** every run reached section 4's number of steps before its time ran out, "
                f"so equal time is equal steps here, and {verdict}. " + _RACE_SETUP + "These models are smaller "
                "than section 4's, so this is what each cell learns over a full schedule at this size. The gradient "
                "reach of the trained models (below) measures how far back each one's gradient still carries. "
                "Lesson 03 (its section 2) trains LSTMs on tasks built to need a memory of k steps.")
    if equal_time == "LSTM":
        text = (f"**The answer of this run:** at equal time {verdict}. Equal time does not hold the number of steps "
                "equal, so this alone does not say whether the gates or more steps made the difference")
        if equal_steps == "LSTM":
            return text + ("; at equal steps the LSTM is lower too, so it also learned more from the same characters, "
                           "which more steps cannot explain. " + _RACE_SETUP.strip())
        if equal_steps is None:
            return text + "; this run has no comparison at equal steps to tell. " + _RACE_SETUP.strip()
        return text + ("; at equal steps the paired rule does not find it lower (" +
                       ("the plain RNN is lower" if equal_steps == "plain RNN" else "neither is lower") +
                       "), so this run's lead may come from its extra steps alone. " + _RACE_SETUP.strip())
    steps = {None: "This run has no comparison at equal steps. ",
             "plain RNN": f"At equal steps the plain RNN is lower{' too' if equal_time == 'plain RNN' else ''} by the "
                          "paired rule: at the last evaluation that every run reached, this RNN's loss was lower than this LSTM's. ",
             "neither": "At equal steps the paired rule finds neither lower. ",
             "LSTM": "At equal steps the LSTM is lower by the paired rule: it learned more from the same "
                     "characters, but at equal time the rule does not find that lead. "}[equal_steps]
    short = ("The race is short: it tests what a model learns first, which need not be a long memory." if not finished_runs
             else f"Only {finished_runs} of the {runs} runs reached section 4's number of steps before their time ran "
                  "out; the others were stopped by the clock, so the race mixes full schedules of these small models "
                  "with what a model learns first, which need not be a long memory.")
    return (f"**The answer of this run:** at equal time {verdict}. {steps}" + _RACE_SETUP + "So this race "
            "does not show an advantage of the LSTM per second of training on this text by the paired rule, which "
            f"is not the same as showing that there is none. {short} The gradient reach of the trained models (below) "
            "measures how far back each one's gradient still carries; whether a longer training turns a longer reach "
            "into a lower loss is not measured here. Lesson 03 (its section 2) trains LSTMs on tasks built to need a "
            "memory of k steps.")


# --------------------------------------------------------------------------- Lesson 05: the tagger's learning curve, the dev-test gap, rare words, transition contrasts, one seed


def curve_sentence(dev_f1: Sequence[float], train_loss: Sequence[float]) -> str:
    """One sentence on a run's development F1 after each epoch (lists in epoch order, epoch 1 first):
    where the best epoch lies against the halfway epoch, and how the training loss moved meanwhile.
    A rise after the halfway epoch is the later epochs' mean over the halfway epoch's F1 (not their best,
    which is picked after the fact), and counts only if it exceeds the run's largest fall between
    neighbouring epochs, the size of the curve's own moves. Introduced in lesson 05."""
    if len(dev_f1) != len(train_loss) or not dev_f1:
        raise ValueError("dev_f1 and train_loss need one value per epoch, and at least one epoch")
    epochs = len(dev_f1)
    if epochs == 1:
        return "The run trained one epoch only, so it has no learning curve to read."
    best = max(range(epochs), key=lambda e: dev_f1[e])  # index of the first best epoch
    halfway = max(1, epochs // 2) - 1        # index of the halfway epoch
    loss = f"while the training loss fell from {train_loss[halfway]:.3f} to {train_loss[-1]:.3f}."
    if best <= halfway:
        return (f"The development F1 was highest after epoch {best + 1} ({100 * dev_f1[best]:.2f}), at or before "
                f"the halfway epoch {halfway + 1}: the later epochs did not raise it, {loss}")
    later = dev_f1[halfway + 1:]
    rise = 100 * (sum(later) / len(later) - dev_f1[halfway])  # the later epochs' mean, not their best
    jitter = max([0.0] + [100 * (dev_f1[e] - dev_f1[e + 1]) for e in range(epochs - 1)])  # largest fall, points
    start = (f"The development F1 was {100 * dev_f1[halfway]:.2f} after epoch {halfway + 1}; the {len(later)} later "
             f"epochs averaged {100 * sum(later) / len(later):.2f}, {abs(rise):.2f} points "
             f"{'higher' if rise >= 0 else 'lower'} (their best, {100 * dev_f1[best]:.2f} after epoch {best + 1}, is a "
             "maximum picked after the fact)")
    if rise <= jitter:
        return (start + f", no more than this one run's largest fall between neighbouring epochs ({jitter:.2f} "
                "points), so within what its curve moves from epoch to epoch: this run does not show that the later "
                f"epochs raised it, {loss}")
    return (start + f", more than this one run's largest fall between neighbouring epochs ({jitter:.2f} points), so "
            f"the later epochs raised it in this run (one seed), {loss}")


def dev_test_gap_sentence(best_dev_f1: float, last_dev_f1: float, test_f1: float,
                          unseen_dev: float, unseen_test: float) -> str:
    """Sentences on the gap between the kept weights' dev F1 and their test F1: how much the choice of the
    epoch on dev could have flattered dev (best epoch against last epoch), and the one difference between
    the two sets that the lesson measures (the share of entity tokens unseen in training). The choice of epoch
    "explains little" of the gap only below a tenth of it. It names no cause it has not measured.
    Introduced in lesson 05."""
    gap = best_dev_f1 - test_f1
    selection = best_dev_f1 - last_dev_f1
    if gap <= 0:
        return (f"The test F1 is not below the dev F1 ({100 * test_f1:.2f} against {100 * best_dev_f1:.2f}), "
                "so there is no gap to explain.")
    text = (f"The test F1 is {100 * gap:.2f} points below the dev F1. Choosing the epoch by dev F1 flatters dev: "
            f"the weights of the last epoch score {100 * selection:.2f} points below the kept ones on dev, ")
    share = max(selection, 0.0) / gap
    text += (f"{share:.0%} of the gap, so the choice of epoch explains little of it. " if share < 0.1 else
             f"{share:.0%} of the gap, less than half of it: the choice of epoch may explain some of the gap, not "
             "most of it. " if share < 0.5 else
             f"{share:.0%} of the gap, half of it or more, so part of the gap may come from that choice. ")
    if unseen_test > unseen_dev:
        text += (f"The two sets also differ: {unseen_test:.1%} of the test set's entity tokens are missing from "
                 f"the training vocabulary, against {unseen_dev:.1%} of the dev set's; section 11 measures how "
                 "recall depends on that, and this lesson does not measure how much of the gap it explains.")
    else:
        text += (f"The test set does not hold more entity tokens unseen in training than dev ({unseen_test:.1%} "
                 f"against {unseen_dev:.1%}), so that is not where the sets differ; this lesson does not "
                 "measure what else does.")
    return text


BAND_RULE = ("within one length, a band's recall is called lower than another's only where the difference is "
             "more than twice its standard error (the binomial sampling error of the two recalls over their "
             "entities); otherwise the two are not told apart. The cost is said to depend on the length only where "
             "the costs of two lengths differ by more than twice the standard error of that difference")


def type_extremes_sentence(types: pd.DataFrame) -> str:
    """Which entity type has the highest and which the lowest test F1, from a per-type table with columns
    f1 and support (the number of gold entities): a type is named only where its F1 differs from the
    next one's by more than twice the standard error of that difference, each F1 treated as a proportion
    over its entities (sqrt(F (1 - F) / n), an approximation). Introduced in lesson 05."""
    if len(types) < 2 or not {"f1", "support"} <= set(types.columns) or (types["support"] <= 0).any():
        raise ValueError("expected at least two types with columns f1 and support (> 0)")
    ranked = types.sort_values("f1", ascending=False)

    def apart(a: str, b: str) -> bool:
        fa, fb = ranked.loc[a, "f1"], ranked.loc[b, "f1"]
        se = math.sqrt(fa * (1 - fa) / ranked.loc[a, "support"] + fb * (1 - fb) / ranked.loc[b, "support"])
        return abs(fa - fb) > 2 * se

    def named(first: str, second: str, word: str) -> str:
        f1, f2 = ranked.loc[first, "f1"], ranked.loc[second, "f1"]
        return (f"the {word} is {first} (F1 {f1:.3f}, against {second}'s {f2:.3f}, a difference beyond twice its "
                "standard error)" if apart(first, second) else
                f"the {word} cannot be told between {first} ({f1:.3f}) and {second} "
                f"({f2:.3f}): their difference is within twice its standard error")
    names = list(ranked.index)
    return (f"In this run {named(names[0], names[1], 'easiest type')}, and {named(names[-1], names[-2], 'hardest')} "
            "(one model; the standard error is sqrt(F (1 - F) / n) over a type's n gold entities, as if F1 were a "
            "proportion of independent draws. It is an approximation: F1 also divides by the predicted entities, "
            "whose own variation it leaves out, and a name mentioned several times in one article is not an "
            "independent draw).")


def band_length_sentence(table: pd.DataFrame, low: str = "unseen", high: str = "frequent (3+)") -> str:
    """One paragraph comparing the recall of the `low` and `high` frequency bands within each entity length,
    by BAND_RULE.

    `table` has a (band, length) MultiIndex and the columns "entities" and "recall". The overall gap
    between two bands mixes how rare an entity's words are with how long it is (a longer entity more
    often holds a rare word, and length can change recall by itself, in either direction); comparing
    within one length removes the second. Where the `low` band is lower within some lengths only, the
    paragraph reports that the cost of rare words depends on the length (an interaction) and names no
    cause for it. Introduced in lesson 05."""
    lengths = [length for length in table.loc[low].index if length in table.loc[high].index
               and table.loc[(low, length), "entities"] > 0 and table.loc[(high, length), "entities"] > 0]
    if not lengths:
        return f"No entity length has entities in both the {low} and the {high} band, so they cannot be compared."
    pairs = {length: (float(table.loc[(low, length), "recall"]), float(table.loc[(high, length), "recall"]))
             for length in lengths}
    counts = {length: (int(table.loc[(low, length), "entities"]), int(table.loc[(high, length), "entities"]))
              for length in lengths}
    errors = {length: math.sqrt(a * (1 - a) / counts[length][0] + b * (1 - b) / counts[length][1])
              for length, (a, b) in pairs.items()}
    listed = "; ".join(f"{length}: {a:.3f} against {b:.3f} ({counts[length][0]} and {counts[length][1]} entities, "
                       f"standard error of the difference {errors[length]:.3f})"
                       for length, (a, b) in pairs.items())
    shortest = table.index.get_level_values("length").unique()[0]  # the table lists lengths shortest first
    shares = {band: table.loc[band, "entities"] for band in (low, high)}
    multi = {band: 1 - float(c.get(shortest, 0)) / max(float(c.sum()), 1) for band, c in shares.items()}
    text = (f"Recall of the {low} band against the {high} band, within each length: {listed}. "
            f"{multi[low]:.0%} of the {low} band's entities are longer than {shortest}, against "
            f"{multi[high]:.0%} of the {high} band's, ")
    text += ("so a comparison of the two bands overall mixes rarity with length. "
             if abs(multi[low] - multi[high]) >= 0.01 else "so the two bands hardly differ in length. ")
    lower = [length for length, (a, b) in pairs.items() if b - a > 2 * errors[length]]
    if len(lower) == len(pairs):
        text += (f"Within every length the {low} band's recall is lower by more than twice the standard error: at "
                 f"the same length, entities with a {low} word are found less often, so the difference between the "
                 "bands is not length alone.")
    elif not lower:
        text += (f"Within no length is the {low} band's recall lower by more than twice the standard error: once "
                 f"length is held fixed, this split shows no cost of {low} words.")
    else:
        others = [length for length in pairs if length not in lower]
        text += (f"The {low} band's recall is lower by more than twice the standard error for {', '.join(lower)} "
                 f"entities and not for {', '.join(others)} entities. ")
        cost = {length: b - a for length, (a, b) in pairs.items()}
        apart = [(l, m) for l in lower for m in others
                 if cost[l] - cost[m] > 2 * math.sqrt(errors[l] ** 2 + errors[m] ** 2)]
        if apart:
            l, m = apart[0]
            text += (f"The cost for {l} entities ({cost[l]:+.3f}) exceeds that for {m} entities ({cost[m]:+.3f}) by "
                     f"more than twice the standard error of that difference "
                     f"({math.sqrt(errors[l] ** 2 + errors[m] ** 2):.3f}): in this run the cost of {low} words "
                     "depends on the entity's length (an interaction), so neither rarity nor length alone describes "
                     "the bands' difference; this lesson does not measure why.")
        else:
            text += ("But the costs of the lengths do not differ from each other by more than twice the standard "
                     "error of that difference, so this run cannot tell whether the cost depends on the length.")
    return text + (" One trained model (seed 0): the standard errors count the sampling of test entities only, each "
                   "entity as an independent draw, though a name mentioned several times in one article is not one; how "
                   "much these recalls move with the seed is not measured here.")


def same_type_sentence(learned: dict[str, float], touching: dict[str, int], sentences: int) -> str:
    """Sentences on the learned same-type contrasts of lesson 05's CRF (entity type -> value; NaN where a tag
    the contrast needs was never seen) and the training data's touching same-type entities (type -> count).
    It reads the transition scores as transition scores only: the emissions also score every sequence, and
    the contrast of one seed is not compared by sign with a data contrast that rests on a few pairs.
    Introduced in lesson 05."""
    defined = [t for t, value in learned.items() if not math.isnan(value)]
    text = ""
    if len(defined) < len(learned):
        text += (f"The contrast is undefined for {', '.join(t for t in learned if t not in defined)} (a tag it "
                 "needs never occurs in training). ")
    negative = [t for t in defined if learned[t] < 0]
    if negative:
        text += (f"In this run the learned contrast is negative for {len(negative)} of the {len(defined)} types "
                 f"({', '.join(negative)}): for those, the transition scores by themselves favour a new entity of "
                 "the same type less right after one ends than right after `O`, relative to an entity of "
                 f"another type. The defined values run from {min(learned[t] for t in defined):.2f} to "
                 f"{max(learned[t] for t in defined):.2f}; this is one seed, and how much they move with the seed is "
                 "not measured, so the sign of a value near 0 may differ in another run. ")
    else:
        text += f"In this run the learned contrast is negative for none of the {len(defined)} types. "
    text += ("What the model decodes also depends on the emissions, which score every sequence too, so this is a "
             "statement about the transition scores, not about the tagger's output. ")
    text += ("The training data hold few such neighbours: "
             + ", ".join(f"{t} {touching.get(t, 0)}" for t in learned)
             + f" pairs of touching same-type entities in {sentences:,} sentences, so the data column rests on "
               "few counts"
             + (f" (none for {', '.join(t for t in learned if not touching.get(t, 0))}: there it would come from the "
                "one added to every count alone, so the table leaves it blank)"
                if any(not touching.get(t, 0) for t in learned) else "")
             + ", and the learned column is one seed; this lesson draws no conclusion from whether their signs agree.")
    return text


def ban_control_sentence(softmax: Sequence[float], constrained: Sequence[float], crf: Sequence[float]) -> str:
    """Sentences on lesson 05's control for the CRF's gain, from the test F1 per seed (lists in the
    order of the seeds) of the softmax taggers, of the same taggers decoded under the scheme's
    constraints (the ban on invalid sequences alone), and of the BiLSTM-CRF. The runs of one seed share
    their batches, so both comparisons are read seed by seed by ``paired_rule`` (``paired_verdict``).
    It names as the CRF's extra only "training with a CRF", which this control does not split into
    learned transitions and emissions. Introduced in lesson 05."""
    if not (softmax and constrained and crf):
        raise ValueError("expected at least one test F1 per group")
    if not len(softmax) == len(constrained) == len(crf):
        raise ValueError(f"the three groups are runs of the same seeds, so they need one F1 per seed each; got "
                         f"{len(softmax)}, {len(constrained)} and {len(crf)}")
    raised = sum(c > s for s, c in zip(softmax, constrained))
    ban, ban_text = paired_verdict("the constrained softmax tagger", "the same tagger unconstrained",
                                   [c - s for s, c in zip(softmax, constrained)], better="better", unit="points")
    extra, extra_text = paired_verdict("the BiLSTM-CRF", "the constrained softmax tagger",
                                       [r - c for c, r in zip(constrained, crf)], better="better", unit="points")
    text = (f"Seed by seed, the constraints raised the same tagger's test F1 in {raised} of {len(softmax)} seeds. "
            f"By the paired rule: {ban_text[0].upper() + ban_text[1:]} {extra_text[0].upper() + extra_text[1:]} ")
    ban_helps, crf_adds = ban == "the constrained softmax tagger", extra == "the BiLSTM-CRF"
    if ban_helps and crf_adds:
        return text + ("So at this budget the ban on invalid sequences alone raised test F1, and training with a CRF "
                       "(its learned transition scores and the emissions trained with them) raised it further; this "
                       "control does not split those two further.")
    if ban_helps and extra is None:
        ban_mean = 100 * statistics.mean(c - s for s, c in zip(softmax, constrained))
        crf_mean = 100 * statistics.mean(r - s for s, r in zip(softmax, crf))
        ahead = sum(r > c for c, r in zip(constrained, crf))
        standing = (f"was ahead of the constrained tagger in every seed, but the paired rule does not resolve that "
                    "lead from the seeds' scatter" if ahead == len(crf) else
                    f"was ahead of the constrained tagger in {ahead} of {len(crf)} seeds only")
        return text + (f"So at this budget the ban on invalid sequences alone raised test F1, by {ban_mean:.1f} points "
                       f"on average, against the CRF's {crf_mean:.1f} over the unconstrained tagger. The BiLSTM-CRF "
                       f"{standing}: these seeds neither show nor exclude a gain from training with a CRF on top of "
                       "the ban.")
    if crf_adds:
        return text + ("So at this budget the ban alone does not raise test F1 by the rule, while training with a CRF "
                       "(its learned transition scores and the emissions trained with them) scored above it; this "
                       "control does not split those two further.")
    return text + ("This run draws no further conclusion on what the ban and the CRF each contribute: these seeds "
                   "do not show the pattern either reading needs.")


def one_seed_sentence(test_f1: float, target: float, widest_range: float, widest_variant: str, *,
                      seed: int = 0, mode: str = "cpu") -> str:
    """Sentences on a one-seed test F1 (of seed ``seed``, in mode ``mode``) against the course's cpu-mode check.
    The spread over seeds that section 7 measured (``widest_range``, for ``widest_variant``, at section 7's
    budget) belongs to another model at another budget, so it is given for scale only and no conclusion is
    drawn from it. In another mode than cpu the check does not apply, and the sentence says so. Introduced in
    lesson 05."""
    margin = test_f1 - target
    check = (f"this run is {100 * abs(margin):.2f} points {'above' if margin >= 0 else 'below'} it" if mode == "cpu"
             else f"this is a {mode}-mode run, with other settings, so that check does not apply to it")
    return (f"This is one run (seed {seed}); the course checks a test F1 of at least {100 * target:.0f} in cpu mode, "
            f"and {check}. This lesson "
            "does not measure how far this model's test F1 moves between seeds at this budget, so it cannot say "
            "whether another seed would land on the same side of the check. For scale only: at section 7's budget "
            f"(its sentences and epochs are in the settings table) the seeds of {widest_variant} spread over "
            f"{100 * widest_range:.2f} points of test F1, and a spread at another budget need not be this one's.")


# --------------------------------------------------------------------------- Lesson 06: what communication costs a DDP step


PROFILE_RULE = ("the pass with communication is said to cost time only where the middle half (25th to 75th "
                "percentile) of its per-step differences from the same pass without it, paired on the same batch, "
                "lies above 0; that cost is called larger or smaller than a bare all-reduce only where the middle "
                "halves of their per-step values do not overlap; otherwise the two cannot be told apart at this "
                "measurement")


def quartiles(values: list[float]) -> tuple[float, float, float]:
    """25th percentile, median and 75th percentile of at least one value. Introduced in lesson 06."""
    if not values:
        raise ValueError("quartiles need at least one value")
    if len(values) == 1:
        return values[0], values[0], values[0]
    low, median, high = statistics.quantiles(values, n=4, method="inclusive")
    return low, median, high


def communication_sentence(communication_ms: list[float], all_reduce_ms: list[float]) -> str:
    """Sentences on the per-step extra time of DDP's forward and backward over the same pass without
    communication (`communication_ms`, one value per step, paired on the same batch), by PROFILE_RULE,
    and on how it compares with a bare all-reduce of the gradients (`all_reduce_ms`, one value per repeat).
    It names no cause the profile does not measure. Introduced in lesson 06."""
    c_low, c_median, c_high = quartiles(communication_ms)
    a_low, a_median, a_high = quartiles(all_reduce_ms)
    measured = (f"the pass with the all-reduce took a median {c_median:.1f} ms longer per step than the same pass "
                f"without it (middle half {c_low:.1f} to {c_high:.1f} ms over {len(communication_ms)} steps)")
    if c_low <= 0:
        return (measured + ": the middle half includes 0, so at this measurement the cost of communication is not "
                "resolved from the step-to-step noise.")
    text = measured + (": DDP's gradient synchronisation (its hooks and bucket copies, the all-reduce and the wait "
                       "for the other process), and whatever else differs between the two passes, cost time in this "
                       "run. ")
    bare = f"a bare all-reduce of the gradients (median {a_median:.1f} ms, middle half {a_low:.1f} to {a_high:.1f} ms)"
    if c_low > a_high:
        return text + f"That is more than {bare}; this profile does not measure where the rest goes."
    if c_high < a_low:
        return text + (f"That is less than {bare}. DDP overlaps the all-reduce with the rest of backward; this "
                       "profile does not measure how much of it was hidden that way.")
    return text + (f"It cannot be told apart from {bare} at this measurement: the middle halves overlap, although "
                   f"the medians differ by a factor of {max(c_median, a_median) / min(c_median, a_median):.1f}; the "
                   "per-step values spread too widely for this rule to separate them.")
