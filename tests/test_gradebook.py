"""The gradebook, feedback files and flags made from the rows of `grade` (course_utils.tooling.gradebook)."""

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils.tooling import gradebook, grading, runner
from test_grading import cli

RIGHT = "def output_size(n, k, s, p):\n    return (n + 2 * p - k) // s + 1"


def row(student, notebook, exercise, passed, message="passed all 12 test cases", **flags):
    return {"student": student, "notebook": notebook, "exercise": exercise, "passed": passed,
            "message": message, "tampering": "", "review": "", **flags}


@pytest.fixture
def rows():
    return pd.DataFrame([
        row("alice", "01_cnn.ipynb", "01.conv2d_loops", True), row("alice", "01_cnn.ipynb", "01.output_size", True),
        row("alice", "02_lstm.ipynb", "02.lstm_step", False, "test case 1 of 7: wrong. Hint: gate order"),
        row("alice", "02_lstm.ipynb", "02.temperature_probs", True),
        row("rita", "01_cnn.ipynb", "01.conv2d_loops", False, "not implemented yet"),
        row("rita", "01_cnn.ipynb", "01.output_size", False, "not implemented yet"),
        row("rita", "01_cnn-Copy1.ipynb", "01.conv2d_loops", True),
        row("rita", "01_cnn-Copy1.ipynb", "01.output_size", True),
        row("sam", "01_cnn.ipynb", "01.conv2d_loops", False, "the code died", tampering="wrote outside"),
        row("sam", "01_cnn.ipynb", "01.output_size", True),
        row("vic", "02_lstm.ipynb", "", False, "could not read the notebook: not valid JSON"),
    ])


def test_the_gradebook_has_one_row_per_student_with_points_per_lesson(rows):
    table = gradebook.gradebook(rows).set_index("student")
    assert list(table.columns) == ["01 (of 2)", "02 (of 2)", "total", "of", "flags"]
    assert table.loc["alice", ["01 (of 2)", "02 (of 2)", "total", "of"]].tolist() == [2, 1, 3, 4]
    assert table.loc["rita", "01 (of 2)"] == 2  # the better notebook counts
    assert pd.isna(table.loc["rita", "02 (of 2)"]) and table.loc["rita", "total"] == 2
    assert table.loc["vic", "total"] == 0 and table.loc["vic", "of"] == 4


def test_implement_points_weight_each_exercise_passed(rows):
    table = gradebook.gradebook(rows, implement_points=3).set_index("student")
    assert list(table.columns) == ["01 (of 6)", "02 (of 6)", "total", "of", "flags"]
    assert table.loc["alice", ["01 (of 6)", "02 (of 6)", "total", "of"]].tolist() == [6, 3, 9, 12]
    for wrong in (0, -1, 1.5):
        with pytest.raises(ValueError, match="--implement-points must be a positive whole number"):
            gradebook.gradebook(rows, implement_points=wrong)


def test_resubmissions_tampering_and_unreadable_notebooks_are_flagged(rows):
    flags = gradebook.gradebook(rows).set_index("student")["flags"]
    assert flags["alice"] == ""
    assert flags["rita"] == "lesson 01 handed in more than once (01_cnn-Copy1.ipynb counts; also 01_cnn.ipynb)"
    assert flags["sam"] == "tampering: 01_cnn.ipynb (01.conv2d_loops)"
    assert flags["vic"] == "unreadable or ungraded: 02_lstm.ipynb"


def test_feedback_lists_each_exercise_with_its_failing_case_and_hint(rows):
    text = gradebook.feedback(rows, "alice")
    assert text.splitlines()[:5] == ["# Feedback for alice", "", "## 01_cnn.ipynb: 2 of 2 passed", "",
                                     "- **01.conv2d_loops**: passed. passed all 12 test cases"]
    assert "## 02_lstm.ipynb: 1 of 2 passed" in text
    assert "- **02.lstm_step**: FAILED. test case 1 of 7: wrong. Hint: gate order" in text
    assert "- **the notebook**: FAILED. could not read" in gradebook.feedback(rows, "vic")


def submission(folder, student, *sources):
    nb = new_notebook(cells=[new_markdown_cell("# Lesson 01"), *map(new_code_cell, sources)])
    (folder / student).mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / student / "01_cnn.ipynb")


