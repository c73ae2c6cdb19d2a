"""Hand out and grade the lesson exercises: ``python -m course_utils assign|grade``.

Introduced with the exercises of lesson 01 (see course_utils.exercises).

``assign`` writes the student version of each lesson notebook: every solution
region (the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION``, the
markers nbgrader uses) becomes ``# YOUR CODE HERE`` / ``raise
NotImplementedError()`` in a code cell, or ``YOUR ANSWER HERE`` in a markdown
cell, indented like the marker; outputs and execution counts are cleared and
papermill's metadata is dropped. Everything else stays as it is.

``grade`` never runs a submitted notebook and never reads its outputs. For
each exercise it takes the learner's last ``def`` of the exercise's function in
cell order, with what that function needs, runs it in a sandbox on test cases
the grader draws, and judges the answers itself (course_utils.tooling.sandbox).
Students may move, delete or repeat cells; an exercise without a function gets
a row that says why, a function that loops forever runs out of its time, and a
notebook whose code reaches for the checker is failed with "tampering suspected".

The student of a submission is its path relative to the submission root (the
folder given to ``grade``):

- ``alice/01_cnn_image_classification.ipynb`` (a folder per student, the
  notebook under its lesson's name): student "alice", lesson 01;
- ``x/hw.ipynb`` (any name that does not start with a lesson number): student
  "x/hw"; the lesson is read from the notebook's check calls.

The exercises expected of a lesson are those registered for it in
course_utils.exercises (``lesson_exercises``).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import secrets
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import nbformat
import pandas as pd
from nbformat import NotebookNode

from ..exercises import EXERCISES, RENAMED, lesson_exercises
from . import sandbox

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


def check_out_dir(out_dir: Path) -> Path:
    """`out_dir` as a Path, if it is a folder or can become one.

    Raises:
        NotADirectoryError: if it, or a path above it, is an existing file.
    """
    out_dir = Path(out_dir)
    for path in [out_dir, *out_dir.parents]:
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"--out {out_dir}: {path} is a file, not a folder; name a folder "
                                     "(it is created if missing)")
    return out_dir


def assign(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write the student version of each notebook into `out_dir`, under the same name.

    Every notebook is converted before any is written, so a marker error leaves
    `out_dir` as it was. Returns the paths written.
    """
    out_dir = check_out_dir(out_dir)
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

COLUMNS = ["student", "notebook", "exercise", "passed", "message", "tampering"]


def check_calls(source: str) -> list[str]:
    """The exercise ids named by the ``check("NN.name", ...)`` calls in `source`, in order."""
    return _CHECK_CALL.findall(source)


def identify(path: Path, root: Path) -> str:
    """The student of a submission: its path relative to `root`, see the module docstring.

    ``root/alice/01_cnn.ipynb`` -> "alice"; ``root/x/hw.ipynb`` -> "x/hw"; ``root/carol.ipynb`` -> "carol".
    """
    relative = Path(path).resolve().relative_to(Path(root).resolve())
    if _LESSON_FILE.match(relative.name) and len(relative.parts) > 1:
        return relative.parent.as_posix()
    return relative.with_suffix("").as_posix()


def _lesson(path: Path, nb: NotebookNode) -> str | None:
    """The lesson of a submission: from its file name (NN_...), else from its first known check call."""
    named = _LESSON_FILE.match(Path(path).name)
    if named:
        return named[1]
    for cell in nb.cells:
        for exercise in check_calls(cell.source) if cell.cell_type == "code" else []:
            current = RENAMED.get(exercise, exercise)
            if current in EXERCISES:
                return current[:2]
    return None


