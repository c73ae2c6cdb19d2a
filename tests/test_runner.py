"""Tests for how course_utils.tooling.runner reports a lesson that failed."""

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError

from course_utils.tooling import runner


def test_a_cell_timeout_is_reported_as_a_sentence_not_a_row_of_dashes():
    """Probe M27: the report of a cell over the time limit was the last line of nbclient's
    message, a row of '-------'."""
    cell = nbformat.v4.new_code_cell("while True:\n    pass")
    error = CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", 5, cell)
    assert str(error).strip().splitlines()[-1].strip("-") == ""
    assert runner._reason(error, 5.0) == ("a cell ran longer than the cell timeout of 5 s; give it more time "
                                          "with --cell-timeout SECONDS or $COURSE_CELL_TIMEOUT_S")


def test_other_failures_report_their_last_line_with_words():
    error = RuntimeError("Traceback ...\nValueError: expected 3 columns\n-------\n")
    assert runner._reason(error, None) == "ValueError: expected 3 columns"
    assert runner._reason(RuntimeError("----"), None) == "RuntimeError"


def test_a_cell_timeout_prints_no_traceback_of_the_kernel(tmp_path, capfd):
    """Probe M27: the kernel stopped at a timeout printed the traceback of its own shutdown
    into the learner's terminal; its messages now go to runner.kernel_log."""
    notebook = tmp_path / "slow.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(60)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebook)
    with pytest.raises(Exception) as error:
        runner.execute(notebook, tmp_path / "out.ipynb", "smoke", timeout_s=3)
    assert runner._reason(error.value, 3).startswith("a cell ran longer than the cell timeout of 3 s")
    assert "Traceback" not in capfd.readouterr().err
    assert runner.kernel_log(notebook).is_file() and not (tmp_path / "out.ipynb").exists()
