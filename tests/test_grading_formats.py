"""assign --format nbgrader|otter, round-tripped through the real tools on all six lessons.

nbgrader: generate_assignment, autograde of the instructor's version (full marks),
of the ``make student`` / Colab version and (lesson 01) of nbgrader's release (zero), export.
otter: assign, then a local run (no Docker) of the autograder's version (full marks)
and of the ``make student`` / Colab version (zero). Only what the graded functions
need runs (formats.autograde_version), so each notebook takes seconds.
The round trips are marked slow: about 6 minutes for each tool's six lessons on 2 busy cores.
"""

import json
import linecache
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_utils.exercises import lesson_exercises
from course_utils.tooling import formats, grading, runner

LESSONS = ["01", "02", "03", "04", "05", "06"]
BIN = Path(sys.executable).parent


def tool(module: str, *args: str, cwd: Path) -> str:
    """Run nbgrader or otter as ``python -m``, its stdout. nbgrader runs without the venv's bin on PATH,
    as an instructor who did not activate the venv runs it (its config puts it there: alembic);
    otter with it first."""
    path = [p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN]
    env = {**os.environ, "PATH": os.pathsep.join(path if module == "nbgrader" else [str(BIN), *path])}
    env.pop("COURSE_MODE", None)  # the exports must set smoke mode themselves
    run = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def learner(tmp_path_factory) -> Path:
    """The ``make student`` versions of every lesson (what the Colab badge opens too)."""
    folder = tmp_path_factory.mktemp("learner")
    grading.assign(runner.lesson_notebooks(), folder)
    return folder


def notebook(*sources: str) -> nbformat.NotebookNode:
    return new_notebook(cells=[new_code_cell(s) for s in sources])


# ---------------------------------------------------------------------------
# graded_check: the test cell both tools run
# ---------------------------------------------------------------------------


