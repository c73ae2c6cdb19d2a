"""What an instructor keeps from a grading: a gradebook, a feedback file per student, flags.

    python -m course_utils gradebook grades.csv [--out feedback/] [--submissions submissions/]

reads the CSV of ``python -m course_utils grade`` (one row per student, notebook
and exercise: course_utils.tooling.grading.COLUMNS) and writes into the folder
``--out`` (default ``feedback/``, which git ignores), each file atomically:

- ``gradebook.csv``: one row per student, the points of each lesson (exercises
  passed), the total, and the flags an instructor must look at;
- ``<student>.md``: each exercise of each notebook, passed or the
  failing case with its hint, and the cell of the learner's ``def``;
- flags: *resubmission* (one student handed in a lesson more than once; the
  notebook with the most points counts, and the others are named), *copy* (the
  same code for an exercise as another student, comments, layout and the names
  of variables aside, for functions of at least MIN_STATEMENTS statements;
  needs ``--submissions``), *tampering* and *review* (from the grader);
- with ``--submissions``, for the exercises graded by hand: ``answers-NN.md`` (each
  question with its criteria, then every student's answer cell, for a teaching
  assistant) and ``hand-graded.csv`` (a row per student and answer, points empty; written
  only if the folder has none, so that a TA's points are never overwritten). Given back
  with ``--hand-graded FILE``, the points join the gradebook: a column "NN by hand (of M)"
  per lesson, in the total.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
from pathlib import Path
from typing import Sequence

import nbformat
import pandas as pd

from ..exercises import EXERCISES, lesson_exercises
from . import formats, grading, sandbox
from .files import write_text
from .notebooks import TEXT_STUB
from .results import without_docstrings

COLUMNS = ["student", "notebook", "exercise", "passed", "message"]  # what the gradebook needs of grades.csv
MIN_STATEMENTS = 4  # a shorter function (a one-line formula) is written alike by students who never met


def read_grades(path: Path) -> pd.DataFrame:
    """The rows of a grades CSV written by ``grade``.

    Raises:
        ValueError: if a column the gradebook needs is missing (it names what was expected).
    """
    rows = pd.read_csv(path, dtype={"exercise": str}, keep_default_na=False)
    missing = [c for c in COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}; expected the CSV of "
                         f"`python -m course_utils grade --csv`, with columns {', '.join(grading.COLUMNS)}")
    rows["passed"] = rows["passed"].astype(str).str.lower() == "true"
    return _as_written(rows)


def _as_written(table: pd.DataFrame) -> pd.DataFrame:
    """`table` read back from a CSV the course wrote: its texts without the "'" that
    grading.spreadsheet_safe put before a formula."""
    texts = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
    table[texts] = table[texts].apply(lambda column: column.str.replace(r"^'(?=[=+\-@\t\r])", "", regex=True))
    return table


def best_notebooks(rows: pd.DataFrame) -> pd.DataFrame:
    """One (student, lesson, notebook, points, exercises, other notebooks) row for each student and
    lesson: the notebook with the most exercises passed counts; the others are its resubmissions."""
    graded = rows[rows["exercise"] != ""].assign(lesson=lambda r: r["exercise"].str[:2])
    per_notebook = graded.groupby(["student", "lesson", "notebook"], as_index=False).agg(
        points=("passed", "sum"), exercises=("exercise", "nunique"))
    per_notebook = per_notebook.sort_values(["points", "notebook"], ascending=[False, True], kind="stable")
    best = per_notebook.groupby(["student", "lesson"], as_index=False).first()
    others = per_notebook.groupby(["student", "lesson"])["notebook"].agg(list)
    best["resubmitted"] = [", ".join(sorted(set(others[(s, l)]) - {n}))
                           for s, l, n in zip(best["student"], best["lesson"], best["notebook"])]
    return best


def gradebook(rows: pd.DataFrame, copies: pd.DataFrame | None = None,
              hand: pd.DataFrame | None = None, implement_points: int = 1) -> pd.DataFrame:
    """One row per student: a column "NN (of M)" per lesson graded, the points of the lesson's
    counting notebook (`implement_points` per exercise passed; empty if not handed in); with
    `hand` (`read_hand_graded`), a column
    "NN by hand (of M)" per lesson, the points a teaching assistant gave; "total", "of" (the same
    for every student), and "flags" (resubmissions, unreadable notebooks, copies, tampering,
    review, answers not graded by hand yet)."""
    if not isinstance(implement_points, int) or implement_points < 1:
        raise ValueError(f"--implement-points must be a positive whole number, got {implement_points!r}")
    best = best_notebooks(rows)
    students = sorted(set(rows["student"]))
    table = pd.DataFrame(index=pd.Index(students, name="student"))
    lessons = sorted(set(best["lesson"]))
    of = 0
    for lesson in lessons:
        points = best[best["lesson"] == lesson].set_index("student")["points"]
        possible = implement_points * len(lesson_exercises(lesson))
        table[f"{lesson} (of {possible})"] = (implement_points * points).reindex(students).astype("Int64")
        of += possible
        if hand is not None:
            marked = hand[hand["lesson"] == lesson]
            given = marked.dropna(subset=["points"]).groupby("student")["points"].sum()
            possible = formats.WRITTEN_POINTS * len(written_questions(lesson))
            table[f"{lesson} by hand (of {possible})"] = given.reindex(students)
            of += possible
    total = table.fillna(0).sum(axis=1)
    table["total"] = total.astype(int) if (total % 1 == 0).all() else total  # half points by hand
    table["of"] = of
    table["flags"] = [_flags(student, rows, best, copies, hand) for student in students]
    return table.reset_index()


def _flags(student: str, rows: pd.DataFrame, best: pd.DataFrame, copies: pd.DataFrame | None,
           hand: pd.DataFrame | None = None) -> str:
    """The flags of one student, "; "-separated."""
    flags = [f"lesson {r.lesson} handed in more than once ({r.notebook} counts; also {r.resubmitted})"
             for r in best[(best["student"] == student) & (best["resubmitted"] != "")].itertuples()]
    own = rows[rows["student"] == student]
    flags += [f"unreadable or ungraded: {r.notebook}" for r in own[own["exercise"] == ""].itertuples()]
    for column in ("tampering", "review"):
        flagged = own[own[column] != ""] if column in own else own.iloc[:0]
        flags += [f"{column}: {notebook} ({', '.join(group['exercise'])})"
                  for notebook, group in flagged.groupby("notebook")]
    if copies is not None and len(copies):
        mine = copies[copies["student"] == student]
        flags += [f"copy: {r.exercise} is the same {'text' if ' written ' in r.exercise else 'code'} as {r.same_as}"
                  for r in mine.itertuples()]
    if hand is not None:
        waiting = hand[(hand["student"] == student) & hand["points"].isna()]
        flags += [f"not graded by hand yet: lesson {r.lesson} exercise {r.exercise}" for r in waiting.itertuples()]
    return "; ".join(flags)


# ---------------------------------------------------------------------------
# the exercises graded by hand: answers for a teaching assistant, and their points
# ---------------------------------------------------------------------------

HAND_COLUMNS = ["student", "lesson", "exercise", "points", "comment"]


@functools.cache
def written_questions(lesson: str) -> tuple[formats.WrittenExercise, ...]:
    """The exercises of `lesson` ("01") graded by hand, from its instructor's notebook."""
    from .runner import lesson_notebooks

    return tuple(w for path in lesson_notebooks(lesson) for w in formats.written_exercises(nbformat.read(path, 4)))


