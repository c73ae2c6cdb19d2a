"""Command line: ``python -m course_utils COMMAND ...``.

  data list | fetch NAME|all | verify      the data hub (see course_utils.data)
  metrics NOTEBOOK.ipynb                   recorded metrics as one JSON object
  run [--mode M] [--nb 01,02]              execute lessons, print a results table
  stale                                    list committed lessons whose code changed since their run
  bench lstm|crf|grading                   benchmarks that print time ratios
  sync-headers                             rewrite each notebook's Colab badge and set-up cell
  ner train|tag ...                        train or use a BiLSTM-CNN-CRF tagger (see course_utils.ner)
  assign [--format F] [--out DIR]          student versions, or an nbgrader course, or otter notebooks
  grade SUBMISSIONS ... [--csv FILE]       grade the exercise functions of submissions, in a sandbox
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import data, lesson
from . import bench, results, runner


def _data(args: argparse.Namespace) -> int:
    if args.action == "list":
        for info in data.REGISTRY.values():
            size = sum((data.data_home() / info.name / f.name).exists() for f in info.files)
            print(f"{info.name:16s} {size}/{len(info.files)} files cached  {info.description}")
        return 0
    if args.action == "verify":
        bad = 0
        for name in data.REGISTRY:
            for file, status in data.verify(name).items():
                print(f"{status if status.startswith('BAD') else f'{status:8s} {name}/{file}'}")
                bad += status.startswith("BAD")
        return 1 if bad else 0
    if not args.name:
        print("fetch needs a dataset name, or 'all'; see `data list`", file=sys.stderr)
        return 2
    names = list(data.REGISTRY) if args.name == "all" else [args.name]
    for name in names:
        for file, path in data.fetch(name).items():
            print(f"ok       {name}/{file} -> {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    table = bench.run(args.name)
    print(table.to_string(index=False))
    return 0


def _stale() -> int:
    stale = results.stale_notebooks(runner.lesson_notebooks())
    for notebook, reasons in stale.items():
        print(f"stale    {notebook.name}: " + "; ".join(reasons))
    if stale:
        print("re-run them: make run NB=" + ",".join(nb.name[:2] for nb in stale))
    else:
        print("every lesson's outputs were made by its current code")
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ner"]:  # these tools parse their own arguments
        from .. import ner_train

        return ner_train.main(argv[1:])
    if argv[:1] in (["assign"], ["grade"]):
        from . import grading

        return grading.main(argv)
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("data", help="list, fetch or verify datasets")
    p.add_argument("action", choices=["list", "fetch", "verify"])
    p.add_argument("name", nargs="?", help="a dataset name or 'all' (for fetch)")
    p = commands.add_parser("metrics", help="print a notebook's recorded metrics as JSON")
    p.add_argument("notebook")
    p = commands.add_parser("run", help="execute lesson notebooks with papermill")
    p.add_argument("--mode", default="cpu", choices=lesson.MODES)
    p.add_argument("--nb", default="", help="lesson numbers, e.g. 01 or 01,03 (default: all)")
    commands.add_parser("stale", help="list lessons whose course_utils code changed since their run")
    p = commands.add_parser("bench", help="time our implementations against the reference ones, or the grader")
    p.add_argument("name", choices=sorted(bench.BENCHMARKS))
    commands.add_parser("sync-headers", help="rewrite the Colab badge and set-up cell of every notebook")
    commands.add_parser("ner", help="train or use a BiLSTM-CNN-CRF tagger: ner --help")
    commands.add_parser("assign", help="write student versions of the notebooks: assign --help")
    commands.add_parser("grade", help="grade submitted notebooks: grade --help")
    args = parser.parse_args(argv)

    try:
        if args.command == "data":
            return _data(args)
        if args.command == "metrics":
            print(json.dumps(results.read_metrics(args.notebook), indent=1))
            return 0
        if args.command == "run":
            table = runner.run_lessons(args.mode, args.nb or None)
            print(table.to_string(index=False))
            return 0 if (table["status"] == "ok").all() else 1
        if args.command == "bench":
            return _bench(args)
        if args.command == "stale":
            return _stale()
        from . import colab

        for notebook in runner.lesson_notebooks():
            print(("updated " if colab.sync_headers(notebook) else "unchanged ") + notebook.name)
        return 0
    except (ValueError, FileNotFoundError, data.DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
