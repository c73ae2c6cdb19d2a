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
a row that says why, a function that loops forever runs out of its time, and
code that reaches outside its sandbox is failed with "tampering suspected".
An answer that calls a library function doing the exercise's work is flagged
in the ``review`` column; two notebooks of one student for one lesson are
flagged in the ``duplicate`` column. Every row records the ``seed`` of the
test cases, so that ``--seed`` reproduces a disputed grade.

The student of a submission is its folder relative to the submission root (the
folder given to ``grade``), or the notebook's name for a notebook directly in it:

- ``alice/01_cnn_image_classification.ipynb`` (a folder per student, the
  notebook under its lesson's name): student "alice", lesson 01;
- ``grace/Homework 1.ipynb`` (any name that does not start with a lesson
  number): student "grace"; the lesson is read from the notebook's check calls,
  else from the exercise functions it defines, unless ``--lesson NN`` names it;
- ``carol.ipynb``: student "carol"; ``grade submissions/alice`` grades alice's
  lesson-named notebooks as student "alice".

The exercises expected of a lesson are those registered for it in
course_utils.exercises (``lesson_exercises``).
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import nbformat
import pandas as pd
from nbformat import NotebookNode

from ..exercises import EXERCISES, lesson_exercises
from ..exercises.engine import class_exercise, known_id
from . import files, sandbox
from .notebooks import check_calls, check_out_dir, clean, has_solution, rename_check_calls, strip_solutions

_LESSON_FILE = re.compile(r"(\d\d)_")
SEED_MAX = 2 ** 63 - 1  # torch's generators take a seed up to here (a signed 64-bit integer)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as a formula


# ---------------------------------------------------------------------------
# assign
# ---------------------------------------------------------------------------


def student_version(nb: NotebookNode, name: str = "the notebook") -> NotebookNode:
    """A copy of `nb` with the solutions replaced by stubs, the outputs cleared, and an answer cell
    for each hand-graded exercise (formats.with_answer_cells, as the nbgrader and otter versions
    have them), so that one learner version is graded by ``grade``, nbgrader and otter alike.

    Cells are named "`name`, cell N" in errors, counting from 1 (before the answer cells).
    """
    from .formats import with_answer_cells  # formats imports the sandbox and nbconvert

    nb = clean(nb)
    for number, cell in enumerate(nb.cells, 1):
        if has_solution(cell.source):
            cell.source = strip_solutions(cell.source, cell.cell_type, f"{name}, cell {number}")
    return with_answer_cells(nb)


CLASS_VERSION = ("**Your class's version of this exercise.** It replaces what the text above asks "
                 "(the check below tests this version):")


def class_version(nb: NotebookNode, class_key: str) -> NotebookNode:
    """`nb` (a student version) for the class whose secret is `class_key`: each check call names the
    class's variant of its exercise (engine.class_exercise), and a markdown cell just above it
    says what the variant asks. Exercises without variants are left as they are."""
    cells = []
    for cell in nb.cells:
        ids = [e for e in check_calls(cell.source) if known_id(e)] if cell.cell_type == "code" else []
        chosen = {e: class_exercise(known_id(e), class_key) for e in ids}
        chosen = {e: v for e, v in chosen.items() if v != e}
        if chosen:
            statements = "\n\n".join(EXERCISES[v].statement for v in chosen.values())
            note = nbformat.v4.new_markdown_cell(f"{CLASS_VERSION}\n\n{statements}")
            note.id = f"class-{EXERCISES[next(iter(chosen.values()))].function}"
            cells.append(note)
            cell.source = rename_check_calls(cell.source, chosen)
        cells.append(cell)
    nb.cells = cells
    return nb


def assign(notebooks: Sequence[Path], out_dir: Path, class_key: str | None = None) -> list[Path]:
    """Write the student version of each notebook into `out_dir`, under the same name; with
    `class_key`, the class's variants of the implement exercises (`class_version`).

    Every notebook is converted before any is written, so a marker error leaves
    `out_dir` as it was. Returns the paths written.
    """
    out_dir = check_out_dir(out_dir)
    versions = []
    for path in map(Path, notebooks):
        if path.parent.resolve() == out_dir.resolve():
            raise ValueError(f"the student version of {path} would overwrite it: choose another --out folder")
        version = student_version(nbformat.read(path, as_version=4), path.name)
        versions.append((out_dir / path.name, class_version(version, class_key) if class_key else version))
    for output, nb in versions:
        files.write_text(output, nbformat.writes(nb).rstrip("\n") + "\n")  # as nbformat.write ends it
    return [output for output, _ in versions]


# ---------------------------------------------------------------------------
# grade
# ---------------------------------------------------------------------------

COLUMNS = ["student", "notebook", "exercise", "passed", "message", "tampering", "review", "duplicate", "seed"]


def identify(path: Path, root: Path) -> str:
    """The student of a submission: its folder relative to `root`; for a notebook directly in `root`,
    its name without .ipynb, or `root`'s name if the notebook is named after its lesson.

    ``root/alice/01_cnn.ipynb`` -> "alice"; ``root/x/hw.ipynb`` -> "x"; ``root/carol.ipynb`` -> "carol";
    ``alice/01_cnn.ipynb`` with root ``alice`` -> "alice".
    """
    root = Path(os.path.abspath(root))  # links are not followed: a linked submission is still its student's
    path = Path(os.path.abspath(path))
    relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
    if len(relative.parts) > 1:
        return relative.parent.as_posix()
    return root.name if named_lesson(relative.name) else relative.stem


def named_lesson(name: str) -> str | None:
    """The lesson a file name gives ("01" for "01_cnn.ipynb"): its first two digits and "_", if that
    lesson has exercises; None otherwise ("12_03_lab.ipynb" is not lesson 12)."""
    named = _LESSON_FILE.match(name)
    return named[1] if named and lesson_exercises(named[1]) else None


def _lesson(path: Path, nb: NotebookNode) -> str | None:
    """The lesson of a submission: from its file name (`named_lesson`), else from its first known
    check call, else the lesson most of whose exercise functions it defines; None if none of these."""
    named = named_lesson(Path(path).name)
    if named:
        return named
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    for exercise in (known_id(e) for source in code for e in check_calls(source)):
        if exercise:
            return exercise[:2]
    binds = [(e.lesson, re.compile(rf"^(def\s+{e.function}\s*\(|{e.function}\s*=[^=])", re.M))
             for e in EXERCISES.values()]
    defined = [lesson for lesson, bind in binds if any(bind.search(source) for source in code)]
    return max(defined, key=defined.count) if defined else None


def read_submission(path: Path) -> NotebookNode:
    """The notebook at `path`.

    Raises:
        ValueError: saying what is wrong: a link, not valid JSON, or JSON that is not a notebook.
    """
    if Path(path).is_symlink():
        raise ValueError(f"it is a link (to {os.readlink(path)}), not a notebook: hand in the .ipynb file itself")
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}); "
                         "is it the .ipynb file as Jupyter saved it?") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:
        raise ValueError(f"valid JSON but not a notebook: {type(error).__name__}: {error}") from None
    for number, cell in enumerate(nb.get("cells", []), 1):
        if not isinstance(cell, dict) or not isinstance(cell.get("source"), str):
            raise ValueError(f"valid JSON but not a notebook: cell {number} has no text as its source "
                             "(is it the .ipynb file as Jupyter saved it?)")
    return nb


