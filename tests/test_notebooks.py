"""Every lesson notebook: structure, its smoke run, and its committed cpu-mode results.

Each lesson states what its recorded metrics must reach in each mode; a new
lesson needs an entry in EXPECTATIONS before its tests pass.
"""

import json
import operator
import os
import sys
import types
from pathlib import Path

import pytest

from course_utils import exercises
from course_utils.tooling import colab, grading, results, runner

# lesson -> mode -> metric -> (comparison, bound)
EXPECTATIONS = {
    "01_cnn_image_classification": {
        "smoke": {"test_accuracy": (">=", 0.5), "cnn_parameters": ("<", "mlp_parameters"),
                  "gap_cnn_parameters": ("<", "cnn_parameters"), "cnn_multiply_adds": (">", "mlp_multiply_adds"),
                  "gap_cnn_test_accuracy": (">=", 0.1)},
        "cpu": {"test_accuracy": (">=", 0.92), "cnn_parameters": ("<", "mlp_parameters"),
                "conv_max_abs_difference": ("<=", 1e-5), "gap_cnn_parameters": ("<", "cnn_parameters"),
                "cnn_multiply_adds": (">", "mlp_multiply_adds"), "gap_cnn_test_accuracy": (">=", 0.85)},
    },
    "02_lstm_text_modeling": {
        "smoke": {"lstm_max_abs_output_difference": ("<=", 1e-5), "lstm_max_abs_gradient_difference": ("<=", 1e-5),
                  "val_loss_nats": ("<", 4.17),  # ln(65) = 4.17 nats: a uniform guess over the 65 characters
                  "gru_val_loss_nats": ("<", 4.17), "lstm_equal_time_val_loss_nats": ("<", 4.17)},
        "cpu": {"lstm_max_abs_output_difference": ("<=", 1e-5), "lstm_max_abs_gradient_difference": ("<=", 1e-5),
                "val_loss_nats": ("<=", 1.45),
                # 60 s of training each: far from converged, but well below a unigram model (about 3.3 nats)
                "gru_val_loss_nats": ("<", 2.5), "lstm_equal_time_val_loss_nats": ("<", 2.5)},
    },
    "03_cnn_vs_lstm": {
        "smoke": {"seeds": (">=", 2), "lstm_packed_max_diff": ("<=", 1e-5), "cnn_masked_max_diff": ("<=", 1e-5),
                  "cnn_lstm_packed_max_diff": ("<=", 1e-5), "gru_packed_max_diff": ("<=", 1e-5),
                  "attention_masked_max_diff": ("<=", 1e-5), "cnn_unmasked_max_diff": (">=", 1e-3),
                  "cnn_receptive_field": ("<", "tcn_receptive_field"), "window_conv_field": ("<", "window_gap"),
                  "saved_mb_cnn_lstm_T128": ("<", "saved_mb_lstm_T128"),
                  "parameters_gru": ("<", "parameters_lstm")},
        "cpu": {"seconds": ("<=", 600), "seeds": (">=", 3),
                "cnn_acc_k8_mean": (">=", 0.9), "cnn_acc_k48_mean": ("<=", 0.4), "tcn_acc_k48_mean": (">=", 0.9),
                "lstm_acc_k48_mean": (">=", 0.9), "cnn_lstm_acc_k48_mean": (">=", 0.9),
                # where a CNN-LSTM loses: the order of two events 16 steps apart survives pools up to 16 and
                # is lost from pool 32 on, where the LSTM keeps it: the crossover lies above the gap
                "window_acc_lstm_mean": (">=", 0.9), "window_acc_pool1_mean": (">=", 0.9),
                "window_acc_pool16_mean": (">=", 0.9), "window_acc_pool32_mean": ("<=", 0.6),
                "window_crossover_pool": (">", "window_gap"), "window_near_acc_mean": (">=", 0.9),
                "window_ms_per_step_pool32": ("<", "window_ms_per_step_pool1"),
                # GRU beside the LSTM
                "gru_acc_k48_mean": (">=", 0.9), "window_acc_gru_mean": (">=", 0.9),
                "rows_test_acc_gru_mean": (">=", 0.8), "parameters_gru": ("<", "parameters_lstm"),
                # self-attention: solves the tasks, and its saved memory grows faster with T than the LSTM's
                "attention_acc_k48_mean": (">=", 0.9), "window_acc_attention_mean": (">=", 0.9),
                "growth_saved_attention": (">", "growth_saved_lstm"),
                "saved_mb_attention_T1024": (">", "saved_mb_lstm_T1024"),
                "rows_test_acc_lstm_mean": (">=", 0.8), "saved_mb_cnn_lstm_T1024": ("<", "saved_mb_lstm_T1024"),
                "gradient_log10_lstm_mean": (">", "gradient_log10_rnn_mean"),
                "lstm_packed_max_diff": ("<=", 1e-5), "cnn_masked_max_diff": ("<=", 1e-5),
                "cnn_unmasked_max_diff": (">=", 1e-3)},
    },
    "04_cnn_lstm_video": {
        "smoke": {"fold_max_abs_difference": ("<=", 1e-6), "frame_pool_reversal_logit_change": ("<=", 1e-5)},
        "cpu": {"cnn_lstm_test_accuracy": (">=", 0.97), "frame_pool_test_accuracy": ("<=", 0.30),
                "fold_max_abs_difference": ("<=", 1e-6), "frame_pool_reversal_logit_change": ("<=", 1e-5),
                "combined_task_cnn_lstm_accuracy": (">", "combined_task_frame_pool_accuracy"),
                "far_cnn_lstm_test_accuracy": (">=", 0.9), "far_conv3d_test_accuracy": ("<=", 0.65)},
    },
    "05_ner_bilstm_cnn_crf": {
        "smoke": {"crf_invalid_sequences": ("<=", 0)},
        "cpu": {"crf_invalid_sequences": ("<=", 0), "conll2003_test_f1": (">=", 0.85), "resume_test_f1": (">=", 0.92),
                "ablation_bilstm_cnn_crf_test_f1": (">", "ablation_bilstm_softmax_test_f1")},
    },
    "06_distributed_training": {
        "smoke": {"ddp_max_abs_param_difference": ("<=", 1e-5), "ddp_speedup": (">", 0),
                  "ddp_resume_max_abs_param_difference": ("<=", 1e-6), "ner_ddp_model_writes": ("<=", 1),
                  "two_node_world_size": (">=", 2)},
        "cpu": {"ddp_max_abs_param_difference": ("<=", 1e-5), "ddp_speedup": (">", 0),
                "ddp_test_accuracy": (">=", 0.85), "ddp_resume_max_abs_param_difference": ("<=", 1e-6),
                "ddp_resumed_from_step": (">", 0), "ner_ddp_model_writes": ("<=", 1),
                "ner_ddp_dev_f1": (">=", 0.3), "two_node_world_size": (">=", 2)},
    },
}
COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}
NOTEBOOKS = runner.lesson_notebooks()