def output_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def test_graded_check_passes_a_right_function_and_fails_a_wrong_one_with_the_hint():
    formats.graded_check("01.output_size", {"output_size": output_size})
    with pytest.raises(AssertionError, match=r"both\* sides.*drawn with seed \d+"):
        formats.graded_check("01.output_size", {"output_size": lambda n, k, s, p: (n + p - k) // s + 1})


def _defined_in_a_cell(source: str, filename: str) -> dict:
    """The globals after running `source` as IPython runs a cell: its lines kept in linecache."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def test_graded_check_flags_a_library_call_that_does_the_work_for_review(capsys):
    """Instructor review: nbgrader and otter gave full marks to F.conv2d in conv2d_loops, with no flag."""
    source = "import torch.nn.functional as F\ndef conv2d_loops(x, weight, bias):\n    return F.conv2d(x, weight, bias)\n"
    formats.graded_check("01.conv2d_loops", _defined_in_a_cell(source, "cell-7.py"))
    printed = capsys.readouterr()  # on stdout: nbgrader gives 0 to a test cell with stderr (instructor review)
    assert printed.err == "" and printed.out.startswith(
        "FOR REVIEW (01.conv2d_loops): passed, but line 2 of conv2d_loops: conv2d; asked for explicit loops;")
    formats.graded_check("01.conv2d_loops", _defined_in_a_cell(source, "cell-7.py"), flag=False)  # otter's test
    assert capsys.readouterr() == ("", "")
    exec_only: dict = {}
    exec(source, exec_only)  # no source kept: nothing to review, and no error
    formats.graded_check("01.conv2d_loops", exec_only)
    formats.graded_check("01.output_size", {"output_size": output_size})
    assert capsys.readouterr() == ("", "")


def test_review_check_fails_only_a_flagged_answer_and_names_why():
    source = "import torch.nn.functional as F\ndef conv2d_loops(x, weight, bias):\n    return F.conv2d(x, weight, bias)\n"
    with pytest.raises(AssertionError, match=r"FOR REVIEW \(01.conv2d_loops\): line 2 of conv2d_loops: conv2d;"):
        formats.review_check("01.conv2d_loops", _defined_in_a_cell(source, "cell-7.py"))
    formats.review_check("01.output_size", {"output_size": output_size})
    formats.review_check("01.output_size", {})  # no function: graded_check says so, with its points


def test_graded_check_names_a_missing_function_and_stops_an_endless_loop():
    with pytest.raises(AssertionError, match=r"no def output_size\(\.\.\.\)"):
        formats.graded_check("01.output_size", {})

    def forever(n, k, s, p):
        while True:
            pass
    with pytest.raises(AssertionError, match=r"did not answer within 0.5 s \(an endless loop\?\)"):
        formats.graded_check("01.output_size", {"output_size": forever}, timeout_s=0.5)


# ---------------------------------------------------------------------------
# what runs when a submission is autograded
# ---------------------------------------------------------------------------


def test_gathered_code_is_the_function_with_what_it_needs_and_the_course_imports():
    nb = notebook("from course_utils import get_device\nimport math\nK = 3",
                  "model = train_for_hours()",
                  "def helper(n):\n    return n + K\n\ndef output_size(n, k, s, p):\n    return helper(n)\n"
                  "check('01.output_size', output_size)")
    code = formats.gathered_code(nb, ["01.output_size", "01.conv2d_loops"])
    assert "os.environ['COURSE_MODE'] = 'smoke'" in code
    assert "from course_utils import get_device" in code and "K = 3" in code and "def helper" in code
    assert "train_for_hours" not in code and "import math" not in code and "check(" not in code


def test_gathered_code_follows_the_rules_of_grade():
    """Only what the sandbox provides of the course; a failing setup statement passed over; the imports
    first, whatever the order of the cells (issue 22: otter passed what grade failed)."""
    nb = notebook("ONE = torch.ones(())\nDATA = open('/no/such/file').read()",
                  "from course_utils.cnn import conv_output_size\nfrom course_utils.train import get_device, fit",
                  "def output_size(n, k, s, p):\n    from course_utils.cnn import receptive_field\n"
                  "    return conv_output_size(n, k, s, p) + int(ONE) * len(DATA)", "import torch")
    code = formats.gathered_code(nb, ["01.output_size"])
    assert "from course_utils.train import get_device\n" in code and "conv_output_size\n" not in code
    assert "fit" not in code
    assert "raise ModuleNotFoundError(\"No module named 'course_utils.cnn' (grading runs without course_utils)\")" \
        in code
    assert code.index("import torch") < code.index("ONE = torch.ones(())") < code.index("def output_size")
    namespace = {}
    exec(code.replace("import os\n\nos.environ['COURSE_MODE'] = 'smoke'", ""), namespace)
    assert "ONE" in namespace and "DATA" not in namespace  # the failing statement passed over
    with pytest.raises(AssertionError, match="raised ModuleNotFoundError: No module named 'course_utils.cnn'"):
        formats.graded_check("01.output_size", namespace)


def test_an_exercise_whose_check_call_was_deleted_gets_its_test(learner):
    nb = nbformat.read(learner / runner.lesson_notebooks("01")[0].name, as_version=4)
    for cell in nb.cells:
        cell.source = re.sub(r"check\([^)]*\)", "", cell.source)
    graded = formats.autograde_version(nb, "01")
    tests = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert sorted(t.source for t in tests) == sorted(formats.test_source(e) for e in lesson_exercises("01"))
    assert [t.metadata.nbgrader.grade_id for t in tests] == [f"test-{e}".replace(".", "_")
                                                              for e in lesson_exercises("01")]


def test_the_nbgrader_config_finds_alembic_and_waits_for_a_loaded_machine(tmp_path):
    [config, *_] = formats.nbgrader_course(runner.lesson_notebooks("01"), tmp_path / "course")
    text = config.read_text()
    assert 'os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep' in text
    assert "c.Execute.startup_timeout = 120" in text and "c.Execute.timeout = 120" in text


def test_a_learner_version_gets_its_test_cells_and_only_the_tests_run(learner):
    nb = nbformat.read(learner / runner.lesson_notebooks("01")[0].name, as_version=4)
    graded = formats.autograde_version(nb, "01")
    tests = [c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert [t.source for t in tests] == [formats.test_source(e) for e in lesson_exercises("01")]
    runs = [c for c in graded.cells if c.cell_type == "code" and formats.SKIP_TAG not in c.metadata.get("tags", [])]
    assert runs == [graded.cells[0], *tests]
    assert graded.cells[0].source.startswith(formats.GATHERED)
    answers = [c.metadata.nbgrader.grade_id for c in graded.cells
               if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers == ["answer-01_conv2d_loops", "answer-01_output_size", "written-01-3", "written-01-4",
                       "written-01-5"]


def test_nbgrader_version_of_the_instructors_notebook(tmp_path):
    [lesson] = runner.lesson_notebooks("01")
    written = formats.nbgrader_course([lesson], tmp_path / "course")
    assert written == [tmp_path / "course" / "nbgrader_config.py",
                       tmp_path / "course" / "source" / lesson.stem / lesson.name,
                       tmp_path / "course" / "rubric" / f"{lesson.stem}-rubric.md"]
    config = written[0].read_text()
    assert "NbgraderCells" in config and 'os.environ.setdefault("COURSE_MODE", "smoke")' in config
    nb = nbformat.read(written[1], as_version=4)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
    assert [(t.metadata.nbgrader.points, t.metadata.nbgrader.locked) for t in tests] == [(1, True)] * 2
    assert [t.source for t in tests] == [formats.test_source(e) for e in lesson_exercises("01")]
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        formats.nbgrader_course([lesson], written[0])


def test_otter_version_accepts_any_learner_version_and_creates_its_grader(tmp_path):
    [lesson] = runner.lesson_notebooks("05")
    written = formats.otter_notebooks([lesson], tmp_path / "otter")
    assert written == [tmp_path / "otter" / lesson.name, tmp_path / "otter" / "requirements.txt",
                       tmp_path / "otter" / "rubric" / f"{lesson.stem}-rubric.md"]
    config = nbformat.read(written[0], as_version=4).cells[0].source
    assert "\nname:" not in config and "init_cell: true" in config and "requirements: requirements.txt" in config
    assert "course_utils.tooling.formats.OtterCells:\n      lesson: '05'" in config
    commit = formats.course_commit()
    assert len(commit) == 40 and written[1].read_text().splitlines()[1:] == [
        f"torch=={formats.torch.__version__.split('+')[0]}",
        f"course-utils @ git+https://github.com/dl-course/cnn-lstm-course@{commit}"]  # pinned, not a branch
    cells = nbformat.read(written[0], as_version=4).cells
    manual = [i for i, c in enumerate(cells) if c.cell_type == "raw" and "manual: true" in c.source]
    assert len(manual) == len(formats.written_exercises(nbformat.read(lesson, as_version=4)))
    for i in manual:  # the answer's heading is the prompt, the pointer to the rubric the hidden solution
        assert cells[i + 1].source.startswith("**Your answer to exercise") and "rubric" in cells[i + 3].source
        assert [c.source for c in cells[i + 2:i + 6:2]] == ["# BEGIN SOLUTION", "# END SOLUTION"]


def test_otter_markers_give_the_course_stub_to_students():
    source = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    assert formats._otter_markers(source) == (
        'def f():\n    """ # BEGIN PROMPT\n    # YOUR CODE HERE\n    raise NotImplementedError()\n'
        '    """ # END PROMPT\n    # BEGIN SOLUTION NO PROMPT\n    return 1\n    # END SOLUTION')


# ---------------------------------------------------------------------------
# hand-graded exercises
# ---------------------------------------------------------------------------


def test_every_lesson_has_hand_graded_exercises_of_the_three_kinds():
    kinds = {}
    for lesson in runner.lesson_notebooks():
        found = formats.written_exercises(nbformat.read(lesson, as_version=4))
        assert len(found) >= 3, lesson
        kinds |= {e.kind: e.criteria for e in found}
    assert kinds["change the model"] == formats.CRITERIA["change"]
    assert kinds["read a plot"] == formats.CRITERIA["read"]
    assert kinds["measure"] == formats.CRITERIA["measure"] and kinds["compute"] == formats.CRITERIA["compute"]


def test_answer_cells_follow_their_exercise_in_order():
    nb = new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "**Exercise 1 (implement).** Write f.\n\n**Exercise 2 (read a plot).** Which?\n\n"
        "**Exercise 3 (measure).** How long?"), new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("## End")])
    cells = formats.with_answer_cells(nb).cells
    assert [c.source.split("**")[1] for c in cells[2:4]] == ["Your answer to exercise 2", "Your answer to exercise 3"]
    assert cells[1].source == "x = 1" and cells[4].source == "## End"
    assert cells[2].source.endswith("YOUR ANSWER HERE")


