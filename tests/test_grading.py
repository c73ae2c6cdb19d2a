"""assign (student versions) and grade (each exercise's function, judged outside the notebook).

The notebooks are small ones built here; their exercise cells hold the
reference solutions of tests/test_exercises.py, as a lesson notebook would.
Each trick of issue 15 is a submission here that must come out failed, with
tampering flagged.
"""

import argparse
import inspect
import os
import shutil

import nbformat
import pandas as pd
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from test_exercises import SOLUTIONS

from course_utils.tooling import formats, grading, grading_cli, notebooks, runner
from course_utils import exercises
from course_utils.exercises import NOT_IMPLEMENTED
from course_utils.tooling import sandbox



def cli(argv: list[str]) -> int:
    """Run ``python -m course_utils assign|grade`` as course_utils.tooling.cli does, via grading_cli."""
    parser = argparse.ArgumentParser()
    grading_cli.add_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.run(args)


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
    assert notebooks.strip_solutions(source) == (
        "def f(x):\n    y = 1\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\ncheck('01.f', f)")
    answer = "**Answer.**\n### BEGIN SOLUTION\nBatch norm speeds up\nthe first epoch.\n### END SOLUTION"
    assert notebooks.strip_solutions(answer, "markdown") == "**Answer.**\nYOUR ANSWER HERE"
    assert notebooks.strip_solutions("x = 1\n") == "x = 1\n"


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
    assert cli(["assign", str(notebook), "--out", str(tmp_path / "student")]) == 1


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
    assert cli(["assign", str(copy), "--out", str(tmp_path / "student")]) == 0
    original = formats.with_answer_cells(nbformat.read(copy, as_version=4))  # as nbgrader and otter have them
    student = nbformat.read(tmp_path / "student" / lesson.name, as_version=4)
    assert len(student.cells) == len(original.cells)
    assert sum(formats.written_answer(cell) is not None for cell in student.cells) >= 1
    changed = 0
    for before, after in zip(original.cells, student.cells, strict=True):
        if notebooks.SOLUTION_BEGIN in before.source:
            changed += 1
            assert "raise NotImplementedError()" in after.source
            assert notebooks.SOLUTION_BEGIN not in after.source
        else:
            assert after.source == before.source
        if after.cell_type == "code":
            assert after.outputs == [] and after.execution_count is None
    assert changed >= 1


def test_assign_out_naming_a_file_is_a_clear_error(tmp_path, capsys):
    notebook = write_notebook(tmp_path / "01_lesson.ipynb", [IMPORTS, exercise_cell("01.output_size")])
    (tmp_path / "taken").write_text("")
    for out in [tmp_path / "taken", tmp_path / "taken" / "below"]:
        assert cli(["assign", str(notebook), "--out", str(out)]) == 1
        assert f"{tmp_path / 'taken'} is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "taken").read_text() == ""


# -- grade -------------------------------------------------------------------------

CONV, SIZE = exercise_cell("01.conv2d_loops"), exercise_cell("01.output_size")
BLANK_SIZE = notebooks.strip_solutions(SIZE)


def grade_folder(root, *options):
    """Grade every notebook under `root` through the command line: {(student, exercise): row}."""
    csv = root.parent / f"{root.name}.csv"
    assert cli(["grade", str(root), "--csv", str(csv), "--jobs", "2", *options]) == 0
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
    write_notebook(root / "y" / "hw.ipynb", [IMPORTS, notebooks.strip_solutions(CONV), BLANK_SIZE])
    # frank: the function uses a helper, a constant and a decorator, defined in other cells, and magics
    write_notebook(root / "frank" / "01_lesson.ipynb", [
        "%matplotlib inline\nimport functools", "PAD_SIDES = 2",
        "def padded(n, p):\n    return n + PAD_SIDES * p",
        "@functools.lru_cache\ndef output_size(n, k, s, p):\n    return (padded(n, p) - k) // s + 1",
        IMPORTS, CONV])
    return grade_folder(root, "--timeout", "10")


