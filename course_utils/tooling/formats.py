"""The lessons in the formats of the grading tools instructors already use.

``python -m course_utils assign --format nbgrader --out DIR`` writes an nbgrader
course; ``--format otter`` writes notebooks in otter-assign's format. In both,
each solution cell is marked as the learner's answer and each checked exercise
gets an autograder test that checks the learner's function on test cases drawn
from a fresh seed, within a time limit (`graded_check`):

    from course_utils.tooling.formats import graded_check

    graded_check('01.output_size', globals())

**One learner version.** Both tools grade any learner version of a lesson: the
``make student`` / Colab handout as well as their own releases. Before a
submission runs, the course rebuilds it as the tools expect (`autograde_version`):
the test cells are added where they are missing, and only the code the graded
functions need runs (their last ``def`` with the imports, helpers and constants
they use, as ``python -m course_utils grade`` finds it), in smoke mode. The
lesson's training cells never run, so a submission takes seconds, not the
minutes of a whole lesson. nbgrader does this in its ``autograde`` step
(`NbgraderCells`, named in the generated ``nbgrader_config.py``), otter in its
plugin (`OtterCells`, named in each notebook's assignment config).

These tests run in the student's own kernel, as nbgrader's and otter's do: they
are for classes that trust their students or that grade with these tools' own
sandboxes. ``python -m course_utils grade`` is the grader that does not trust
the notebook (course_utils.tooling.sandbox).
"""

from __future__ import annotations

import ast
import copy
import inspect
import re
import secrets
import signal
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import nbformat
import torch
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell
from traitlets import Bool

from ..exercises import EXERCISES, lesson_exercises, run_check
from ..exercises.engine import known_id
from . import colab, sandbox
from .files import write_text
from .notebooks import (CODE_STUB, SOLUTION_BEGIN, SOLUTION_END, TEXT_STUB, check_calls, check_out_dir, clean,
                        strip_solutions)
from .results import read_metrics

COURSE_ID = "cnn-lstm-course"
POINTS = 1
TIMEOUT_S = 60  # seconds each graded function has for all its test cases, as in `grade`
SKIP_TAG = "skip-execution"  # nbclient, which runs the notebooks of nbgrader and otter, skips these cells
GATHERED = "# What the graded functions need, gathered by course_utils for autograding (smoke mode);\n" \
           "# the lesson's other cells do not run.\nimport os\n\nos.environ['COURSE_MODE'] = 'smoke'\n"
NBGRADER_CONFIG = '''"""nbgrader's configuration of this course (written by assign --format nbgrader)."""
import os
import sys

from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                    OverwriteKernelspec)

from course_utils.tooling.formats import NbgraderCells

os.environ.setdefault("COURSE_MODE", "smoke")  # what little of a lesson runs, runs in smoke mode
# nbgrader runs the command `alembic` (its database): the one beside this Python, whatever PATH says
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = "{course_id}"
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
c.Execute.timeout = {timeout}  # seconds per cell: the first imports torch, slow on a loaded machine
c.Execute.startup_timeout = {timeout}  # seconds for the kernel to start (nbgrader's default: 60)
# NbgraderCells: any learner version gets its test cells, and only what the graded functions need runs
c.Autograde.sanitize_preprocessors = [ClearOutput, DeduplicateIds, OverwriteKernelspec, NbgraderCells,
                                      OverwriteCells, CheckCellMetadata]
'''


# ---------------------------------------------------------------------------
# the test of one exercise, shared by both tools
# ---------------------------------------------------------------------------


class OutOfTime(KeyboardInterrupt):
    """Raised in the learner's function when its time is up. The check turns every exception of
    the function, BaseExceptions included, into a failed case, except a KeyboardInterrupt (the
    learner stopping it): time running out is such a stop, so it passes through the check."""


def _out_of_time(signum: int, frame: Any) -> None:
    raise OutOfTime


