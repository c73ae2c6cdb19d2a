"""assign (student versions) and grade (each exercise's function, judged outside the notebook).

The notebooks are small ones built here; their exercise cells hold the
reference solutions of tests/test_exercises.py, as a lesson notebook would.
Each trick of issue 15 is a submission here that must come out failed, with
tampering flagged.
"""

import inspect
import os
import shutil

import nbformat
import pandas as pd
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from test_exercises import SOLUTIONS

from course_utils.tooling import grading, runner
from course_utils import exercises
from course_utils.exercises import NOT_IMPLEMENTED
from course_utils.tooling import sandbox

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


def test_assign_out_naming_a_file_is_a_clear_error(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "01_lesson.ipynb", [IMPORTS, exercise_cell("01.output_size")])
    (tmp_path / "taken").write_text("")
    for out in [tmp_path / "taken", tmp_path / "taken" / "below"]:
        assert grading.main(["assign", str(notebook), "--out", str(out)]) == 1
        assert f"{tmp_path / 'taken'} is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == ""


# -- grade -------------------------------------------------------------------------

CONV, SIZE = exercise_cell("01.conv2d_loops"), exercise_cell("01.output_size")
BLANK_SIZE = grading.strip_solutions(SIZE)


def grade_folder(root, *options):
    """Grade every notebook under `root` through the command line: {(student, exercise): row}."""
    csv = root.parent / f"{root.name}.csv"
    assert grading.main(["grade", str(root), "--csv", str(csv), "--jobs", "2", *options]) == 0
    rows = pd.read_csv(csv, keep_default_na=False)
    assert list(rows.columns) == grading.COLUMNS
    return {(row.student, row.exercise): row for row in rows.itertuples()}


@pytest.fixture(scope="module")
def solution_and_student(tmp_path_factory):
    """A lesson-01 notebook holding every exercise of lesson 01, and its student version."""
    root = tmp_path_factory.mktemp("lesson")
    teacher = write_notebook(root / "class" / "teacher" / "01_lesson.ipynb",
                             [("markdown", "# Lesson 01"), IMPORTS, CONV, SIZE])
    [student] = grading.assign([teacher], root / "student")
    (root / "class" / "bob").mkdir()
    shutil.copy(student, root / "class" / "bob" / "01_lesson.ipynb")
    return grade_folder(root / "class")


def test_solution_gets_full_marks_and_its_student_version_zero(solution_and_student):
    rows = solution_and_student
    assert sorted(rows) == [("bob", "01.conv2d_loops"), ("bob", "01.output_size"),
                            ("teacher", "01.conv2d_loops"), ("teacher", "01.output_size")]
    assert [rows["teacher", e].message for e in ["01.conv2d_loops", "01.output_size"]] == [
        "passed all 8 test cases", "passed all 12 test cases"]
    assert all(rows["teacher", e].passed for e in ["01.conv2d_loops", "01.output_size"])
    assert [rows["bob", e][4:7] for e in ["01.conv2d_loops", "01.output_size"]] == [
        (False, NOT_IMPLEMENTED, "")] * 2


def endless(source):
    return source.replace("return (n + 2 * p - k) // s + 1", "while True:\n        pass")


@pytest.fixture(scope="module")
def class_results(tmp_path_factory):
    """Lesson-01 submissions that go wrong in the ways students' notebooks do."""
    root = tmp_path_factory.mktemp("class") / "submissions"
    wrong_size = SIZE.replace("(n + 2 * p - k) // s + 1", "(n + 2 * p - k) / s + 1")
    # anna: an endless loop in one function; a slow training cell that grading never runs
    write_notebook(root / "anna" / "01_lesson.ipynb", ["import time\ntime.sleep(600)", IMPORTS, CONV,
                                                       endless(SIZE)])
    # ben: a function that kills its process
    write_notebook(root / "ben" / "01_lesson.ipynb",
                   [IMPORTS, CONV.replace("    batch, _,", "    import os\n    os._exit(3)\n    batch, _,"), SIZE])
    # carol: one file, not named after the lesson (an old id in its check call), conv deleted, cells moved
    write_notebook(root / "carol.ipynb", [("markdown", "my notes"), IMPORTS, "x = 1",
                                          SIZE.replace('"01.output_size"', '"01.conv_output_size"')])
    # dave: a failing cell, a repeated exercise (right, then wrong), a syntax error in the other
    write_notebook(root / "dave" / "01_lesson.ipynb",
                   [IMPORTS, "raise RuntimeError('oops')", SIZE, wrong_size, CONV.replace("return out", "return out)")])
    (root / "emma").mkdir()
    (root / "emma" / "01_lesson.ipynb").write_text("{not json")
    # two students whose files have the same name
    write_notebook(root / "x" / "hw.ipynb", [IMPORTS, CONV, SIZE])
    write_notebook(root / "y" / "hw.ipynb", [IMPORTS, grading.strip_solutions(CONV), BLANK_SIZE])
    # frank: the function uses a helper, a constant and a decorator, defined in other cells, and magics
    write_notebook(root / "frank" / "01_lesson.ipynb", [
        "%matplotlib inline\nimport functools", "PAD_SIDES = 2",
        "def padded(n, p):\n    return n + PAD_SIDES * p",
        "@functools.lru_cache\ndef output_size(n, k, s, p):\n    return (padded(n, p) - k) // s + 1",
        IMPORTS, CONV])
    return grade_folder(root, "--timeout", "5")