def _check(metrics: dict, expected: dict) -> list[str]:
    failures = []
    for name, (op, bound) in expected.items():
        value = metrics.get(name)
        bound_value = metrics.get(bound) if isinstance(bound, str) else bound
        if value is None or bound_value is None:
            failures.append(f"{name} or {bound} was not recorded")
        elif not COMPARE[op](value, bound_value):
            failures.append(f"{name} = {value}, expected {op} {bound} ({bound_value})")
    return failures


def _cells(notebook):
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def test_every_lesson_states_its_expectations():
    assert NOTEBOOKS and {p.stem for p in NOTEBOOKS} <= set(EXPECTATIONS)


# `make colab-check` runs every lesson and its learner version in smoke mode in a Colab-like
# environment (course_utils.tooling.colab_check) and names the folder of the runs here.
COLAB_RUNS = os.environ.get("COURSE_COLAB_RUNS")
needs_colab_runs = pytest.mark.skipif(not COLAB_RUNS, reason="reads the runs of `make colab-check`")


def _colab_run(version: str, notebook) -> list:
    path = Path(COLAB_RUNS) / version / notebook.name
    assert path.is_file(), f"make colab-check did not run {version}/{notebook.name}"
    metrics = results.read_metrics(path)
    assert metrics["mode"] == "smoke"
    assert not _check(metrics, EXPECTATIONS[notebook.stem]["smoke"])
    checks = [o["data"][exercises.CHECK_MIME] for c in _cells(path) if c["cell_type"] == "code"
              for o in c["outputs"] if exercises.CHECK_MIME in o.get("data", {})]
    assert sorted(c["exercise"] for c in checks) == sorted(exercises.lesson_exercises(notebook.name[:2]))
    return checks


@needs_colab_runs
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_run_of_the_student_version(notebook):
    """The smoke run of the learner version (notebooks/exercises/, solutions removed) ran through
    (papermill stops at the first error), every check of the lesson says "not implemented yet",
    and the recorded metrics reach the lesson's smoke expectations. The solutions themselves
    pass their checks in tests/test_exercises.py."""
    checks = _colab_run("exercises", notebook)
    assert all(not c["passed"] and c["message"] == exercises.NOT_IMPLEMENTED for c in checks)


