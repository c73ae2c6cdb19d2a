"""Grade one exercise of a submission without trusting anything the submission shows.

Used by course_utils.tooling.grading. For each exercise of a lesson:

1. ``extract`` reads the notebook's code cells (never their outputs) and takes
   the learner's last top-level ``def NAME(...)`` in cell order, with the
   top-level imports, functions, classes and assignments it needs (by the
   names it uses, transitively), each from its last binding.
2. ``tampering`` looks over every code cell for what an honest notebook never
   does: touching the checker (``run_check``, ``EXERCISES``, ``CHECK_MIME``,
   the ``course_utils.exercises`` module beyond ``check``), binding an exercise
   name other than by ``def``, or naming a path outside the folder.
3. ``run_exercise`` runs that code in a fresh sandbox: its own temporary
   folder, an environment of a few variables, the user ``nobody`` when the grader
   is root, ``python -I -S`` so that course_utils (and its reference solutions)
   cannot be imported, and an audit hook (sandbox_runner.py). The sandbox gets
   only the test cases' arguments and sends back only the answers, through
   ``torch.save`` / ``torch.load(weights_only=True)``.
4. The grader, in its own process, makes the test cases from a seed the
   submission never sees and judges the answers with course_utils.exercises.verdict.
"""

from __future__ import annotations

import ast
import builtins
import functools
import json
import os
import pwd
import re
import shutil
import subprocess
import symtable
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import exercises
from .sandbox_runner import TAMPER_EXIT

RUNNER = Path(__file__).with_name("sandbox_runner.py")
SANDBOX_USER = "nobody"
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ")
_CHECKER_NAMES = {"run_check", "EXERCISES", "CHECK_MIME", "CheckResult", "RENAMED"}
_PARENT_PATH = re.compile(r"(^|[/\\])\.\.([/\\]|$)")


@dataclass
class Cell:
    """One code cell: its number (from 1, counting every cell), its source as Python, its tree."""

    number: int
    source: str
    tree: ast.Module | None
    error: str = ""


@dataclass
class Extract:
    """The code of one exercise: (cell number, source) pieces in cell order, or why there is none."""

    code: list[tuple[int, str]] = field(default_factory=list)
    problem: str = ""


def python_cells(nb: Any) -> list[Cell]:
    """The code cells of `nb` (a notebook node), with IPython syntax (magics, !) turned into Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    transformer, cells = TransformerManager(), []
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        try:
            source = transformer.transform_cell(cell.source)
            cells.append(Cell(number, source, ast.parse(source)))
        except (SyntaxError, ValueError) as error:
            line = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
            cells.append(Cell(number, cell.source, None, f"{type(error).__name__}: {error.msg if hasattr(error, 'msg') else error}{line}"))
    return cells


def _bound_names(stmt: ast.stmt) -> set[str]:
    """The names a top-level statement binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    if isinstance(stmt, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in stmt.names}
    names = set()
    targets = {ast.Assign: lambda s: s.targets, ast.AnnAssign: lambda s: [s.target],
               ast.AugAssign: lambda s: [s.target], ast.For: lambda s: [s.target],
               ast.With: lambda s: [i.optional_vars for i in s.items if i.optional_vars]}
    for target in targets.get(type(stmt), lambda s: [])(stmt):
        names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    if isinstance(stmt, (ast.If, ast.Try, ast.While, ast.For, ast.With)):
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.stmt):
                names |= _bound_names(child)
    names |= {n.target.id for n in ast.walk(stmt) if isinstance(n, ast.NamedExpr)}
    return names


def _used_names(stmt: ast.stmt) -> set[str]:
    """The global names a top-level statement reads (for a def: in its body, its defaults and decorators)."""
    names, tables = set(), [symtable.symtable(ast.unparse(stmt), "cell", "exec")]
    while tables:
        table = tables.pop()
        tables += table.get_children()
        top = table.get_type() == "module"
        names |= {s.get_name() for s in table.get_symbols()
                  if s.is_referenced() and (top or s.is_global())}
    return names


def _segment(cell: Cell, stmt: ast.stmt) -> tuple[int, int]:
    """The (first, last) line numbers of a top-level statement, decorators included."""
    first = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
    return first, stmt.end_lineno


