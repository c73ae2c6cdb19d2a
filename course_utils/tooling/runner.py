"""Execute lesson notebooks with papermill and report their recorded metrics.

Used by ``make run`` (``python -m course_utils run``) and the notebook tests.
A notebook runs in a fresh kernel with ``COURSE_MODE`` set; papermill injects
no parameters, so the executed notebook keeps its own parameters cell. Each
executed notebook is stamped with the fingerprint of the course_utils code it
imported (see course_utils.tooling.results), which ``stale`` checks.

A cell that runs longer than the cell timeout stops its lesson (``--cell-timeout``,
else ``$COURSE_CELL_TIMEOUT_S``, else 600 s in smoke mode and no limit in the
others). The executed notebook is written with course_utils.tooling.files, so a
run that fails or is killed leaves the previous output as it was.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO, Any

import pandas as pd

from ..lesson import MODES
from .files import atomic_file
from .results import cell_sources, code_fingerprint, read_metrics, read_notebook, stamp

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_ENV = "COURSE_CELL_TIMEOUT_S"
SMOKE_CELL_TIMEOUT_S = 600.0


def cell_timeout(mode: str, seconds: float | None = None) -> float | None:
    """Seconds one cell may run: `seconds` if given, else ``$COURSE_CELL_TIMEOUT_S``,
    else SMOKE_CELL_TIMEOUT_S in smoke mode; None (no limit) otherwise."""
    if seconds is not None:
        return seconds
    text = os.environ.get(CELL_TIMEOUT_ENV, "").strip()
    if not text:
        return SMOKE_CELL_TIMEOUT_S if mode == "smoke" else None
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{CELL_TIMEOUT_ENV} must be a positive number of seconds, got {text!r}")
    return seconds


def lesson_notebooks(selection: str | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The lesson notebooks ``NN_name.ipynb`` in teaching order; `selection` ("01", or
    "01,03") keeps those whose number is listed."""
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        wanted = {s.strip().zfill(2) for s in selection.split(",") if s.strip()}
        if not wanted:
            raise ValueError(f"expected lesson numbers such as 01 or 01,03, got {selection!r}")
        notebooks = [p for p in notebooks if p.name[:2] in wanted]
        found = {p.name[:2] for p in notebooks}
        if wanted - found:
            raise ValueError(f"no lesson numbered {sorted(wanted - found)} in {folder}")
    return notebooks


def kernel_log(notebook: Path) -> Path:
    """Where the kernel that runs `notebook` writes its own messages (its stderr)."""
    return ROOT / "runs" / "logs" / f"{notebook.stem}.kernel.log"


def _kernel_manager_writing_to(log: IO[bytes]) -> type:
    """A kernel manager class whose kernels write their own messages to `log`, not to this
    terminal: a kernel stopped at a cell timeout prints a traceback of its own shutdown
    there, which is not the lesson's and hides the one-sentence reason."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelManagerWithLog(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.setdefault("stderr", log)
            await super().start_kernel(**kw)

    return KernelManagerWithLog


def execute(notebook: Path, output: Path, mode: str, timeout_s: float | None = None) -> float:
    """Run `notebook` in `mode` with papermill, each cell allowed `timeout_s` seconds
    (None: no limit), and write the result to `output` only once the run has
    succeeded, stamped with the code it ran with. The kernel's own messages go to
    ``kernel_log(notebook)``. Returns the seconds taken."""
    import nbformat
    import papermill

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    env = {"COURSE_MODE": mode, "COURSE_PROGRESS": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fingerprint = code_fingerprint(cell_sources(read_notebook(notebook)))
    start = time.perf_counter()
    kernel_log(notebook).parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(kernel_log(notebook), "wb") as log:
            executed = papermill.execute_notebook(str(notebook), None, cwd=str(notebook.parent),
                                                  kernel_name="python3", progress_bar=False,
                                                  execution_timeout=timeout_s,
                                                  kernel_manager_class=_kernel_manager_writing_to(log))
        if code_fingerprint(cell_sources(executed)) != fingerprint:
            raise RuntimeError(f"course_utils changed while {notebook.name} ran; run it again")
        stamp(executed, fingerprint)
        with atomic_file(output) as partial:
            nbformat.write(executed, partial)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return time.perf_counter() - start


def _reason(err: Exception, timeout_s: float | None) -> str:
    """One sentence on why a lesson failed: for a cell over the time limit, that limit; else
    the last line of `err`'s message that holds a word or a number (papermill's messages hold
    a whole traceback, and rows of dashes), or its type."""
    from nbclient.exceptions import CellTimeoutError

    if isinstance(err, CellTimeoutError) and timeout_s is not None:
        return (f"a cell ran longer than the cell timeout of {timeout_s:g} s; give it more time with "
                f"--cell-timeout SECONDS or ${CELL_TIMEOUT_ENV}")
    lines = [line.strip() for line in str(err).splitlines() if any(c.isalnum() for c in line)]
    return lines[-1] if lines else type(err).__name__


def run_lessons(mode: str = "cpu", selection: str | None = None,
                out_dir: Path | None = None, cell_timeout_s: float | None = None) -> pd.DataFrame:
    """Execute the selected lessons one after another and return a results table.

    cpu-mode runs are written back into notebooks/ (they are the committed
    versions); other modes go to ``runs/<mode>/`` unless `out_dir` says otherwise.
    A lesson that fails is reported in the table and the others still run.
    """
    timeout_s = cell_timeout(mode, cell_timeout_s)
    if out_dir is None:
        out_dir = NOTEBOOKS if mode == "cpu" else ROOT / "runs" / mode
    rows = []
    for notebook in lesson_notebooks(selection):
        output = out_dir / notebook.name
        print(f"running {notebook.name} in {mode} mode ...", flush=True)
        try:
            seconds = execute(notebook, output, mode, timeout_s)
            metrics = {k: v for k, v in read_metrics(output).items() if k not in ("mode", "seconds")}
            status = "ok"
        except Exception as err:  # report and go on with the other lessons
            seconds, metrics, status = float("nan"), {}, f"failed: {type(err).__name__}"
            print(f"error: {notebook.name}: {_reason(err, timeout_s)} (the kernel's own messages: "
                  f"{kernel_log(notebook)})")
        rows.append({"lesson": notebook.stem, "mode": mode, "minutes": round(seconds / 60, 2),
                     "status": status,
                     "metrics": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in metrics.items())})
    return pd.DataFrame(rows)