def grade_notebook(path: Path, root: Path, seed: int, timeout_s: float = 60,
                   lesson: str | None = None, class_key: str | None = None) -> list[dict[str, Any]]:
    """Grade one submission: one row per exercise of its lesson (see COLUMNS; without duplicate and seed).

    Nothing of the notebook runs but each exercise's function and what it needs,
    in a sandbox (course_utils.tooling.sandbox), on test cases drawn from `seed`.
    Problems with the notebook itself (unreadable, not valid JSON) become messages.
    `lesson` ("01") overrides the lesson the file's name or content gives. With `class_key`,
    each exercise is graded as the class's variant (`class_version`), whatever the check calls say.
    """
    row = {"student": identify(path, root), "notebook": Path(path).name, "tampering": "", "review": ""}
    try:
        nb = read_submission(path)
    except (OSError, ValueError) as error:
        return [{**row, "exercise": "", "passed": False, "message": f"could not read the notebook: {error}"}]
    lesson = lesson or _lesson(path, nb)
    ids = lesson_exercises(lesson, class_key) if lesson else []
    if not ids:
        return [{**row, "exercise": "", "passed": False,
                 "message": f"no exercises to grade for lesson {lesson}: name the file NN_....ipynb "
                            "after its lesson, keep its check calls, or give --lesson NN"}]
    outcomes = sandbox.grade_cells(sandbox.python_cells(nb), ids, seed, timeout_s)
    return [{**row, "exercise": e, "passed": o.passed, "message": o.message, "tampering": o.tampering,
             "review": o.review} for e, o in outcomes.items()]


