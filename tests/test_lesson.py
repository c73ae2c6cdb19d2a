"""Run modes, recorded metrics and the papermill runner's helpers."""

import json

import nbformat
import numpy as np
import pytest
import torch

from course_utils import lesson
from course_utils.tooling import results, runner

TABLE = {"smoke": {"epochs": 1}, "cpu": {"epochs": 5}, "full": {"epochs": 30}}


def test_settings_for_picks_the_mode(capsys):
    assert lesson.settings_for("cpu", TABLE) == {"epochs": 5}
    assert "mode = cpu" in capsys.readouterr().out


@pytest.mark.parametrize("mode", ["CPU", "gpu", ""])
def test_settings_for_rejects_unknown_modes(mode):
    with pytest.raises(ValueError, match="MODE must be one of"):
        lesson.settings_for(mode, TABLE)


def test_settings_table_must_be_complete_and_consistent():
    with pytest.raises(ValueError, match="no entry for mode"):
        lesson.settings_for("cpu", {"cpu": {}, "smoke": {}})
    with pytest.raises(ValueError, match="same keys"):
        lesson.settings_for("cpu", {**TABLE, "full": {"epochs": 3, "lr": 1.0}})


def test_default_mode_reads_the_environment(monkeypatch):
    monkeypatch.delenv("COURSE_MODE", raising=False)
    assert lesson.default_mode() == "cpu"
    monkeypatch.setenv("COURSE_MODE", "smoke")
    assert lesson.default_mode() == "smoke"


def test_record_converts_scalars(capsys):
    lesson.record("acc", np.float32(0.5))
    lesson.record("n", torch.tensor(3))
    lesson.record("tiny", 4.5e-7)
    assert capsys.readouterr().out.split("\n")[:3] == ["acc = 0.5", "n = 3", "tiny = 4.5e-07"]


@pytest.mark.parametrize("name", ["test accuracy", "1st", "", 3])
def test_record_rejects_bad_names(name):
    with pytest.raises(ValueError, match="identifier"):
        lesson.record(name, 1.0)


def test_record_rejects_bad_values():
    with pytest.raises(TypeError, match="must be a number"):
        lesson.record("acc", [0.5])
    with pytest.raises(ValueError, match="finite"):
        lesson.record("loss", float("nan"))
    with pytest.raises(TypeError, match="must be a number"):
        lesson.record("acc", torch.tensor([0.5, 0.6]))


def _notebook_with_metrics(path, items, duration=None):
    nb = nbformat.v4.new_notebook()
    cells = []
    for name, value in items:
        cell = nbformat.v4.new_code_cell("record(...)")
        cell.outputs = [nbformat.v4.new_output(
            "display_data", data={lesson.METRIC_MIME: {"name": name, "value": value}, "text/plain": "x"})]
        cells.append(cell)
    nb.cells = cells
    if duration is not None:
        nb.metadata["papermill"] = {"duration": duration}
    nbformat.write(nb, path)


def test_read_metrics_last_value_wins_and_adds_seconds(tmp_path):
    path = tmp_path / "nb.ipynb"
    _notebook_with_metrics(path, [("mode", "cpu"), ("acc", 0.5), ("acc", 0.9)], duration=123.456)
    assert results.read_metrics(path) == {"mode": "cpu", "acc": 0.9, "seconds": 123.5}


def test_read_metrics_of_a_missing_notebook(tmp_path):
    with pytest.raises(FileNotFoundError):
        results.read_metrics(tmp_path / "nope.ipynb")


def test_metrics_command_prints_json(tmp_path, capsys):
    from course_utils.tooling.cli import main

    path = tmp_path / "nb.ipynb"
    _notebook_with_metrics(path, [("acc", 0.75)])
    assert main(["metrics", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == {"acc": 0.75}


def test_lesson_notebooks_selection(tmp_path):
    for name in ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb", "notes.ipynb"]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runner.lesson_notebooks(folder=tmp_path)] == ["01_a.ipynb", "02_b.ipynb", "10_c.ipynb"]
    assert [p.name for p in runner.lesson_notebooks("2,10", folder=tmp_path)] == ["02_b.ipynb", "10_c.ipynb"]
    with pytest.raises(ValueError, match=r"no lesson numbered \['07'\]"):
        runner.lesson_notebooks("07", folder=tmp_path)


def test_section_clock_times_each_section_until_the_next():
    from course_utils.lesson import SectionClock
    now = iter([0.0, 60.0, 240.0, 270.0, 270.0])  # two starts, then minutes() reads the clock once
    clock = SectionClock(clock=lambda: next(now))
    clock.start("1. Data")
    clock.start("2. Model")
    clock.start("3. Training")
    assert clock.minutes() == {"1. Data": 1.0, "2. Model": 3.0, "3. Training": 0.5}
    table = clock.markdown()
    assert "| 2. Model | 3.0 |" in table and "| **Total of the sections** | **4.5** |" in table
    assert "README's minutes time the whole run" in table


def test_section_clock_rejects_bad_use():
    from course_utils.lesson import SectionClock
    clock = SectionClock(clock=lambda: 0.0)
    for reading in (clock.minutes, clock.markdown):
        with pytest.raises(ValueError, match="no section"):
            reading()
    clock.start("a")
    with pytest.raises(ValueError, match="started already"):
        clock.start("a")
    with pytest.raises(ValueError, match="section name"):
        clock.start(" ")