def graded_check(exercise: str, namespace: dict[str, Any], timeout_s: float = TIMEOUT_S, flag: bool = True) -> None:
    """The autograder test of one exercise: check the learner's function on fresh test cases.

    Args:
        exercise: an id from EXERCISES, e.g. "01.output_size".
        namespace: the notebook's globals, where the learner's function is looked up by name.
        timeout_s: seconds allowed for all the test cases (an endless loop fails, it does not hang).
        flag: print "FOR REVIEW ..." on stdout for a passing answer that leaves the exercise's work to a
            library call (nbgrader keeps the points of a cell with stdout, and shows it; it gives 0 to one
            with stderr). otter's tests pass False: its test fails on any output, and `review_check`,
            a test of its own, says it there.

    Raises:
        AssertionError: with the check's message (the failing case and a hint), if it did not pass.
    """
    function = EXERCISES[exercise].function
    assert function in namespace, f"the notebook has no def {function}(...) (was its cell deleted?)"
    seed = secrets.randbelow(2 ** 31)
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    signal.setitimer(signal.ITIMER_REAL, timeout_s)
    try:
        result = run_check(exercise, namespace[function], seed=seed)
    except OutOfTime:
        raise AssertionError(f"{function} did not answer within {timeout_s:g} s (an endless loop?)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert result.passed, f"{result.message} (test cases drawn with seed {seed})"
    why = _review(exercise, namespace[function]) if flag else ""
    if why:  # nbgrader has no review column: say it in the test's output
        print(f"FOR REVIEW ({exercise}): passed, but {why}; the exercise asks for the learner's own code, "
              "so an instructor decides the points")


def _review(exercise: str, function: Any) -> str:
    """sandbox.review of the learner's function, read back from its cell; "" if its source is not to be had."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):  # a builtin, or a function made where no source is kept
        return ""
    found = sandbox.review(exercise, [(1, source)])
    return re.sub(r"cell 1, line (\d+)", rf"line \1 of {function.__name__}", found)


def review_check(exercise: str, namespace: dict[str, Any]) -> None:
    """otter's zero-point test of one exercise: it fails, saying why, where the learner's function
    leaves the exercise's work to a library call or has the other form (sandbox.review), so that
    otter's results (and Gradescope) show the flag beside the points `graded_check` gave.

    Raises:
        AssertionError: "FOR REVIEW ...", if the function is flagged.
    """
    function = EXERCISES[exercise].function
    why = _review(exercise, namespace[function]) if function in namespace else ""
    assert not why, (f"FOR REVIEW ({exercise}): {why}; the exercise asks for the learner's own code, so an "
                     "instructor decides the points (this test is worth 0 points: it only flags the answer)")


def test_source(exercise: str, check: str = "graded_check", options: str = "") -> str:
    """The source of the autograder test cell of one exercise: `check` (`graded_check`, or `review_check`)
    called with the notebook's globals and `options` (", flag=False")."""
    return f"from course_utils.tooling.formats import {check}\n\n{check}({exercise!r}, globals(){options})"


REVIEW_TEST_CONFIG = '""" # BEGIN TEST CONFIG\npoints: 0\n""" # END TEST CONFIG\n'


# ---------------------------------------------------------------------------
# what runs when a submission is autograded
# ---------------------------------------------------------------------------


def _checked(cell: NotebookNode) -> list[str]:
    """The current ids of the exercises a code cell checks with ``check(...)`` calls."""
    if cell.cell_type != "code":
        return []
    return [e for e in check_calls(cell.source) if known_id(e)]


def _provided_imports(cells: list[sandbox.Cell]) -> list[str]:
    """The top-level imports from course_utils of `cells` of the names the sandbox of ``grade``
    provides too (sandbox_runner.PROVIDED: ``get_device``), and only these: a function that uses
    another name from the course fails here as it fails in ``grade``."""
    found = []
    for cell in cells:
        for stmt in cell.tree.body if cell.tree else []:
            if isinstance(stmt, ast.ImportFrom) and (stmt.module or "").split(".")[0] == "course_utils":
                names = [a for a in stmt.names if (a.asname or a.name) in sandbox.PROVIDED]
                if names:
                    found.append(ast.unparse(ast.ImportFrom(stmt.module, names, 0)))
    return list(dict.fromkeys(found))


class _NoCourseImports(ast.NodeTransformer):
    """Turns each import of course_utils inside the code into the error the sandbox of ``grade`` raises."""

    def visit_Import(self, node: ast.Import) -> ast.stmt:
        return self._refused(node, [a.name for a in node.names])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.stmt:
        return self._refused(node, [node.module or ""])

    @staticmethod
    def _refused(node: ast.stmt, modules: list[str]) -> ast.stmt:
        course = [m for m in modules if m.split(".")[0] == "course_utils"]
        if not course:
            return node
        message = f"No module named {course[0]!r} (grading runs without course_utils)"
        return ast.copy_location(sandbox.parse(f"raise ModuleNotFoundError({message!r})").body[0], node)


def _without_course(source: str) -> str:
    """`source` (a statement), with `_NoCourseImports` applied if it imports from course_utils."""
    if "course_utils" not in source:
        return source.strip("\n")
    return ast.unparse(_NoCourseImports().visit(sandbox.parse(source)))


def _tolerant(source: str) -> str:
    """A setup statement (sandbox.Extract.setup) that may fail without stopping the rest, as in the
    sandbox: ``try: STATEMENT`` / ``except Exception: pass``."""
    handler = ast.ExceptHandler(type=ast.Name("Exception"), name=None, body=[ast.Pass()])
    return ast.unparse(ast.Try(body=sandbox.parse(source).body, handlers=[handler], orelse=[], finalbody=[]))


def gathered_code(nb: NotebookNode, exercises: Sequence[str]) -> str:
    """The code the functions of `exercises` need in `nb`, as one cell's source: what
    ``grade`` runs in its sandbox, in the same order, under the same rule.

    Each function is its learner's last ``def`` with the imports, helpers and constants
    it uses (course_utils.tooling.sandbox.extract), after the notebook's imports of the
    names the sandbox provides (`_provided_imports`); an import of course_utils inside that
    code raises ModuleNotFoundError, and a setup statement that fails is passed over
    (`_tolerant`), as in the sandbox. A function not found is left out, so that its test
    fails with the message of `graded_check`.
    """
    cells = sandbox.python_cells(nb)
    pieces: dict[str, None] = {}  # in order, each once
    for exercise in exercises:
        found = sandbox.extract(cells, EXERCISES[exercise].function)
        for index, (_, source) in enumerate(found.code):
            source = _without_course(source)
            pieces.setdefault(_tolerant(source) if index in found.setup else source, None)
    return "\n\n".join([GATHERED, "\n".join(_provided_imports(cells)), *pieces])


def _is_test(cell: NotebookNode) -> bool:
    return cell.metadata.get("nbgrader", {}).get("grade", False) and cell.cell_type == "code"


def autograde_version(nb: NotebookNode, lesson: str) -> NotebookNode:
    """Any learner version of `lesson` ("01"), as nbgrader autogrades it.

    A version without test cells (``make student``, Colab) gets the nbgrader metadata
    and test cells of `nbgrader_version`, matched by its check calls; the test of an
    exercise whose check call was deleted is added at the end, so that it is graded,
    not silently missing. Every code cell but the tests is then skipped (tagged
    SKIP_TAG), and one cell with the code the graded functions need (`gathered_code`)
    runs first.
    """
    if not any(_is_test(cell) for cell in nb.cells):
        nb = nbgrader_version(nb, lesson, markers=False)
    else:
        nb = nbformat.from_dict(copy.deepcopy(nb))
    for cell in nb.cells:
        if cell.cell_type == "code" and not _is_test(cell):
            cell.metadata.setdefault("tags", [])
            if SKIP_TAG not in cell.metadata.tags:
                cell.metadata.tags.append(SKIP_TAG)
    tested = {e for cell in nb.cells if _is_test(cell) for e in map(known_id, check_calls_of_test(cell)) if e}
    nb.cells += [_test_cell(e) for e in lesson_exercises(lesson) if e not in tested]  # check calls deleted
    nb.cells.insert(0, new_code_cell(gathered_code(nb, lesson_exercises(lesson))))
    return nb


def check_calls_of_test(cell: NotebookNode) -> list[str]:
    """The exercise ids a test cell (`test_source`) checks: the first argument of its graded_check calls."""
    return re.findall(r"""graded_check\(\s*["'](\d\d\.\w+)["']""", cell.source)


class NbgraderCells(Preprocessor):
    """nbgrader's sanitizing step for this course: `autograde_version` of each submitted notebook."""

    enabled = Bool(True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        return autograde_version(nb, resources["nbgrader"]["notebook"][:2]), resources


try:
    from otter.plugins import AbstractOtterPlugin
except ImportError:  # otter-grader is a dev extra: only its plugin needs it
    AbstractOtterPlugin = object


class OtterCells(AbstractOtterPlugin):
    """otter's plugin for this course: the submission runs as the code its graded functions need.

    Its configuration (in the assignment config) names the lesson: ``{"lesson": "01"}``.
    """

    def before_execution(self, submission: NotebookNode) -> NotebookNode:
        code = gathered_code(submission, lesson_exercises(self.plugin_config["lesson"]))
        return nbformat.v4.new_notebook(cells=[new_code_cell(code)], metadata=submission.metadata)


# ---------------------------------------------------------------------------
# nbgrader
# ---------------------------------------------------------------------------


def _grade_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _answer_metadata(grade_id: str, graded_by_hand: bool, points: int = POINTS) -> dict[str, Any]:
    return {"solution": True, "grade": graded_by_hand, "locked": False, "task": False, "schema_version": 3,
            "grade_id": _grade_id(grade_id), **({"points": points} if graded_by_hand else {})}


def _test_cell(exercise: str) -> NotebookNode:
    test = new_code_cell(test_source(exercise))
    test.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True, "task": False,
                                 "points": POINTS, "schema_version": 3, "grade_id": _grade_id(f"test-{exercise}")}
    return test


def nbgrader_version(nb: NotebookNode, name: str, markers: bool = True) -> NotebookNode:
    """`nb` with nbgrader's cell metadata: answer cells, and a test cell after each checked one.

    Each hand-graded exercise gets a manually graded answer cell worth WRITTEN_POINTS
    (`with_answer_cells`, unless `nb` has them already); in the instructor's version it
    points to the rubric.

    Args:
        nb: a lesson notebook.
        name: the notebook's name, NN_...: names its answers (their grade ids).
        markers: True for the instructor's version (answer cells hold solution markers);
            False for a learner version, whose answers are found by their check calls alone.
    """
    nb, cells = clean(nb), []
    if not any(written_answer(cell) for cell in nb.cells):
        nb = with_answer_cells(nb)
    for number, cell in enumerate(nb.cells, 1):
        exercises, written = _checked(cell), written_answer(cell)
        if exercises:
            cell.metadata["nbgrader"] = _answer_metadata(f"answer-{exercises[0]}", False)
        elif written:
            cell.metadata["nbgrader"] = _answer_metadata(f"written-{name[:2]}-{written}", True, WRITTEN_POINTS)
            if markers:
                cell.source = cell.source.replace(TEXT_STUB[0], "\n".join(
                    [SOLUTION_BEGIN, f"The model answer is in the instructors' rubric, {name}-rubric.md.",
                     SOLUTION_END]))
        elif markers and (SOLUTION_BEGIN in cell.source or SOLUTION_END in cell.source):
            cell.metadata["nbgrader"] = _answer_metadata(f"answer-{name}-{number}", cell.cell_type == "markdown")
        cells += [cell, *map(_test_cell, exercises)]
    nb.cells = cells
    return nb


def nbgrader_course(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write an nbgrader course into `out_dir`: nbgrader_config.py, one assignment per notebook,
    ``source/<notebook name>/<notebook>.ipynb``, and the instructors' rubrics, ``rubric/`` (nbgrader
    releases none of them). Returns the paths written."""
    out_dir = check_out_dir(out_dir)
    versions = [(Path(p), nbgrader_version(nbformat.read(p, as_version=4), Path(p).stem)) for p in notebooks]
    written = [write_text(out_dir / "nbgrader_config.py",
                          NBGRADER_CONFIG.format(course_id=COURSE_ID, timeout=2 * TIMEOUT_S))]
    for path, nb in versions:
        written.append(write_text(out_dir / "source" / path.stem / path.name, nbformat.writes(nb)))
    return written + write_rubric(notebooks, out_dir / "rubric")


# ---------------------------------------------------------------------------
# otter
# ---------------------------------------------------------------------------


def course_commit() -> str:
    """The commit of this checkout of the course (its git HEAD); colab.BRANCH if it is not a git checkout."""
    try:
        run = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return colab.BRANCH
    commit = run.stdout.strip()
    return commit if run.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else colab.BRANCH


def requirements(commit: str | None = None) -> str:
    """The autograder's requirements.txt: the CPU build of this machine's torch, and the course from
    GitHub at `commit` (default: `course_commit`, the commit that made the tests), so that the
    autograder grades with the checks it was made with, whatever the branch holds later."""
    torch_version = torch.__version__.split("+")[0]
    return (f"--extra-index-url https://download.pytorch.org/whl/cpu\ntorch=={torch_version}\n"
            f"course-utils @ git+https://github.com/{colab.REPO}@{commit or course_commit()}\n")


def _otter_markers(source: str) -> str:
    """nbgrader's solution markers as otter's: the student version gets the course's stub
    (otter's ``BEGIN PROMPT`` block), the autograder's the solution (``BEGIN SOLUTION NO PROMPT``)."""
    def prompt(match: re.Match) -> str:
        indent = match[1]
        return "\n".join([f'{indent}""" # BEGIN PROMPT', *(indent + line for line in CODE_STUB),
                          f'{indent}""" # END PROMPT', f"{indent}# BEGIN SOLUTION NO PROMPT"])
    source = re.sub(rf"^(\s*){re.escape(SOLUTION_BEGIN)}\s*$", prompt, source, flags=re.M)
    return re.sub(rf"^(\s*){re.escape(SOLUTION_END)}\s*$", r"\1# END SOLUTION", source, flags=re.M)


