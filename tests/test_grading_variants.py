"""A graded class with its own variants (``assign --class-key`` / ``grade --class-key``): the
student version states and checks the class's variant, the grader grades it, and the public
solution gets no marks."""

import inspect
import shutil

import nbformat
import pandas as pd
import pytest
from test_exercise_variants import VARIANTS
from test_grading import CONV, IMPORTS, SIZE, cli, write_notebook

from course_utils.exercises import EXERCISES
from course_utils.exercises.engine import class_exercise
from course_utils.tooling import grading, notebooks, runner

KEY = "spring 2027, section B"


def answered(student_version: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student version with each stub replaced by a correct answer to the variant its check names."""
    for cell in student_version.cells:
        for exercise in notebooks.check_calls(cell.source) if cell.cell_type == "code" else []:
            answer = VARIANTS[exercise][0]
            source = inspect.getsource(answer).replace(f"def {answer.__name__}(", f"def {EXERCISES[exercise].function}(")
            helpers = "import torch.nn.functional as F\n\n"
            if "SOLUTIONS" in source:  # an answer built on the lesson's solution: inline it
                base = EXERCISES[exercise].base
                from test_exercises import SOLUTIONS
                helpers += inspect.getsource(SOLUTIONS[base]).replace(f"def {SOLUTIONS[base].__name__}(", "def lesson_answer(")
                source = source.replace(f'SOLUTIONS["{base}"]', "lesson_answer")
            cell.source = f'{helpers}\n\n{source}\n\ncheck("{exercise}", {EXERCISES[exercise].function})'
    return student_version


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A class of three: ana answers the class's variants, pia hands in the lesson's public solution,
    and the blank student version; graded with the key, and once more without it."""
    root = tmp_path_factory.mktemp("variants")
    teacher = write_notebook(root / "teacher" / "01_lesson.ipynb", [("markdown", "# Lesson 01"), IMPORTS, CONV, SIZE])
    assert cli(["assign", str(teacher), "--out", str(root / "student"), "--class-key", KEY]) == 0
    student = nbformat.read(root / "student" / "01_lesson.ipynb", as_version=4)
    (root / "class" / "blank").mkdir(parents=True)
    shutil.copy(root / "student" / "01_lesson.ipynb", root / "class" / "blank")
    nbformat.write(answered(nbformat.read(root / "student" / "01_lesson.ipynb", as_version=4)),
                   write_notebook(root / "class" / "ana" / "01_lesson.ipynb", []))
    shutil.copy(teacher, write_notebook(root / "class" / "pia" / "01_lesson.ipynb", []))

    def grade(*options):
        csv = root / f"grades{len(options)}.csv"
        assert cli(["grade", str(root / "class"), "--csv", str(csv), "--jobs", "2", *options]) == 0
        return pd.read_csv(csv, keep_default_na=False)
    return student, grade("--class-key", KEY), grade()


def test_the_student_version_states_and_checks_the_class_variants(graded):
    student, _, _ = graded
    chosen = [class_exercise(e, KEY) for e in ("01.conv2d_loops", "01.output_size")]
    calls = [e for cell in student.cells for e in notebooks.check_calls(cell.source)]
    assert calls == chosen and all("@" in e for e in chosen)
    notes = [cell.source for cell in student.cells if cell.source.startswith(grading.CLASS_VERSION)]
    assert notes == [f"{grading.CLASS_VERSION}\n\n{EXERCISES[e].statement}" for e in chosen]
    assert not any(notebooks.SOLUTION_BEGIN in cell.source for cell in student.cells)


def test_with_the_key_the_variant_answers_pass_and_the_public_solution_fails(graded):
    _, rows, _ = graded
    passed = rows.groupby("student").passed.apply(list).to_dict()
    assert passed == {"ana": [True, True], "blank": [False, False], "pia": [False, False]}
    assert set(rows.exercise) == {class_exercise(e, KEY) for e in ("01.conv2d_loops", "01.output_size")}


def test_without_the_key_the_lesson_exercises_are_graded(graded):
    _, _, rows = graded
    passed = rows.groupby("student").passed.apply(list).to_dict()
    assert passed == {"ana": [False, False], "blank": [False, False], "pia": [True, True]}


def test_a_grading_resumed_with_another_key_is_refused():
    earlier = pd.DataFrame({"exercise": [class_exercise("01.conv2d_loops", KEY), ""]})
    grading.check_resumed_class(earlier, KEY)
    with pytest.raises(ValueError, match="resume with the --class-key it was started with"):
        grading.check_resumed_class(earlier, None)
    grading.check_resumed_class(pd.DataFrame({"exercise": ["01.conv2d_loops"]}), None)


def test_class_key_is_refused_for_nbgrader_and_otter(tmp_path, capsys):
    lesson = runner.lesson_notebooks("01")[0]
    for fmt in ("nbgrader", "otter"):
        assert cli(["assign", str(lesson), "--out", str(tmp_path / fmt), "--format", fmt, "--class-key", KEY]) == 1
        assert "--class-key makes student versions that `grade` grades" in capsys.readouterr().err
        assert not (tmp_path / fmt).exists()


def test_the_lessons_own_student_versions_carry_no_class_note(tmp_path):
    lesson = runner.lesson_notebooks("01")[0]
    assert cli(["assign", str(lesson), "--out", str(tmp_path)]) == 0
    student = nbformat.read(tmp_path / lesson.name, as_version=4)
    assert not any(cell.source.startswith(grading.CLASS_VERSION) for cell in student.cells)
    assert [e for cell in student.cells for e in notebooks.check_calls(cell.source)] == [
        "01.conv2d_loops", "01.output_size"]


def test_the_gradebook_totals_a_class_graded_with_variants(graded, tmp_path):
    from course_utils.tooling import gradebook

    _, rows, _ = graded
    csv = tmp_path / "grades.csv"
    rows.to_csv(csv, index=False)
    written = gradebook.write_gradebook(gradebook.read_grades(csv), tmp_path / "feedback")
    book = pd.read_csv(tmp_path / "feedback" / "gradebook.csv", keep_default_na=False).set_index("student")
    assert book.loc["ana", "01 (of 2)"] == 2 and book.loc["pia", "01 (of 2)"] == 0
    assert any(path.name == "ana.md" for path in written)