def test_nbgrader_gives_each_hand_graded_exercise_a_manually_graded_answer_cell():
    [lesson] = runner.lesson_notebooks("05")
    nb = formats.nbgrader_version(nbformat.read(lesson, as_version=4), lesson.stem)
    written = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "")
               .startswith("written")]
    assert [(w.grade_id, w.points, w.grade, w.solution) for w in written] == [
        (f"written-05-{n}", formats.WRITTEN_POINTS, True, True) for n in (3, 4, 5)]


def test_the_rubric_holds_each_exercise_its_criteria_and_the_committed_runs_numbers(tmp_path):
    [lesson] = runner.lesson_notebooks("04")
    [path] = formats.write_rubric([lesson], tmp_path / "instructors")
    assert path == tmp_path / "instructors" / f"{lesson.stem}-rubric.md"
    text = path.read_text()
    assert text.count("\n## Exercise ") == 5 and text.count("**Criteria.**") == 5
    assert "return clips[:, 1:] - clips[:, :-1]" in text  # the instructor's frame_differences
    metrics = formats.read_metrics(lesson)
    key, value = next((k, v) for k, v in metrics.items() if isinstance(v, float))
    assert f"| {key} | {value:.4g} |" in text
    [student] = grading.assign([lesson], tmp_path / "student")
    assert "Criteria" not in student.read_text() and "rubric" not in student.read_text()


