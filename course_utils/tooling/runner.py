"""Execute lesson notebooks with papermill and report their recorded metrics.

Used by ``make run`` (``python -m course_utils run``) and the notebook tests.
A notebook runs in a fresh kernel with ``COURSE_MODE`` set; papermill injects
no parameters, so the executed notebook keeps its own parameters cell. Each
executed notebook is stamped with the fingerprint of the course_utils code it
imported (see course_utils.tooling.results), which ``stale`` checks.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd

from ..lesson import MODES
from .results import cell_sources, code_fingerprint, read_metrics, stamp

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def lesson_notebooks(selection: str | None = None, folder: Path = NOTEBOOKS) -> list[Path]:
    """The lesson notebooks ``NN_name.ipynb`` in teaching order; `selection` ("01", or
    "01,03") keeps those whose number is listed."""
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if selection:
        wanted = {s.strip().zfill(2) for s in selection.split(",") if s.strip()}
        notebooks = [p for p in notebooks if p.name[:2] in wanted]
        found = {p.name[:2] for p in notebooks}
        if wanted - found:
            raise ValueError(f"no lesson numbered {sorted(wanted - found)} in {folder}")
    return notebooks


def execute(notebook: Path, output: Path, mode: str, timeout_s: int | None = None) -> float:
    """Run `notebook` in `mode` with papermill, writing the result to `output`
    only once the run has succeeded, stamped with the code it ran with.
    Returns the seconds taken."""
    import nbformat
    import papermill

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.running.ipynb")
    env = {"COURSE_MODE": mode, "COURSE_PROGRESS": "0", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    fingerprint = code_fingerprint(cell_sources(json.loads(notebook.read_text(encoding="utf-8"))))
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(partial), cwd=str(notebook.parent),
                                   kernel_name="python3", progress_bar=False,
                                   execution_timeout=timeout_s)
        executed = nbformat.read(partial, as_version=4)
        if code_fingerprint(cell_sources(executed)) != fingerprint:
            raise RuntimeError(f"course_utils changed while {notebook.name} ran; run it again")
        stamp(executed, fingerprint)
        nbformat.write(executed, partial)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return time.perf_counter() - start


def run_lessons(mode: str = "cpu", selection: str | None = None,
                out_dir: Path | None = None) -> pd.DataFrame:
    """Execute the selected lessons one after another and return a results table.

    cpu-mode runs are written back into notebooks/ (they are the committed
    versions); other modes go to ``runs/<mode>/`` unless `out_dir` says otherwise.
    A lesson that fails is reported in the table and the others still run.
    """
    if out_dir is None:
        out_dir = NOTEBOOKS if mode == "cpu" else ROOT / "runs" / mode
    rows = []
    for notebook in lesson_notebooks(selection):
        output = out_dir / notebook.name
        print(f"running {notebook.name} in {mode} mode ...", flush=True)
        try:
            seconds = execute(notebook, output, mode)
            metrics = {k: v for k, v in read_metrics(output).items() if k not in ("mode", "seconds")}
            status = "ok"
        except Exception as err:  # report and go on with the other lessons
            seconds, metrics, status = float("nan"), {}, f"failed: {type(err).__name__}"
            print(err)
        rows.append({"lesson": notebook.stem, "mode": mode, "minutes": round(seconds / 60, 2),
                     "status": status,
                     "metrics": ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in metrics.items())})
    return pd.DataFrame(rows)
