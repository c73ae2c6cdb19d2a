"""The ``assign``, ``grade`` and ``gradebook`` subcommands of ``python -m course_utils``
(see course_utils.tooling.grading and course_utils.tooling.gradebook).

course_utils.tooling.cli builds the one parser and calls `add_parsers`; each
subcommand sets ``run``, a function of the parsed arguments that returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .arguments import positive


def _assign(args: argparse.Namespace) -> int:
    """Write the student, nbgrader or otter versions of the notebooks named (default: every lesson)."""
    from . import formats, grading
    from .runner import lesson_notebooks

    notebooks = [Path(n) for n in args.notebooks] or lesson_notebooks()
    if args.class_key is not None and args.format != "student":
        raise ValueError(f"--class-key makes student versions that `grade` grades; the {args.format} versions "
                         "ask the lessons' own exercises (leave --class-key out, or use --format student)")
    write = {"student": lambda paths, out: grading.assign(paths, out, args.class_key),
             "nbgrader": formats.nbgrader_course, "otter": formats.otter_notebooks}
    for output in write[args.format](notebooks, Path(args.out)):
        print(f"wrote {output}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    """Grade the submissions, print one line per submission, and write the CSV if asked: each
    submission's rows are kept in CSV.partial as it is graded, so that `--resume` continues an
    interrupted grading where it stopped, with its seed."""
    import pandas as pd

    from . import grading

    csv = grading.check_csv_path(Path(args.csv)) if args.csv else None
    if args.resume and csv is None:
        raise ValueError("--resume continues an interrupted grade --csv FILE: give that --csv FILE")
    partial = grading.partial_path(csv) if csv else None
    earlier, seed = pd.DataFrame(columns=grading.COLUMNS), args.seed
    if partial is not None and partial.exists():
        if not args.resume:
            raise FileExistsError(f"{partial} holds an interrupted grading: add --resume to continue it, "
                                  "or delete it to start again")
        earlier = grading.read_partial(partial)
        seed = grading.resumed_seed(earlier, args.seed)
        grading.check_resumed_class(earlier, args.class_key)
        print(f"resuming from {partial}: submission(s) graded before, kept: "
              f"{earlier.groupby(['student', 'notebook']).ngroups}")
    elif args.resume:
        raise FileNotFoundError(f"--resume: no interrupted grading to continue ({partial} does not exist)")
    submissions = grading.not_graded(grading.submissions_in(args.submissions), earlier)
    if partial is not None:
        partial.parent.mkdir(parents=True, exist_ok=True)
    keep = (lambda rows: grading.append_rows(partial, rows)) if partial else None
    try:
        new = grading.grade(submissions, args.timeout, args.jobs, seed, lesson=args.lesson, on_graded=keep,
                            class_key=args.class_key)
    except KeyboardInterrupt:
        if partial is not None and partial.exists():
            print(f"interrupted: the submissions graded so far are kept in {partial}; run the same command "
                  "with --resume to grade the others", file=sys.stderr)
        raise
    rows = grading.combine(earlier, new)
    print(grading.summary(rows).to_string() if not rows.empty else "no exercises to grade")
    if not rows.empty:
        print(f"seed of the test cases: {rows['seed'].iloc[0]} (--seed reproduces this grading)")
    if csv:
        grading.write_csv(rows, csv)
        if partial.exists():
            partial.unlink()
        print(f"wrote {len(rows)} rows to {csv}")
    return 0


def _gradebook(args: argparse.Namespace) -> int:
    """Write the gradebook and a feedback file per student from a grades CSV (course_utils.tooling.gradebook)."""
    from . import gradebook, grading

    rows = gradebook.read_grades(Path(args.grades))
    subs = grading.submissions_in(args.submissions) if args.submissions else None
    hand = gradebook.read_hand_graded(Path(args.hand_graded), rows) if args.hand_graded else None
    for path in gradebook.write_gradebook(rows, Path(args.out), subs, hand, args.implement_points):
        print(f"wrote {path}")
    return 0


def _reporting(command):
    """`command` with a user's mistake (a missing file, a bad value) as one line on stderr and status 1."""
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return run


def add_parsers(subparsers: argparse._SubParsersAction) -> None:
    """Register ``assign``, ``grade`` and ``gradebook`` on `subparsers`, each with ``set_defaults(run=...)``."""
    p = subparsers.add_parser("assign", help="write the student versions of the lesson notebooks")
    p.add_argument("notebooks", nargs="*", help="notebooks to convert (default: every lesson in notebooks/)")
    p.add_argument("--out", default="student", help="output folder (default: student/)")
    p.add_argument("--format", default="student", choices=["student", "nbgrader", "otter"],
                   help="student versions (default), an nbgrader course, or otter-assign notebooks")
    p.add_argument("--class-key", help="a secret phrase: the student versions ask this class's own variants of "
                                       "the implement exercises (grade with the same --class-key)")
    p.set_defaults(run=_reporting(_assign))
    p = subparsers.add_parser("grade", help="grade the exercise functions of submitted notebooks")
    p.add_argument("submissions", nargs="+", help="submitted notebooks, or folders of them")
    p.add_argument("--csv", help="write one row per student and exercise to this CSV file")
    p.add_argument("--timeout", type=float, default=60,
                   help="seconds allowed to each exercise's function, not counting the sandbox's "
                        "start-up (default: 60)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: 1)")
    p.add_argument("--seed", type=int, help="seed of the test cases (default: a random one, printed and "
                                            "written to the CSV)")
    p.add_argument("--lesson", help="grade every notebook as this lesson, e.g. 01 (default: from each "
                                    "notebook's name, check calls or functions)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted grading of --csv FILE from FILE.partial, with its seed")
    p.add_argument("--class-key", help="the secret the student versions were made with (assign --class-key): "
                                       "grade each exercise as this class's variant")
    p.set_defaults(run=_reporting(_grade))
    p = subparsers.add_parser("gradebook", help="a gradebook and a feedback file per student, from grade's CSV")
    p.add_argument("grades", help="the CSV written by python -m course_utils grade --csv")
    p.add_argument("--out", default="feedback", help="output folder (default: feedback/)")
    p.add_argument("--submissions", nargs="*", default=[],
                   help="the submissions graded (folders or notebooks): to flag copied answers and "
                        "collect the answers graded by hand")
    p.add_argument("--hand-graded", help="the hand-graded.csv a teaching assistant filled in: its points "
                                          "join the gradebook")
    p.add_argument("--implement-points", type=positive(int), default=1,
                   help="points per implement exercise passed (default: 1; each hand-graded answer is worth "
                        "2), to weight the two kinds of exercise")
    p.set_defaults(run=_reporting(_gradebook))
