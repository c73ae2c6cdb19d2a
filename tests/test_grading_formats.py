"""assign --format nbgrader|otter, round-tripped through the real tools.

nbgrader: generate_assignment, autograde of the instructor's version (full
marks) and of the released version (zero), export. otter: assign, then a local
run (no Docker) of the solution (full marks) and of the student version (zero).
The notebook is lesson 01's exercise cells, so that each round trip is quick.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.tooling import formats, grading, runner

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not (BIN / "nbgrader").exists() or not (BIN / "otter").exists(),
                                reason="nbgrader and otter-grader come with the dev extras")
EXERCISES = ["01.conv2d_loops", "01.output_size"]


def tool(*command, cwd):
    """Run one of the venv's command-line tools; its stdout."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "COURSE_MODE": "smoke"}
    run = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    """01_lesson.ipynb: the imports, and the exercise cells of lesson 01 as they stand there."""
    source = nbformat.read(runner.lesson_notebooks("01")[0], as_version=4)
    cells = [c.source for c in source.cells if c.cell_type == "code"
             and grading.SOLUTION_BEGIN in c.source and grading.check_calls(c.source)]
    assert len(cells) == len(EXERCISES)
    imports = ("import math\n\nimport torch\nimport torch.nn.functional as F\nfrom torch import nn\n\n"
               "from course_utils.exercises import check")
    nb = new_notebook(cells=[new_code_cell(c) for c in [imports, *cells]],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    path = tmp_path_factory.mktemp("lesson") / "01_lesson.ipynb"
    nbformat.write(nb, path)
    return path


def test_nbgrader_cells_carry_nbgrader_metadata(lesson, tmp_path):
    written = formats.nbgrader_course([lesson], tmp_path / "course")
    assert written == [tmp_path / "course" / "nbgrader_config.py",
                       tmp_path / "course" / "source" / "01_lesson" / "01_lesson.ipynb"]
    nb = nbformat.read(written[1], as_version=4)
    meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    assert [m.get("solution", False) for m in meta] == [False, True, False, True, False]
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert [(t.metadata.nbgrader.points, t.metadata.nbgrader.locked) for t in tests] == [(1, True)] * 2
    assert [formats.test_source(e) for e in EXERCISES] == [t.source for t in tests]
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        formats.nbgrader_course([lesson], written[0])


def test_nbgrader_round_trip_gives_full_marks_and_zero(lesson, tmp_path):
    course = tmp_path / "course"
    assert grading.main(["assign", "--format", "nbgrader", str(lesson), "--out", str(course)]) == 0
    tool("nbgrader", "generate_assignment", "01_lesson", cwd=course)
    released = course / "release" / "01_lesson" / "01_lesson.ipynb"
    assert "raise NotImplementedError()" in released.read_text()
    for student, version in [("teacher", course / "source" / "01_lesson" / "01_lesson.ipynb"),
                             ("blank", released)]:
        (course / "submitted" / student / "01_lesson").mkdir(parents=True)
        shutil.copy(version, course / "submitted" / student / "01_lesson")
    tool("nbgrader", "autograde", "01_lesson", "--create", cwd=course)
    tool("nbgrader", "export", cwd=course)
    grades = pd.read_csv(course / "grades.csv").set_index("student_id")
    assert grades.loc["teacher", "max_score"] == len(EXERCISES)
    assert grades.loc["teacher", "score"] == len(EXERCISES)
    assert grades.loc["blank", "score"] == 0


def test_otter_round_trip_gives_full_marks_and_zero(lesson, tmp_path):
    assert grading.main(["assign", "--format", "otter", str(lesson), "--out", str(tmp_path / "otter")]) == 0
    tool("otter", "assign", "otter/01_lesson.ipynb", "dist", cwd=tmp_path)
    [autograder] = (tmp_path / "dist" / "autograder").glob("*.zip")
    for name, version, score in [("solution", "autograder", len(EXERCISES)), ("blank", "student", 0)]:
        (tmp_path / name).mkdir()
        tool("otter", "run", "-a", str(autograder), "-o", name, f"dist/{version}/01_lesson.ipynb", cwd=tmp_path)
        results = json.loads((tmp_path / name / "results.json").read_text())
        scores = {t["name"]: t["score"] for t in results["tests"] if "score" in t and t["score"] is not None}
        assert scores == {e.replace(".", "_"): score / len(EXERCISES) for e in EXERCISES}, results
