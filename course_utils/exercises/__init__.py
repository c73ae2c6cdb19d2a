"""Self-checking exercises: ``check("01.conv2d_loops", conv2d_loops)`` in a lesson notebook.

Introduced in lesson 01; the "Exercises" section of every lesson uses it.

An *implement* exercise is one notebook cell: the learner's function, whose
body holds the solution between nbgrader's markers, then the check call::

    def conv2d_loops(x, weight, bias):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

    check("01.conv2d_loops", conv2d_loops)

``check`` calls the function on the exercise's test cases (shapes and values
drawn from a fixed seed, plus edge cases), compares each answer with a
reference implementation and shows one friendly line (course_utils.exercises.engine).
Each lesson's exercises live in their own module, lesson01 ... lesson06.

Each id is "NN.function", the lesson and the name of the function the learner
writes. The references are independent ways of computing the answer (a PyTorch
op, a brute-force search, a formula). A learner's own kernel can reach them,
which matters only to a learner who wants to fool themselves; the grader
(``python -m course_utils grade``) runs the learner's code where course_utils
cannot be imported.
"""

from . import lesson01, lesson02, lesson03, lesson04, lesson05, lesson06  # noqa: F401 (they register)
from .engine import (CHECK_MIME, EXERCISES, NOT_IMPLEMENTED, Case, CheckResult, Exercise,
                     check, lesson_exercises, run_check)

__all__ = ["CHECK_MIME", "EXERCISES", "NOT_IMPLEMENTED", "Case", "CheckResult", "Exercise",
           "check", "lesson_exercises", "run_check"]
