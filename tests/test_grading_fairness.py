"""grade on the submissions that an instructor's review and the reliability probes found graded unfairly
(issue 22): cells out of order, harmless setup, lambdas, odd file names, links, kill, big seeds, formulas.

The notebooks are small lesson-01 ones built as tests/test_grading.py builds them.
"""

import os
import subprocess
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook
from test_grading import CONV, IMPORTS, SIZE, cli, write_notebook

from course_utils.tooling import grading, sandbox

SIZE_ONLY = SIZE.replace('\n\n\ncheck("01.output_size", output_size)', "")
ANNOTATED_CONV = CONV.replace("def conv2d_loops(x, weight, bias):",
                              "def conv2d_loops(x: torch.Tensor, weight: torch.Tensor, bias) -> torch.Tensor:")


def cells_of(*sources):
    """The cells of a notebook of code cells `sources`, as the sandbox reads them."""
    return sandbox.python_cells(new_notebook(cells=[new_code_cell(s) for s in sources]))


# -- what extract takes, and in which order (no sandbox) ------------------------------------------


def test_imports_come_first_and_each_statement_after_what_it_uses():
    cells = cells_of("ONE = torch.ones(())", "def output_size(n, k, s, p):\n    return int(ONE) * n",
                     "import torch", "import torch  # again", "UNUSED = 1")
    found = sandbox.extract(cells, "output_size")
    assert found.code == [(4, "import torch  # again"), (1, "ONE = torch.ones(())"),
                          (2, "def output_size(n, k, s, p):\n    return int(ONE) * n")]
    assert found.setup == (1,)


def test_names_used_only_in_annotations_come_along():
    found = sandbox.extract(cells_of(ANNOTATED_CONV, IMPORTS), "conv2d_loops")
    assert [number for number, _ in found.code] == [2, 1] and not found.problem


def test_a_statement_keeps_its_line_number_in_its_cell():
    found = sandbox.extract(cells_of("import torch\n\nK = 2\nX = 1", "def f():\n    return K"), "f")
    assert found.code == [(1, "\n\nK = 2"), (2, "def f():\n    return K")]


@pytest.mark.parametrize("source", ["output_size = lambda n, k, s, p: (n + 2 * p - k) // s + 1",
                                    "output_size: object = lambda n, k, s, p: 0"])
def test_an_exercise_bound_by_assignment_is_taken(source):
    found = sandbox.extract(cells_of(source), "output_size")
    assert not found.problem and found.code == [(1, source)] and found.setup == ()


def test_an_exercise_bound_by_import_is_refused():
    found = sandbox.extract(cells_of("from torch.nn.functional import conv2d as conv2d_loops"), "conv2d_loops")
    assert found.problem == ("cell 1 binds conv2d_loops by importfrom, not with def or an assignment: "
                             "write the function conv2d_loops yourself")


# -- graded end to end ------------------------------------------------------------------------


SETUP = ("import tempfile\nfrom pathlib import Path\nWORK = Path(tempfile.mkdtemp())\n"
         "SECRET = open('/etc/hostname').read()")
FAIR = {  # student -> (file name, cells)
    "reordered": ("01_lesson.ipynb", ["ONE = torch.ones(())", ANNOTATED_CONV,
                                      SIZE.replace("return (", "return int(ONE) * ("), IMPORTS, "import torch"]),
    "setup": ("01_lesson.ipynb", [IMPORTS, SETUP, CONV.replace("    ### BEGIN", "    print(SECRET)\n    ### BEGIN"),
                                  SIZE.replace("    ### BEGIN", "    if n < 0:\n        print(WORK, SECRET)\n"
                                                              "    ### BEGIN")]),
    "lambda": ("01_lesson.ipynb", [IMPORTS, CONV, "output_size = lambda n, k, s, p: (n + 2 * p - k) // s + 1"]),
    "lab": ("12_03_lab.ipynb", [IMPORTS, CONV, SIZE]),
    "=HYPERLINK(\"x\")": ("01_lesson.ipynb", [IMPORTS, CONV, SIZE]),
    "killer": ("01_lesson.ipynb", [IMPORTS, CONV, SIZE.replace(
        "    ### BEGIN", "    import os, signal\n    os.kill(os.getppid(), signal.SIGCONT)\n    ### BEGIN")]),
}


@pytest.fixture(scope="module")
def fair(tmp_path_factory):
    root = tmp_path_factory.mktemp("fair") / "submissions"
    for student, (name, cells) in FAIR.items():
        write_notebook(root / student / name, cells)
    (root / "linker").mkdir()
    os.symlink(root / "lambda" / "01_lesson.ipynb", root / "linker" / "01_lesson.ipynb")
    csv = root.parent / "grades.csv"
    assert cli(["grade", str(root), "--csv", str(csv), "--jobs", "2", "--seed", "5"]) == 0
    rows = pd.read_csv(csv, keep_default_na=False)
    return {(row.student, row.exercise): row for row in rows.itertuples()}


def test_cells_above_the_imports_and_annotations_are_graded_as_the_notebook_ran(fair):
    for exercise in ["01.conv2d_loops", "01.output_size"]:
        assert fair["reordered", exercise][4:7] == (True, fair["reordered", exercise].message, "")


