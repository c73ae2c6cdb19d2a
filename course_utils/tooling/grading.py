"""Hand out and grade the lesson exercises: ``python -m course_utils assign|grade``.

Introduced with the exercises of lesson 01 (see course_utils.exercises).

``assign`` writes the student version of each lesson notebook: every solution
region (the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION``, the
markers nbgrader uses) becomes ``# YOUR CODE HERE`` / ``raise
NotImplementedError()`` in a code cell, or ``YOUR ANSWER HERE`` in a markdown
cell, indented like the marker; outputs and execution counts are cleared and
papermill's metadata is dropped. Everything else stays as it is.

``grade`` runs each submitted notebook from a clean state in smoke mode
(``COURSE_MODE=smoke``, ``COURSE_PROGRESS=0``), with a time limit per notebook,
and goes on after a cell fails. It then reads the result of every check call
(``check("01.conv2d_loops", ...)``) from the outputs, so a student who moves,
deletes or repeats cells is graded on what is there: the last result of each
exercise counts, and an exercise whose check never ran gets a row that says
why. A notebook that crashes or hangs gives such rows, and grading goes on.

Who and which lesson, from the path of a submission:

- ``alice/01_cnn_image_classification.ipynb`` (a folder per student, the
  notebook under its lesson's name): student "alice", lesson 01;
- ``alice.ipynb`` (any name that does not start with a lesson number):
  student "alice"; the lesson is read from the notebook's check calls.

The exercises expected of a lesson are those registered for it in
course_utils.exercises (``lesson_exercises``).
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import nbformat
import pandas as pd
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from ..exercises import CHECK_MIME, lesson_exercises

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.\w+)["']""")
_LESSON_FILE = re.compile(r"(\d\d)_")


# ---------------------------------------------------------------------------
# assign
# ---------------------------------------------------------------------------


def strip_solutions(source: str, cell_type: str = "code", where: str = "the cell") -> str:
    """`source` with every solution region replaced by the stub of its cell type.

    Args:
        source: a cell's source.
        cell_type: "code" (stub: ``# YOUR CODE HERE`` / ``raise NotImplementedError()``)
            or "markdown" (stub: ``YOUR ANSWER HERE``).
        where: names the cell in error messages, e.g. "01_cnn.ipynb, cell 44".

    Raises:
        ValueError: for a marker without its partner, or a region inside another.
    """
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    lines, begin = [], None  # begin: the line number of the open region's BEGIN marker
    for number, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == SOLUTION_BEGIN:
            if begin is not None:
                raise ValueError(f"{where}, line {number}: '{SOLUTION_BEGIN}' inside the region "
                                 f"opened on line {begin}")
            begin = number
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + s for s in stub]
        elif marker == SOLUTION_END:
            if begin is None:
                raise ValueError(f"{where}, line {number}: '{SOLUTION_END}' without a "
                                 f"'{SOLUTION_BEGIN}' before it")
            begin = None
        elif begin is None:
            lines.append(line)
    if begin is not None:
        raise ValueError(f"{where}, line {begin}: '{SOLUTION_BEGIN}' without a '{SOLUTION_END}' after it")
    return "\n".join(lines)


def student_version(nb: NotebookNode, name: str = "the notebook") -> NotebookNode:
    """A copy of `nb` with the solutions replaced by stubs and the outputs cleared.

    Cells are named "`name`, cell N" in errors, counting from 1.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("papermill", None)
    for number, cell in enumerate(nb.cells, 1):
        if SOLUTION_BEGIN in cell.source or SOLUTION_END in cell.source:
            cell.source = strip_solutions(cell.source, cell.cell_type, f"{name}, cell {number}")
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def assign(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write the student version of each notebook into `out_dir`, under the same name.

    Every notebook is converted before any is written, so a marker error leaves
    `out_dir` as it was. Returns the paths written.
    """
    out_dir = Path(out_dir)
    versions = []
    for path in map(Path, notebooks):
        if path.parent.resolve() == out_dir.resolve():
            raise ValueError(f"the student version of {path} would overwrite it: choose another --out folder")
        versions.append((out_dir / path.name, student_version(nbformat.read(path, as_version=4), path.name)))
    out_dir.mkdir(parents=True, exist_ok=True)
    for output, nb in versions:
        nbformat.write(nb, output)
    return [output for output, _ in versions]


