"""Grade one exercise of a submission without trusting anything the submission shows.

Used by course_utils.tooling.grading. For each exercise of a lesson:

1. ``extract`` reads the notebook's code cells (never their outputs) and takes
   the learner's last top-level ``def NAME(...)`` (or ``NAME = lambda ...``) in
   cell order, with the top-level imports, functions, classes and assignments
   it needs (by the names it uses, transitively), each from its last binding.
   Cell order does not matter: the imports come first, then each statement
   after those it uses. A cell under a timing magic (``%%time``) counts as its
   Python body. Names imported from course_utils are left out: the sandbox
   provides ``get_device`` (the CPU), and a function that uses another one
   gets a message naming it. Only what the function needs runs; a statement
   that sets up a value and fails there (``WORK = Path("/data")``...) leaves
   its names undefined, and a function that then uses one is told which.
2. ``run_exercise`` runs that code in a fresh sandbox: its own temporary
   folder, an environment of a few variables, the user ``nobody`` when the grader
   is root, ``python -I -S`` so that course_utils (and its reference solutions)
   cannot be imported, and an audit hook (sandbox_runner.py). The sandbox gets
   only the test cases' arguments and sends back only the answers, through
   ``torch.save`` / ``torch.load(weights_only=True)``. Tampering is what the
   code does there: writing or reading outside its folder, starting processes.
   ``timeout_s`` counts from the moment the sandbox has loaded torch.
3. The grader, in its own process, makes the test cases from a seed the
   submission never sees, checks the form of what came back, and judges the
   answers with course_utils.exercises.engine.verdict.
4. ``library_calls`` flags, for review, an answer whose code names a library
   function that does the exercise's work (``F.conv2d`` in ``conv2d_loops``).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import symtable
import sys
import sysconfig
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from IPython.core.inputtransformer2 import TransformerManager  # imported once, not in the grader's threads

from ..exercises import EXERCISES, engine
from .sandbox_runner import PROVIDED, READY, TAMPER_EXIT

RUNNER = Path(__file__).with_name("sandbox_runner.py")
SANDBOX_USER = "nobody"
ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ")
STARTUP_S = 600  # the sandbox's own start-up (Python and torch), not counted in timeout_s
ANSWERS_MAX_BYTES = 64 * 2 ** 20
# The exercises' test cases and references may seed torch's global generator (lesson 06 builds its
# models with torch.manual_seed): the grader's threads take turns there, each in a fork of its state.
_GLOBAL_RNG = threading.Lock()
# CPython 3.11 keeps one counter for every thread that turns source into a tree: two threads parsing at
# once can fail with "SystemError: AST constructor recursion depth mismatch" (seen in CI under
# `grade --jobs 2`; python/cpython#106905). The grader's threads parse one at a time.
_PARSER = threading.Lock()
_TIMING_MAGIC = re.compile(r"\A\s*%%(time|timeit|capture|prun)\b[^\n]*\n")


def parse(source: str) -> ast.Module:
    """`ast.parse`, one thread at a time (see `_PARSER`)."""
    with _PARSER:
        return ast.parse(source)


@dataclass
class Cell:
    """One code cell: its number (from 1, counting every cell), its source as Python, its tree."""

    number: int
    source: str
    tree: ast.Module | None
    error: str = ""


@dataclass
class Extract:
    """The code of one exercise: (cell number, source) pieces in the order they run, or why there is none.

    ``setup`` holds the indices of the pieces that set up a value (see `extract`). ``from_course``
    maps each name the code imports from course_utils, which the sandbox does not provide, to the
    cell that imports it.
    """

    code: list[tuple[int, str]] = field(default_factory=list)
    problem: str = ""
    from_course: dict[str, int] = field(default_factory=dict)
    setup: tuple[int, ...] = ()


def _python_source(source: str, transformer: Any) -> str:
    """A cell's source as Python: a timing cell magic (``%%time``) becomes a blank line above its body,
    other IPython syntax (``%magic``, ``!command``) the calls IPython makes of it."""
    magic = _TIMING_MAGIC.match(source)
    if magic:
        source = "\n" * magic.group(0).count("\n") + source[magic.end():]
    return transformer.transform_cell(source)


def python_cells(nb: Any) -> list[Cell]:
    """The code cells of `nb` (a notebook node), with IPython syntax turned into Python."""
    transformer, cells = TransformerManager(), []
    for number, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        try:
            source = _python_source(cell.source, transformer)
            cells.append(Cell(number, source, parse(source)))
        except (SyntaxError, ValueError) as error:
            line = f" (line {error.lineno})" if getattr(error, "lineno", None) else ""
            cells.append(Cell(number, cell.source, None,
                              f"{type(error).__name__}: {getattr(error, 'msg', error)}{line}"))
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
    with _PARSER:
        tables = [symtable.symtable(ast.unparse(stmt), "cell", "exec")]
    names = set()
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


def _from_course(stmt: ast.stmt) -> bool:
    """Whether a top-level statement imports from course_utils (which the sandbox cannot import)."""
    if isinstance(stmt, ast.ImportFrom):
        return (stmt.module or "").split(".")[0] == "course_utils"
    return isinstance(stmt, ast.Import) and any(a.name.split(".")[0] == "course_utils" for a in stmt.names)


def _last_bindings(cells: list[Cell]) -> dict[str, tuple[Cell, ast.stmt]]:
    """name -> its last top-level binding (cell, statement), in cell order."""
    bindings: dict[str, tuple[Cell, ast.stmt]] = {}
    for cell in cells:
        for stmt in cell.tree.body if cell.tree else []:
            for name in _bound_names(stmt):
                bindings[name] = (cell, stmt)
    return bindings


def _is_definition(stmt: ast.stmt) -> bool:
    """Whether a statement only defines (an import, def or class), as opposed to setting up a value."""
    return isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


def _function_problem(cells: list[Cell], function: str, last: tuple[Cell, ast.stmt] | None) -> str:
    """Why the notebook has no usable binding of `function` ("" if it has one)."""
    binds = re.compile(rf"^\s*(def\s+{function}\s*\(|{function}\s*(:[^=\n]*)?=[^=])", re.M)
    broken = [c for c in cells if c.tree is None and binds.search(c.source)]
    if broken and (last is None or broken[-1].number > last[0].number):
        return (f"cell {broken[-1].number} does not parse ({broken[-1].error}), so its "
                f"def {function} never ran")
    if last is None:
        return f"the notebook has no def {function}(...) (was its cell deleted?)"
    if not isinstance(last[1], (ast.FunctionDef, ast.Assign, ast.AnnAssign)):
        kind = type(last[1]).__name__.lower()
        return (f"cell {last[0].number} binds {function} by {kind}, not with def or an assignment: "
                f"write the function {function} yourself")
    return ""


def extract(cells: list[Cell], function: str) -> Extract:
    """The learner's last binding of `function` (a def, or an assignment such as a lambda) and what it
    needs, as code to run; see the module docstring.

    Cell order does not matter: the imports it needs come first, then every other statement
    after the statements whose names it uses (a constant above the cell that imports torch
    works as the notebook ran it). Statements that set up a value (not a def, class or import)
    are marked in ``setup``: the sandbox runs them, and one that fails or reaches outside
    leaves its names undefined instead of failing the exercise.
    """
    bindings = _last_bindings(cells)
    problem = _function_problem(cells, function, bindings.get(function))
    if problem:
        return Extract(problem=problem)
    order: list[tuple[Cell, ast.stmt]] = []
    seen: set[str] = set()
    from_course: dict[str, int] = {}

    def visit(name: str) -> None:
        """Append the binding of `name` after the bindings it uses (depth first)."""
        if name in seen or name not in bindings:
            return
        seen.add(name)
        cell, stmt = bindings[name]
        if _from_course(stmt):
            if name not in PROVIDED:
                from_course[name] = cell.number
            return
        for used in sorted(_used_names(stmt)):  # a notebook's own `pow` or `sum` shadows the builtin
            visit(used)
        if all(stmt is not kept for _, kept in order):
            order.append((cell, stmt))

    visit(function)
    is_import = [isinstance(stmt, (ast.Import, ast.ImportFrom)) for _, stmt in order]
    imports = sorted((piece for piece, hoisted in zip(order, is_import) if hoisted),
                     key=lambda piece: (piece[0].number, piece[1].lineno))
    order = imports + [piece for piece, hoisted in zip(order, is_import) if not hoisted]
    setup = tuple(i for i, (_, stmt) in enumerate(order) if not _is_definition(stmt) and
                  function not in _bound_names(stmt))
    return Extract([_code_of(cell, stmt) for cell, stmt in order], from_course=from_course, setup=setup)


def _code_of(cell: Cell, stmt: ast.stmt) -> tuple[int, str]:
    """(cell number, source) of a top-level statement, after blank lines that keep it on its line
    number in the cell, for the messages."""
    first, last = _segment(cell, stmt)
    lines = cell.source.splitlines()
    return cell.number, "\n" * (first - 1) + "\n".join(lines[first - 1:last])


def library_calls(code: list[tuple[int, str]], names: tuple[str, ...]) -> str:
    """Where `code` names one of `names` (a library function that does an exercise's work):
    "cell 62, line 2: conv2d"; "" if nowhere."""
    found = []
    for cell, source in code:
        for node in ast.walk(parse(source)):
            name = (node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute)
                    else None)
            imported = [a.name.split(".")[-1] for a in node.names] if isinstance(node, ast.ImportFrom) else []
            for hit in {name, *imported} & set(names):
                found.append(f"cell {cell}, line {node.lineno}: {hit}")
    return "; ".join(dict.fromkeys(found))


_LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def form_review(code: list[tuple[int, str]], form: str) -> str:
    """Why `code` does not take the `form` an exercise asks for ("loops" or "closed", see
    ``Exercise.form``): "asked for a closed formula (no loop); cell 5, line 3 loops"; "" if it does."""
    loops = [f"cell {cell}, line {node.lineno}" for cell, source in code
             for node in ast.walk(parse(source)) if isinstance(node, _LOOPS)]
    if form == "loops" and not loops:
        return "asked for explicit loops; the answer has none"
    if form == "closed" and loops:
        return f"asked for a closed formula (no loop); {loops[0]} loops"
    return ""


def review(exercise: str, code: list[tuple[int, str]], stub: bool = False) -> str:
    """Why a person should look at an answer to `exercise`: a library call that does its work
    (`library_calls`), or not the form it asks for (`form_review`, not for a `stub`); "" if neither."""
    ex = EXERCISES[exercise]
    return "; ".join(filter(None, (library_calls(code, ex.does_the_work), form_review(code, "" if stub else ex.form))))


@dataclass
class Outcome:
    """One exercise graded: passed, the message, what the code did that it may not ("" if nothing),
    and what a person should look at ("" if nothing)."""

    passed: bool
    message: str
    tampering: str = ""
    review: str = ""


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


def _unreadable(type_name: str, text: str) -> Any:
    """An answer the sandbox could not send back (a NumPy array): an object of a class named like
    its type, whose repr is the start of its repr, for the messages."""
    return type(str(type_name)[:40], (), {"__repr__": lambda self: str(text)[:60]})()


def _from_sandbox(value: Any) -> Any:
    """Undo sandbox_runner.portable: {"__unreadable__": [type, text]} markers become `_unreadable` objects."""
    if isinstance(value, dict) and set(value) == {"__unreadable__"} and len(value["__unreadable__"]) == 2:
        return _unreadable(*value["__unreadable__"])
    if isinstance(value, (list, tuple)):
        items = [_from_sandbox(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


class BadAnswers(Exception):
    """What came back from the sandbox is not answers in the runner's form."""


def _answer(entry: Any) -> Any:
    """One answer as the runner wrote it: ("returned", value) -> the value, ("raised", kind, text,
    where) -> an engine.Raised, ("absent",) -> None.

    Raises:
        BadAnswers: for anything else (a submission that wrote its own answers).
    """
    if isinstance(entry, tuple) and entry[:1] == ("returned",) and len(entry) == 2:
        return _from_sandbox(entry[1])
    if (isinstance(entry, tuple) and entry[:1] == ("raised",) and len(entry) == 4
            and all(isinstance(part, str) for part in entry)):
        return engine.Raised(*entry[1:])
    if entry == ("absent",):
        return None
    raise BadAnswers(f"an answer of an unknown form: {engine.describe(entry)}")


def _read_answers(path: Path, count: int) -> list[Any]:
    """The `count` answers in the file `path`, as `_answer` reads each.

    Raises:
        BadAnswers: if the file is missing, too large, not torch.load-able or not `count` answers.
    """
    if path.is_symlink() or not path.is_file() or path.stat().st_size > ANSWERS_MAX_BYTES:
        raise BadAnswers(f"no answers file, a link, or a file over {ANSWERS_MAX_BYTES >> 20} MiB")
    try:
        answers = torch.load(path, weights_only=True)
    except Exception as error:
        raise BadAnswers(f"an answers file torch.load cannot read ({type(error).__name__})") from None
    if not isinstance(answers, list) or len(answers) != count:
        raise BadAnswers(f"expected {count} answers, got {engine.describe(answers)}")
    return [_answer(entry) for entry in answers]


def _merge_ranks(per_rank: list[list[Any]], cases: list[engine.Case]) -> list[Any]:
    """Lesson 06: for each case, the list of every process's gradients, or what a process raised."""
    merged = []
    for number, case in enumerate(cases):
        answers = [answers[number] for answers in per_rank[:case.args[0]]]
        errors = [a for a in answers if isinstance(a, engine.Raised)]
        merged.append(min(errors, key=lambda e: e.kind != "NotImplementedError") if errors else answers)
    return merged


def _start(folder: Path) -> subprocess.Popen:
    """Start the runner in `folder`, in a session of its own; stderr goes to folder/../stderr."""
    python, user = interpreter()
    if user:
        for path in [folder, *folder.iterdir()]:
            os.chown(path, *user)
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    env.update(HOME=str(folder), TMPDIR=str(folder), COURSE_MODE="smoke", COURSE_PROGRESS="0", OMP_NUM_THREADS="1",
               MPLBACKEND="Agg")
    with open(folder.parent / "stderr", "wb") as stderr:
        return subprocess.Popen([python, "-I", "-S", RUNNER.name, *_readable_dirs()], cwd=folder, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                user=user and user[0], group=user and user[1],
                                extra_groups=[] if user else None, start_new_session=True)


def _wait(process: subprocess.Popen, timeout_s: float) -> str | None:
    """Wait for the runner's "ready" line (STARTUP_S at most), then `timeout_s` for it to end;
    None if it ended in time, else why not. Its whole session is killed in the end."""
    ready = False
    try:
        started = select.select([process.stdout], [], [], STARTUP_S)[0]
        ready = bool(started) and process.stdout.readline() == READY
        process.wait(timeout_s if ready else 1)  # not ready: it died while starting, or never started
        return None
    except subprocess.TimeoutExpired:
        if ready:
            return f"the function did not answer within {timeout_s:g} s (an endless loop?)"
        return (f"not graded: the sandbox did not start within {STARTUP_S} s (an overloaded machine?); "
                "grade it again")
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()


def _inputs(ex: engine.Exercise, cases: list[engine.Case]) -> list[Any]:
    """What the sandbox gets for each case: copies of its arguments, or each process's parameters."""
    return [ex.processes(case.args) if ex.processes else engine.copy_args(case.args) for case in cases]


def run_exercise(exercise: str, code: list[tuple[int, str]], seed: int, timeout_s: float,
                 from_course: dict[str, int] | None = None, setup: tuple[int, ...] = ()) -> Outcome:
    """Run the learner's function of `exercise` in a sandbox on test cases from `seed`, and judge it.

    `from_course`: names the code imports from course_utils (see Extract), for the message of a
    function that uses one. `setup`: the indices of the pieces of `code` that set up a value
    (Extract.setup), which may fail without failing the function.
    """
    ex = EXERCISES[exercise]
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        cases = ex.cases(torch.Generator().manual_seed(seed))
        inputs = _inputs(ex, cases)
    ranks = max(case.args[0] for case in cases) if ex.processes else 1
    work = Path(tempfile.mkdtemp(prefix="course-grade-"))
    folder = work / "sandbox"
    try:
        work.chmod(0o711)  # the sandbox's user may pass through to its folder, not list the grader's files
        folder.mkdir(mode=0o700)  # then owned by the sandbox's user: no other submission reaches it
        (folder / "job.json").write_text(json.dumps({"code": code, "function": ex.function, "setup": setup,
                                                     "processes": ex.processes is not None}))
        torch.save(inputs, folder / "inputs.pt")
        shutil.copy(RUNNER, folder / RUNNER.name)
        process = _start(folder)
        late = _wait(process, timeout_s)
        if late:
            return Outcome(False, late)
        stderr = (work / "stderr").read_bytes()[-4000:].decode(errors="replace").strip().splitlines()
        if process.returncode == TAMPER_EXIT and stderr and stderr[-1].startswith("TAMPER: "):
            what = stderr[-1].removeprefix("TAMPER: ")
            return Outcome(False, f"tampering suspected: its code {what}", what)
        if process.returncode != 0 or not (folder / "answers.pt").exists():
            last = (stderr or [""])[-1][:200]
            return Outcome(False, f"the code died before answering (exit status {process.returncode}"
                                  + (f": {last})" if last else ")"))
        try:
            per_rank = [_read_answers(folder / ("answers.pt" if r == 0 else f"answers-{r}.pt"), len(cases))
                        for r in range(ranks)]
        except BadAnswers as error:
            return Outcome(False, f"the sandbox sent back no answers the grader can read: {error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    answers = _merge_ranks(per_rank, cases) if ex.processes else per_rank[0]
    with _GLOBAL_RNG, torch.random.fork_rng(devices=[]):
        result = engine.verdict(exercise, cases, answers)
    return Outcome(result.passed, _name_the_missing(result.message, from_course or {}))


def _name_the_missing(message: str, from_course: dict[str, int]) -> str:
    """`message`, and if it is a NameError for a name imported from course_utils, why it is missing."""
    for name, cell in from_course.items():
        if f"raised NameError: name '{name}' is not defined" in message:
            return (message + f" (cell {cell} imports {name} from course_utils, which the grader does not "
                              f"provide: the exercise asks you to write it yourself)")
    return message


def grade_cells(cells: list[Cell], lesson_ids: list[str], seed: int, timeout_s: float) -> dict[str, Outcome]:
    """exercise id -> its Outcome, for each exercise of a lesson; tampering caught while one
    exercise runs fails every one."""
    outcomes = {}
    for exercise in lesson_ids:
        found = extract(cells, EXERCISES[exercise].function)
        if found.problem:
            outcomes[exercise] = Outcome(False, found.problem)
            continue
        outcome = run_exercise(exercise, found.code, seed, timeout_s, found.from_course, found.setup)
        outcome.review = review(exercise, found.code, stub=outcome.message == engine.NOT_IMPLEMENTED)
        outcomes[exercise] = outcome
    caught = [f"{e}: {o.tampering}" for e, o in outcomes.items() if o.tampering]
    if caught:
        for exercise, outcome in outcomes.items():
            if not outcome.tampering:
                outcomes[exercise] = Outcome(False, "tampering suspected in another exercise",
                                             "; ".join(caught), outcome.review)
    return outcomes
