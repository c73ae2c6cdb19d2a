"""The lessons in the formats of the grading tools instructors already use.

``python -m course_utils assign --format nbgrader --out DIR`` writes an nbgrader
course; ``--format otter`` writes notebooks in otter-assign's format. In both,
each solution cell is marked as the learner's answer and each checked exercise
gets an autograder test that calls the course's check and asserts it passed:

    from course_utils.exercises import run_check
    result = run_check("01.output_size", output_size)
    assert result.passed, result.message

These tests run in the student's own kernel, as nbgrader's and otter's do: they
are for classes that trust their students or that grade with these tools' own
sandboxes. ``python -m course_utils grade`` is the grader that does not trust
the notebook (course_utils.tooling.sandbox).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Sequence

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_raw_cell

from ..exercises import EXERCISES, RENAMED
from .grading import SOLUTION_BEGIN, SOLUTION_END, check_calls, check_out_dir, strip_solutions

COURSE_ID = "cnn-lstm-course"
POINTS = 1
NBGRADER_CONFIG = '''"""nbgrader's configuration of this course (written by python -m course_utils assign --format nbgrader)."""
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "{course_id}"
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.ExecutePreprocessor.timeout = 300
'''


def test_source(exercise: str) -> str:
    """The autograder test of one exercise: the course's check must pass."""
    function = EXERCISES[exercise].function
    return (f"from course_utils.exercises import run_check\n\n"
            f"result = run_check({exercise!r}, {function})\nassert result.passed, result.message")


def _exercises_of(cell: NotebookNode) -> list[str]:
    """The current ids of the exercises a solution code cell checks."""
    if cell.cell_type != "code" or SOLUTION_BEGIN not in cell.source:
        return []
    return [RENAMED.get(e, e) for e in check_calls(cell.source) if RENAMED.get(e, e) in EXERCISES]


def _clean(nb: NotebookNode) -> NotebookNode:
    """A copy of `nb` without outputs, execution counts and papermill's metadata."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        for key in ("papermill", "execution", "nbgrader"):
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _grade_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def nbgrader_version(nb: NotebookNode, name: str) -> NotebookNode:
    """`nb` with nbgrader's cell metadata: solution cells, and a test cell after each checked one."""
    nb, cells = _clean(nb), []
    for number, cell in enumerate(nb.cells, 1):
        if SOLUTION_BEGIN in cell.source or SOLUTION_END in cell.source:
            graded_by_hand = cell.cell_type == "markdown"  # nbgrader grades written answers by hand
            cell.metadata["nbgrader"] = {"solution": True, "grade": graded_by_hand, "locked": False,
                                         "task": False, "schema_version": 3,
                                         "grade_id": _grade_id(f"answer-{name}-{number}"),
                                         **({"points": POINTS} if graded_by_hand else {})}
        cells.append(cell)
        for exercise in _exercises_of(cell):
            test = new_code_cell(test_source(exercise))
            test.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True, "task": False,
                                         "points": POINTS, "schema_version": 3,
                                         "grade_id": _grade_id(f"test-{exercise}")}
            cells.append(test)
    nb.cells = cells
    return nb


def nbgrader_course(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write an nbgrader course into `out_dir`: nbgrader_config.py and one assignment per notebook,
    ``source/<notebook name>/<notebook>.ipynb``. Returns the paths written."""
    out_dir = check_out_dir(out_dir)
    versions = [(Path(p), nbgrader_version(nbformat.read(p, as_version=4), Path(p).stem)) for p in notebooks]
    out_dir.mkdir(parents=True, exist_ok=True)
    config = out_dir / "nbgrader_config.py"
    config.write_text(NBGRADER_CONFIG.format(course_id=COURSE_ID))
    written = [config]
    for path, nb in versions:
        output = out_dir / "source" / path.stem / path.name
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)
        written.append(output)
    return written


def _otter_markers(source: str) -> str:
    """nbgrader's ``### BEGIN SOLUTION`` markers as otter's ``# BEGIN SOLUTION``."""
    return re.sub(r"^(\s*)###? (BEGIN|END) SOLUTION\s*$", r"\1# \2 SOLUTION", source, flags=re.M)


def otter_version(nb: NotebookNode, name: str) -> NotebookNode:
    """`nb` in otter-assign's format: an assignment config, then each checked exercise cell as a
    question of its own, whose solution is the cell and whose test is the course's check."""
    nb = _clean(nb)
    config = (f"# ASSIGNMENT CONFIG\nname: {name}\nexport_cell: false\ngenerate: true\n"
              "check_all_cell: false\nsolutions_pdf: false\nrequirements: null\nrun_tests: true\n"
              "init_cell: false\n")
    cells = [new_raw_cell(config)]
    for cell in nb.cells:
        exercises = _exercises_of(cell)
        if cell.cell_type == "markdown" and SOLUTION_BEGIN in cell.source:  # graded by hand, from
            cell.source = strip_solutions(cell.source, "markdown")          # the course's notebooks
        if not exercises:
            cells.append(cell)
            continue
        cell.source = _otter_markers(cell.source)
        question = _grade_id(exercises[0].replace(".", "_"))
        cells.append(new_raw_cell(f"# BEGIN QUESTION\nname: {question}\npoints: {POINTS * len(exercises)}"))
        cells += [new_raw_cell("# BEGIN SOLUTION"), cell, new_raw_cell("# END SOLUTION"),
                  new_raw_cell("# BEGIN TESTS")]
        cells += [new_code_cell(test_source(e)) for e in exercises]
        cells += [new_raw_cell("# END TESTS"), new_raw_cell("# END QUESTION")]
    nb.cells = cells
    return nb


def otter_notebooks(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write each notebook in otter-assign's format into `out_dir`, under its own name.

    Then ``otter assign out_dir/NN_....ipynb dist/`` makes the student version and
    the autograder. Returns the paths written.
    """
    out_dir = check_out_dir(out_dir)
    versions = [(Path(p), otter_version(nbformat.read(p, as_version=4), Path(p).stem)) for p in notebooks]
    out_dir.mkdir(parents=True, exist_ok=True)
    for path, nb in versions:
        nbformat.write(nb, out_dir / path.name)
    return [out_dir / path.name for path, _ in versions]