def extract(cells: list[Cell], function: str) -> Extract:
    """The learner's last ``def function`` and what it needs, as code to run; see the module docstring."""
    bindings: dict[str, tuple[Cell, ast.stmt]] = {}  # name -> its last top-level binding
    for cell in cells:
        for stmt in cell.tree.body if cell.tree else []:
            for name in _bound_names(stmt):
                bindings[name] = (cell, stmt)
    last = bindings.get(function)
    broken = [c for c in cells if c.tree is None and re.search(rf"\bdef\s+{function}\s*\(", c.source)]
    if broken and (last is None or broken[-1].number > last[0].number):
        return Extract(problem=f"cell {broken[-1].number} does not parse ({broken[-1].error}), so its "
                               f"def {function} never ran")
    if last is None:
        return Extract(problem=f"the notebook has no def {function}(...) (was its cell deleted?)")
    if not isinstance(last[1], ast.FunctionDef):
        return Extract(problem=f"{function} is not a def in the notebook (cell {last[0].number})")
    wanted, todo, seen = [], [function], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in bindings:
            continue
        seen.add(name)
        cell, stmt = bindings[name]
        wanted.append((cell, stmt))
        todo += sorted(_used_names(stmt) - seen - set(dir(builtins)))
    pieces = {}
    for cell, stmt in wanted:
        pieces.setdefault(cell.number, (cell, set()))[1].add(_segment(cell, stmt))
    code = []
    for number in sorted(pieces):
        cell, segments = pieces[number]
        lines = cell.source.splitlines()
        keep = sorted({line for first, last in segments for line in range(first, last + 1)})
        # blank lines keep every statement on its line number, for the messages
        code.append((number, "\n".join(lines[i - 1] if i in keep else "" for i in range(1, keep[-1] + 1))))
    return Extract(code)


def _string(node: ast.AST) -> str | None:
    """The text of a string constant or f-string (each placeholder as NUL); None for other nodes
    and for the pieces of an f-string, which count as part of it."""
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "\0" for v in node.values)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and not getattr(node, "in_fstring", False):
        return node.value
    return None


def tampering(cells: list[Cell], functions: list[str]) -> list[str]:
    """What in the notebook's code looks like an attempt at the grade rather than the exercise."""
    found = []
    for cell in cells:
        where = f"cell {cell.number}"
        if "vnd.course-utils.check" in cell.source:
            found.append(f"{where} writes the checker's result format by hand")
        if cell.tree is None:
            continue
        for node in ast.walk(cell.tree):
            if isinstance(node, ast.JoinedStr):
                for piece in node.values:
                    piece.in_fstring = True
            name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                    else None)
            if name in _CHECKER_NAMES:
                found.append(f"{where} uses the checker's {name}")
            if isinstance(node, ast.Attribute) and node.attr == "exercises":
                found.append(f"{where} reaches into course_utils.exercises")
            if isinstance(node, ast.Import) and any(a.name.startswith("course_utils.exercises") for a in node.names):
                found.append(f"{where} imports the checker module course_utils.exercises")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("course_utils"):
                imported = {a.name for a in node.names}
                if (node.module == "course_utils" and "exercises" in imported) or (
                        node.module == "course_utils.exercises" and imported - {"check"}):
                    found.append(f"{where} imports {', '.join(sorted(imported))} from {node.module}")
            text = _string(node)
            if text is not None and _PARENT_PATH.search(text):
                found.append(f"{where} names a path outside its folder ({text[:40]!r})")
            if isinstance(node, ast.Attribute) and node.attr in ("chdir", "parent", "parents"):
                found.append(f"{where} moves out of its folder (.{node.attr})")
        for stmt in cell.tree.body:
            for name in _bound_names(stmt) & set(functions):
                if not isinstance(stmt, ast.FunctionDef):
                    found.append(f"{where} binds {name} by {type(stmt).__name__.lower()}, not with def")
    return list(dict.fromkeys(found))


@dataclass
class Outcome:
    """One exercise graded: passed, the message, and what looked like tampering ("" if nothing)."""

    passed: bool
    message: str
    tampering: str = ""


def _sandbox_user() -> tuple[int, int] | None:
    """(uid, gid) of SANDBOX_USER when the grader runs as root, else None (the grader's own user)."""
    if os.geteuid() != 0:
        return None
    user = pwd.getpwnam(SANDBOX_USER)
    return user.pw_uid, user.pw_gid


def _runs(python: str, user: tuple[int, int] | None) -> bool:
    """Whether `python` imports torch from the grader's site-packages when run as `user`."""
    with tempfile.TemporaryDirectory() as folder:
        probe = [python, "-I", "-S", "-c", "import sys; sys.path += sys.argv[1:]; import torch",
                 *_readable_dirs()]
        try:
            return subprocess.run(probe, cwd="/", capture_output=True, timeout=120, user=user and user[0],
                                  group=user and user[1], extra_groups=[] if user else None,
                                  env={"PATH": os.environ.get("PATH", ""), "HOME": folder}).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


