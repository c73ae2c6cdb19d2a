"""assign (student versions) and grade (run submissions, read their checks).

The notebooks are small ones built here; their exercise cells hold the
reference solutions of tests/test_exercises.py, as a lesson notebook would.
"""

import inspect
import shutil

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from test_exercises import SOLUTIONS

from course_utils.tooling import grading, runner
from course_utils.exercises import CHECK_MIME, NOT_IMPLEMENTED

IMPORTS = "import torch\n\nfrom course_utils.exercises import check"


def exercise_cell(exercise: str) -> str:
    """An exercise cell as the lessons have it: the function, then its check call."""
    function = SOLUTIONS[exercise]
    return f'{inspect.getsource(function)}\n\ncheck("{exercise}", {function.__name__})'


def write_notebook(path, cells):
    """Write a notebook; `cells` are code sources, or ("markdown", text) pairs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [new_markdown_cell(c[1]) if isinstance(c, tuple) else new_code_cell(c) for c in cells]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = new_notebook(cells=cells, metadata={"kernelspec": kernelspec})
    nbformat.write(nb, path)
    return path


# -- assign ------------------------------------------------------------------------


def test_solution_regions_become_stubs_with_their_indentation():
    source = ("def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\n"
              "check('01.f', f)")
    assert grading.strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ncheck('01.f', f)")
    answer = "**Answer.**\n### BEGIN SOLUTION\nBatch norm speeds up\nthe first epoch.\n### END SOLUTION"
    assert grading.strip_solutions(answer, "markdown") == "**Answer.**\nYOUR ANSWER HERE"
    assert grading.strip_solutions("x = 1\n") == "x = 1\n"


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1", "line 1: '### BEGIN SOLUTION' without a '### END SOLUTION'"),
    ("x = 1\n### END SOLUTION", "line 2: '### END SOLUTION' without a '### BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "line 2: '### BEGIN SOLUTION' inside"),
])
def test_a_marker_without_its_partner_names_the_notebook_and_cell(tmp_path, source, problem):
    notebook = write_notebook(tmp_path / "01_lesson.ipynb", [("markdown", "# Lesson"), "x = 0", source])
    with pytest.raises(ValueError, match=f"01_lesson.ipynb, cell 3, {problem}"):
        grading.assign([notebook], tmp_path / "student")
    assert not (tmp_path / "student").exists()
    assert grading.main(["assign", str(notebook), "--out", str(tmp_path / "student")]) == 1


def test_assign_replaces_solutions_clears_outputs_and_keeps_the_rest(tmp_path):
    cells = [("markdown", "# Lesson 01"), 'MODE = "cpu"', IMPORTS, exercise_cell("01.conv2d_loops"),
             ("markdown", "**Exercise 2.** Why?\n\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"),
             "print(MODE)"]
    source = write_notebook(tmp_path / "solutions" / "01_lesson.ipynb", cells)
    nb = nbformat.read(source, as_version=4)
    nb.metadata["papermill"] = {"duration": 3.0}
    nb.cells[1].metadata = {"tags": ["parameters"], "papermill": {"status": "completed"},
                            "execution": {"iopub.status.busy": "2024-01-01T00:00:00Z"}}
    for count, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        cell.execution_count = count + 1
        cell.outputs = [new_output("stream", name="stdout", text="cpu\n")]
    nbformat.write(nb, source)
    before = source.read_text()

    [written] = grading.assign([source], tmp_path / "student")

    assert written == tmp_path / "student" / "01_lesson.ipynb"
    assert source.read_text() == before
    student = nbformat.read(written, as_version=4)
    assert "papermill" not in student.metadata and student.metadata.kernelspec == nb.metadata.kernelspec
    assert student.cells[1].metadata == {"tags": ["parameters"]}
    code = [c for c in student.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert [c.source for c in student.cells] == [
        c.source for c in nb.cells[:3]] + [
        exercise_cell("01.conv2d_loops").split("    ### BEGIN")[0]
        + '    # YOUR CODE HERE\n    raise NotImplementedError()\n\n\ncheck("01.conv2d_loops", conv2d_loops)',
        "**Exercise 2.** Why?\n\nYOUR ANSWER HERE", 'print(MODE)']
    assert [c.id for c in student.cells] == [c.id for c in nb.cells]
    with pytest.raises(ValueError, match="would overwrite it"):
        grading.assign([source], source.parent)


def test_assign_on_lesson_01_changes_only_the_solutions(tmp_path):
    lesson = runner.lesson_notebooks("01")[0]
    copy = shutil.copy(lesson, tmp_path / lesson.name)
    assert grading.main(["assign", str(copy), "--out", str(tmp_path / "student")]) == 0
    original = nbformat.read(copy, as_version=4)
    student = nbformat.read(tmp_path / "student" / lesson.name, as_version=4)
    assert len(student.cells) == len(original.cells)
    changed = 0
    for before, after in zip(original.cells, student.cells, strict=True):
        if grading.SOLUTION_BEGIN in before.source:
            changed += 1
            assert "raise NotImplementedError()" in after.source
            assert grading.SOLUTION_BEGIN not in after.source
        else:
            assert after.source == before.source
        if after.cell_type == "code":
            assert after.outputs == [] and after.execution_count is None
    assert changed >= 1


# -- grade -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def solution_and_student(tmp_path_factory):
    """A lesson-01 notebook holding every exercise, graded as submitted by its author and
    (as its student version) by bob."""
    root = tmp_path_factory.mktemp("lesson")
    teacher = write_notebook(root / "teacher" / "01_lesson.ipynb",
                             [("markdown", "# Lesson 01"), IMPORTS] + [exercise_cell(e) for e in SOLUTIONS])
    [student] = grading.assign([teacher], root / "student")
    bob = root / "submissions" / "bob" / "01_lesson.ipynb"
    bob.parent.mkdir(parents=True)
    shutil.copy(student, bob)
    rows = grading.grade([teacher, bob], timeout_s=120, executed_dir=root / "executed")
    return rows, nbformat.read(root / "executed" / "bob" / "01_lesson.ipynb", as_version=4)


def test_solution_gets_full_marks_and_its_student_version_zero(solution_and_student):
    rows, _ = solution_and_student
    assert list(rows.columns) == ["student", "notebook", "exercise", "passed", "message"]
    teacher, bob = rows[rows.student == "teacher"], rows[rows.student == "bob"]
    assert list(teacher.exercise) == list(bob.exercise) == ["01.conv2d_loops", "01.conv_output_size"]
    assert teacher.passed.all() and teacher.message.str.startswith("passed all").all()
    assert not bob.passed.any() and (bob.message == NOT_IMPLEMENTED).all()
    assert grading.summary(rows).loc[("bob", "01_lesson.ipynb"), "score"] == "0/2"
    assert grading.summary(rows).loc[("teacher", "01_lesson.ipynb"), "01.conv2d_loops"] == "pass"


def test_student_version_runs_through_and_every_check_says_not_implemented(solution_and_student):
    _, executed = solution_and_student
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    results = [o.data[CHECK_MIME] for o in outputs if CHECK_MIME in o.get("data", {})]
    assert [r["exercise"] for r in results] == list(SOLUTIONS)
    assert all(r["message"] == NOT_IMPLEMENTED and not r["passed"] for r in results)


@pytest.fixture(scope="module")
def class_results(tmp_path_factory):
    """Five submissions of lesson 01, graded through the command line."""
    root = tmp_path_factory.mktemp("class")
    conv, size = exercise_cell("01.conv2d_loops"), exercise_cell("01.conv_output_size")
    wrong_size = size.replace("(n + 2 * p - k) // s + 1", "(n + 2 * p - k) / s + 1")
    write_notebook(root / "anna" / "01_lesson.ipynb", ["import time\ntime.sleep(60)", IMPORTS, conv, size])
    write_notebook(root / "ben" / "01_lesson.ipynb", [IMPORTS, conv, "import os\nos._exit(1)", size])
    # carol: one file, not named after the lesson; cells moved around, the conv exercise deleted
    write_notebook(root / "carol.ipynb",
                   [("markdown", "my notes"), IMPORTS, "x = 1", size, ("markdown", "# Lesson 01")])
    # dave: a failing cell, a repeated exercise (right, then wrong), a syntax error in another
    write_notebook(root / "dave" / "01_lesson.ipynb",
                   [IMPORTS, "raise RuntimeError('oops')", size, wrong_size,
                    conv.replace("return out", "return out)")])
    (root / "emma" / "01_lesson.ipynb").parent.mkdir()
    (root / "emma" / "01_lesson.ipynb").write_text("{not json")
    csv = root / "grades.csv"
    assert grading.main(["grade", str(root), "--csv", str(csv), "--timeout", "5"]) == 0
    rows = pd.read_csv(csv, keep_default_na=False)
    return {(row.student, row.exercise): (row.passed, row.message) for row in rows.itertuples()}


def test_a_hanging_notebook_times_out_and_grading_goes_on(class_results):
    for exercise in ["01.conv2d_loops", "01.conv_output_size"]:
        assert class_results["anna", exercise] == (
            False, "the check did not run: the notebook ran out of its 5 s in cell 1")
    assert class_results["carol", "01.conv_output_size"][0]


def test_a_crash_keeps_the_checks_that_ran(class_results):
    assert class_results["ben", "01.conv2d_loops"] == (True, "passed all 8 test cases")
    assert class_results["ben", "01.conv_output_size"] == (
        False, "the check did not run: the kernel died in cell 3")


def test_moved_and_deleted_cells_are_graded_on_what_is_there(class_results):
    assert class_results["carol", "01.conv_output_size"] == (True, "passed all 12 test cases")
    assert class_results["carol", "01.conv2d_loops"] == (
        False, "the notebook has no check call for this exercise (was its cell deleted?)")


def test_the_last_check_of_a_repeated_exercise_counts_and_errors_are_reported(class_results):
    passed, message = class_results["dave", "01.conv_output_size"]
    assert not passed and "Hint: return an int" in message
    passed, message = class_results["dave", "01.conv2d_loops"]
    assert not passed and message.startswith("the check did not run: cell 5 raised SyntaxError")


def test_an_unreadable_notebook_gets_rows_saying_so(class_results):
    passed, message = class_results["emma", "01.conv2d_loops"]
    assert not passed and message.startswith("could not run the notebook: ")
    assert len(class_results) == 10


def test_identify_the_student_and_the_lesson(tmp_path):
    assert grading.identify(tmp_path / "alice" / "02_lstm.ipynb") == ("alice", "02")
    assert grading.identify(tmp_path / "alice.ipynb") == ("alice", None)
    assert grading.check_calls('check("01.a", f)\ncheck( \'05.viterbi\' , viterbi)') == ["01.a", "05.viterbi"]


def test_grade_of_a_missing_file_is_an_error(tmp_path, capsys):
    assert grading.main(["grade", str(tmp_path / "nobody.ipynb")]) == 1
    assert "no notebook or folder at" in capsys.readouterr().err
