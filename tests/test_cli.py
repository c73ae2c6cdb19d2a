"""Tests for the command line's one exit-status rule (course_utils.tooling.cli): user mistakes,
Ctrl-C and a closed output pipe end in one line (or none) and a documented status, never a traceback."""

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from course_utils import ner
from course_utils.tooling import cli, datasets, results, runner
from course_utils.tooling.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("argv, target", [
    (["data", "fetch", "conll2003"], (datasets, "data_command")),
    (["run", "--nb", "01"], (runner, "run_lessons")),
    (["ner", "tag", "--model", "m", "EU rejects ."], (ner.Tagger, "load")),
])
def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys, argv, target):
    """Re-probe row 6: Ctrl-C in data fetch, run and ner tag printed a traceback."""
    monkeypatch.setattr(*target, _interrupt)
    assert main(argv) == 128 + signal.SIGINT == 130
    err = capsys.readouterr().err
    assert err == "interrupted (Ctrl-C)\n"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "a command leaves no signal handler behind"


class _ClosedPipe:
    """A stdout whose reader has gone, as under `... | head`."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_output_pipe_ends_quietly_with_141(monkeypatch, capsys):
    monkeypatch.setattr(results, "read_metrics", lambda notebook: {"acc": 0.9})
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert main(["metrics", "x.ipynb"]) == 128 + signal.SIGPIPE == 141
    assert capsys.readouterr().err == ""


def test_a_real_closed_pipe_prints_no_traceback():
    """Re-probe row 6: `python -m course_utils data list | head -0` printed a BrokenPipeError traceback."""
    process = subprocess.Popen([sys.executable, "-m", "course_utils", "data", "list"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # the reader goes away before anything is written
    err = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("selection", [",", " , ", ",,"])
def test_run_with_no_lesson_number_is_a_clear_error(capsys, selection):
    """Re-probe row 6: `run --nb ,` gave a KeyError traceback."""
    assert main(["run", "--nb", selection]) == 1
    err = capsys.readouterr().err
    assert err == f"error: expected lesson numbers such as 01 or 01,03, got {selection!r}\n"


def test_run_with_no_lessons_at_all_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(runner, "run_lessons", lambda *a, **k: __import__("pandas").DataFrame())
    assert main(["run"]) == 1
    assert "error: no lesson notebooks (NN_name.ipynb) to run in" in capsys.readouterr().err


def test_every_command_follows_one_documented_exit_status_rule(tmp_path, capsys):
    """Re-probe row 8: `ner` returned 2 for user errors while the other commands returned 1."""
    assert "exit status, for every command" in cli.build_parser().format_help()
    assert main(["metrics", str(tmp_path / "nope.ipynb")]) == 1
    assert main(["ner", "tag", "--model", str(tmp_path / "nope"), "EU ."]) == 1
    assert main(["ner", "train", "--train", "a", "--dev", "b", "--out", str(tmp_path / "m")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    with pytest.raises(SystemExit) as exit_:  # a usage error stays argparse's 2
        main(["ner", "train", "--epochs", "x"])
    assert exit_.value.code == 2


def test_metrics_refuses_nan_instead_of_printing_invalid_json(tmp_path, capsys):
    """Re-probe NM02: a NaN metric was printed as `NaN`, which is not JSON."""
    path = tmp_path / "x.ipynb"
    metric = {"data": {"application/vnd.course-utils.metric+json": {"name": "acc", "value": float("nan")}}}
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": "", "outputs": [metric]}],
                                "metadata": {}}))
    assert main(["metrics", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}, cell 1: metric 'acc' is nan; expected a finite number" in err
