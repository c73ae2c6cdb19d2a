"""Every lesson, graded end to end: the instructor's notebook gets full marks, its learner version zero."""

import shutil

import pytest

from course_utils.exercises import NOT_IMPLEMENTED, lesson_exercises
from course_utils.tooling import grading, runner

LESSONS = ["01", "02", "03", "04", "05", "06"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """One grading run of every lesson notebook and of its learner version."""
    root = tmp_path_factory.mktemp("lessons")
    notebooks = runner.lesson_notebooks()
    for notebook in notebooks:
        (root / "class" / "instructor").mkdir(parents=True, exist_ok=True)
        shutil.copy(notebook, root / "class" / "instructor" / notebook.name)
    grading.assign(notebooks, root / "class" / "learner")
    rows = grading.grade(grading.submissions_in([str(root / "class")]), timeout_s=120, jobs=2, seed=0,
                         quiet=True)
    return rows.assign(lesson=rows.notebook.str[:2])


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_instructors_notebook_gets_full_marks(graded, lesson):
    rows = graded[(graded.student == "instructor") & (graded.lesson == lesson)]
    assert sorted(rows.exercise) == sorted(lesson_exercises(lesson)), rows.message.tolist()
    assert rows.passed.all(), rows.message.tolist()
    assert (rows.tampering == "").all() and (rows.review == "").all()


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_learner_version_gets_zero(graded, lesson):
    rows = graded[(graded.student == "learner") & (graded.lesson == lesson)]
    assert sorted(rows.exercise) == sorted(lesson_exercises(lesson)), rows.message.tolist()
    assert not rows.passed.any() and (rows.message == NOT_IMPLEMENTED).all(), rows.message.tolist()