@functools.cache
def interpreter() -> tuple[str, tuple[int, int] | None]:
    """(Python interpreter, (uid, gid) or None) of the sandbox.

    As root: this Python, else the system's Python of the same version (a venv whose
    interpreter sits under /root cannot be run by another user), run as SANDBOX_USER;
    if neither runs as that user, this Python as root, with a warning. Otherwise the
    grader's own user and Python.
    """
    user = _sandbox_user()
    if user is None:
        return sys.executable, None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for python in [sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"]:
        if Path(python).exists() and _runs(python, user):
            return python, user
    print(f"warning: user {SANDBOX_USER} cannot run Python with torch here, so submissions run as root "
          "(make the interpreter and the venv readable to other users)", file=sys.stderr)
    return sys.executable, None


def _readable_dirs() -> list[str]:
    """Where the sandbox finds torch and the standard library: site-packages, without its .pth hooks."""
    paths = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    return sorted(p for p in paths if Path(p).is_dir())


def _from_sandbox(value: Any) -> Any:
    """Undo sandbox_runner.portable: {"__unreadable__": [...]} markers become exercises.Unreadable."""
    if isinstance(value, dict) and set(value) == {"__unreadable__"}:
        return exercises.Unreadable(*value["__unreadable__"])
    if isinstance(value, (list, tuple)):
        items = [_from_sandbox(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def run_exercise(exercise: str, code: list[tuple[int, str]], seed: int, timeout_s: float) -> Outcome:
    """Run the learner's function of `exercise` in a sandbox on test cases from `seed`, and judge it."""
    ex = exercises.EXERCISES[exercise]
    with torch.random.fork_rng(devices=[]):
        cases = ex.cases(torch.Generator().manual_seed(seed))
    folder = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        (folder / "job.json").write_text(json.dumps({"code": code, "function": ex.function}))
        torch.save([exercises._copy(case.args) for case in cases], folder / "inputs.pt")
        shutil.copy(RUNNER, folder / RUNNER.name)
        python, user = interpreter()
        if user:
            for path in [folder, *folder.iterdir()]:
                os.chown(path, *user)
        env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
        env.update(HOME=str(folder), COURSE_MODE="smoke", COURSE_PROGRESS="0", OMP_NUM_THREADS="1",
                   MPLBACKEND="Agg")
        command = [python, "-I", "-S", RUNNER.name, *_readable_dirs()]
        try:
            run = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                                 timeout=timeout_s, user=user and user[0], group=user and user[1],
                                 extra_groups=[] if user else None)
        except subprocess.TimeoutExpired:
            return Outcome(False, f"the function did not answer within {timeout_s:g} s (an endless loop?)")
        if run.returncode == TAMPER_EXIT:
            what = run.stderr.strip().splitlines()[-1].removeprefix("TAMPER: ")
            return Outcome(False, f"tampering suspected: its code {what}", what)
        answers_file = folder / "answers.pt"
        if run.returncode != 0 or not answers_file.exists():
            last = (run.stderr.strip().splitlines() or [""])[-1][:200]
            return Outcome(False, f"the code died before answering (exit status {run.returncode}"
                                  + (f": {last})" if last else ")"))
        answers = torch.load(answers_file, weights_only=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if not isinstance(answers, list) or len(answers) != len(cases):
        return Outcome(False, "the sandbox sent back no answers it could read")
    results = [exercises.Raised(*a[1:]) if a[0] == "raised" else _from_sandbox(a[1]) for a in answers]
    result = exercises.verdict(exercise, cases, results)
    return Outcome(result.passed, result.message)


def grade_cells(cells: list[Cell], lesson_ids: list[str], seed: int, timeout_s: float) -> dict[str, Outcome]:
    """exercise id -> its Outcome, for each exercise of a lesson; tampering, seen in the code or
    caught while an exercise runs, fails every one."""
    suspicious = tampering(cells, [exercises.EXERCISES[e].function for e in lesson_ids])
    outcomes = {}
    for exercise in lesson_ids:
        if suspicious:
            outcomes[exercise] = Outcome(False, "tampering suspected: " + "; ".join(suspicious),
                                         "; ".join(suspicious))
            continue
        found = extract(cells, exercises.EXERCISES[exercise].function)
        outcomes[exercise] = (Outcome(False, found.problem) if found.problem
                              else run_exercise(exercise, found.code, seed, timeout_s))
    caught = [f"{e}: {o.tampering}" for e, o in outcomes.items() if o.tampering]
    if caught:  # caught at run time in one exercise: the whole submission fails
        outcomes = {e: o if o.tampering else Outcome(False, "tampering suspected in another exercise",
                                                     "; ".join(caught)) for e, o in outcomes.items()}
    return outcomes