# ---------------------------------------------------------------------------
# grade
# ---------------------------------------------------------------------------


def check_calls(source: str) -> list[str]:
    """The exercise ids named by the ``check("NN.name", ...)`` calls in `source`, in order."""
    return _CHECK_CALL.findall(source)


def identify(path: Path) -> tuple[str, str | None]:
    """(student, lesson or None) from a submission's path; see the module docstring."""
    path = Path(path)
    lesson = _LESSON_FILE.match(path.name)
    if lesson:
        return path.resolve().parent.name, lesson[1]
    return path.stem, None


def execute(nb: NotebookNode, folder: Path, timeout_s: float) -> str | None:
    """Run every code cell of `nb` in place, in a fresh kernel started in `folder`, in smoke mode.

    A failing cell does not stop the run. The cells get `timeout_s` seconds in
    all (starting the kernel is not counted). Returns None if every cell ran,
    else why the run stopped early (the time limit, or a dead kernel).
    """
    for cell in nb.cells:  # grade what this run computes, never the outputs that were submitted
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    env = {**os.environ, "COURSE_MODE": "smoke", "COURSE_PROGRESS": "0",
           "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    client = NotebookClient(nb, kernel_name="python3", allow_errors=True, shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(folder)}})
    # stderr: the kernel's own log (the cells' output reaches the notebook anyway)
    with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):
        deadline = time.monotonic() + timeout_s
        for index, cell in enumerate(nb.cells):
            client.timeout = max(1, math.ceil(deadline - time.monotonic()))
            try:
                client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except CellTimeoutError:
                return f"the notebook ran out of its {timeout_s:g} s in cell {index + 1}"
            except DeadKernelError:
                return f"the kernel died in cell {index + 1}"
    return None


def _last_results(nb: NotebookNode) -> dict[str, dict[str, Any]]:
    """exercise id -> the last check result shown in the executed notebook."""
    results = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            result = output.get("data", {}).get(CHECK_MIME)
            if isinstance(result, dict) and "exercise" in result:
                results[result["exercise"]] = result
    return results


def _why_missing(exercise: str, nb: NotebookNode, stopped: str | None) -> str:
    """Why the check of `exercise` shows no result in the executed `nb`."""
    cells = [(n, c) for n, c in enumerate(nb.cells, 1)
             if c.cell_type == "code" and exercise in check_calls(c.source)]
    for number, cell in reversed(cells):
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if errors:
            return f"the check did not run: cell {number} raised {errors[-1].ename}: {errors[-1].evalue}"
    if stopped:
        return f"the check did not run: {stopped}"
    if cells:
        return f"the check call in cell {cells[-1][0]} showed no result"
    return "the notebook has no check call for this exercise (was its cell deleted?)"


def _rows(student: str, notebook: str, lesson: str | None, results: dict[str, dict[str, Any]],
          why_missing: Callable[[str], str]) -> list[dict[str, Any]]:
    """One row per exercise of `lesson`: its last check result, or why there is none."""
    exercises = lesson_exercises(lesson) if lesson else []
    if not exercises:
        return [{"student": student, "notebook": notebook, "exercise": "", "passed": False,
                 "message": f"no exercises to grade for lesson {lesson}: name the file NN_....ipynb "
                            "after its lesson, or keep its check calls"}]
    return [{"student": student, "notebook": notebook, "exercise": exercise,
             "passed": bool(results[exercise]["passed"]) if exercise in results else False,
             "message": results[exercise]["message"] if exercise in results else why_missing(exercise)}
            for exercise in exercises]