def test_every_hand_graded_exercise_has_a_model_answer_with_the_committed_numbers():
    for lesson in runner.lesson_notebooks():
        nb, metrics = nbformat.read(lesson, as_version=4), formats.read_metrics(lesson)
        for exercise in formats.written_exercises(nb):
            answer = formats.model_answer(lesson.name[:2], exercise.number, metrics)
            assert "none written yet" not in answer and "(not recorded)" not in answer, (lesson.name, exercise)
            assert "## " not in exercise.question, exercise.question  # the question stops at the next heading
    text = formats.rubric(nbformat.read(runner.lesson_notebooks("01")[0], as_version=4), "01_cnn",
                          {"test_accuracy": 0.92791, "seeds": 3})
    assert "**Model answer.** Without BatchNorm" in text and "(the committed CNN: 0.9279;" in text
    assert formats.model_answer("09", 1, {}) == "none written yet: grade by the criteria"


# ---------------------------------------------------------------------------
# the round trips through the real tools
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_nbgrader_gives_full_marks_and_zero_on_every_lesson(learner, tmp_path):
    course = tmp_path / "course"
    formats.nbgrader_course(runner.lesson_notebooks(), course)
    seconds = {}
    for lesson in runner.lesson_notebooks():
        name = lesson.stem
        tool("nbgrader", "generate_assignment", name, cwd=course)
        versions = [("teacher", course / "source" / name / lesson.name), ("colab", learner / lesson.name)]
        if name.startswith("01"):  # nbgrader's own release, once: its stubs are the learner version's
            versions.append(("released", course / "release" / name / lesson.name))
            # a passing answer flagged FOR REVIEW keeps its points (instructor review: stderr gave it 0)
            flagged = nbformat.read(learner / lesson.name, as_version=4)
            cell = next(c for c in flagged.cells if c.cell_type == "code" and "def conv2d_loops" in c.source)
            cell.source += "\n\n\ndef conv2d_loops(x, weight, bias):\n    return torch.nn.functional.conv2d(x, weight, bias)\n"
            nbformat.write(flagged, tmp_path / "flagged.ipynb")
            versions.append(("flagged", tmp_path / "flagged.ipynb"))
        for student, version in versions:
            (course / "submitted" / student / name).mkdir(parents=True)
            (course / "submitted" / student / name / lesson.name).write_bytes(version.read_bytes())
        start = time.perf_counter()
        tool("nbgrader", "autograde", name, "--create", cwd=course)
        seconds[name] = (time.perf_counter() - start) / len(versions)
    tool("nbgrader", "export", cwd=course)
    grades = pd.read_csv(course / "grades.csv").set_index(["assignment", "student_id"])
    assert grades.loc[(runner.lesson_notebooks("01")[0].stem, "released"), "score"] == 0
    assert grades.loc[(runner.lesson_notebooks("01")[0].stem, "flagged"), "score"] == 1  # conv2d_loops, flagged
    for lesson in runner.lesson_notebooks():
        points = len(lesson_exercises(lesson.name[:2]))
        written = formats.WRITTEN_POINTS * len(formats.written_exercises(nbformat.read(lesson, as_version=4)))
        # the hand-graded answers count once a grader has marked them in formgrader
        assert grades.loc[(lesson.stem, "teacher"), ["score", "max_score"]].tolist() == [points, points + written]
        assert grades.loc[(lesson.stem, "colab"), "score"] == 0
    print("nbgrader autograde, seconds per student:", seconds)  # a report, not a test: timings vary