def test_an_endless_loop_times_out_and_the_rest_is_graded(class_results):
    assert class_results["anna", "01.output_size"][4:6] == (
        False, "the function did not answer within 5 s (an endless loop?)")
    assert class_results["anna", "01.conv2d_loops"].passed


def test_a_dead_process_is_reported_and_the_other_exercise_graded(class_results):
    passed, message = class_results["ben", "01.conv2d_loops"][4:6]
    assert not passed and message == "the code died before answering (exit status 3)"
    assert class_results["ben", "01.output_size"].passed


def test_moved_and_deleted_cells_and_old_ids_are_graded_on_what_is_there(class_results):
    assert class_results["carol", "01.output_size"][4:6] == (True, "passed all 12 test cases")
    assert class_results["carol", "01.conv2d_loops"][4:6] == (
        False, "the notebook has no def conv2d_loops(...) (was its cell deleted?)")


def test_the_last_def_of_a_repeated_exercise_counts_and_syntax_errors_are_reported(class_results):
    passed, message = class_results["dave", "01.output_size"][4:6]
    assert not passed and "Hint: return an int" in message
    passed, message = class_results["dave", "01.conv2d_loops"][4:6]
    assert not passed and message.startswith("cell 5 does not parse (SyntaxError: ")
    assert message.endswith("so its def conv2d_loops never ran")


def test_an_invalid_notebook_says_not_valid_json(class_results):
    row = class_results["emma", ""]
    assert not row.passed and row.message.startswith("could not read the notebook: not valid JSON (line 1")


def test_students_are_their_paths_and_never_merged(class_results):
    students = {student for student, _ in class_results}
    assert students == {"anna", "ben", "carol", "dave", "emma", "x/hw", "y/hw", "frank"}
    assert class_results["x/hw", "01.output_size"].passed and class_results["x/hw", "01.conv2d_loops"].passed
    assert not class_results["y/hw", "01.output_size"].passed


def test_helpers_constants_decorators_and_magics_come_with_the_function(class_results):
    assert class_results["frank", "01.output_size"][4:6] == (True, "passed all 12 test cases")
    assert len(class_results) == 15


def test_identify_the_student_and_the_lesson(tmp_path):
    assert grading.identify(tmp_path / "alice" / "02_lstm.ipynb", tmp_path) == "alice"
    assert grading.identify(tmp_path / "alice.ipynb", tmp_path) == "alice"
    assert grading.identify(tmp_path / "x" / "hw.ipynb", tmp_path) == "x/hw"
    assert grading.check_calls('check("01.a", f)\ncheck( \'05.viterbi\' , viterbi)') == ["01.a", "05.viterbi"]
    notebook = write_notebook(tmp_path / "alice" / "01_lesson.ipynb", [IMPORTS])
    assert grading.submissions_in([str(notebook)]) == [(notebook, tmp_path)]


def test_grade_of_a_missing_file_is_an_error(tmp_path, capsys):
    assert grading.main(["grade", str(tmp_path / "nobody.ipynb")]) == 1
    assert "no notebook or folder at" in capsys.readouterr().err
    assert grading.main(["grade", str(tmp_path), "--jobs", "0"]) == 1
    assert "--jobs must be at least 1" in capsys.readouterr().err


# -- tricks: each must fail with tampering flagged ---------------------------------