@needs_colab_runs
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_colab_run_of_the_lesson(notebook):
    """The smoke run of the lesson itself: its solutions pass every check, its metrics reach the
    smoke expectations."""
    checks = _colab_run("lessons", notebook)
    assert all(c["passed"] for c in checks), [c["message"] for c in checks if not c["passed"]]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_holds_its_cpu_results(notebook):
    metrics = results.read_metrics(notebook)
    assert metrics.get("mode") == "cpu", "commit the notebook as executed by `make run` (cpu mode)"
    assert not _check(metrics, EXPECTATIONS[notebook.stem]["cpu"])
    cells = _cells(notebook)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(c["execution_count"] is not None for c in code), "every code cell must have run"
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_template(notebook):
    cells = _cells(notebook)
    sources = ["".join(c["source"]) for c in cells]
    tags = [c.get("metadata", {}).get("tags", []) for c in cells]
    assert sources[0].startswith("# "), "a lesson starts with its title"
    assert colab.badge_markdown(notebook.name) in sources[0]
    assert colab.setup_cell_source() in sources, "run `python -m course_utils sync-headers`"
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell tagged 'parameters'"
    assert not any("injected-parameters" in t for t in tags), "strip papermill's injected cell"
    parameters = sources[[i for i, t in enumerate(tags) if "parameters" in t][0]]
    assert 'MODE = default_mode()' in parameters
    headings = [line for s, c in zip(sources, cells) if c["cell_type"] == "markdown" for line in s.splitlines()]
    for section in ("## What you will learn", "## Summary", "## Exercises"):
        assert section in headings, f"missing section {section!r}"


@pytest.mark.parametrize("in_colab", [True, False])
def test_colab_setup_cell(in_colab, monkeypatch):
    calls = []
    fake_subprocess = types.SimpleNamespace(run=lambda cmd, check: calls.append((cmd, check)))
    monkeypatch.setitem(sys.modules, "subprocess", fake_subprocess)
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(colab.setup_cell_source(), {})
    if not in_colab:
        assert calls == []
        return
    [(cmd, check)] = calls
    assert check is True
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == colab.install_url()
    assert cmd[-1].endswith(f" @ git+https://github.com/{colab.REPO}@{colab.BRANCH}")
    assert not any("torch" in part for part in cmd), "Colab's PyTorch must not be reinstalled"
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(cmd)


@pytest.mark.parametrize("keep_on_drive", [True, False])
def test_colab_setup_cell_can_keep_the_data_on_drive(keep_on_drive, monkeypatch):
    mounted = []
    colab_module = types.ModuleType("google.colab")
    colab_module.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    monkeypatch.setitem(sys.modules, "subprocess", types.SimpleNamespace(run=lambda cmd, check: None))
    monkeypatch.setenv("COURSE_DATA_HOME", "set by the test")  # so that teardown restores it
    monkeypatch.delenv("COURSE_DATA_HOME")
    source = colab.setup_cell_source()
    assert "\nKEEP_DATA_ON_DRIVE = False\n" in source, "learners opt in to Drive"
    exec(source.replace("KEEP_DATA_ON_DRIVE = False", f"KEEP_DATA_ON_DRIVE = {keep_on_drive}"), {})
    if keep_on_drive:
        assert mounted == ["/content/drive"]
        assert os.environ["COURSE_DATA_HOME"] == colab.DRIVE_DATA_HOME
        assert colab.DRIVE_DATA_HOME.startswith("/content/drive/")
    else:
        assert mounted == [] and "COURSE_DATA_HOME" not in os.environ


def test_sync_headers_rewrites_badge_and_setup_cell(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title\n\n[![Open In Colab](old)](old-url)\n\nText"),
                nbformat.v4.new_code_cell(colab.SETUP_MARKER + ": old\nprint('old')"),
                nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)
    assert colab.sync_headers(path) is True
    cells = nbformat.read(path, as_version=4).cells
    assert cells[0]["source"] == f"# Title\n\n{colab.badge_markdown('01_x.ipynb')}\n\nText"
    assert cells[1]["source"] == colab.setup_cell_source()
    assert cells[2]["source"] == "x = 1"
    assert colab.sync_headers(path) is False


def test_badges_open_the_lesson_and_its_learner_version():
    line = colab.badge_markdown("01_x.ipynb")
    assert line.startswith(colab.BADGE), "sync_headers finds the badge line by its start"
    assert f"[![Open In Colab]({colab.BADGE_IMAGE})]({colab.colab_url('notebooks/01_x.ipynb')})" in line
    exercises_url = colab.colab_url(f"notebooks/{colab.EXERCISES_FOLDER}/01_x.ipynb")
    assert f"[![Open the exercises in Colab]({colab.BADGE_IMAGE})]({exercises_url})" in line
    assert exercises_url.startswith(f"https://colab.research.google.com/github/{colab.REPO}/blob/{colab.BRANCH}/")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_checks_every_exercise_of_its_lesson(notebook):
    calls = {e for c in _cells(notebook) for e in grading.check_calls("".join(c["source"]))}
    assert sorted(calls) == sorted(exercises.lesson_exercises(notebook.name[:2]))


@pytest.mark.parametrize("notebook", [p for p in NOTEBOOKS if p.stem == "03_cnn_vs_lstm"], ids=lambda p: p.stem)
def test_lesson_03_verdict_table_agrees_with_its_numbers(notebook):
    from course_utils import sequence

    metrics = results.read_metrics(notebook)
    table = sequence.verdicts(metrics)
    assert len(table) >= 10
    for claim, verdict in table["verdict"].items():
        assert verdict == metrics[f"verdict_{claim}"]
        assert verdict.startswith(sequence.VERDICT_STARTS)