def otter_config(lesson: str) -> str:
    """The ASSIGNMENT CONFIG of a lesson: no assignment name (so that any learner version is
    accepted), otter's ``grader`` created by an init cell, the course's requirements, and its plugin."""
    return (f"# ASSIGNMENT CONFIG\nexport_cell: false\ninit_cell: true\ncheck_all_cell: false\n"
            f"solutions_pdf: false\nrun_tests: false\nrequirements: requirements.txt\npython_version: 3.11\n"
            f"generate: true\nplugins:\n  - {__name__}.OtterCells:\n      lesson: '{lesson}'\n")


def otter_version(nb: NotebookNode, name: str) -> NotebookNode:
    """`nb` in otter-assign's format: an assignment config, then each checked exercise cell as a
    question of its own, whose solution is the cell and whose test is `graded_check`; each
    hand-graded exercise gets an answer cell (`with_answer_cells`) as a manual question
    (`_otter_manual_question`)."""
    nb, cells = with_answer_cells(clean(nb)), [new_raw_cell(otter_config(name[:2]))]
    for cell in nb.cells:
        if written_answer(cell):
            cells += _otter_manual_question(cell, name)
            continue
        exercises = _checked(cell) if SOLUTION_BEGIN in cell.source else []
        if cell.cell_type == "markdown" and SOLUTION_BEGIN in cell.source:  # graded by hand, from
            cell.source = strip_solutions(cell.source, "markdown")          # the course's notebooks
        elif cell.cell_type == "code":
            cell.source = _otter_markers(cell.source)
        if not exercises:
            cells.append(cell)
            continue
        question = _grade_id(exercises[0].replace(".", "_"))
        cells.append(new_raw_cell(f"# BEGIN QUESTION\nname: {question}\npoints: {POINTS * len(exercises)}"))
        cells += [new_raw_cell("# BEGIN SOLUTION"), cell, new_raw_cell("# END SOLUTION"),
                  new_raw_cell("# BEGIN TESTS")]
        cells += [new_code_cell(test_source(e, options=", flag=False")) for e in exercises]
        cells += [new_code_cell(REVIEW_TEST_CONFIG + test_source(e, "review_check")) for e in exercises]
        cells += [new_raw_cell("# END TESTS"), new_raw_cell("# END QUESTION")]
    nb.cells = cells
    return nb


