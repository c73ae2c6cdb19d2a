"""Lesson 03's verdict table: ten claims about CNNs, LSTMs and CNN-LSTMs, judged by fixed rules.

`verdicts(metrics)` turns a run's recorded metrics into the lesson's table of
ten claims; each claim has one rule, ``_claim_1`` ... ``_claim_10`` (the lesson
invites learners to print one with ``inspect.getsource``), that writes the
numbers it reads and a verdict starting with "holds" (or "holds only when
..."), "does not hold" or "inconclusive". The statistics the rules use (`mean_sd`,
`compare`, `SOLVED`) are taught in course_utils.sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..sequence import MODEL_LABELS, SOLVED, compare, recorded

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

def _claim_1(m: Mapping[str, Any]) -> tuple[str, str]:
    near, far = distances(m)[0], distances(m)[-1]
    field = int(recorded(m, "cnn_receptive_field"))
    solved = {(name, k): recorded(m, f"{name}_acc_k{k}_mean") >= SOLVED for name in ("cnn", "tcn", "lstm")
              for k in (near, far)}
    exact = max(recorded(m, "lstm_packed_max_diff"), recorded(m, "cnn_masked_max_diff")) < 1e-5
    numbers = (f"pair task, k={near} / k={far}: CNN (field {field}) {_mean_pm_sd(m, f'cnn_acc_k{near}')} / "
               f"{_mean_pm_sd(m, f'cnn_acc_k{far}')}, TCN (field {int(recorded(m, 'tcn_receptive_field'))}) "
               f"{_mean_pm_sd(m, f'tcn_acc_k{far}')} at k={far}, LSTM {_mean_pm_sd(m, f'lstm_acc_k{far}')} at k={far}; "
               f"padded batch vs one at a time: packed LSTM {recorded(m, 'lstm_packed_max_diff'):.0e}, "
               f"masked CNN {recorded(m, 'cnn_masked_max_diff'):.0e}")
    if not solved["lstm", far]:
        return numbers, f"does not hold: the LSTM does not solve k={far}"
    if not solved["cnn", near] or solved["cnn", far]:
        return numbers, "does not hold: the plain CNN's accuracy does not follow its receptive field"
    if solved["tcn", far] or exact:
        return numbers, (f"holds only when the CNN's receptive field is shorter than the dependency: a dilated "
                         f"CNN solves k={far} too, and a causal CNN with masking takes variable lengths exactly")
    return numbers, "holds"


def _claim_2(m: Mapping[str, Any]) -> tuple[str, str]:
    k = int(recorded(m, "gradient_distance"))
    log = {name: recorded(m, f"gradient_log10_{name}_mean") for name in ("rnn", "lstm_default", "lstm", "gru")}
    numbers = (f"log10 of |dL/dx| {k} steps back over |dL/dx| at the last step, untrained, over seeds: RNN "
               f"{_mean_pm_sd(m, 'gradient_log10_rnn', 1)}, LSTM default init {_mean_pm_sd(m, 'gradient_log10_lstm_default', 1)}, "
               f"LSTM chrono init {_mean_pm_sd(m, 'gradient_log10_lstm', 1)}, GRU {_mean_pm_sd(m, 'gradient_log10_gru', 1)}")
    gated_better = compare(m, "gradient_log10_lstm", "gradient_log10_rnn", floor=2.0) == "higher"
    default_better = compare(m, "gradient_log10_lstm_default", "gradient_log10_rnn", floor=2.0) == "higher"
    if gated_better and default_better and log["lstm_default"] > -3:
        return numbers, "holds"
    if gated_better:
        return numbers, (f"holds only when the forget gate starts open (chrono init): with PyTorch's default "
                         f"init the LSTM's gradient {k} steps back is 10^{log['lstm_default']:.0f} of the last "
                         "step's; exploding gradients are still clipped")
    return numbers, "does not hold"


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
        return numbers, (f"holds only when the local structure fits in the convolutions' receptive field "
                         f"({field} steps): the order of events {gap} steps apart is lost in a pool of {pools[-1]}")
    if near_solved:
        return numbers, "holds"
    return numbers, "does not hold"


def _claim_4(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    ms = {name: recorded(m, f"ms_per_step_{name}_T{t}_threads1") for name in ("lstm", "cnn_lstm", "cnn_lstm_nopool")}
    mb = {name: recorded(m, f"saved_mb_{name}_T{t}") for name in ms}
    numbers = (f"T={t}, one thread: ms per step LSTM {ms['lstm']:.0f}, CNN-LSTM (pool 4) {ms['cnn_lstm']:.0f}, "
               f"without pooling {ms['cnn_lstm_nopool']:.0f}; saved MB {mb['lstm']:.1f}, {mb['cnn_lstm']:.1f}, "
               f"{mb['cnn_lstm_nopool']:.1f}; parameters LSTM {int(recorded(m, 'parameters_lstm')):,}, "
               f"CNN-LSTM {int(recorded(m, 'parameters_cnn_lstm')):,}")
    faster, smaller = ms["cnn_lstm"] < ms["lstm"], mb["cnn_lstm"] < mb["lstm"]
    nopool_wins = ms["lstm"] > 1.25 * ms["cnn_lstm_nopool"] and mb["lstm"] > 1.25 * mb["cnn_lstm_nopool"]
    if faster and smaller:
        if nopool_wins:
            return numbers, "holds"
        return numbers, ("holds only when the pooling shortens the sequence: without pooling the CNN-LSTM "
                         "is not 25% cheaper in both time and memory")
    if faster or smaller:
        return numbers, f"holds only for {'time' if faster else 'memory'}, not for {'memory' if faster else 'time'}"
    return numbers, "does not hold"


def _claim_5(m: Mapping[str, Any]) -> tuple[str, str]:
    after = int(recorded(m, "pretrain_compare_steps"))
    numbers = (f"steps to {SOLVED} validation accuracy: pretrained CNN {_mean_pm_sd(m, 'pretrained_steps', 0)}, from "
               f"scratch {_mean_pm_sd(m, 'scratch_steps', 0)}; accuracy after {after} steps: "
               f"{_mean_pm_sd(m, 'pretrained_acc_after')} vs {_mean_pm_sd(m, 'scratch_acc_after')}")
    steps = compare(m, "pretrained_steps", "scratch_steps", floor=1.0)
    accuracy = compare(m, "pretrained_acc_after", "scratch_acc_after")
    if steps == "lower" and accuracy != "lower":
        return numbers, "holds"
    if steps == "higher" or accuracy == "lower":
        return numbers, "does not hold"
    if accuracy == "higher":
        return numbers, "holds only for the accuracy after equal steps; the steps to the target are within the spread"
    return numbers, "inconclusive: both differences lie within the run-to-run spread"


def _claim_6(m: Mapping[str, Any]) -> tuple[str, str]:
    far = distances(m)[-1]
    pools, crossover = _window(m)
    distance = compare(m, f"cnn_lstm_acc_k{far}", f"lstm_acc_k{far}")
    numbers = (f"pair task k={far}: CNN-LSTM (pool 4) {_mean_pm_sd(m, f'cnn_lstm_acc_k{far}')}, LSTM "
               f"{_mean_pm_sd(m, f'lstm_acc_k{far}')}; order task: LSTM {_mean_pm_sd(m, 'window_acc_lstm')}, CNN-LSTM by pool " +
               ", ".join(f"{p}: {recorded(m, f'window_acc_pool{p}_mean'):.2f}" for p in pools))
    if distance == "lower":
        return numbers, "holds"
    if crossover:
        return numbers, (f"holds only when a pooling window swallows the order of two events farther apart than "
                         f"the convolutions see (here pool >= {crossover}); over a distance of {far} steps the "
                         f"CNN-LSTM is {'as good' if distance == 'within spread' else 'better'}")
    return numbers, "does not hold"


def _claim_7(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    ms = {name: recorded(m, f"ms_per_step_{name}_T{t}_threadsall") for name in ("lstm", "cnn", "tcn", "attention")}
    growth = {name: recorded(m, f"growth_ms_{name}") for name in ("lstm", "tcn", "attention")}
    numbers = (f"T={t}, all threads, ms per step: LSTM {ms['lstm']:.0f}, CNN {ms['cnn']:.0f}, TCN {ms['tcn']:.0f}, "
               f"attention {ms['attention']:.0f}; growth exponent of the time (1 = linear in T): LSTM "
               f"{growth['lstm']:.2f}, TCN {growth['tcn']:.2f}, attention {growth['attention']:.2f}")
    if ms["lstm"] > 1.25 * max(ms["cnn"], ms["tcn"]):
        if ms["lstm"] > 1.25 * ms["attention"]:
            return numbers, "holds"
        return numbers, (f"holds only against convolutions: at T={t} self-attention is "
                         f"{'slower' if ms['attention'] > ms['lstm'] else 'about as slow'}, and its time grows faster")
    return numbers, "does not hold"


def _claim_8(m: Mapping[str, Any]) -> tuple[str, str]:
    lstm_layer, conv_layer = recorded(m, "lstm_layer_parameters"), recorded(m, "conv_layer_parameters")
    gaps = {name: compare(m, "rows_gap_lstm", f"rows_gap_{name}") for name in ("cnn", "tcn")}
    numbers = (f"one layer 64 -> 64: LSTM {lstm_layer:,.0f}, convolution (kernel 5) {conv_layer:,.0f} parameters; "
               "Fashion-MNIST rows, train-test accuracy gap: " +
               ", ".join(f"{MODEL_LABELS[name]} {_mean_pm_sd(m, f'rows_gap_{name}', 3)}" for name in ("lstm", "cnn", "tcn")))
    more = lstm_layer > conv_layer
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
    numbers = (f"GRU vs LSTM: parameters {int(recorded(m, 'parameters_gru')):,} vs {int(recorded(m, 'parameters_lstm')):,}; "
               f"ms per step at T={t} (one thread) {recorded(m, f'ms_per_step_gru_T{t}_threads1'):.0f} vs "
               f"{recorded(m, f'ms_per_step_lstm_T{t}_threads1'):.0f}; accuracy " +
               ", ".join(f"{label}: {_mean_pm_sd(m, a)} vs {_mean_pm_sd(m, b)}" for label, (a, b) in zip(tasks, pairs.values())))
    differ = [task for task, o in outcome.items() if o != "within spread"]
    if differ:
        return numbers, ("holds: on " + ", ".join(f"{task} the GRU is {outcome[task]}" for task in differ)
                         + "; the bidirectional LSTM is taken up in lesson 05")
    return numbers, ("inconclusive: on these tasks the GRU's accuracy lies within the LSTM's run-to-run spread, "
                     "with fewer parameters; the bidirectional LSTM is taken up in lesson 05")


def _claim_10(m: Mapping[str, Any]) -> tuple[str, str]:
    t = _longest(m)
    names = ("lstm", "gru", "cnn_lstm", "tcn", "attention")
    mb = {name: recorded(m, f"saved_mb_{name}_T{t}") for name in names}
    ms = {name: recorded(m, f"ms_per_step_{name}_T{t}_threads1") for name in names}
    _, crossover = _window(m)
    numbers = (f"T={t}, saved MB / ms per step (one thread): " +
               ", ".join(f"{MODEL_LABELS[n]} {mb[n]:.0f} / {ms[n]:.0f}" for n in names) +
               f"; order task: the CNN-LSTM falls below the LSTM at pool {crossover or 'none'}")
    if not (mb["cnn_lstm"] < mb["lstm"] and ms["cnn_lstm"] < ms["lstm"]):
        return numbers, "does not hold"
    best = min(names, key=mb.get)
    condition = f"the task's order survives the pooling (pool < {crossover})" if crossover else ""
    if best != "cnn_lstm":
        return numbers, (f"holds only against the LSTM and the GRU, and only when {condition or 'the pooling loses nothing'}"
                         f": the {MODEL_LABELS[best]} keeps less memory ({mb[best]:.0f} MB vs {mb['cnn_lstm']:.0f})")
    if condition:
        return numbers, f"holds only when {condition}"
    return numbers, "holds"


EXPERIMENTS = {
    1: "pair task at a short and a long distance k; receptive fields; padded batches",
    2: "gradient of the last output with respect to earlier inputs, untrained models",
    3: "order task at the largest pool: events inside vs outside the convolutions' field",
    4: "time per step and saved activations at the longest T, with and without pooling",
    5: "CNN-LSTM whose convolutions come from the pair task at the short k, vs from scratch",
    6: "pair task at the long k; order task swept over the pool size",
    7: "time per step at growing T on all threads; growth exponents",
    8: "parameters of one layer at equal width; train-test gap on Fashion-MNIST rows",
    9: "GRU vs LSTM: parameters, time, accuracy on three tasks",
    10: "saved activations and time at the longest T; the order task's crossover",
}
RULES = {1: _claim_1, 2: _claim_2, 3: _claim_3, 4: _claim_4, 5: _claim_5, 6: _claim_6, 7: _claim_7,
         8: _claim_8, 9: _claim_9, 10: _claim_10}


def verdicts(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """The lesson's claim/verdict table, computed from a run's recorded metrics by fixed
    rules, so that the verdicts cannot disagree with the numbers.

    Args:
        metrics: name -> value, as ``course_utils.lesson.read_metrics`` returns them.

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