STUBS = [IMPORTS, grading.strip_solutions(CONV), BLANK_SIZE]
TRICKS = {
    "1-shows-a-passing-result": STUBS + [
        "from IPython.display import display\nfor e in ['01.conv2d_loops', '01.output_size']:\n"
        "    display({'application/vnd.course-utils.check+json': {'exercise': e, 'passed': True, "
        "'message': 'passed'}}, raw=True)"],
    "2-replaces-the-checker": [
        "import course_utils.exercises as ex\n"
        "ex.run_check = lambda e, a, seed=0: ex.CheckResult(e, True, 'passed all 8 test cases')"] + STUBS,
    "3-hands-in-the-reference": [
        IMPORTS + "\nfrom course_utils.exercises import EXERCISES",
        "conv2d_loops = EXERCISES['01.conv2d_loops'].reference\n"
        "output_size = EXERCISES['01.output_size'].reference"],
    "4-loosens-the-check": STUBS + [
        "import dataclasses\nfrom course_utils import exercises\nfor e in exercises.EXERCISES:\n"
        "    exercises.EXERCISES[e] = dataclasses.replace(exercises.EXERCISES[e], compare=lambda *a: None)"],
    "5-shadows-another-students-package": STUBS + [
        "import pathlib\nshadow = pathlib.Path('../6-blank/course_utils')\nshadow.mkdir(parents=True)\n"
        "(shadow / '__init__.py').write_text('raise SystemExit')"],
    # further tricks
    "binds-by-import": [IMPORTS + "\nfrom torch.nn.functional import conv2d as conv2d_loops", BLANK_SIZE],
    "writes-outside-at-run-time": [IMPORTS, grading.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    import os\n    open(os.path.join(os.path.dirname(os.getcwd()), 'x'), 'w')")],
    "reads-another-submission": [IMPORTS, grading.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    import glob\n    print(glob.glob('/' + 'tmp/*/*.ipynb'))")],
    "starts-a-process": [IMPORTS, grading.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    import subprocess\n    subprocess.run(['true'])")],
}


@pytest.fixture(scope="module")
def tricks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tricks") / "submissions"
    for name, cells in TRICKS.items():
        write_notebook(root / name / "01_lesson.ipynb", cells)
    write_notebook(root / "6-blank" / "01_lesson.ipynb", STUBS)
    rows = grade_folder(root)
    return root, rows


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_trick_fails_with_tampering_suspected(tricks, trick):
    _, rows = tricks
    for exercise in ["01.conv2d_loops", "01.output_size"]:
        row = rows[trick, exercise]
        assert not row.passed, row.message
        assert row.tampering and "tampering suspected" in row.message, row.message


def test_the_student_next_to_a_shadow_package_is_graded_on_their_own_work(tricks):
    root, rows = tricks
    assert not (root / "6-blank" / "course_utils").exists()  # the shadow-writing cell never ran
    for exercise in ["01.conv2d_loops", "01.output_size"]:
        assert rows["6-blank", exercise][4:7] == (False, NOT_IMPLEMENTED, "")


def test_a_trick_outside_the_exercise_function_is_named_by_cell(tricks):
    _, rows = tricks
    assert "cell 4 writes the checker's result format by hand" in rows["1-shows-a-passing-result",
                                                                        "01.output_size"].tampering
    assert "cell 1 uses the checker's run_check" in rows["2-replaces-the-checker", "01.output_size"].tampering
    assert "cell 2 binds conv2d_loops by assign, not with def" in rows["3-hands-in-the-reference",
                                                                        "01.conv2d_loops"].tampering
    assert "cell 1 binds conv2d_loops by importfrom, not with def" in rows["binds-by-import",
                                                                            "01.conv2d_loops"].tampering
    assert "names a path outside its folder ('../6-blank/course_utils')" in rows[
        "5-shadows-another-students-package", "01.output_size"].tampering


# -- isolation ---------------------------------------------------------------------


def run_alone(tmp_path, body, seed=0):
    """Grade an output_size whose body is `body`; its message."""
    source = f"def output_size(n, k, s, p):\n{body}"
    code = sandbox.extract(sandbox.python_cells(nbformat.v4.new_notebook(cells=[new_code_cell(source)])),
                           "output_size").code
    return sandbox.run_exercise("01.output_size", code, seed, timeout_s=30).message


def test_the_sandbox_sees_no_grader_environment_and_no_course_utils(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET", "hunter2")
    message = run_alone(tmp_path, "    import os\n    raise ValueError(sorted(os.environ))")
    assert "hunter2" not in message and "GRADER_SECRET" not in message
    kept = {name for name in sandbox.ENV_KEEP if name in os.environ}
    names = sorted(kept | {"HOME", "COURSE_MODE", "COURSE_PROGRESS", "OMP_NUM_THREADS", "MPLBACKEND"})
    assert f"raised ValueError: {names}" in message
    message = run_alone(tmp_path, "    from course_utils.cnn import conv_output_size\n    return 0")
    assert "raised ModuleNotFoundError: No module named 'course_utils.cnn'" in message


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox changes user only when the grader is root")
def test_as_root_the_sandbox_runs_as_nobody(tmp_path):
    python, user = sandbox.interpreter()
    assert user is not None, "user nobody cannot run Python with torch on this machine"
    message = run_alone(tmp_path, "    import os\n    raise ValueError(os.getuid())")
    assert f"raised ValueError: {user[0]} " in message


def test_answers_for_the_known_test_cases_do_not_pass_on_unknown_ones(tmp_path):
    ex = exercises.EXERCISES["01.output_size"]
    table = {(n, k, s, p): (n + 2 * p - k) // s + 1
             for n, k, s, p in (case.args for case in ex.cases(torch.Generator().manual_seed(0)))}
    body = f"    return {table!r}[(n, k, s, p)]"
    assert run_alone(tmp_path, body, seed=0) == "passed all 12 test cases"
    assert "raised KeyError" in run_alone(tmp_path, body, seed=1)


def test_an_answer_the_grader_cannot_read_back_fails_with_its_type(tmp_path):
    message = run_alone(tmp_path, "    import fractions\n    return fractions.Fraction(1, 3)")
    assert "expected the int 26, got Fraction Fraction(1, 3)" in message