def grade_notebook(path: Path, timeout_s: float = 300,
                   executed_dir: Path | None = None) -> list[dict[str, Any]]:
    """Run one submission and grade it: one row per exercise of its lesson.

    Rows: {"student", "notebook", "exercise", "passed", "message"}. Problems
    with the notebook itself (unreadable, crashed, timed out) become messages.
    If `executed_dir` is given, the executed notebook is saved there as
    ``<student>/<notebook name>``.
    """
    path = Path(path)
    student, lesson = identify(path)
    try:
        nb = nbformat.read(path, as_version=4)
        if lesson is None:
            calls = [e for cell in nb.cells if cell.cell_type == "code" for e in check_calls(cell.source)]
            lesson = calls[0][:2] if calls else None
        stopped = execute(nb, path.resolve().parent, timeout_s)
    except Exception as error:  # unreadable, or the kernel would not start: report it and go on
        problem = f"could not run the notebook: {type(error).__name__}: {error}"
        return _rows(student, path.name, lesson, {}, lambda exercise: problem)
    if executed_dir is not None:
        output = Path(executed_dir) / student / path.name
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, output)
    return _rows(student, path.name, lesson, _last_results(nb),
                 lambda exercise: _why_missing(exercise, nb, stopped))


def grade(submissions: Sequence[Path], timeout_s: float = 300,
          executed_dir: Path | None = None) -> pd.DataFrame:
    """Grade every submission, one after another; prints a line per notebook.

    Returns a DataFrame with one row per (submission, exercise): student,
    notebook, exercise, passed, message.
    """
    rows = []
    for path in submissions:
        start = time.perf_counter()
        graded = grade_notebook(path, timeout_s, executed_dir)
        passed = sum(row["passed"] for row in graded)
        seconds = time.perf_counter() - start
        print(f"graded {path}: {passed}/{len(graded)} passed ({seconds:.0f} s)", flush=True)
        rows += graded
    return pd.DataFrame(rows, columns=["student", "notebook", "exercise", "passed", "message"])


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per submission: "pass"/"FAIL" per exercise and the score."""
    table = rows.assign(result=rows["passed"].map({True: "pass", False: "FAIL"}))
    table = table.pivot_table(index=["student", "notebook"], columns="exercise", values="result",
                              aggfunc="last", fill_value="")
    scores = rows.groupby(["student", "notebook"])["passed"].agg(["sum", "count"])
    table["score"] = scores["sum"].astype(str) + "/" + scores["count"].astype(str)
    table.columns.name = None
    return table


def _submissions(paths: Sequence[str]) -> list[Path]:
    """The notebooks named, with each folder replaced by the notebooks in it (recursively)."""
    found = []
    for name in map(Path, paths):
        if name.is_dir():
            found += sorted(p for p in name.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif name.is_file():
            found.append(name)
        else:
            raise FileNotFoundError(f"no notebook or folder at {name}")
    return found


def main(argv: list[str]) -> int:
    """``python -m course_utils assign ...`` or ``... grade ...``; argv starts with the command."""
    from .runner import lesson_notebooks

    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("assign", help="write the student versions of the lesson notebooks")
    p.add_argument("notebooks", nargs="*", help="notebooks to convert (default: every lesson in notebooks/)")
    p.add_argument("--out", default="student", help="output folder (default: student/)")
    p = commands.add_parser("grade", help="run submitted notebooks and grade their exercise checks")
    p.add_argument("submissions", nargs="+", help="submitted notebooks, or folders of them")
    p.add_argument("--csv", help="write one row per student and exercise to this CSV file")
    p.add_argument("--timeout", type=float, default=300, help="seconds allowed per notebook (default: 300)")
    p.add_argument("--executed", help="save the executed notebooks in this folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "assign":
            notebooks = [Path(n) for n in args.notebooks] or lesson_notebooks()
            for output in assign(notebooks, Path(args.out)):
                print(f"wrote {output}")
            return 0
        rows = grade(_submissions(args.submissions), args.timeout, args.executed and Path(args.executed))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if rows.empty:
        print("no exercises to grade")
    else:
        print(summary(rows).to_string())
    if args.csv:
        rows.to_csv(args.csv, index=False)
        print(f"wrote {len(rows)} rows to {args.csv}")
    return 0