def _answer_text(source: str) -> str:
    """A learner's answer cell without its heading paragraph; "" if untouched."""
    text = source.split("\n\n", 1)[1].strip() if "\n\n" in source else ""
    return "" if text in ("", TEXT_STUB[0]) else text


def written_answers(submissions: Sequence[tuple[Path, Path]], rows: pd.DataFrame) -> pd.DataFrame:
    """(student, notebook, lesson, exercise, answer): each exercise graded by hand, from each
    student's counting notebook (`best_notebooks`); answer "" where its cell is missing or untouched."""
    counting = {(r.student, r.notebook): r.lesson for r in best_notebooks(rows).itertuples()}
    found = []
    for path, root in submissions:
        who, name = grading.identify(path, root), Path(path).name
        lesson = counting.get((who, name))
        if lesson is None:
            continue
        cells = grading.read_submission(path).cells
        texts = {formats.written_answer(cell): _answer_text(cell.source) for cell in cells}
        elsewhere = _text_outside_answer_cells(cells, lesson)
        for w in written_questions(lesson):
            answer = "\n\n".join(filter(None, [texts.get(w.number, ""), *(
                f"(written outside the answer cell, below exercise {w.number}'s question:)\n{text}"
                for text in elsewhere.get(w.number, []))]))
            found.append({"student": who, "notebook": name, "lesson": lesson, "exercise": w.number, "answer": answer})
    return pd.DataFrame(found, columns=["student", "notebook", "lesson", "exercise", "answer"])