def _safely(path: Path, root: Path, seed: int, timeout_s: float, lesson: str | None,
            class_key: str | None) -> list[dict[str, Any]]:
    """`grade_notebook`, with a failure of the grader itself as a row that says so: one
    submission never stops the grading of the others."""
    try:
        return grade_notebook(path, root, seed, timeout_s, lesson, class_key)
    except Exception as error:
        return [{"student": identify(path, root), "notebook": Path(path).name, "exercise": "", "passed": False,
                 "message": f"not graded: the grader failed on this notebook ({_where(error)}); "
                            "grade it again, or report it", "tampering": "", "review": ""}]


def _where(error: Exception) -> str:
    """The error and the innermost frame it was raised in: "TypeError: boom at grading.py:12"."""
    frames = traceback.extract_tb(error.__traceback__)
    place = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {error}{place}"


def check_seed(seed: int | None) -> int:
    """`seed`, or a random one if None.

    Raises:
        ValueError: for a seed outside 0..SEED_MAX, which torch's generators cannot take.
    """
    if seed is None:
        return secrets.randbelow(2 ** 31)
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"--seed must be a whole number from 0 to {SEED_MAX} (2**63 - 1), got {seed}")
    return seed


def flag_duplicates(rows: pd.DataFrame) -> pd.Series:
    """For each row, the other notebooks its student handed in for the same lesson ("" if none)."""
    lesson = rows["exercise"].str[:2]
    per_lesson = rows.groupby([rows["student"], lesson])["notebook"]
    notebooks = per_lesson.transform(lambda names: "; ".join(sorted(set(names))))
    several = per_lesson.transform("nunique") > 1
    return notebooks.where(several & (lesson != ""), "").map(
        lambda names: f"this student handed in this lesson more than once ({names}): decide which counts"
        if names else "")


