"""The notebook markers the course's grading tools share: solution regions, check calls, clean copies.

A lesson marks each solution with the lines ``### BEGIN SOLUTION`` and
``### END SOLUTION`` (nbgrader's markers) and checks an exercise with
``check("NN.name", function)``. ``assign`` (course_utils.tooling.grading) and the
nbgrader/otter exports (course_utils.tooling.formats) both read these markers here.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

from nbformat import NotebookNode

from .files import file_in_the_way

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
_CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d\d\.\w+(?:@\w+)?)["']""")
_RUN_METADATA = ("papermill", "execution", "nbgrader")


def has_solution(source: str) -> bool:
    """Whether `source` holds a solution marker (either of the pair)."""
    return SOLUTION_BEGIN in source or SOLUTION_END in source


def strip_solutions(source: str, cell_type: str = "code", where: str = "the cell") -> str:
    """`source` with every solution region replaced by the stub of its cell type.

    Args:
        source: a cell's source.
        cell_type: "code" (stub: ``# YOUR CODE HERE`` / ``raise NotImplementedError()``)
            or "markdown" (stub: ``YOUR ANSWER HERE``).
        where: names the cell in error messages, e.g. "01_cnn.ipynb, cell 44".

    Raises:
        ValueError: for a marker without its partner, or a region inside another.
    """
    stub = CODE_STUB if cell_type == "code" else TEXT_STUB
    lines, begin = [], None  # begin: the line number of the open region's BEGIN marker
    for number, line in enumerate(source.split("\n"), 1):
        marker = line.strip()
        if marker == SOLUTION_BEGIN:
            if begin is not None:
                raise ValueError(f"{where}, line {number}: '{SOLUTION_BEGIN}' inside the region "
                                 f"opened on line {begin}")
            begin = number
            indent = line[: len(line) - len(line.lstrip())]
            lines += [indent + s for s in stub]
        elif marker == SOLUTION_END:
            if begin is None:
                raise ValueError(f"{where}, line {number}: '{SOLUTION_END}' without a "
                                 f"'{SOLUTION_BEGIN}' before it")
            begin = None
        elif begin is None:
            lines.append(line)
    if begin is not None:
        raise ValueError(f"{where}, line {begin}: '{SOLUTION_BEGIN}' without a '{SOLUTION_END}' after it")
    return "\n".join(lines)


def clean(nb: NotebookNode) -> NotebookNode:
    """A copy of `nb` without outputs, execution counts, and the metadata of papermill and nbgrader."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        for key in _RUN_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def check_calls(source: str) -> list[str]:
    """The exercise ids named by the ``check("NN.name", ...)`` calls in `source`, in order."""
    return _CHECK_CALL.findall(source)


def rename_check_calls(source: str, ids: dict[str, str]) -> str:
    """`source` with each ``check("old", ...)`` call of `ids` ({old: new}) naming the new id."""
    return _CHECK_CALL.sub(lambda m: m.group(0).replace(m.group(1), ids.get(m.group(1), m.group(1))), source)


def check_out_dir(out_dir: Path) -> Path:
    """`out_dir` as a Path, if it is a folder or can become one.

    Raises:
        NotADirectoryError: if it, or a path above it, is an existing file.
    """
    out_dir = Path(out_dir)
    blocker = file_in_the_way(out_dir)
    if blocker is not None:
        raise NotADirectoryError(f"--out {out_dir}: {blocker} is a file, not a folder; name a folder "
                                 "(it is created if missing)")
    return out_dir