def test_harmless_setup_that_fails_in_the_sandbox_is_not_tampering(fair):
    assert fair["setup", "01.output_size"][4:7] == (True, "passed all 12 test cases", "")
    passed, message, tampering = fair["setup", "01.conv2d_loops"][4:7]
    assert not passed and tampering == "" and "raised NameError: name 'SECRET' is not defined" in message
    assert "(the grader could not run cell 2: PermissionError: the grader's sandbox does not allow this: " \
           "its code read outside its folder: /etc/hostname)" in message


def test_a_lambda_is_graded(fair):
    assert fair["lambda", "01.output_size"][4:6] == (True, "passed all 12 test cases")


def test_a_file_name_that_is_no_lesson_falls_back_to_the_check_calls(fair):
    assert fair["lab", "01.output_size"].passed and fair["lab", "01.conv2d_loops"].passed


def test_a_linked_submission_is_a_row_and_the_class_is_graded(fair):
    row = fair["linker", ""]
    assert not row.passed and row.message.startswith("could not read the notebook: it is a link (to ")
    assert row.message.endswith("not a notebook: hand in the .ipynb file itself")
    assert fair["lambda", "01.conv2d_loops"].passed


def test_a_formula_in_a_folder_name_is_plain_text_in_the_csv(fair):
    assert fair["'=HYPERLINK(\"x\")", "01.output_size"].passed


def test_signalling_the_grader_is_tampering(fair):
    passed, message, tampering = fair["killer", "01.output_size"][4:7]
    assert not passed and tampering == "used a forbidden interpreter feature (os.kill)", message


def test_the_csv_neutralises_every_text_that_starts_a_formula():
    rows = pd.DataFrame({"student": ["=1+1", "+a", "-b", "@c", "\tx", "ok"], "seed": [-1] * 6})
    safe = grading.spreadsheet_safe(rows)
    assert safe.student.tolist() == ["'=1+1", "'+a", "'-b", "'@c", "'\tx", "ok"]
    assert safe.seed.tolist() == [-1] * 6


@pytest.mark.parametrize("seed", ["-1", str(2 ** 63), str(2 ** 70)])
def test_a_seed_torch_cannot_take_is_an_error_before_grading(tmp_path, capsys, seed):
    write_notebook(tmp_path / "class" / "a" / "01_lesson.ipynb", [IMPORTS, SIZE])
    assert cli(["grade", str(tmp_path / "class"), "--seed", seed]) == 1
    captured = capsys.readouterr()
    assert f"--seed must be a whole number from 0 to {2 ** 63 - 1} (2**63 - 1), got {seed}" in captured.err
    assert captured.out == ""


def test_the_largest_seed_grades(tmp_path):
    write_notebook(tmp_path / "class" / "a" / "01_lesson.ipynb", [IMPORTS, SIZE_ONLY])
    rows = grading.grade(grading.submissions_in([str(tmp_path / "class")]), seed=2 ** 63 - 1, quiet=True,
                         lesson="01")
    assert rows.set_index("exercise").passed["01.output_size"]


def test_a_named_lesson_needs_exercises():
    assert grading.named_lesson("01_cnn.ipynb") == "01"
    assert grading.named_lesson("12_03_lab.ipynb") is None and grading.named_lesson("hw.ipynb") is None


def test_a_student_version_is_graded_with_its_answer_cells(tmp_path):
    cells = [("markdown", "**Exercise 1 (change the model).** Halve the filters.\n\n"
                          "**Exercise 2 (implement).** Write output_size."), IMPORTS, SIZE]
    source = write_notebook(tmp_path / "01_lesson.ipynb", cells)
    [student] = grading.assign([source], tmp_path / "student")
    sources = [c.source for c in nbformat.read(student, as_version=4).cells]
    assert sources[3].startswith("**Your answer to exercise 1** (2 points, graded by hand")
    assert len(sources) == 4


@pytest.mark.parametrize("path", ["submissions/alice/01_cnn.ipynb", "grades.csv", "grades-week1.csv",
                                  "feedback/alice.md", "course/nbgrader_config.py", "otter/requirements.txt",
                                  "dist/autograder/x.zip", "dist-2/student/x.ipynb", "results/x.json",
                                  "instructors/01-rubric.md"])
def test_students_work_grades_and_answers_stay_out_of_git(path):
    root = Path(__file__).parents[1]
    run = subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=root)
    assert run.returncode == 0, f"{path} is not ignored by .gitignore"


def test_course_files_stay_in_git():
    root = Path(__file__).parents[1]
    for path in ["notebooks/06_distributed_training.ipynb", "course_utils/tooling/grading.py"]:
        assert subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=root).returncode == 1


def test_a_helper_named_like_a_builtin_comes_with_the_function():
    """Package review: a learner's own `pow` helper was left out (builtin names were never followed), so the
    builtin ran instead and a correct answer failed in grading while the notebook's check passed it."""
    helper = "def pow(n, k, s, p):\n    return (n + 2 * p - k) // s + 1"
    size = "def output_size(n, k, s, p):\n    return pow(n, k, s, p)"
    found = sandbox.extract(cells_of(helper, size), "output_size")
    assert found.code == [(1, helper), (2, size)] and not found.problem
    outcome = sandbox.grade_cells(cells_of(helper, size), ["01.output_size"], seed=0, timeout_s=60)["01.output_size"]
    assert outcome.passed, outcome.message