def test_an_endless_loop_times_out_and_the_rest_is_graded(class_results):
    assert class_results["anna", "01.output_size"][4:6] == (
        False, "the function did not answer within 10 s (an endless loop?)")
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
    assert students == {"anna", "ben", "carol", "dave", "emma", "x", "y", "frank"}
    assert class_results["x", "01.output_size"].passed and class_results["x", "01.conv2d_loops"].passed
    assert not class_results["y", "01.output_size"].passed
    # an untouched stub is "not implemented yet", with no review note about its form (it has no loops)
    assert class_results["y", "01.conv2d_loops"].message == NOT_IMPLEMENTED
    assert class_results["y", "01.conv2d_loops"].review == ""


def test_helpers_constants_decorators_and_magics_come_with_the_function(class_results):
    assert class_results["frank", "01.output_size"][4:6] == (True, "passed all 12 test cases")
    assert len(class_results) == 15


def test_identify_the_student_and_the_lesson(tmp_path):
    assert grading.identify(tmp_path / "alice" / "02_lstm.ipynb", tmp_path) == "alice"
    assert grading.identify(tmp_path / "alice.ipynb", tmp_path) == "alice"
    assert grading.identify(tmp_path / "x" / "hw.ipynb", tmp_path) == "x"
    assert grading.identify(tmp_path / "grace" / "Homework 1 - Grace.ipynb", tmp_path) == "grace"
    assert grading.identify(tmp_path / "alice" / "02_lstm.ipynb", tmp_path / "alice") == "alice"
    assert notebooks.check_calls('check("01.a", f)\ncheck( \'05.viterbi\' , viterbi)') == ["01.a", "05.viterbi"]
    notebook = write_notebook(tmp_path / "alice" / "01_lesson.ipynb", [IMPORTS])
    assert grading.submissions_in([str(notebook)]) == [(notebook, tmp_path)]


def test_grade_of_a_missing_file_is_an_error(tmp_path, capsys):
    assert cli(["grade", str(tmp_path / "nobody.ipynb")]) == 1
    assert "no notebook or folder at" in capsys.readouterr().err
    assert cli(["grade", str(tmp_path), "--jobs", "0"]) == 1
    assert "--jobs must be at least 1" in capsys.readouterr().err


# -- tricks: none passes; what one does in the sandbox is flagged as tampering ---------------