@functools.cache
def _handed_out(lesson: str) -> frozenset[str]:
    """The sources of the cells of `lesson`'s learner version (grading.student_version)."""
    from .runner import lesson_notebooks

    return frozenset(cell.source for path in lesson_notebooks(lesson)
                     for cell in grading.student_version(nbformat.read(path, 4)).cells)


def _text_outside_answer_cells(cells: list, lesson: str) -> dict[int, list[str]]:
    """exercise number -> the markdown cells a student added below that exercise's answer cell, or
    below its question where no answer cell came after it (one cell may ask several questions):
    an answer a TA must not miss."""
    added, current = {}, None
    for cell in cells:
        asked = [int(n) for n, _ in formats.EXERCISE_HEADING.findall(cell.source)] if cell.cell_type == "markdown" else []
        answered = formats.written_answer(cell) if cell.cell_type == "markdown" else None
        if asked:
            current = asked[-1]
        elif answered is not None:
            current = answered
        elif (cell.cell_type == "markdown" and current is not None
              and cell.source.strip() and cell.source not in _handed_out(lesson)):
            added.setdefault(current, []).append(cell.source.strip())
    return added


def answers_markdown(lesson: str, found: pd.DataFrame, out_dir: Path = Path("feedback"),
                     submissions: Path | None = None) -> str:
    """For a teaching assistant: each question of `lesson` graded by hand, its criteria and model answer
    (formats.model_answer), then every student's answer (quoted, as the student wrote it) or "(no answer)",
    with the students who handed in the same text named. `out_dir` and `submissions` (the folder of
    the submissions, if one) are those of the gradebook command that wrote the file, which it repeats."""
    given = f"--submissions {submissions} " if submissions else ""
    lines = [f"# Lesson {lesson}: the answers to grade by hand", "",
             f"{formats.WRITTEN_POINTS} points each. Enter the points in {out_dir}/hand-graded.csv, then run "
             f"`python -m course_utils gradebook grades.csv {given}--out {out_dir} "
             f"--hand-graded {out_dir}/hand-graded.csv`.", ""]
    same = written_copies(found).set_index(["student", "exercise"])["same_as"].to_dict()
    from .results import read_metrics
    from .runner import lesson_notebooks

    [notebook] = lesson_notebooks(lesson)
    metrics = read_metrics(notebook)
    for question in written_questions(lesson):
        lines += [f"## Exercise {question.number} ({question.kind})", "", question.question, "",
                  f"**Criteria.** {question.criteria}", "",
                  f"**Model answer** (numbers of the course's committed run): "
                  f"{formats.model_answer(lesson, question.number, metrics)}", ""]
        mine = found[(found["lesson"] == lesson) & (found["exercise"] == question.number)]
        for r in mine.sort_values("student").itertuples():
            quoted = "\n".join(f"> {line}".rstrip() for line in r.answer.splitlines()) if r.answer else "*(no answer)*"
            copied = same.get((r.student, f"{lesson} written {question.number}"))
            lines += [f"### {r.student} ({r.notebook})" + (f": the same text as {copied}" if copied else ""),
                      "", quoted, ""]
    return "\n".join(lines)