def read_submission(path: Path) -> NotebookNode:
    """The notebook at `path`.

    Raises:
        ValueError: saying what is wrong: not valid JSON, or JSON that is not a notebook.
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                         "is it the .ipynb file as Jupyter saved it?") from None
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as error:
        raise ValueError(f"valid JSON but not a notebook: {type(error).__name__}: {error}") from None


def grade_notebook(path: Path, root: Path, seed: int, timeout_s: float = 60) -> list[dict[str, Any]]:
    """Grade one submission: one row per exercise of its lesson (see COLUMNS).

    Nothing of the notebook runs but each exercise's function and what it needs,
    in a sandbox (course_utils.tooling.sandbox), on test cases drawn from `seed`.
    Problems with the notebook itself (unreadable, not valid JSON) become messages.
    """
    row = {"student": identify(path, root), "notebook": Path(path).name}
    try:
        nb = read_submission(path)
    except (OSError, ValueError) as error:
        return [{**row, "exercise": "", "passed": False, "message": f"could not read the notebook: {error}",
                 "tampering": ""}]
    lesson = _lesson(path, nb)
    ids = lesson_exercises(lesson) if lesson else []
    if not ids:
        return [{**row, "exercise": "", "passed": False, "tampering": "",
                 "message": f"no exercises to grade for lesson {lesson}: name the file NN_....ipynb "
                            "after its lesson, or keep its check calls"}]
    outcomes = sandbox.grade_cells(sandbox.python_cells(nb), ids, seed, timeout_s)
    return [{**row, "exercise": e, "passed": o.passed, "message": o.message, "tampering": o.tampering}
            for e, o in outcomes.items()]


def grade(submissions: Sequence[tuple[Path, Path]], timeout_s: float = 60, jobs: int = 1,
          seed: int | None = None, quiet: bool = False) -> pd.DataFrame:
    """Grade every (notebook, submission root) pair, `jobs` at a time; prints a line per notebook.

    Args:
        submissions: as ``submissions_in`` finds them.
        timeout_s: seconds allowed to each exercise's function, for all its test cases.
        jobs: how many submissions are graded at once.
        seed: seeds the test cases; None draws one at random, so that no submission can
            know its cases in advance.
        quiet: print nothing.

    Returns a DataFrame with one row per (submission, exercise), COLUMNS.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    seed = secrets.randbelow(2 ** 31) if seed is None else seed

    def one(submission: tuple[Path, Path]) -> list[dict[str, Any]]:
        start = time.perf_counter()
        rows = grade_notebook(submission[0], submission[1], seed, timeout_s)
        if not quiet:
            passed = sum(row["passed"] for row in rows)
            flag = ", TAMPERING SUSPECTED" if any(row["tampering"] for row in rows) else ""
            print(f"graded {submission[0]}: {passed}/{len(rows)} passed{flag} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
        return rows

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        graded = list(pool.map(one, submissions))
    return pd.DataFrame([row for rows in graded for row in rows], columns=COLUMNS)


def benchmark(copies: int = 20, jobs: Sequence[int] = (1, 2)) -> pd.DataFrame:
    """Grade `copies` copies of lesson 01's student version at each number of `jobs`.

    Returns a table: jobs, seconds per submission, speedup over the first row.
    """
    from .runner import lesson_notebooks

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        [student] = assign(lesson_notebooks("01"), Path(folder) / "student")
        for n in range(copies):
            (Path(folder) / "class" / f"student{n:02d}").mkdir(parents=True)
            shutil.copy(student, Path(folder) / "class" / f"student{n:02d}" / student.name)
        submissions = submissions_in([str(Path(folder) / "class")])
        sandbox.interpreter()  # found once per grader, not per submission
        for n in jobs:
            start = time.perf_counter()
            graded = grade(submissions, jobs=n, seed=0, quiet=True)
            seconds = (time.perf_counter() - start) / copies
            if graded.passed.any() or len(graded) != 2 * copies:
                raise RuntimeError("the student version of lesson 01 should get 0 of 2 in every copy")
            rows.append({"jobs": n, "submissions": copies, "seconds per submission": round(seconds, 2)})
    table = pd.DataFrame(rows)
    table["speedup"] = (table["seconds per submission"].iloc[0] / table["seconds per submission"]).round(2)
    return table


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per submission: "pass"/"FAIL" per exercise and the score."""
    table = rows.assign(result=rows["passed"].map({True: "pass", False: "FAIL"}))
    table = table.pivot_table(index=["student", "notebook"], columns="exercise", values="result",
                              aggfunc="last", fill_value="")
    scores = rows.groupby(["student", "notebook"])["passed"].agg(["sum", "count"])
    table["score"] = scores["sum"].astype(str) + "/" + scores["count"].astype(str)
    table.columns.name = None
    return table


def submissions_in(paths: Sequence[str]) -> list[tuple[Path, Path]]:
    """(notebook, root) for every notebook named, or found (recursively) in a folder named.

    The root of a folder's notebooks is that folder; the root of a notebook named
    on its own is its folder's parent if the file is named after a lesson
    (``alice/01_cnn.ipynb``: student "alice"), else its folder (``carol.ipynb``).
    """
    found = []
    for name in map(Path, paths):
        if name.is_dir():
            found += [(p, name) for p in sorted(name.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
        elif name.is_file():
            named = _LESSON_FILE.match(name.name) and name.resolve().parent != name.resolve().parent.parent
            found.append((name, name.resolve().parent.parent if named else name.resolve().parent))
        else:
            raise FileNotFoundError(f"no notebook or folder at {name}")
    return found


def main(argv: list[str]) -> int:
    """``python -m course_utils assign ...`` or ``... grade ...``; argv starts with the command."""
    from . import formats
    from .runner import lesson_notebooks

    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("assign", help="write the student versions of the lesson notebooks")
    p.add_argument("notebooks", nargs="*", help="notebooks to convert (default: every lesson in notebooks/)")
    p.add_argument("--out", default="student", help="output folder (default: student/)")
    p.add_argument("--format", default="student", choices=["student", "nbgrader", "otter"],
                   help="student versions (default), an nbgrader course, or otter-assign notebooks")
    p = commands.add_parser("grade", help="grade the exercise functions of submitted notebooks")
    p.add_argument("submissions", nargs="+", help="submitted notebooks, or folders of them")
    p.add_argument("--csv", help="write one row per student and exercise to this CSV file")
    p.add_argument("--timeout", type=float, default=60,
                   help="seconds allowed to each exercise's function (default: 60)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    p.add_argument("--seed", type=int, help="seed of the test cases (default: a random one)")
    args = parser.parse_args(argv)
    try:
        if args.command == "assign":
            notebooks = [Path(n) for n in args.notebooks] or lesson_notebooks()
            write = {"student": assign, "nbgrader": formats.nbgrader_course, "otter": formats.otter_notebooks}
            for output in write[args.format](notebooks, Path(args.out)):
                print(f"wrote {output}")
            return 0
        rows = grade(submissions_in(args.submissions), args.timeout, args.jobs, args.seed)
    except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
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
