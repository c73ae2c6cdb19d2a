"""Command line: ``python -m course_utils COMMAND ...``.

  data list | fetch NAME|all | verify      the data hub (see course_utils.tooling.datasets)
  metrics NOTEBOOK.ipynb                   recorded metrics as one JSON object
  run [--mode M] [--nb 01,02] [--cell-timeout S]
                                           execute lessons, print a results table
  stale                                    list committed lessons whose code changed since their run
  bench lstm|crf|grading                   benchmarks that print time ratios
  sync-headers                             rewrite each notebook's Colab badge and set-up cell
  ner train|tag ...                        train or use a BiLSTM-CNN-CRF tagger (see course_utils.ner)
  assign [--format F] [--out DIR]          student versions, or an nbgrader course, or otter notebooks
  grade SUBMISSIONS ... [--csv FILE]       grade the exercise functions of submissions, in a sandbox
  gradebook GRADES.csv [--out DIR]         a gradebook and a feedback file per student
  site [--out DIR]                         build the course website (make site)
  colab-check ...                          run the learner versions as Colab would (make colab-check)
  mutation [NAME ...] [--sample K]         share of deliberate bugs the tests catch (make mutation)

Each command is a subparser whose ``run(args)`` returns the exit status, one
rule for every command (EXIT_STATUSES, shown at the end of ``--help``). A
mistake in what the user gave (a missing, unreadable or broken file, an
unknown name) prints one ``error: ...`` line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from typing import Callable

import pandas as pd

from ..lesson import MODES
from . import colab_check, datasets, grading_cli, mutation, ner_cli, results, runner
from .arguments import positive
from ..benchmarks import crf_benchmark, lstm_benchmark

USER_MISTAKES = (ValueError, TypeError, OSError, datasets.DataError)
EXIT_STATUSES = """exit status, for every command:
  0          done
  1          a mistake in what was given (one 'error: ...' line), or a failed result
             (a lesson that failed, a stale lesson, a tagger saved elsewhere than --out)
  2          a usage error: an unknown command or option, a bad option value (argparse)
  128 + N    stopped by signal N: 130 Ctrl-C (SIGINT), 129 SIGHUP, 143 SIGTERM;
             141 when the output's reader went away (SIGPIPE: `... | head`)"""


def _data(args: argparse.Namespace) -> int:
    return datasets.data_command(args.action, args.name)


def _metrics(args: argparse.Namespace) -> int:
    print(json.dumps(results.read_metrics(args.notebook), indent=1, allow_nan=False))
    return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds, so no half-written notebook stays


def _run(args: argparse.Namespace) -> int:
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        table = runner.run_lessons(args.mode, args.nb or None, cell_timeout_s=args.cell_timeout)
    finally:
        signal.signal(signal.SIGTERM, previous)  # a caller in the same process keeps its own handler
    if table.empty:
        raise ValueError(f"no lesson notebooks (NN_name.ipynb) to run in {runner.NOTEBOOKS}")
    print(table.to_string(index=False))
    return 0 if (table["status"] == "ok").all() else 1


def _stale(args: argparse.Namespace) -> int:
    stale = results.stale_notebooks(runner.lesson_notebooks())
    for notebook, reasons in stale.items():
        print(f"stale    {notebook.name}: " + "; ".join(reasons))
    if stale:
        print("re-run them: make run NB=" + ",".join(nb.name[:2] for nb in stale))
    else:
        print("every lesson's outputs were made by its current code")
    return 1 if stale else 0


def grading_benchmark() -> pd.DataFrame:
    """The grader on copies of a lesson-01 student version (needs the dev extras)."""
    from .grading import benchmark

    return benchmark()


BENCHMARKS: dict[str, Callable[[], pd.DataFrame]] = {
    "lstm": lstm_benchmark, "crf": crf_benchmark, "grading": grading_benchmark,
}


def _bench(args: argparse.Namespace) -> int:
    print(BENCHMARKS[args.name]().to_string(index=False))
    return 0


def _sync_headers(args: argparse.Namespace) -> int:
    from . import colab

    for notebook in runner.lesson_notebooks():
        print(("updated " if colab.sync_headers(notebook) else "unchanged ") + notebook.name)
    return 0


def _site(args: argparse.Namespace) -> int:
    from . import site  # Sphinx and docutils: the site's dependencies, not the course's

    print(f"site: {site.build(out=args.out) / 'index.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The one parser of ``python -m course_utils``, a subparser per command."""
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__, epilog=EXIT_STATUSES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("data", help="list, fetch or verify datasets")
    p.add_argument("action", choices=["list", "fetch", "verify"])
    p.add_argument("name", nargs="?", help="a dataset name or 'all' (for fetch)")
    p.set_defaults(run=_data)
    p = commands.add_parser("metrics", help="print a notebook's recorded metrics as JSON")
    p.add_argument("notebook")
    p.set_defaults(run=_metrics)
    p = commands.add_parser("run", help="execute lesson notebooks with papermill")
    p.add_argument("--mode", default="cpu", choices=MODES)
    p.add_argument("--nb", default="", help="lesson numbers, e.g. 01 or 01,03 (default: all)")
    p.add_argument("--cell-timeout", type=positive(float, "seconds"), default=None, metavar="SECONDS",
                   help=f"stop a lesson whose cell runs longer (default: ${runner.CELL_TIMEOUT_ENV}, "
                        f"else {runner.SMOKE_CELL_TIMEOUT_S:g} s in smoke mode and no limit otherwise)")
    p.set_defaults(run=_run)
    p = commands.add_parser("stale", help="list lessons whose course_utils code changed since their run")
    p.set_defaults(run=_stale)
    p = commands.add_parser("bench", help="time our implementations against the reference ones, or the grader")
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.set_defaults(run=_bench)
    p = commands.add_parser("sync-headers", help="rewrite the Colab badge and set-up cell of every notebook")
    p.set_defaults(run=_sync_headers)
    ner_cli.add_parser(commands)
    grading_cli.add_parsers(commands)
    p = commands.add_parser("site", help="build the course website (make site)")
    p.add_argument("--out", type=Path, default=runner.ROOT / "site", help="output folder (default: site/)")
    p.set_defaults(run=_site)
    colab_check.add_parser(commands)
    mutation.add_parser(commands)
    return parser


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout is not a file (captured by a test, or closed)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run the command; return its exit status
    (EXIT_STATUSES). A usage error raises SystemExit(2), as argparse does."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # the reader of our output has gone (`... | head`): nothing to say
        _stdout_to_devnull()
        return 128 + signal.SIGPIPE
    except USER_MISTAKES as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 128 + signal.SIGINT