def read_hand_graded(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """The points a teaching assistant entered in `path` (HAND_COLUMNS; empty points: not graded yet).

    Raises:
        ValueError: naming the line, for a missing column, an unknown student or exercise, or points
            that are not a number from 0 to formats.WRITTEN_POINTS.
    """
    hand = _as_written(pd.read_csv(path, dtype=str, keep_default_na=False))
    missing = [c for c in HAND_COLUMNS[:4] if c not in hand.columns]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}; expected the hand-graded.csv that "
                         f"gradebook --submissions writes, with columns {', '.join(HAND_COLUMNS)}")
    students = set(rows["student"])
    for line, r in enumerate(hand.itertuples(), start=2):
        where = f"{path} line {line}"
        if r.student not in students:
            raise ValueError(f"{where}: unknown student {r.student!r}; expected one of grades.csv's students")
        numbers = {str(w.number) for w in written_questions(r.lesson)} if lesson_exercises(r.lesson) else set()
        if r.exercise not in numbers:
            raise ValueError(f"{where}: lesson {r.lesson!r} has no exercise {r.exercise!r} graded by hand; "
                             f"expected one of {', '.join(sorted(numbers, key=int)) or '(none)'}")
        if r.points.strip() and not _points(r.points):
            raise ValueError(f"{where}: points {r.points!r}; expected a number from 0 to "
                             f"{formats.WRITTEN_POINTS}, or nothing if not graded yet")
    points = pd.to_numeric(hand["points"].str.strip().replace("", None), errors="coerce")
    return hand.assign(exercise=hand["exercise"].astype(int), points=points)


def _points(text: str) -> bool:
    """Whether `text` is a number of points from 0 to formats.WRITTEN_POINTS."""
    try:
        value = float(text)
    except ValueError:
        return False
    return 0 <= value <= formats.WRITTEN_POINTS


# ---------------------------------------------------------------------------
# copies: identical answers across students
# ---------------------------------------------------------------------------


def _canonical_names(tree: ast.AST) -> ast.AST:
    """`tree` with every name it binds or reads (variables, arguments, functions, classes) replaced, in
    place, by "v0", "v1", ... in the order they first appear, and type annotations taken out: renaming
    variables or dropping their annotations changes nothing."""
    for node in ast.walk(tree):  # first: ast.walk queues a node's children before it yields the node
        if isinstance(node, ast.arg):
            node.annotation = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
    names: dict[str, str] = {}
    fields = {ast.Name: "id", ast.arg: "arg", ast.FunctionDef: "name", ast.ClassDef: "name"}
    for node in ast.walk(tree):
        field = fields.get(type(node))
        if field:
            setattr(node, field, names.setdefault(getattr(node, field), f"v{len(names)}"))
    return tree


def fingerprint(code: list[tuple[int, str]]) -> str:
    """A hash of extracted code (sandbox.extract) that ignores its imports, comments, docstrings,
    layout and the names of variables."""
    tree = sandbox.parse("\n".join(source.strip("\n") for _, source in code))
    tree.body = [stmt for stmt in tree.body if not isinstance(stmt, (ast.Import, ast.ImportFrom))]
    return hashlib.sha256(ast.dump(_canonical_names(without_docstrings(tree))).encode()).hexdigest()[:16]


def statements(code: list[tuple[int, str]]) -> int:
    """How many statements the exercise's function (the last piece of `code`) holds, docstring aside."""
    tree = without_docstrings(sandbox.parse(code[-1][1]))
    return sum(isinstance(node, ast.stmt) for node in ast.walk(tree)) - 1  # not the def itself


def _is_stub(code: list[tuple[int, str]]) -> bool:
    return any(re.search(r"raise\s+NotImplementedError", source) for _, source in code)