def grade(submissions: Sequence[tuple[Path, Path]], timeout_s: float = 60, jobs: int = 1,
          seed: int | None = None, quiet: bool = False, lesson: str | None = None,
          on_graded: Callable[[list[dict[str, Any]]], None] | None = None,
          class_key: str | None = None) -> pd.DataFrame:
    """Grade every (notebook, submission root) pair, `jobs` at a time; prints a line per notebook.

    Args:
        submissions: as ``submissions_in`` finds them.
        timeout_s: seconds allowed to each exercise's function, for all its test cases
            (the sandbox's start-up is not counted).
        jobs: how many submissions are graded at once.
        seed: seeds the test cases; None draws one at random, so that no submission can
            know its cases in advance. Each row records it.
        quiet: print nothing.
        lesson: grade every submission as this lesson ("01"), whatever its name.
        on_graded: called with each submission's rows (COLUMNS but duplicate) as soon as it is
            graded, one call at a time (``append_rows`` keeps them, for ``--resume``).
        class_key: the secret the class's student versions were made with (``assign
            --class-key``): each exercise is graded as that class's variant.

    Returns a DataFrame with one row per (submission, exercise), COLUMNS.

    Raises:
        ValueError: for jobs < 1, a timeout that is not a positive number, a seed torch cannot
            take (`check_seed`), or an unknown lesson.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {jobs}")
    if not timeout_s > 0 or timeout_s == float("inf"):
        raise ValueError(f"--timeout must be a positive number of seconds, got {timeout_s:g}")
    if lesson is not None and not lesson_exercises(lesson):
        known = sorted({e.lesson for e in EXERCISES.values()})
        raise ValueError(f"--lesson {lesson}: no exercises; expected one of {', '.join(known)}")
    seed = check_seed(seed)
    keeping, stopping = threading.Lock(), threading.Event()

    def one(submission: tuple[Path, Path]) -> list[dict[str, Any]]:
        if stopping.is_set():  # Ctrl-C: the submissions not started yet are left for --resume
            return []
        start = time.perf_counter()
        try:
            rows = [{**row, "seed": seed} for row in _safely(submission[0], submission[1], seed, timeout_s, lesson, class_key)]
        except KeyboardInterrupt:
            stopping.set()
            raise
        if on_graded is not None:
            with keeping:
                on_graded(rows)
        if not quiet:
            passed = sum(row["passed"] for row in rows)
            flag = ", TAMPERING SUSPECTED" if any(row["tampering"] for row in rows) else ""
            print(f"graded {submission[0]}: {passed}/{len(rows)} passed{flag} "
                  f"({time.perf_counter() - start:.1f} s)", flush=True)
        return rows

    if submissions:
        _prepare()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        try:
            graded = list(pool.map(one, submissions))
        except KeyboardInterrupt:  # the submissions being graded finish (and are kept); no other starts
            stopping.set()
            raise
    return combine(pd.DataFrame(columns=COLUMNS), pd.DataFrame([row for rows in graded for row in rows],
                                                               columns=COLUMNS).assign(seed=seed))


def combine(earlier: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The rows of an earlier, interrupted grading and those graded since, with the duplicate
    column flagged over both (a student may have handed in one copy before and one after)."""
    rows = pd.concat([earlier, new], ignore_index=True) if len(earlier) else new.reset_index(drop=True)
    return rows.assign(duplicate=flag_duplicates(rows) if len(rows) else "")


# ---------------------------------------------------------------------------
# an interrupted grading: the rows kept so far, and --resume
# ---------------------------------------------------------------------------


def partial_path(csv: Path) -> Path:
    """Where ``grade --csv CSV`` keeps the rows graded so far: CSV.partial, next to it."""
    return csv.with_name(csv.name + ".partial")


def append_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append one submission's `rows` to the CSV file `path` (its header first if it is new),
    flushed to disk, so that an interruption keeps every submission graded before it.

    Raises:
        ValueError: if the file cannot be written (a full disk), saying that --resume continues.
    """
    new = not path.exists()
    try:
        with open(path, "a", encoding="utf-8", newline="") as out:
            pd.DataFrame(rows, columns=COLUMNS).to_csv(out, header=new, index=False)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise ValueError(f"cannot keep the rows graded so far in {path} ({error.strerror}); the rows "
                         "already there are kept: free the space, then run the same command with --resume") from None


def read_partial(path: Path) -> pd.DataFrame:
    """The rows `append_rows` kept in `path`; a last line cut short by the interruption is dropped.

    Raises:
        ValueError: if `path` is not such a file, or its rows come from more than one seed.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a grading kept by grade --csv ({error}); delete it to start again") from None
    whole = [line for line in lines if line.endswith("\n")]
    try:
        rows = pd.read_csv(io.StringIO("".join(whole)), keep_default_na=False, dtype=str)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path} is not a grading kept by grade --csv ({error}); delete it to start again") from None
    if (list(rows.columns) != COLUMNS or not rows.seed.str.fullmatch(r"\d+").all() or rows.seed.nunique() > 1
            or not rows.passed.isin(["True", "False"]).all()):
        raise ValueError(f"{path} is not a grading kept by grade --csv (expected the columns "
                         f"{', '.join(COLUMNS)}, passed True or False, and one seed); delete it to start again")
    return rows.assign(passed=rows.passed == "True", seed=rows.seed.astype("int64"))


