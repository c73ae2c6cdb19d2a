"""Tests for course_utils.tooling.results on hostile notebooks and module files."""

import json

import pytest

from course_utils.tooling import results


def test_a_deeply_nested_notebook_is_a_clear_error(tmp_path):
    """Re-probe NM07: a deeply nested JSON file gave a RecursionError traceback."""
    path = tmp_path / "deep.ipynb"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match=rf"{path} is not a notebook: its JSON is nested too deeply"):
        results.read_metrics(path)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_metrics_are_refused_with_file_cell_and_name(tmp_path, value):
    path = tmp_path / "x.ipynb"
    metric = {"data": {"application/vnd.course-utils.metric+json": {"name": "loss", "value": value}}}
    path.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": ""},
                                          {"cell_type": "code", "source": "", "outputs": [metric]}]}))
    with pytest.raises(ValueError, match=rf"{path}, cell 2: metric 'loss' is {value}; expected a finite number"):
        results.read_metrics(path)


@pytest.mark.parametrize("code", [[1, 2], "abc", {"course_utils": 5}])
def test_a_malformed_run_stamp_is_a_reason_not_a_crash(tmp_path, code):
    """Re-probe NM11: `stale` crashed (AttributeError) without naming the file."""
    path = tmp_path / "01_x.ipynb"
    nb = {"cells": [], "metadata": {results.STAMP_KEY: {"code": code, "sources": "x"}}}
    path.write_text(json.dumps(nb))
    assert results.why_stale(path) == ["its run stamp is malformed (expected metadata.course_utils.code to map "
                                       "modules to hashes)"]


def test_a_module_that_does_not_parse_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "PACKAGE", tmp_path)
    (tmp_path / "__init__.py").write_text("def broken(:\n")
    with pytest.raises(ValueError, match=rf"cannot fingerprint {tmp_path / '__init__.py'}: SyntaxError"):
        results.code_fingerprint([])


def test_a_number_too_long_to_read_is_not_a_notebook(tmp_path):
    path = tmp_path / "bigint.ipynb"
    path.write_text('{"cells": [], "metadata": {}, "x": ' + "9" * 100_000 + "}")
    with pytest.raises(ValueError, match=rf"{path} is not a notebook: it is not valid JSON \(Exceeds the limit"):
        results.read_notebook(path)


def test_a_module_a_cell_runs_as_a_script_is_part_of_the_fingerprint():
    """Lesson 06 trains in subprocesses (python -m course_utils.ddp_cnn, torchrun -m course_utils ner train):
    a change there must make the lesson stale (package review: it did not)."""
    source = ('run([sys.executable, "-m", "course_utils.ddp_cnn", "--steps", "8"])\n'
              'run([*TORCHRUN, "--nproc_per_node=2", "-m", "course_utils", "ner", "train"])\n'
              '!python -m course_utils.distributed')
    fingerprint = results.code_fingerprint([source])
    for module in ("course_utils.ddp_cnn", "course_utils.distributed", "course_utils.tooling.ner_cli",
                   "course_utils.ner_train"):
        assert module in fingerprint, module
    assert "course_utils.tooling.grading" not in fingerprint  # `ner` runs ner_cli, not the whole CLI
    assert "course_utils.ddp_cnn" not in results.code_fingerprint(["import course_utils.cnn"])