def answers(submissions: Sequence[tuple[Path, Path]], rows: pd.DataFrame, student: str | None = None
            ) -> pd.DataFrame:
    """(student, notebook, exercise, fingerprint, cell) of each graded exercise that the learner
    wrote (stubs left out); `cell` is the number of the cell of the learner's ``def``; `fingerprint`
    is "" for a function under MIN_STATEMENTS statements, which is never called a copy. `student`
    names the student of every submission (default: grading.identify)."""
    graded = {(r.student, r.notebook): set() for r in rows.itertuples()}
    for r in rows[rows["exercise"] != ""].itertuples():
        graded[(r.student, r.notebook)].add(r.exercise)
    found = []
    for path, root in submissions:
        who = student or grading.identify(path, root)
        exercises = graded.get((who, Path(path).name), set())
        if not exercises:
            continue
        cells = sandbox.python_cells(grading.read_submission(path))
        for exercise in sorted(exercises):
            code = sandbox.extract(cells, EXERCISES[exercise].function).code
            if code and not _is_stub(code):
                mark = fingerprint(code) if statements(code) >= MIN_STATEMENTS else ""
                found.append({"student": who, "notebook": Path(path).name, "exercise": exercise,
                              "fingerprint": mark, "cell": code[-1][0]})
    return pd.DataFrame(found, columns=["student", "notebook", "exercise", "fingerprint", "cell"])


PUBLISHED = "the course's published solution"


def published_answers(lessons: set[str]) -> pd.DataFrame:
    """The answers of the instructor's notebooks of `lessons` ("01"), as `answers` gives them, under
    the student PUBLISHED: they are public, so a student who hands one in is flagged as a copy."""
    from .runner import lesson_notebooks

    notebooks = [path for lesson in sorted(lessons) for path in lesson_notebooks(lesson)]
    rows = pd.DataFrame([{"student": PUBLISHED, "notebook": path.name, "exercise": exercise}
                         for path in notebooks for exercise in lesson_exercises(path.name[:2])])
    return answers([(path, path.parent) for path in notebooks], rows, student=PUBLISHED)


NAMED_COPIES = 3  # a flag names at most this many other students, then counts the rest


def _same_as(student: str, others: list[str]) -> str:
    """Whom `student` shares an answer with: the published solution first, then up to NAMED_COPIES
    students and a count of the rest (a flag an instructor can read, not a list of the class)."""
    others = [o for o in others if o != student]
    named = [PUBLISHED] if PUBLISHED in others else []
    students = [o for o in others if o != PUBLISHED]
    named += students[:NAMED_COPIES]
    rest = len(students) - len(students[:NAMED_COPIES])
    return ", ".join(named) + (f" and {rest} other student(s)" if rest else "")


def copies(found: pd.DataFrame) -> pd.DataFrame:
    """(student, exercise, same_as): each answer that another student, or PUBLISHED, has too,
    comments aside. `found` holds the answers of the notebooks that count (see `write_gradebook`)."""
    rows = []
    for (exercise, _), group in found[found["fingerprint"] != ""].groupby(["exercise", "fingerprint"]):
        students = sorted(set(group["student"]))
        rows += [{"student": s, "exercise": exercise, "same_as": _same_as(s, students)}
                 for s in students if len(students) > 1 and s != PUBLISHED]
    return pd.DataFrame(rows, columns=["student", "exercise", "same_as"])


def _normalised(text: str) -> str:
    """An answer's words, lower-cased, without punctuation or layout: what two copies share."""
    return " ".join(re.findall(r"\w+", text.lower()))


def written_copies(texts: pd.DataFrame) -> pd.DataFrame:
    """(student, exercise, same_as): each answer graded by hand (`written_answers`) that another
    student wrote too, case, punctuation and layout aside; exercise reads "NN written N"."""
    texts = texts.assign(words=texts["answer"].map(_normalised))
    rows = []
    for (lesson, number, words), group in texts[texts["words"] != ""].groupby(["lesson", "exercise", "words"]):
        students = sorted(set(group["student"]))
        rows += [{"student": s, "exercise": f"{lesson} written {number}", "same_as": _same_as(s, students)}
                 for s in students if len(students) > 1]
    return pd.DataFrame(rows, columns=["student", "exercise", "same_as"])


# ---------------------------------------------------------------------------
# feedback
# ---------------------------------------------------------------------------