def resumed_seed(earlier: pd.DataFrame, seed: int | None) -> int | None:
    """The seed of an interrupted grading (None if it kept no row yet), which `seed` may repeat.

    Raises:
        ValueError: if `seed` differs from it: one grading, one set of test cases.
    """
    kept = int(earlier.seed.iloc[0]) if len(earlier) else None
    if kept is not None and seed is not None and seed != kept:
        raise ValueError(f"--seed {seed}: the grading being resumed used seed {kept}; "
                         f"leave --seed out or give --seed {kept}")
    return seed if kept is None else kept


def check_resumed_class(earlier: pd.DataFrame, class_key: str | None) -> None:
    """Raise a ValueError unless the rows of an interrupted grading graded the variants that
    `class_key` gives: one grading, one set of exercises."""
    graded = {e for e in earlier["exercise"] if e in EXERCISES}
    wrong = sorted(e for e in graded if class_exercise(EXERCISES[e].base, class_key) != e)
    if wrong:
        raise ValueError(f"the grading being resumed graded {', '.join(wrong[:3])}, which "
                         f"{'this --class-key does not give' if class_key else 'are class variants'}: "
                         "resume with the --class-key it was started with")


def not_graded(submissions: Sequence[tuple[Path, Path]], earlier: pd.DataFrame) -> list[tuple[Path, Path]]:
    """The submissions that `earlier` holds no row of (by student and notebook)."""
    done = set(zip(earlier.student, earlier.notebook))
    return [(path, root) for path, root in submissions if (identify(path, root), Path(path).name) not in done]


def _prepare() -> None:
    """Do once, before the grader's threads start, what each would otherwise do at the same time on its
    first notebook: import and cache nbformat's validator and IPython's transformer (a module imported
    by two threads at once can be seen half-initialised), and find the sandbox's interpreter."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    sandbox.python_cells(nbformat.reads(nbformat.writes(nb), as_version=4))
    sandbox.interpreter()


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
        _prepare()  # once per grader, not in the first timing
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
            folder = Path(os.path.abspath(name)).parent
            found.append((name, folder.parent if named_lesson(name.name) and folder != folder.parent else folder))
        else:
            raise FileNotFoundError(f"no notebook or folder at {name}")
    return found


def check_csv_path(path: Path) -> Path:
    """`path` as a Path, if a CSV file can be written there (checked before any grading).

    Raises:
        ValueError: if it is a folder, a path above it is a file, or its folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--csv {path} is a folder; expected the path of a CSV file, "
                         f"e.g. {path / 'grades.csv'}")
    blocker = files.file_in_the_way(path.parent)
    if blocker is not None:
        raise ValueError(f"--csv {path}: {blocker} is a file, not a folder; expected the path of a CSV file")
    folder = next(parent for parent in path.absolute().parents if parent.exists())
    try:  # a real write, not os.access: root passes that, but not a read-only file system
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        raise ValueError(f"--csv {path}: cannot write in {folder} ({error.strerror}); "
                         "expected a folder you can write to") from None
    return path


def spreadsheet_safe(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with every text that a spreadsheet would run as a formula (it starts with = + - @, a tab
    or a carriage return: a folder named "=HYPERLINK(...)") made plain text by a leading "'"."""
    def safe(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(_FORMULA_START) else value
    return rows.apply(lambda column: column if pd.api.types.is_numeric_dtype(column) else column.map(safe))


def write_csv(rows: pd.DataFrame, path: Path) -> Path:
    """Write `rows` to the CSV file `path` atomically (a crash leaves the previous file whole),
    spreadsheet-safe (`spreadsheet_safe`)."""
    return files.write_text(path, spreadsheet_safe(rows).to_csv(index=False))