STUBS = [IMPORTS, notebooks.strip_solutions(CONV), BLANK_SIZE]
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
    "binds-by-import": [IMPORTS + "\nfrom torch.nn.functional import conv2d as conv2d_loops", BLANK_SIZE],
    "calls-the-reference-inside": [IMPORTS, notebooks.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    from course_utils.exercises import EXERCISES\n"
        "    return EXERCISES['01.output_size'].reference(n, k, s, p)")],
}
RUN_TIME_TRICKS = {  # what the function does when it runs
    "writes-outside-at-run-time": [IMPORTS, notebooks.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    import os\n    open(os.path.join(os.path.dirname(os.getcwd()), 'x'), 'w')")],
    "reads-another-submission": [IMPORTS, notebooks.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    import glob\n    print(glob.glob('/' + 'tmp/*/*.ipynb'))")],
    "starts-a-process": [IMPORTS, notebooks.strip_solutions(CONV), BLANK_SIZE.replace(
        "    # YOUR CODE HERE", "    import subprocess\n    subprocess.run(['true'])")],
}


@pytest.fixture(scope="module")
def tricks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tricks") / "submissions"
    for name, cells in {**TRICKS, **RUN_TIME_TRICKS}.items():
        write_notebook(root / name / "01_lesson.ipynb", cells)
    write_notebook(root / "6-blank" / "01_lesson.ipynb", STUBS)
    rows = grade_folder(root)
    return root, rows


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_trick_gets_no_marks(tricks, trick):
    _, rows = tricks
    for exercise in ["01.conv2d_loops", "01.output_size"]:
        assert not rows[trick, exercise].passed, rows[trick, exercise].message


@pytest.mark.parametrize("trick", sorted(RUN_TIME_TRICKS))
def test_a_trick_at_run_time_fails_with_tampering_suspected(tricks, trick):
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


def test_what_a_trick_meets_is_said(tricks):
    _, rows = tricks
    assert rows["binds-by-import", "01.conv2d_loops"].message == (
        "cell 1 binds conv2d_loops by importfrom, not with def or an assignment: write the function conv2d_loops yourself")
    assert "No module named 'course_utils.exercises'" in rows["calls-the-reference-inside",
                                                              "01.output_size"].message
    assert rows["2-replaces-the-checker", "01.output_size"].message == NOT_IMPLEMENTED


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
    names = sorted(kept | {"HOME", "TMPDIR", "COURSE_MODE", "COURSE_PROGRESS", "OMP_NUM_THREADS", "MPLBACKEND"})
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


@pytest.mark.parametrize("value, bits", [("10**5000", 16610), ("-(10**5000)", 16610), ("type('I', (int,), {})(2**3000)", 3001)])
def test_a_huge_int_answer_is_a_wrong_answer_not_an_unreadable_sandbox(tmp_path, value, bits):
    """Probe G13: an int above 255 bytes came back as "no answers the grader can read", which
    reads like tampering."""
    message = run_alone(tmp_path, f"    return {value}")
    assert message.startswith(f"test case 1 of 12 (n=28, k=3, s=1, p=0): expected the int 26, got int (an int of {bits} bits)")


def test_a_memory_grab_is_reported_as_such_not_as_an_endless_loop(tmp_path):
    """Probe G33n: bytearray(8 GiB) ran into --timeout and was called an endless loop."""
    message = run_alone(tmp_path, "    return len(bytearray(8 * 1024**3))")
    assert "your function raised MemoryError: more memory than the sandbox allows (4 GiB per process)" in message


def test_an_answer_the_grader_cannot_read_back_fails_with_its_type(tmp_path):
    message = run_alone(tmp_path, "    import fractions\n    return fractions.Fraction(1, 3)")
    assert "expected the int 26, got Fraction Fraction(1, 3)" in message


# -- fair to honest students -----------------------------------------------------------


def _timed(cell):
    """An exercise cell under a timing magic, as students write them."""
    return "%%time\n" + cell


HONEST = {
    # sys.path and .. paths, chdir, print(".."), magics, a variable named like the checker's
    "habits": ['import sys\nsys.path.insert(0, "..")  # run from a checkout', IMPORTS,
               'import os, pathlib\nos.chdir(".")\nprint("..")\nout = pathlib.Path("figs/x.png")\n'
               'out.parent.mkdir(parents=True, exist_ok=True)\nEXERCISES = ["ex3", "ex4"]',
               "!pip --version\n%timeit -n 1 -r 1 1 + 1", _timed(CONV), SIZE],
    # a function that uses the notebook's device, set with the course's get_device
    "device": ["from course_utils.train import get_device\ndevice = get_device()", IMPORTS,
               CONV.replace("torch.zeros(batch, c_out, height - k + 1, width - k + 1)",
                            "torch.zeros(batch, c_out, height - k + 1, width - k + 1, device=device)"), SIZE],
    # a function that calls what the course's package does for it, which the grader cannot provide
    "course-function": ["from course_utils.cnn import conv_output_size", IMPORTS, CONV,
                        "def output_size(n, k, s, p):\n    return conv_output_size(n, k, s, p)"],
    # a library call that does the exercise's work
    "library": [IMPORTS + "\nimport torch.nn.functional as F",
                "def conv2d_loops(x, weight, bias):\n    return F.conv2d(x, weight, bias)", SIZE],
}


@pytest.fixture(scope="module")
def honest(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest") / "submissions"
    for name, cells in HONEST.items():
        write_notebook(root / name / "01_lesson.ipynb", cells)
    # henry: a notebook named as he liked, without its check calls; and one graded with --lesson
    cells = [IMPORTS, CONV.replace('check("01.conv2d_loops", conv2d_loops)', ""),
             SIZE.replace('check("01.output_size", output_size)', "")]
    write_notebook(root / "henry" / "hw1.ipynb", cells)
    # rita: the same lesson twice
    write_notebook(root / "rita" / "01_lesson.ipynb", [IMPORTS, CONV, BLANK_SIZE])
    write_notebook(root / "rita" / "01_lesson-Copy1.ipynb", [IMPORTS, CONV, SIZE])
    return grade_folder(root, "--seed", "7")


def test_honest_habits_are_not_tampering(honest):
    for exercise in ["01.conv2d_loops", "01.output_size"]:
        assert honest["habits", exercise][4:7] == (True, honest["habits", exercise].message, "")


def test_a_notebook_global_set_by_the_course_comes_with_the_function(honest):
    assert honest["device", "01.conv2d_loops"][4:6] == (True, "passed all 8 test cases")


def test_a_function_of_the_course_that_is_missing_is_named(honest):
    passed, message = honest["course-function", "01.output_size"][4:6]
    assert not passed and "name 'conv_output_size' is not defined" in message
    assert "cell 1 imports conv_output_size from course_utils, which the grader does not provide" in message


def test_a_library_call_doing_the_work_is_flagged_for_review(honest):
    row = honest["library", "01.conv2d_loops"]
    assert row.passed and row.review == "cell 2, line 2: conv2d; asked for explicit loops; the answer has none"
    assert honest["habits", "01.conv2d_loops"].review == ""


@pytest.mark.parametrize("source, form, review", [
    ("def f(n):\n    return n * (n + 1) // 2", "closed", ""),
    ("def f(n):\n    total = 0\n    for i in range(n + 1):\n        total += i\n    return total", "closed",
     "asked for a closed formula (no loop); cell 4, line 3 loops"),
    ("def f(n):\n    return sum(i for i in range(n + 1))", "closed",
     "asked for a closed formula (no loop); cell 4, line 2 loops"),
    ("def f(n):\n    while n:\n        n -= 1\n    return n", "loops", ""),
    ("def f(x):\n    return [y for y in x]", "loops", ""),
    ("def f(x):\n    return x.unfold(2, 3, 1).sum()", "loops", "asked for explicit loops; the answer has none"),
    ("def f(x):\n    return x", "", ""),
])
def test_an_answer_of_the_other_form_is_flagged_for_review(source, form, review):
    assert sandbox.form_review([(4, source)], form) == review


def test_an_exercise_asks_for_a_known_form_or_none():
    with pytest.raises(ValueError, match="form must be '', 'loops' or 'closed', got 'loop'"):
        exercises.engine.Exercise(id="01.x", signature="", hint="", cases=lambda g: [], reference=abs,
                                  compare=lambda a, b, c: None, form="loop")


def test_a_renamed_notebook_without_check_calls_is_graded_by_its_functions(honest):
    assert honest["henry", "01.conv2d_loops"].passed and honest["henry", "01.output_size"].passed


def test_a_lesson_handed_in_twice_is_flagged_and_the_seed_recorded(honest):
    duplicate = honest["rita", "01.output_size"].duplicate
    assert duplicate.startswith("this student handed in this lesson more than once (01_lesson-Copy1.ipynb; "
                                "01_lesson.ipynb)")
    assert honest["habits", "01.output_size"].duplicate == ""
    assert {row.seed for row in honest.values()} == {7}


def test_lesson_option_grades_any_notebook_as_that_lesson(tmp_path):
    write_notebook(tmp_path / "class" / "z" / "notes.ipynb", ["x = 1", IMPORTS, BLANK_SIZE])
    rows = grading.grade(grading.submissions_in([str(tmp_path / "class")]), lesson="01", seed=0, quiet=True)
    assert list(rows.exercise) == ["01.conv2d_loops", "01.output_size"]
    assert rows.message.tolist()[1] == NOT_IMPLEMENTED
    with pytest.raises(ValueError, match="--lesson 09: no exercises; expected one of 01, 02"):
        grading.grade([], lesson="09")


# -- unstoppable by hostile ones (probes G10-G20) -----------------------------------------

FORGERS = {  # output_size writes answers.pt itself, then ends its process
    "g17-junk": "open('answers.pt', 'w').write('junk')",
    "g18-ints": "import torch\n    torch.save([5] * 12, 'answers.pt')",
    "g19-short-raised": "import torch\n    torch.save([('raised',)] * 12, 'answers.pt')",
    "many-answers": "import torch\n    torch.save([('returned', 26)] * 99, 'answers.pt')",
    "not-a-list": "import torch\n    torch.save({'a': 1}, 'answers.pt')",
    "a-link": "import os\n    os.symlink('inputs.pt', 'answers.pt')",
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "submissions"
    for name, body in FORGERS.items():
        write_notebook(root / name / "01_lesson.ipynb", [IMPORTS, CONV, BLANK_SIZE.replace(
            "    # YOUR CODE HERE", f"    {body}\n    import os\n    os._exit(0)")])
    write_notebook(root / "alice" / "01_lesson.ipynb", [IMPORTS, CONV, SIZE])
    return grade_folder(root)


@pytest.mark.parametrize("forger", sorted(FORGERS))
def test_forged_answers_fail_without_stopping_the_class(hostile, forger):
    passed, message = hostile[forger, "01.output_size"][4:6]
    assert not passed and message.startswith("the sandbox sent back no answers the grader can read: "), message
    assert hostile[forger, "01.conv2d_loops"].passed
    assert hostile["alice", "01.output_size"].passed and hostile["alice", "01.conv2d_loops"].passed


def test_a_failure_of_the_grader_on_one_notebook_is_a_row_and_the_others_are_graded(tmp_path, monkeypatch):
    write_notebook(tmp_path / "class" / "a" / "01_lesson.ipynb", [IMPORTS, SIZE])
    write_notebook(tmp_path / "class" / "b" / "01_lesson.ipynb", [IMPORTS, SIZE])
    grade_notebook = grading.grade_notebook

    def fails_for_a(path, *args):
        if path.parent.name == "a":
            raise TypeError("boom")
        return grade_notebook(path, *args)

    monkeypatch.setattr(grading, "grade_notebook", fails_for_a)
    calls = grading.submissions_in([str(tmp_path / "class")])
    rows = grading.grade(calls, seed=0, quiet=True)
    assert rows.student.tolist() == ["a", "b", "b"]
    line = inspect.getsourcelines(fails_for_a)[1] + 2  # the line of its raise
    assert rows.message[0] == ("not graded: the grader failed on this notebook (TypeError: boom at "
                               f"test_grading.py:{line}); grade it again, or report it")
    assert rows.passed.tolist() == [False, False, True]


@pytest.mark.parametrize("timeout", ["0", "-5", "nan"])
def test_a_timeout_that_is_not_positive_is_an_error_before_grading(tmp_path, capsys, timeout):
    assert cli(["grade", str(tmp_path), "--timeout", timeout]) == 1
    assert f"--timeout must be a positive number of seconds, got {timeout}" in capsys.readouterr().err


def test_the_timeout_counts_the_function_not_the_start_up(tmp_path):
    """G12: 2 s is ample for output_size, though starting Python and torch may take longer here."""
    write_notebook(tmp_path / "class" / "a" / "01_lesson.ipynb", [IMPORTS, SIZE])
    rows = grading.grade(grading.submissions_in([str(tmp_path / "class")]), timeout_s=2, seed=0, quiet=True)
    assert rows.message.tolist()[1] == "passed all 12 test cases"


def test_a_bad_csv_path_is_an_error_before_grading_and_a_missing_folder_is_made(tmp_path, capsys):
    (tmp_path / "csvdir").mkdir()
    (tmp_path / "file").write_text("")
    write_notebook(tmp_path / "class" / "a" / "01_lesson.ipynb", [IMPORTS, BLANK_SIZE])
    assert cli(["grade", str(tmp_path / "class"), "--csv", str(tmp_path / "csvdir")]) == 1
    assert "is a folder; expected the path of a CSV file" in capsys.readouterr().err
    assert cli(["grade", str(tmp_path / "class"), "--csv", str(tmp_path / "file" / "g.csv")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    assert capsys.readouterr().out == ""  # nothing was graded
    read_only = OSError(30, "Read-only file system")
    with pytest.MonkeyPatch.context() as patch:  # root writes in any folder: only a read-only file system stops it
        patch.setattr(grading.tempfile, "TemporaryFile", lambda **_: (_ for _ in ()).throw(read_only))
        assert cli(["grade", str(tmp_path / "class"), "--csv", str(tmp_path / "ro" / "g.csv")]) == 1
    assert f"cannot write in {tmp_path} (Read-only file system)" in capsys.readouterr().err
    assert not (tmp_path / "ro").exists()
    csv = tmp_path / "new" / "sub" / "grades.csv"
    assert cli(["grade", str(tmp_path / "class"), "--csv", str(csv), "--seed", "3"]) == 0
    assert "seed of the test cases: 3" in capsys.readouterr().out
    assert pd.read_csv(csv).seed.tolist() == [3, 3]


def test_the_grader_threads_parse_one_at_a_time():
    """CPython 3.11's parser keeps one recursion counter for all threads: `grade --jobs 2` failed
    in CI with "SystemError: AST constructor recursion depth mismatch". Parsing waits for the lock."""
    import threading

    nb = new_notebook(cells=[new_code_cell("def f(x):\n    return [y for y in x]")])
    parsed = []
    worker = threading.Thread(target=lambda: parsed.append(sandbox.python_cells(nb)))
    with sandbox._PARSER:
        worker.start()
        worker.join(timeout=1)
        assert worker.is_alive() and not parsed  # waiting for the parser
    worker.join(timeout=30)
    assert [cell.tree.body[0].name for cell in parsed[0]] == ["f"]


def _fake_grading(monkeypatch, stop_at: str | None = None) -> list[str]:
    """grade_notebook without the sandbox: output_size passes for everyone; KeyboardInterrupt (Ctrl-C)
    at the student `stop_at`. Returns the students graded, in order."""
    graded = []

    def fake(path, root, seed, timeout_s=60, lesson=None, class_key=None):
        student = grading.identify(path, root)
        if student == stop_at:
            raise KeyboardInterrupt
        graded.append(student)
        return [{"student": student, "notebook": path.name, "exercise": e, "passed": e == "01.output_size",
                 "message": "=cmd|' /C calc'!A0" if e == "01.conv2d_loops" else "passed", "tampering": "",
                 "review": ""} for e in ("01.conv2d_loops", "01.output_size")]
    monkeypatch.setattr(grading, "grade_notebook", fake)
    return graded


def test_an_interrupted_grading_keeps_its_rows_and_resume_grades_only_the_others(tmp_path, monkeypatch, capsys):
    for student in ("ann", "bob", "cid"):
        write_notebook(tmp_path / "class" / student / "01_lesson.ipynb", [IMPORTS, SIZE])
    csv, partial = tmp_path / "out" / "grades.csv", tmp_path / "out" / "grades.csv.partial"
    graded = _fake_grading(monkeypatch, stop_at="bob")
    with pytest.raises(KeyboardInterrupt):
        cli(["grade", str(tmp_path / "class"), "--csv", str(csv), "--seed", "5"])
    assert graded == ["ann"] and not csv.exists()
    assert "the submissions graded so far are kept in" in capsys.readouterr().err
    assert grading.read_partial(partial).student.tolist() == ["ann", "ann"]

    with pytest.raises(FileExistsError, match="holds an interrupted grading: add --resume"):
        grading_cli._grade(argparse.Namespace(csv=str(csv), resume=False, seed=None, submissions=[str(tmp_path / "class")],
                                              timeout=60, jobs=1, lesson=None))
    assert cli(["grade", str(tmp_path / "class"), "--csv", str(csv), "--resume", "--seed", "6"]) == 1
    assert "the grading being resumed used seed 5; leave --seed out or give --seed 5" in capsys.readouterr().err

    graded = _fake_grading(monkeypatch)
    assert cli(["grade", str(tmp_path / "class"), "--csv", str(csv), "--resume"]) == 0
    assert graded == ["bob", "cid"]  # ann is not graded twice
    assert "submission(s) graded before, kept: 1" in capsys.readouterr().out
    rows = pd.read_csv(csv, keep_default_na=False)
    assert rows.student.tolist() == ["ann", "ann", "bob", "bob", "cid", "cid"]
    assert set(rows.seed) == {5} and rows.passed.tolist() == [False, True] * 3
    assert rows.message[0] == "'=cmd|' /C calc'!A0"  # made plain text in the CSV, once
    assert not partial.exists()


def test_resume_without_an_interrupted_grading_or_a_csv_is_an_error(tmp_path, capsys):
    write_notebook(tmp_path / "class" / "a" / "01_lesson.ipynb", [IMPORTS, SIZE])
    assert cli(["grade", str(tmp_path / "class"), "--resume"]) == 1
    assert "--resume continues an interrupted grade --csv FILE" in capsys.readouterr().err
    assert cli(["grade", str(tmp_path / "class"), "--csv", str(tmp_path / "g.csv"), "--resume"]) == 1
    assert "no interrupted grading to continue" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "not,a,grading\n1,2,3\n", ",".join(grading.COLUMNS) + "\nann,x,01.a,True,m,,,,abc\n",
                                  ",".join(grading.COLUMNS) + "\nann,x,01.a,TRUE!,m,,,,3\n", b"garbage\x00\xff\n"])
def test_a_partial_file_that_is_not_a_kept_grading_is_refused(tmp_path, text):
    (tmp_path / "g.csv.partial").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ValueError, match=r"g\.csv\.partial is not a grading kept by grade --csv"):
        grading.read_partial(tmp_path / "g.csv.partial")


def test_a_last_line_cut_short_is_dropped(tmp_path):
    path = tmp_path / "g.csv.partial"
    grading.append_rows(path, [{"student": "ann", "notebook": "01.ipynb", "exercise": "01.output_size",
                                "passed": True, "message": "passed\non two lines", "tampering": "",
                                "review": "", "duplicate": "", "seed": 3}])
    path.write_text(path.read_text() + "bob,01.ipynb,01.out")  # the interruption cut this row
    rows = grading.read_partial(path)
    assert rows.student.tolist() == ["ann"] and rows.message[0] == "passed\non two lines" and rows.seed[0] == 3


def test_a_cell_whose_source_is_not_text_is_a_message_not_a_grader_failure(tmp_path):
    path = tmp_path / "class" / "a" / "01_lesson.ipynb"
    path.parent.mkdir(parents=True)
    path.write_text('{"cells": [{"cell_type": "code", "source": 5, "metadata": {}, "outputs": [], '
                    '"execution_count": null}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    [row] = grading.grade(grading.submissions_in([str(tmp_path / "class")]), seed=0, quiet=True).itertuples()
    assert row.message.startswith("could not read the notebook: valid JSON but not a notebook: cell 1 has no text")