def test_identical_answers_across_students_are_flagged_comments_and_layout_aside(tmp_path):
    subs = tmp_path / "submissions"
    submission(subs, "ann", "def output_size(n, k, s, p):\n    padded = n + 2 * p\n    if k > padded:\n"
                            "        return 0\n    fits = padded - k\n    return fits // s + 1")
    submission(subs, "ben", "import math\n\n# mine!\ndef output_size(size: int,kernel,stride,pad) -> int:\n    'doc'\n"
                            "    padded = size + 2*pad\n    if kernel > padded:\n        return 0\n"
                            "    fits = padded - kernel\n    return fits//stride + 1")
    submission(subs, "cy", "def output_size(n, k, s, p):\n    return (n - k + 2 * p) // s + 1")
    submission(subs, "flo", "def output_size(n, k, s, p):\n    return (n - k + 2 * p) // s + 1")
    submission(subs, "dee", "def output_size(n, k, s, p):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    submission(subs, "eve", "def output_size(n, k, s, p):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    rows = pd.DataFrame([row(s, "01_cnn.ipynb", "01.output_size", s in "ann ben cy") for s in
                         ["ann", "ben", "cy", "dee", "eve", "flo"]])
    found = gradebook.answers(grading.submissions_in([str(subs)]), rows)
    assert sorted(found["student"]) == ["ann", "ben", "cy", "flo"]  # untouched stubs are not answers
    assert found.set_index("student").loc["ann", "cell"] == 2
    copies = gradebook.copies(found)
    assert copies.values.tolist() == [["ann", "01.output_size", "ben"], ["ben", "01.output_size", "ann"]]
    flags = gradebook.gradebook(rows, copies).set_index("student")["flags"]
    assert flags["ann"] == "copy: 01.output_size is the same code as ben"  # names and annotations aside
    assert flags["cy"] == flags["flo"] == ""  # a one-line formula is no copy


def test_write_gradebook_writes_the_table_and_a_feedback_file_per_student(rows, tmp_path):
    written = gradebook.write_gradebook(rows, tmp_path / "out")
    assert written == [tmp_path / "out" / "gradebook.csv",
                       *[tmp_path / "out" / f"{s}.md" for s in ["alice", "rita", "sam", "vic"]]]
    assert pd.read_csv(written[0])["student"].tolist() == ["alice", "rita", "sam", "vic"]
    assert not list((tmp_path / "out").rglob("*.part"))  # written atomically, nothing left behind
    assert gradebook._file_name("grace/Homework 1 - Grace") == "grace_Homework_1_-_Grace"


def test_the_command_line_reads_a_grades_csv_and_rejects_another_csv(rows, tmp_path, capsys):
    grading.write_csv(rows.assign(duplicate="", seed=7), tmp_path / "grades.csv")
    assert cli(["gradebook", str(tmp_path / "grades.csv"), "--out", str(tmp_path / "book")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "book" / "rita.md").exists()
    pd.DataFrame({"name": ["x"]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(ValueError, match="no column student, notebook, exercise, passed, message; expected"):
        gradebook.read_grades(tmp_path / "other.csv")


def test_the_published_solution_is_flagged_and_feedback_names_each_students_own_cell(tmp_path):
    [lesson] = runner.lesson_notebooks("01")
    solution = next(c.source for c in nbformat.read(lesson, as_version=4).cells
                    if c.cell_type == "code" and "def conv2d_loops" in c.source)
    subs = tmp_path / "submissions"
    submission(subs, "ann", "def conv2d_loops(x, weight, bias):\n    return F.conv2d(x, weight, bias)")
    submission(subs, "ben", "x = 1", "y = 2", solution)
    rows = pd.DataFrame([row(s, "01_cnn.ipynb", "01.conv2d_loops", True) for s in ["ann", "ben"]])
    written = gradebook.write_gradebook(rows, tmp_path / "out", grading.submissions_in([str(subs)]))
    flags = pd.read_csv(written[0], keep_default_na=False).set_index("student")["flags"]
    assert flags["ann"] == "" and flags["ben"] == f"copy: 01.conv2d_loops is the same code as {gradebook.PUBLISHED}"
    assert "(your def is in cell 2)" in written[1].read_text() and "(your def is in cell 4)" in written[2].read_text()


def _class_with_answers(tmp_path):
    """alice answered exercise 3 of lesson 01 in her answer cell; bob left every answer cell as it was."""
    learner = nbformat.read(runner.lesson_notebooks("01")[0].parent / "exercises" / runner.lesson_notebooks("01")[0].name, 4)
    for student, answer in (("alice", "Without BatchNorm: 0.91 against 0.93.\n\nThe steps are smaller."), ("bob", None)):
        nb = nbformat.from_dict(learner)
        if answer:
            cell = next(c for c in nb.cells if c.source.startswith("**Your answer to exercise 3**"))
            cell.source = cell.source.replace("YOUR ANSWER HERE", answer)
        else:  # bob answers exercise 5 in a cell of his own, not in the answer cell
            at = next(i for i, c in enumerate(nb.cells) if "**Exercise 5 (" in c.source)
            nb.cells.insert(at + 1, nbformat.v4.new_markdown_cell("Sides 26, 13, 11, 5, 3, 1."))
        (tmp_path / "class" / student).mkdir(parents=True)
        nbformat.write(nb, tmp_path / "class" / student / "01_cnn.ipynb")
    rows = pd.DataFrame([row(s, "01_cnn.ipynb", e, True) for s in ("alice", "bob")
                         for e in ("01.conv2d_loops", "01.output_size")])
    return rows, grading.submissions_in([str(tmp_path / "class")])


def test_answers_graded_by_hand_are_collected_for_a_teaching_assistant(tmp_path):
    rows, submissions = _class_with_answers(tmp_path)
    written = gradebook.write_gradebook(rows, tmp_path / "fb", submissions)
    assert {p.name for p in written} >= {"answers-01.md", "hand-graded.csv", "gradebook.csv"}
    text = (tmp_path / "fb" / "answers-01.md").read_text()
    assert "## Exercise 3 (change the model)" in text and "**Criteria.** 1 point:" in text
    assert "**Model answer** (numbers of the course's committed run): Without BatchNorm" in text
    assert "### alice (01_cnn.ipynb)\n\n> Without BatchNorm: 0.91 against 0.93.\n>\n> The steps are smaller." in text
    assert "### bob (01_cnn.ipynb)\n\n*(no answer)*" in text
    assert ("### bob (01_cnn.ipynb)\n\n> (written outside the answer cell, below exercise 5's question:)\n"
            "> Sides 26, 13, 11, 5, 3, 1.") in text
    template = pd.read_csv(tmp_path / "fb" / "hand-graded.csv", dtype=str, keep_default_na=False)
    assert list(template.columns) == gradebook.HAND_COLUMNS
    assert template[["student", "exercise"]].values.tolist() == [["alice", "3"], ["alice", "4"], ["alice", "5"],
                                                                 ["bob", "3"], ["bob", "4"], ["bob", "5"]]
    assert (template.points == "").all()


def test_a_teaching_assistants_points_join_the_gradebook_and_are_never_overwritten(tmp_path, capsys):
    rows, submissions = _class_with_answers(tmp_path)
    gradebook.write_gradebook(rows, tmp_path / "fb", submissions)
    hand_csv = tmp_path / "fb" / "hand-graded.csv"
    marked = pd.read_csv(hand_csv, dtype=str, keep_default_na=False)
    marked.loc[0, "points"], marked.loc[3, "points"], marked.loc[4, "points"] = "2", "0", "1.5"
    marked.loc[0, "comment"] = "measured, and the reason is right"
    marked.to_csv(hand_csv, index=False)
    written = gradebook.write_gradebook(rows, tmp_path / "fb", submissions,
                                        gradebook.read_hand_graded(hand_csv, rows))
    assert hand_csv not in written and pd.read_csv(hand_csv).points.notna().sum() == 3  # the TA's work is kept
    table = pd.read_csv(tmp_path / "fb" / "gradebook.csv").set_index("student")
    assert table.loc["alice", ["01 (of 2)", "01 by hand (of 6)", "total", "of"]].tolist() == [2, 2, 4, 8]
    assert table.loc["bob", ["01 by hand (of 6)", "total"]].tolist() == [1.5, 3.5]
    assert "not graded by hand yet: lesson 01 exercise 4" in table.loc["alice", "flags"]
    assert "exercise 3" not in table.loc["alice", "flags"]
    alice = (tmp_path / "fb" / "alice.md").read_text()  # instructor re-review: the TA's work reaches the student
    assert "- **lesson 01, exercise 3**: 2 points: measured, and the reason is right" in alice
    assert "- **lesson 01, exercise 4**: not graded yet" in alice
    assert "- **lesson 01, exercise 4**: 1.5 points" in (tmp_path / "fb" / "bob.md").read_text()


@pytest.mark.parametrize("change, message", [
    ({"student": "zoe"}, r"line 2: unknown student 'zoe'"),
    ({"exercise": "9"}, r"line 2: lesson '01' has no exercise '9' graded by hand; expected one of 3, 4, 5"),
    ({"points": "3"}, r"line 2: points '3'; expected a number from 0 to 2"),
    ({"points": "two"}, r"line 2: points 'two'"),
])
def test_a_mistake_in_the_hand_graded_points_names_its_line(tmp_path, change, message):
    rows, _ = _class_with_answers(tmp_path)
    path = tmp_path / "hand.csv"
    pd.DataFrame([{"student": "alice", "lesson": "01", "exercise": "3", "points": "1", "comment": "",
                   **change}]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        gradebook.read_hand_graded(path, rows)


def test_copied_written_answers_are_flagged_and_shown_to_the_teaching_assistant(tmp_path):
    """Instructor review: two identical written answers went unflagged."""
    rows, submissions = _class_with_answers(tmp_path)
    learner = nbformat.read(tmp_path / "class" / "alice" / "01_cnn.ipynb", 4)
    cell = next(c for c in learner.cells if c.source.startswith("**Your answer to exercise 3**"))
    cell.source = cell.source.replace("Without BatchNorm: 0.91", "without batchnorm  0.91")  # case and layout aside
    (tmp_path / "class" / "carl").mkdir()
    nbformat.write(learner, tmp_path / "class" / "carl" / "01_cnn.ipynb")
    rows = pd.concat([rows, rows[rows.student == "alice"].assign(student="carl")], ignore_index=True)
    submissions = grading.submissions_in([str(tmp_path / "class")])
    gradebook.write_gradebook(rows, tmp_path / "fb", submissions)
    flags = pd.read_csv(tmp_path / "fb" / "gradebook.csv", keep_default_na=False).set_index("student")["flags"]
    assert "copy: 01 written 3 is the same text as carl" in flags["alice"]
    assert "copy: 01 written 3 is the same text as alice" in flags["carl"] and "written" not in flags["bob"]
    text = (tmp_path / "fb" / "answers-01.md").read_text()
    assert "### alice (01_cnn.ipynb): the same text as carl" in text
    assert (f"`python -m course_utils gradebook grades.csv --submissions {tmp_path / 'class'} --out {tmp_path / 'fb'} "
            f"--hand-graded {tmp_path / 'fb'}/hand-graded.csv`") in text


def test_copy_flags_name_a_few_and_count_the_rest_and_ignore_notebooks_that_do_not_count(tmp_path):
    """Instructor review: 19 of 24 flags listed ten names or more, and a first attempt that did
    not count was called a copy."""
    subs = tmp_path / "submissions"
    body = ("def output_size(n, k, s, p):\n    padded = n + 2 * p\n    if k > padded:\n"
            "        return 0\n    fits = padded - k\n    return fits // s + 1")
    students = ["ann", "ben", "cy", "dee", "eve", "flo"]
    for student in students:
        submission(subs, student, body)
    submission(subs, "gus", body)  # gus's first attempt, the same code, which his second beats
    nbformat.write(new_notebook(cells=[new_code_cell("def output_size(n, k, s, p):\n    return (n + 2 * p - k) // s + 1")]),
                   subs / "gus" / "01_cnn_v2.ipynb")
    rows = pd.DataFrame([row(s, "01_cnn.ipynb", "01.output_size", True) for s in students]
                        + [row("gus", "01_cnn.ipynb", "01.output_size", False),
                           row("gus", "01_cnn_v2.ipynb", "01.output_size", True)])
    gradebook.write_gradebook(rows, tmp_path / "fb", grading.submissions_in([str(subs)]))
    flags = pd.read_csv(tmp_path / "fb" / "gradebook.csv", keep_default_na=False).set_index("student")["flags"]
    assert flags["ann"] == "copy: 01.output_size is the same code as ben, cy, dee and 2 other student(s)"
    assert "copy" not in flags["gus"] and "gus" not in flags["ann"]


def test_text_written_below_an_answer_cell_belongs_to_that_exercise(tmp_path):
    """Instructor re-review: lena wrote below the answer cells of exercises 3 and 4, which lesson 01
    asks in one cell with exercise 5; both texts were filed under exercise 5."""
    [lesson] = runner.lesson_notebooks("01")
    nb = nbformat.read(lesson.parent / "exercises" / lesson.name, 4)
    for number in (4, 3):  # inserted from the bottom up
        at = next(i for i, c in enumerate(nb.cells) if c.source.startswith(f"**Your answer to exercise {number}**"))
        nb.cells.insert(at + 1, nbformat.v4.new_markdown_cell(f"My own words on exercise {number}."))
    (tmp_path / "class" / "lena").mkdir(parents=True)
    nbformat.write(nb, tmp_path / "class" / "lena" / "01_cnn.ipynb")
    rows = pd.DataFrame([row("lena", "01_cnn.ipynb", e, True) for e in ("01.conv2d_loops", "01.output_size")])
    texts = gradebook.written_answers(grading.submissions_in([str(tmp_path / "class")]), rows).set_index("exercise")
    assert texts.loc[3, "answer"].endswith("My own words on exercise 3.")
    assert texts.loc[4, "answer"].endswith("My own words on exercise 4.")
    assert texts.loc[5, "answer"] == ""