@pytest.mark.slow
@pytest.mark.parametrize("number", LESSONS)
def test_otter_gives_full_marks_and_zero(number, learner, tmp_path):
    [lesson] = runner.lesson_notebooks(number)
    formats.otter_notebooks([lesson], tmp_path / "otter")
    tool("otter", "assign", f"otter/{lesson.name}", "dist", cwd=tmp_path)
    [autograder] = (tmp_path / "dist" / "autograder").glob("*.zip")
    points = len(lesson_exercises(number))
    versions = [("solution", tmp_path / "dist" / "autograder", 1.0), ("colab", learner, 0.0)]
    if number == "01":  # a passing answer flagged FOR REVIEW passes in otter too (instructor review)
        flagged = nbformat.read(tmp_path / "dist" / "autograder" / lesson.name, as_version=4)
        cell = next(c for c in flagged.cells if c.cell_type == "code" and "def conv2d_loops" in c.source)
        cell.source += "\n\n\ndef conv2d_loops(x, weight, bias):\n    return torch.nn.functional.conv2d(x, weight, bias)\n"
        (tmp_path / "flagged-version").mkdir()
        nbformat.write(flagged, tmp_path / "flagged-version" / lesson.name)
        versions.append(("flagged", tmp_path / "flagged-version", 1.0))
    for name, version, score in versions:
        (tmp_path / name).mkdir()
        tool("otter", "run", "-a", str(autograder), "-o", name, str(version / lesson.name), cwd=tmp_path)
        results = json.loads((tmp_path / name / "results.json").read_text())
        scores = {t["name"]: t["score"] for t in results["tests"] if t.get("score") is not None}
        assert scores == {e.replace(".", "_"): score for e in lesson_exercises(number)}, results
        assert len(scores) == points
        assert ("FOR REVIEW (01.conv2d_loops): line" in json.dumps(results)) == (name == "flagged"), results


def test_the_kernel_5_numbers_of_lesson_01s_model_answer_are_the_cnns():
    from torch import nn

    from course_utils.cnn import make_cnn, receptive_field

    cnn = make_cnn()
    total = sum(p.numel() for p in cnn.parameters())
    convs = [layer for layer in cnn if isinstance(layer, nn.Conv2d)]
    weights = sum(c.weight.numel() for c in convs)
    wider = sum(c.in_channels * c.out_channels * 25 for c in convs)
    answer = formats.model_answer("01", 3, {})
    for number in (weights, wider, total, total - weights + wider, sum(c.out_channels for c in convs)):
        assert f"{number:,}" in answer
    fields = [receptive_field([(k, 1), (2, 2), (k, 1), (2, 2), (k, 1)]) for k in (3, 5)]
    assert f"from {fields[0]} to {fields[1]} pixels" in answer