def _otter_manual_question(answer: NotebookNode, name: str) -> list[NotebookNode]:
    """An answer cell (`answer_source`) as an otter question graded by hand (``manual: true``): the
    cell's heading is its prompt; its solution, which otter leaves out of the student version,
    points to the instructors' rubric."""
    number = written_answer(answer)
    prompt = answer.source.replace(TEXT_STUB[0], "").rstrip()
    solution = f"The model answer is in the instructors' rubric, {name}-rubric.md (exercise {number})."
    return [new_raw_cell(f"# BEGIN QUESTION\nname: written_{name[:2]}_{number}\nmanual: true\n"
                         f"points: {WRITTEN_POINTS}"),
            new_markdown_cell(prompt), new_raw_cell("# BEGIN SOLUTION"), new_markdown_cell(solution),
            new_raw_cell("# END SOLUTION"), new_raw_cell("# END QUESTION")]


def otter_notebooks(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write each notebook in otter-assign's format into `out_dir`, under its own name, the
    autograder's requirements.txt beside them, and the instructors' rubrics in ``rubric/``.

    Then ``otter assign out_dir/NN_....ipynb dist/`` makes the student version and
    the autograder. Returns the paths written.
    """
    out_dir = check_out_dir(out_dir)
    versions = [(Path(p), otter_version(nbformat.read(p, as_version=4), Path(p).stem)) for p in notebooks]
    written = [write_text(out_dir / path.name, nbformat.writes(nb)) for path, nb in versions]
    return [*written, write_text(out_dir / "requirements.txt", requirements()),
            *write_rubric(notebooks, out_dir / "rubric")]


# ---------------------------------------------------------------------------
# hand-graded exercises: answer cells and the instructors' rubric
# ---------------------------------------------------------------------------

EXERCISE_HEADING = re.compile(r"\*\*Exercise (\d+) \(([^)]*)\)\.\*\*")
WRITTEN_POINTS = 2  # each hand-graded exercise: 1 for the numbers or reading, 1 for the explanation
CRITERIA = {
    "change": "1 point: the change is made and the numbers the question asks for are reported from the "
              "student's own run; 1 point: an explanation that agrees with those numbers and names the "
              "mechanism. One seed moves such numbers: accept any direction the student's own numbers show.",
    "read": "1 point: the values are read correctly from the student's own plot; 1 point: an explanation "
            "of what the plot shows that agrees with them.",
    "measure": "1 point: the prediction or formula, written before measuring; 1 point: the measurement "
               "that tests it, with its numbers, and whether it agreed.",
    "compute": "1 point: the numbers asked for, each right; 1 point: how each follows (the formula or the code "
               "that computes it, applied step by step).",
}


MODEL_ANSWERS = {  # "NN.N" -> the model answer of a hand-graded exercise; {metric} is the committed run's value
    "01.3": "Without BatchNorm the loss falls more slowly in the first epoch and the curves are noisier; the "
            "final test accuracy moves by about the seed spread (the committed CNN: {test_accuracy}; CNN minus "
            "MLP over {seeds} seeds: at least {seed_cnn_minus_mlp_min}), so one run shows no reliable loss of "
            "accuracy. kernel_size=5 with padding=2 multiplies each convolution's weights by 25/9: the three "
            "convolutions' 31,320 weights become 87,000, so the CNN's 334,034 parameters become 389,714 (120 "
            "more with the biases of the first part; the classifier head does not change). The last layer's "
            "receptive field grows from 18 to 32 pixels, more than the 28-pixel image: each layer adds 4 input "
            "steps of its own stride instead of 2 (`receptive_field([(5, 1), (2, 2), (5, 1), (2, 2), (5, 1)])`).",
    "01.4": "The largest off-diagonal entry of the committed run's matrix (test accuracy {test_accuracy}) is "
            "usually shirt / T-shirt-top (else pullover / coat): upper-body garments with the same silhouette, "
            "told apart by collars, buttons or texture that cover a few pixels at 28x28. A larger resolution is "
            "more likely to help than more epochs: the information is missing, not unlearned.",
    "01.5": "Receptive field of the third convolution: 5, then 6 after the first pool, 14, 16, then 24 pixels "
            "(each k x k layer adds k - 1 times the product of the strides before it). Sizes for 28x28: 24, 12, "
            "8, 4, 2, and 1 after the last pool: `conv_output_size` gives the same with padding 0.",
    "02.3": "The parameter count grows about with the square of hidden_size (4 gates, each of hidden_size x "
            "(input + hidden_size + 1)), the time per step grows, and the validation loss falls below the "
            "committed {val_loss_nats} nats ({val_bits_per_char} bits per character) for the same steps. "
            "The bigger model's samples spell more real words, close quotes and brackets, and keep line "
            "lengths; accept what the student's own samples show.",
    "02.4": "In the committed run at k = 50 the trained plain RNN's gradient is 10^{gradient_log10_k50_trained_rnn} "
            "of its value at k = 0, so it fell below 10^-6 before k = 50; the LSTM's is "
            "10^{gradient_log10_k50_trained_lstm}, still above it. A typical line is longer than the RNN's "
            "reach, so to learn that a line is about to end from the gradient it would need the signal from "
            "the line's start, which has vanished. The equal-time losses (RNN {rnn_equal_time_val_loss_nats_mean}, "
            "LSTM {lstm_equal_time_val_loss_nats_mean} nats) show at most a small price in this short training.",
    "02.5": "The validation loss is a little worse (or equal within noise). The state still reaches across the "
            "whole sequence at evaluation, but the gradient reaches only 16 steps back in training, so the "
            "model cannot learn dependencies longer than 16 characters, such as the position in a line: the "
            "line-position cell weakens or disappears. Accept either observation when the explanation "
            "separates how far the state reaches from how far the gradient reaches.",
    "03.3": "(a) In one aligned block the order is lost once the pool covers both events and all that the "
            "convolutions see of them (pool >= gap + the 9 steps the convolutions see), and survives while "
            "the two events fall into different pooled steps (pool <= gap). (b) GAP = 8: the order survives at "
            "pools 1 and 4 and must be lost at 32 and 64 (pool >= 17); pool 16 lies between: the later event's "
            "convolution outputs spill one step into the next block, which can carry the order, so the "
            "crossover is 32 (16 if the spill is not learned). GAP = 24: it survives at 1, 4 and 16; pool 32 "
            "lies between (24 < 32 < 33: a one-step spill again); at pool 64 a pair that starts at step 64 fills "
            "one block (lost) while one that starts at step 32 spills past step 63 (kept), so about half the "
            "examples keep the order: an accuracy near 0.75. (c) The committed run at GAP = 16 for comparison: "
            "pool 16 {window_acc_pool16_mean}, pool 32 {window_acc_pool32_mean}, pool 64 {window_acc_pool64_mean}. "
            "(d) The largest pool whose accuracy still holds: it cuts the LSTM's steps, at the cost shown "
            "by the student's own accuracy at that pool.",
    "03.4": "Receptive field 1 + (2^9 - 1) = 512 steps (the eight-layer TCN: {tcn_receptive_field}), so k = 256 "
            "and k = 384 both lie inside it: near-perfect accuracy is predicted at both, if training succeeds. "
            "The layer is one more dilated convolution, a Conv1d(32, 32, kernel 2): 32 x 32 x 2 + 32 = 2,080 "
            "parameters (the eight-layer TCN has {parameters_tcn}).",
    "03.5": "Read the committed growth exponents of the time on one thread (1 = linear in T, 2 = quadratic): "
            "attention {growth_ms_attention}, LSTM {growth_ms_lstm}, CNN {growth_ms_cnn}, TCN {growth_ms_tcn}, "
            "CNN-LSTM {growth_ms_cnn_lstm}; the steepest grows fastest. The convolutions gain most from a second "
            "thread (they parallelise over time; recurrent steps cannot): accept what the student's own "
            "speed-ups show. For 10,000 steps: a CNN or TCN, or a CNN-LSTM with pooling, whose time and memory "
            "grow linearly and which run in parallel over time, if its receptive field or pooling suits the "
            "dependencies; attention's T x T matrix (10^8 entries, 400 MB in float32 per head and sequence) "
            "makes it by far the costliest in time, and in memory as this lesson's block is written (PyTorch's "
            "fused attention kernel does not keep that matrix: section 4 measures its memory growing with exponent "
            "{growth_saved_attention_sdpa}).",
    "03.6": "Without the chrono initialisation the LSTM needs more epochs at the long k (or does not learn it "
            "within the budget): the committed gradient ratios at distance {gradient_distance} are "
            "10^{gradient_log10_lstm_mean} with chrono and 10^{gradient_log10_lstm_default_mean} with the "
            "default initialisation, so the default LSTM's gradient from far events is much weaker.",
    "03.7": "Global (mean) pooling sums contributions from every step whatever their distance, and the "
            "adding problem's answer is a sum of the two marked numbers: the mean readout reaches an error "
            "well below 1/6, the last-step readout does not once k exceeds its receptive field. On the order task the "
            "premise that pooling must lose the order fails for this CNN: its receptive field (17 steps) spans the "
            "events 16 steps apart, so some features see both events in order, and a mean keeps them (scaled down, "
            "which the head can undo). Accept what the student's run shows, read by section 2's check: a mean-readout "
            "CNN that stays near 0.5 with its training loss at chance failed to train, which is not proof that the "
            "mean lost the order; one whose loss left chance and still scores near 0.5 is evidence that it did.",
    "04.3": "Yes: on frame differences frame pooling learns the direction (far above the {frame_pool_test_accuracy} "
            "it had on frames). One difference image already holds motion: the object's new position is "
            "positive and the old one negative, so its sign says the direction. Order is the sequence of "
            "frames; motion is local change between neighbours, which one difference shows without order.",
    "04.4": "The flattened LSTM learns the direction task and does worse on the 40-class task for the same "
            "budget (the CNN-LSTM: {cnn_lstm_parameters} parameters). Most of its parameters sit in the "
            "LSTM's input weights: 4 x hidden x 2,304, since every pixel feeds every gate; the CNN shares its "
            "weights across positions and hands the LSTM a few features.",
    "04.5": "With prefixes every model starts from the same frame 0, so one frame shows the start position: "
            "the models that see single frames (frame pooling, the CNN-LSTM) gain most at one frame. The "
            "curve with windows at random starts (section 7: the CNN-LSTM at 1 frame "
            "{window_cnn_lstm_accuracy_1_frame}, "
            "at 2 frames {window_cnn_lstm_accuracy_2_frames}) tells what was learned from motion.",
    "04.6": "A model that knew the axis but not the sign would put about 0.5 in the two cells of each axis "
            "(left/right, up/down) and 0 elsewhere. The committed frame pooling's axis accuracy is "
            "{frame_pool_axis_accuracy} on the direction task; on the 40-class task (predicted % 4) accept "
            "what the student's matrix shows. Four times the epochs: accept either finding from their run.",
    "04.7": "With gap=1 the two moves fall within the 3D CNN's temporal receptive field "
            "({conv3d_temporal_receptive_field} "
            "frames), so it should learn the order (far apart it scored {far_conv3d_test_accuracy}). If not: "
            "train longer, add channels, or replace the global pooling, to tell the receptive field from "
            "the other obstacles.",
    "05.3": "Each run is one seed: a change counts only if its test F1 falls outside the range of the committed "
            "ablation's seeds (3 seeds, a subset; BiLSTM-CNN-CRF mean {ablation_bilstm_cnn_crf_test_f1} test F1, "
            "BiLSTM-CRF {ablation_bilstm_crf_test_f1}), and ranking the three needs several seeds per change. "
            "Unknown-word replacement matters more with random embeddings: without it the model never learns a "
            "useful <unk> vector, and with random embeddings every test word outside the training vocabulary gets "
            "<unk>, while pre-trained vectors give most such words a vector of their own.",
    "05.4": "(a) Shifting the row of O changes every score in that row of the heatmap by the same amount; the "
            "loss of dev_batch does not change (the committed shift check: {crf_shift_loss_difference}), because "
            "the end scores and the next emission absorb the shift. (b) The contrast is the same for the trained "
            "and the shifted scores: a row shift cancels in A[i,j] - A[k,j] - A[i,l] + A[k,l]. (c) Its sign says "
            "after which previous tag a LOC start is favoured over a PER start; the row of O alone is not "
            "identifiable, so it cannot say which types the model expects after O.",
    "05.5": "The softmax tagger produces invalid sequences (the committed run: {softmax_invalid_sequences}; the "
            "CRF: {crf_invalid_sequences}). With BIO there are fewer, because BIO has fewer constraints to "
            "break (no E- and S- tags, so a one-word entity or an entity's end cannot be mislabelled).",
    "06.2": "Yes: after broadcasting rank 0's weights and averaging the gradients every step, all processes "
            "end with the same weights (max difference 0, as DDP's {ddp_max_abs_param_difference}). The "
            "per-parameter version is slower: one all-reduce per parameter, after backward and without "
            "overlap, against DDP's buckets overlapped with backward; accept the student's measured ratio.",
    "06.3": "The time per step grows: 4 threads on 2 cores oversubscribe them, and the threads of the two "
            "processes preempt each other. torchrun sets OMP_NUM_THREADS=1 because it cannot know how many "
            "cores each process should get; one process alone may use every core.",
    "06.4": "Compare with section 3's accuracy ({ddp_test_accuracy}). For AdamW the square-root rule usually "
            "fits better than the linear one, which tends to overshoot. With one seed per setting the "
            "differences may be within the seed spread: run several seeds per setting to tell them apart.",
    "06.5": "Rank 0 only notices at its next collective, when it waits on the dead rank and gloo fails. "
            "Without --max-restarts the job ends there; with it, torchrun restarts every process, which "
            "resume from the last checkpoint (the committed run resumed from step {ddp_resumed_from_step}). "
            "If the crash comes before the first checkpoint, training restarts from step 0.",
}

@dataclass
class WrittenExercise:
    """A hand-graded exercise of a lesson: its number, kind ("change the model"), question, and
    the index of the markdown cell that asks it."""

    number: int
    kind: str
    question: str
    cell: int

    @property
    def criteria(self) -> str:
        """The rubric's criteria for this kind of exercise (CRITERIA)."""
        key = next((k for k in ("read", "change", "compute") if k in self.kind), "measure")
        return CRITERIA[key]


def written_exercises(nb: NotebookNode) -> list[WrittenExercise]:
    """The exercises of `nb` graded by hand: every ``**Exercise N (kind).**`` whose kind is not
    "implement", in order, with its question (up to the next exercise, heading, or the end of its cell)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        matches = list(EXERCISE_HEADING.finditer(cell.source))
        for match, following in zip(matches, [*matches[1:], None]):
            if "implement" not in match[2]:
                question = cell.source[match.start():following.start() if following else None]
                question = re.split(r"\n#+ ", question)[0].strip()  # not the heading after it
                found.append(WrittenExercise(int(match[1]), match[2], question, index))
    return found


def answer_source(exercise: WrittenExercise) -> str:
    """The markdown answer cell of a hand-graded exercise."""
    asked = "give each number and how it follows" if "compute" in exercise.kind else "give the numbers of your own run"
    return (f"**Your answer to exercise {exercise.number}** ({WRITTEN_POINTS} points, graded by hand; "
            f"{asked}):\n\n{TEXT_STUB[0]}")


_ANSWER = re.compile(r"^\*\*Your answer to exercise (\d+)\*\*")


def written_answer(cell: NotebookNode) -> int | None:
    """The number of the hand-graded exercise that a markdown cell answers (`answer_source`), or None."""
    match = _ANSWER.match(cell.source) if cell.cell_type == "markdown" else None
    return int(match[1]) if match else None


def with_answer_cells(nb: NotebookNode) -> NotebookNode:
    """A copy of `nb` with an answer cell (`answer_source`) for each hand-graded exercise, after
    the exercise's cell and the code cells that follow it."""
    nb = nbformat.from_dict(copy.deepcopy(nb))
    for exercise in reversed(written_exercises(nb)):
        at = exercise.cell + 1  # exercises asked in one cell: inserted last first, so they keep their order
        while at < len(nb.cells) and nb.cells[at].cell_type == "code":
            at += 1
        answer = new_markdown_cell(answer_source(exercise))
        answer.id = f"answer-{exercise.number}"  # not random: the same lesson gives the same learner version
        nb.cells.insert(at, answer)
    return nb


def _model_code(nb: NotebookNode, exercise: WrittenExercise, following: int) -> list[str]:
    """The instructor's solution code cells between the exercise's cell and `following` (a cell index)."""
    return [c.source for c in nb.cells[exercise.cell + 1:following]
            if c.cell_type == "code" and SOLUTION_BEGIN in c.source and not check_calls(c.source)]


def model_answer(lesson: str, number: int, metrics: dict[str, Any]) -> str:
    """The model answer of exercise `number` of `lesson` (MODEL_ANSWERS), with the committed run's
    `metrics` in it (4 significant digits); a metric the run did not record shows as "(not recorded)"."""
    class Metrics(dict):
        def __missing__(self, key: str) -> str:
            return "(not recorded)"
    values = Metrics({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in metrics.items()})
    text = MODEL_ANSWERS.get(f"{lesson}.{number}", "none written yet: grade by the criteria")
    return text.format_map(values)


def rubric(nb: NotebookNode, name: str, metrics: dict[str, Any]) -> str:
    """The instructors' rubric of one lesson, in markdown: each hand-graded exercise with its
    points, question, criteria, model answer (`model_answer`) and the instructor's code if any,
    then the committed run's recorded metrics, the reference for the model answers."""
    exercises = written_exercises(nb)
    lines = [f"# Rubric: {name} (instructors only: not for the student versions)", "",
             f"{len(exercises)} exercises graded by hand, {WRITTEN_POINTS} points each.", ""]
    for exercise, nxt in zip(exercises, [*[e.cell for e in exercises[1:]], len(nb.cells)]):
        lines += [f"## Exercise {exercise.number} ({exercise.kind}): {WRITTEN_POINTS} points", "",
                  exercise.question, "", f"**Criteria.** {exercise.criteria}", "",
                  f"**Model answer.** {model_answer(name[:2], exercise.number, metrics)}", ""]
        for code in _model_code(nb, exercise, max(nxt, exercise.cell + 1)):
            lines += ["**The instructor's code:**", "", "```python", code, "```", ""]
    lines += [f"## The committed run (mode {metrics.get('mode', '?')}): the model answers' numbers", "",
              "| metric | value |", "|---|---|"]
    lines += [f"| {key} | {value:.4g} |" if isinstance(value, float) else f"| {key} | {value} |"
              for key, value in metrics.items() if key != "mode"]
    return "\n".join(lines) + "\n"


def write_rubric(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Write the rubric of each lesson notebook (`rubric`) to ``out_dir/<notebook stem>-rubric.md``,
    each atomically. Returns the paths written."""
    out_dir = check_out_dir(out_dir)
    written = []
    for path in map(Path, notebooks):
        text = rubric(nbformat.read(path, as_version=4), path.stem, read_metrics(path))
        written.append(write_text(out_dir / f"{path.stem}-rubric.md", text))
    return written
