"""The course machinery: the CLI with base dependencies only, run stamps and `stale`, metric reading."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from course_utils.tooling import results, runner
from course_utils.tooling.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY = ["nbformat", "nbclient", "papermill", "nbval", "jupyter", "jupyterlab", "pytest", "yaml", "torchcrf",
            "selenium", "nbgrader", "otter"]
LEARNER_MODULES = ["data", "lesson", "train", "plots", "cnn", "timing", "lstm", "text", "sequence", "video",
                   "ner_data", "crf", "ner", "exercises"]


def _without_dev_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter in which every dev-only library fails to import."""
    blocker = textwrap.dedent(f"""
        import importlib.abc, sys
        BLOCKED = {DEV_ONLY!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: a dev extra)")
        sys.meta_path.insert(0, Block())
    """)
    return subprocess.run([sys.executable, "-c", blocker + code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_learner_modules_and_data_commands_work_with_base_dependencies_only(tmp_path):
    imports = "; ".join(f"import course_utils.{m}" for m in LEARNER_MODULES)
    code = imports + textwrap.dedent("""
        from course_utils.tooling.cli import main
        assert main(["data", "list"]) == 0
        assert main(["data", "verify"]) in (0, 1)
        assert main(["data", "fetch", "tinyshakespeare"]) == 0
        print("BASE-ONLY OK")
    """)
    done = _without_dev_extras(code, tmp_path)
    assert "BASE-ONLY OK" in done.stdout, done.stdout + done.stderr


def test_the_blocker_really_blocks(tmp_path):
    done = _without_dev_extras("import nbformat", tmp_path)
    assert done.returncode != 0 and "blocked: a dev extra" in done.stderr


def _lesson(folder: Path, code: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A lesson")] + [nbformat.v4.new_code_cell(c) for c in code]
    path = folder / "01_lesson.ipynb"
    nbformat.write(nb, path)
    return path


def test_fingerprint_covers_what_a_notebook_imports_and_what_that_imports():
    prints = results.code_fingerprint(["from course_utils.crf import CRF"])
    assert {"course_utils", "course_utils.crf", "course_utils.ner_data", "course_utils.timing",
            "course_utils.lesson", "course_utils.train"} <= set(prints)
    assert "course_utils.video" not in prints
    assert "course_utils.video" in results.code_fingerprint(["import course_utils.video as v"])


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of course_utils whose files the test may edit; the fingerprint reads it."""
    import shutil

    copy = tmp_path / "pkg" / "course_utils"
    shutil.copytree(ROOT / "course_utils", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(results, "PACKAGE", copy)
    return copy


def test_stale_sees_code_changes_but_not_comments_or_docstrings(tmp_path, package_copy):
    path = _lesson(tmp_path, ["from course_utils.cnn import conv_output_size\nprint(conv_output_size(28, 3))"])
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    path.write_text(json.dumps(nb))
    assert results.why_stale(path) == []

    cnn = package_copy / "cnn.py"
    original = cnn.read_text()
    cnn.write_text(original.replace('"""', '"""Edited docstring. ', 1) + "\n# a new comment\n")
    assert results.why_stale(path) == [], "docstrings and comments are not code"
    cnn.write_text(original + "\nEXTRA = 1\n")
    assert results.why_stale(path) == ["course_utils.cnn changed since the run"]


def test_stale_sees_an_edited_cell_and_an_unstamped_notebook(tmp_path, package_copy):
    path = _lesson(tmp_path, ["x = 1"])
    assert "no run stamp" in results.why_stale(path)[0]
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    nb["cells"][1]["source"] = "x = 2"
    path.write_text(json.dumps(nb))
    assert results.why_stale(path) == ["a cell was edited after the run"]


def test_stale_command_lists_stale_lessons_and_exits_1(tmp_path, monkeypatch, capsys):
    path = _lesson(tmp_path, ["x = 1"])
    monkeypatch.setattr(runner, "lesson_notebooks", lambda: [path])
    assert main(["stale"]) == 1
    assert "stale    01_lesson.ipynb" in capsys.readouterr().out
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    path.write_text(json.dumps(nb))
    assert main(["stale"]) == 0


def test_the_runner_stamps_what_it_runs(tmp_path):
    source = _lesson(tmp_path, ["from course_utils import record\nrecord('answer', 42)"])
    output = tmp_path / "out" / source.name
    runner.execute(source, output, "smoke")
    assert results.read_metrics(output)["answer"] == 42
    assert results.why_stale(output) == []
    assert not list(output.parent.glob("*.running.ipynb"))


@pytest.mark.parametrize("content, problem", [
    ("not json at all", "not valid JSON"),
    ('{"cells": 3}', "expected a JSON object with a 'cells' list"),
    (json.dumps({"cells": [{"outputs": [{"data": {"application/vnd.course-utils.metric+json": {"value": 1}}}]}]}),
     "cell 1: a metric output must be"),
])
def test_metrics_of_a_bad_file_is_a_clear_error(tmp_path, capsys, content, problem):
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    assert main(["metrics", str(path)]) == 1
    err = capsys.readouterr().err
    assert problem in err and str(path) in err