def feedback(rows: pd.DataFrame, student: str, found: pd.DataFrame | None = None,
             hand: pd.DataFrame | None = None) -> str:
    """The feedback file of one student, in markdown: per notebook, each exercise passed or its
    failing case and hint, with the cell of the learner's ``def`` when `found` (see `answers`) has it;
    then, with `hand` (`read_hand_graded`), the points and comment of each answer graded by hand."""
    own = rows[rows["student"] == student]
    mine = found[found["student"] == student] if found is not None else []
    cells = {(r.notebook, r.exercise): r.cell for r in mine.itertuples()} if len(mine) else {}
    lines = [f"# Feedback for {student}", ""]
    for notebook, of_notebook in own.groupby("notebook", sort=True):
        passed = int(of_notebook["passed"].sum())
        lines += [f"## {notebook}: {passed} of {len(of_notebook)} passed", ""]
        for r in of_notebook.itertuples():
            cell = cells.get((notebook, r.exercise))
            where = f" (your def is in cell {cell})" if cell else ""
            verdict = "passed" if r.passed else "FAILED"
            lines.append(f"- **{r.exercise or 'the notebook'}**: {verdict}{where}. {r.message}")
        lines.append("")
    marked = hand[hand["student"] == student] if hand is not None else []
    if len(marked):
        lines += [f"## Graded by hand (of {formats.WRITTEN_POINTS} points each)", ""]
        for r in marked.sort_values(["lesson", "exercise"]).itertuples():
            points = "not graded yet" if pd.isna(r.points) else f"{r.points:g} points"
            comment = f": {r.comment}" if isinstance(r.comment, str) and r.comment.strip() else ""
            lines.append(f"- **lesson {r.lesson}, exercise {r.exercise}**: {points}{comment}")
        lines.append("")
    return "\n".join(lines)


def _file_name(student: str) -> str:
    """A file name for a student id (which may be a path such as "grace/hw1")."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", student).strip("._") or "student"


def write_gradebook(rows: pd.DataFrame, out_dir: Path, submissions: Sequence[tuple[Path, Path]] | None = None,
                    hand: pd.DataFrame | None = None, implement_points: int = 1) -> list[Path]:
    """Write ``gradebook.csv`` and ``<student>.md`` for each student into `out_dir`, each atomically.

    With `submissions` (as grading.submissions_in finds them), answers that several students
    share, or that are the course's published solution, are flagged, the feedback names the
    cell of each ``def``, and the answers graded by hand are collected (``answers-NN.md``, and
    ``hand-graded.csv`` if `out_dir` has none yet). `hand` (`read_hand_graded`) adds their points;
    each implement exercise passed is worth `implement_points`. Returns the paths written.
    """
    out_dir, found, shared, texts = Path(out_dir), None, None, None
    if submissions:
        lessons = set(rows.loc[rows["exercise"] != "", "exercise"].str[:2])
        found = answers(submissions, rows)
        counting = {(r.student, r.notebook) for r in best_notebooks(rows).itertuples()}
        counted = found[[key in counting for key in zip(found["student"], found["notebook"])]]
        texts = written_answers(submissions, rows)
        shared = pd.concat([copies(pd.concat([counted, published_answers(lessons)], ignore_index=True)),
                            written_copies(texts)], ignore_index=True)
    table = gradebook(rows, shared, hand, implement_points)
    written = [write_text(out_dir / "gradebook.csv", grading.spreadsheet_safe(table).to_csv(index=False))]
    for student in table["student"]:
        written.append(write_text(out_dir / f"{_file_name(student)}.md", feedback(rows, student, found, hand)))
    if texts is not None:
        roots = {root for _, root in submissions}
        written += _write_answers(texts, out_dir, roots.pop() if len(roots) == 1 else None)
    return written


def _write_answers(texts: pd.DataFrame, out_dir: Path, submissions: Path | None) -> list[Path]:
    """``answers-NN.md`` for each lesson in `texts` (`written_answers`), and ``hand-graded.csv``
    with empty points if `out_dir` has none: a teaching assistant's points are never overwritten.
    `submissions`: the folder of the submissions, which the files' command repeats."""
    written = [write_text(out_dir / f"answers-{lesson}.md", answers_markdown(lesson, texts, out_dir, submissions))
               for lesson in sorted(set(texts["lesson"]))]
    if len(texts) and not (out_dir / "hand-graded.csv").exists():
        template = texts.assign(points="", comment="")[HAND_COLUMNS]
        written.append(write_text(out_dir / "hand-graded.csv", grading.spreadsheet_safe(template).to_csv(index=False)))
    return written
