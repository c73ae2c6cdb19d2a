"""The engine of the self-checking exercises: test cases, comparisons, the verdict, ``check``.

Introduced in lesson 01. An exercise (`Exercise`) is a function the learner
writes, test cases drawn from a seed, a reference implementation, a comparison
and hints for known mistakes. ``check`` calls the learner's function on every
case, compares each answer with the reference and shows one line: passed, not
implemented yet, or the first failing case with what was expected, what came
back and a hint. Nothing the learner's code raises, returns or exits with
escapes as a traceback (an interrupt, Ctrl-C, still stops it).

The lesson modules (course_utils.exercises.lesson01 ... lesson06) register their
exercises here with `register`.
"""

from __future__ import annotations

import hashlib
import numbers
import traceback
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import torch
from IPython import get_ipython
from IPython.display import display
from torch import Tensor

CHECK_MIME = "application/vnd.course-utils.check+json"
NOT_IMPLEMENTED = "not implemented yet: replace `raise NotImplementedError()` with your code"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        exercise: the exercise id, e.g. "01.conv2d_loops".
        passed: True if every test case gave the expected answer.
        message: one friendly sentence (or two) for the learner.
    """

    exercise: str
    passed: bool
    message: str


class Case(NamedTuple):
    """One test case: a short description for messages, and the arguments."""

    description: str
    args: tuple


@dataclass(frozen=True)
class Exercise:
    """An exercise whose answer is a function, checked against a reference.

    Attributes:
        id: "NN.name", NN being the lesson number and name the learner's function.
        signature: how the learner's function is called, for messages.
        hint: shown with any wrong answer.
        cases: generator -> the test cases (edge cases first, then random ones).
        reference: the correct function; called with the same arguments.
        compare: (answer, expected, args) -> None if they match, else what is wrong.
        diagnose: (answer, args) -> a hint for a known mistake, or None.
        run: (answer, args) -> the answer's result, for an answer that cannot simply be
            called here (lesson 06's runs on several processes); None calls answer(*args).
        processes: for an answer that runs on several processes (lesson 06): a case's
            args -> each process's parameters and gradients, [[(value, grad or None), ...], ...],
            from which the grader's sandbox builds the model it passes to the answer.
        does_the_work: names of library functions or classes that do the exercise's work
            (``conv2d`` for conv2d_loops): the grader flags an answer that calls them for review.
        form: "loops" where the exercise asks for explicit loops, "closed" where it asks for a
            closed formula (no loop, no comprehension); the grader flags an answer of the other form
            for review. "" asks for neither.
        statement: for a class variant (see `variant`), what it asks instead of the lesson's
            exercise, in a sentence or two of markdown; "" for the lesson's own exercise.
    """

    id: str
    signature: str
    hint: str
    cases: Callable[[torch.Generator], list[Case]]
    reference: Callable[..., Any]
    compare: Callable[[Any, Any, tuple], str | None]
    diagnose: Callable[[Any, tuple], str | None] = lambda answer, args: None
    run: Callable[[Callable, tuple], Any] | None = None
    processes: Callable[[tuple], list[list[tuple[Tensor, Tensor | None]]]] | None = None
    does_the_work: tuple[str, ...] = ()
    form: str = ""
    statement: str = ""

    def __post_init__(self) -> None:
        if self.form not in ("", "loops", "closed"):
            raise ValueError(f"{self.id}: form must be '', 'loops' or 'closed', got {self.form!r}")

    @property
    def lesson(self) -> str:
        return self.id[:2]

    @property
    def base(self) -> str:
        """The id of the lesson's exercise: "01.conv2d_loops" for the variant "01.conv2d_loops@stride2"."""
        return self.id.partition("@")[0]

    @property
    def function(self) -> str:
        """The name of the function the learner writes: the id without its lesson (and variant), "conv2d_loops"."""
        return self.base[3:]


EXERCISES: dict[str, Exercise] = {}

def register(*exercises: Exercise) -> None:
    """Add `exercises` to EXERCISES, the registry that ``check`` and the grader read."""
    for exercise in exercises:
        EXERCISES[exercise.id] = exercise


def variant(base: Exercise, name: str, statement: str, **changes: Any) -> Exercise:
    """A class variant of exercise `base`: the same function, asked to do something else.

    The lessons' solutions are public, so a graded class gets variants instead
    (``python -m course_utils assign --class-key KEY``): ``class_exercise`` picks one per
    exercise from the instructor's secret key, the student version states it, and its
    check and the grader use its reference. `changes` replace the fields of `base` that
    differ (reference, hint, signature, ...); the id is "NN.function@name".
    """
    if not name.isidentifier() or not statement:
        raise ValueError(f"a variant needs a name that is a Python identifier and a statement, got {name!r}")
    return replace(base, id=f"{base.id}@{name}", statement=statement, **changes)


def lesson_exercises(lesson: str, class_key: str | None = None) -> list[str]:
    """The ids of the exercises of one lesson ("01"), in registry order: the lesson's own,
    or with `class_key` the variant each exercise has for that class (`class_exercise`)."""
    return [class_exercise(id, class_key) for id, exercise in EXERCISES.items()
            if exercise.lesson == lesson and exercise.id == exercise.base]


def class_exercise(exercise: str, class_key: str | None) -> str:
    """The id a class with secret `class_key` gets for the lesson's exercise `exercise`: one of
    its variants, chosen by the sha256 of the key and the id (the same key always gives the
    same variants); the exercise itself if it has none or `class_key` is None."""
    variants = [id for id in EXERCISES if EXERCISES[id].base == exercise and id != exercise]
    if class_key is None or not variants:
        return exercise
    if not class_key.strip():
        raise ValueError("the class key is empty: choose a secret phrase, and keep it for grading")
    digest = hashlib.sha256(f"{class_key}\n{exercise}".encode()).digest()
    return variants[int.from_bytes(digest[:8], "big") % len(variants)]


def known_id(exercise: Any) -> str | None:
    """`exercise` if it is the id of a registered exercise, else None."""
    return exercise if isinstance(exercise, str) and exercise in EXERCISES else None


# ---------------------------------------------------------------------------
# Comparing answers
# ---------------------------------------------------------------------------


def describe(value: Any) -> str:
    """A short description of a value: "a float32 tensor of shape (2, 3)", "float 14.0"."""
    if isinstance(value, Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    try:
        text = repr(value)
    except Exception as error:  # the learner's own __repr__ may raise
        text = f"<repr raised {type(error).__name__}>"
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def compare_tensor(got: Any, expected: Tensor, name: str = "the result") -> str | None:
    """None if `got` is a tensor of `expected`'s shape and dtype with close values, else what differs."""
    if not isinstance(got, Tensor):
        return f"expected {name} to be a tensor of shape {tuple(expected.shape)}, got {describe(got)}"
    if got.shape != expected.shape:
        return f"expected {name} to have shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if got.dtype != expected.dtype:
        values = ("its values are right, so only the dtype is wrong: "
                  if got.is_floating_point() and expected.is_floating_point()
                  and torch.allclose(got.detach().cpu().to(expected.dtype), expected, rtol=1e-4, atol=1e-4) else "")
        return (f"expected {name} to have dtype {expected.dtype}, got {got.dtype} ({values}build it with "
                f"dtype={expected.dtype} or end with .to({expected.dtype}); NumPy and Python floats compute in float64)")
    got = got.detach().cpu()
    close = torch.isclose(got, expected, rtol=1e-4, atol=1e-4)
    if close.all():
        return None
    where = tuple(close.logical_not().nonzero()[0].tolist())
    largest = (got - expected).abs().nan_to_num(float("inf")).max().item()
    return (f"{name} has wrong values: at index {where} expected {expected[where].item():.4g}, "
            f"got {got[where].item():.4g} (largest difference {largest:.3g})")


def same_tensor(got: Any, expected: Tensor, args: tuple) -> str | None:
    """`compare_tensor` as an Exercise's compare."""
    return compare_tensor(got, expected)


def compare_int(got: Any, expected: int, args: tuple) -> str | None:
    """None if `got` is an int (not a bool) equal to `expected`."""
    if isinstance(got, numbers.Integral) and not isinstance(got, bool) and int(got) == expected:
        return None
    return f"expected the int {expected}, got {describe(got)}"


def matches(got: Any, expected: Tensor) -> bool:
    """Whether `got` is a tensor that `compare_tensor` accepts as `expected` (for diagnoses)."""
    return isinstance(got, Tensor) and compare_tensor(got, expected) is None


# ---------------------------------------------------------------------------
# Judging answers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Raised:
    """What the learner's function raised on a test case.

    Attributes:
        kind: the exception's type name, "RuntimeError".
        text: the first line of its message.
        where: where in the learner's code, e.g. " (line 4: `out = x @ w`)"; "" if unknown.
    """

    kind: str
    text: str
    where: str = ""


def raised(error: BaseException, filename: str | None) -> Raised:
    """`error` as a Raised; `where` names its last frame in the file `filename` (the learner's code)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" (line {frame.lineno}: `{frame.line}`)" if frame.line else f" (line {frame.lineno})"
    kind = "NotImplementedError" if isinstance(error, NotImplementedError) else type(error).__name__
    try:
        text = (str(error).strip().splitlines() or [""])[0][:200]
    except Exception:  # an exception whose __str__ raises
        text = ""
    return Raised(kind, text, where)


def _judge(ex: Exercise, got: Any, args: tuple) -> tuple[str | None, str]:
    """(what is wrong with `got` or None, the hint); an error while comparing is what is wrong."""
    try:
        problem = ex.compare(got, ex.reference(*args), args)
        return problem, (ex.diagnose(got, args) or ex.hint) if problem else ex.hint
    except Exception as error:  # an answer whose __eq__, __len__, ... raises
        return f"comparing your answer raised {type(error).__name__} (got {describe(got)})", ex.hint


def verdict(exercise: str, cases: list[Case], answers: Iterable[Any]) -> CheckResult:
    """Judge the learner's answers to `cases`, one per case and in order, against the reference.

    Args:
        exercise: a current id from EXERCISES.
        cases: the test cases, as ``EXERCISES[exercise].cases`` made them.
        answers: what the learner's function returned for each case, or a Raised; it
            is consumed only up to the first wrong answer.
    """
    ex = EXERCISES[exercise]
    for n, ((description, args), got) in enumerate(zip(cases, answers), 1):
        if isinstance(got, Raised):
            if got.kind == "NotImplementedError":
                return CheckResult(exercise, False, NOT_IMPLEMENTED)
            problem, hint = f"your function raised {got.kind}: {got.text}{got.where}", ex.hint
        else:
            problem, hint = _judge(ex, got, args)
            if problem is None:
                continue
        return CheckResult(exercise, False, f"test case {n} of {len(cases)} ({description}): "
                                            f"{problem}. Hint: {hint}")
    return CheckResult(exercise, True, f"passed all {len(cases)} test cases")


def copy_args(args: tuple) -> tuple:
    """Fresh copies of a case's arguments, so that the learner's code cannot change the test case."""
    def fresh(a: Any) -> Any:
        if isinstance(a, Tensor):
            return a.clone()
        if isinstance(a, dict):
            return {key: fresh(value) for key, value in a.items()}
        return list(a) if isinstance(a, list) else a
    return tuple(fresh(a) for a in args)


def _answers(answer: Callable, cases: list[Case],
             run: Callable[[Callable, tuple], Any] | None = None) -> Iterator[Any]:
    """The learner's answer to each case (on copies of its arguments), or a Raised;
    `run(answer, args)` calls the answer where it cannot simply be called here (lesson 06)."""
    filename = getattr(getattr(answer, "__code__", None), "co_filename", None)
    for case in cases:
        try:
            result = answer(*copy_args(case.args)) if run is None else run(answer, copy_args(case.args))
        except KeyboardInterrupt:  # the learner stopped the check
            raise
        except BaseException as error:  # sys.exit(), GeneratorExit, any BaseException: a failed case too
            result = raised(error, filename)
        yield result  # outside the try, so that closing this generator is never taken for an answer


def run_check(exercise: str, answer: Any, seed: int = 0) -> CheckResult:
    """Check `answer` against exercise `exercise` and return the result; shows nothing.

    Whatever `answer` raises or returns becomes a friendly message; the global
    random state is left as it was.

    Args:
        exercise: an id from EXERCISES, e.g. "01.conv2d_loops".
        answer: the learner's function.
        seed: seeds the random test cases (the edge cases do not change).

    Raises:
        ValueError: for an unknown exercise id or a seed out of range (a mistake in the
            notebook, not the learner's).
    """
    current = known_id(exercise)
    if current is None:
        raise ValueError(f"unknown exercise {exercise!r}; the known ones are: {', '.join(EXERCISES)}")
    ex = EXERCISES[current]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int from 0 to 2**63 - 1, got {seed!r}")
    if not callable(answer):
        return CheckResult(current, False, f"expected a function {ex.signature}, got {describe(answer)}")
    with torch.random.fork_rng(devices=[]):
        cases = ex.cases(torch.Generator().manual_seed(seed))
        return verdict(current, cases, _answers(answer, cases, ex.run))


def check(exercise: str, answer: Any) -> None:
    """Check the learner's answer to an exercise and show the result. Introduced in lesson 01.

    In a notebook the result is displayed with the MIME type CHECK_MIME
    ({"exercise", "passed", "message"}, plus a text/plain line) for notebook
    front-ends; the grader never reads it. In plain Python it is printed.

    Args:
        exercise: an id from EXERCISES, e.g. "01.conv2d_loops".
        answer: the learner's function.
    """
    result = run_check(exercise, answer)
    text = f"{'✅' if result.passed else '❌'} {result.exercise}: {result.message}"
    if get_ipython() is None:
        print(text)
    else:
        display({CHECK_MIME: {"exercise": result.exercise, "passed": result.passed,
                              "message": result.message}, "text/plain": text}, raw=True)
