"""``make mutation``: how many deliberate bugs (mutants) the tests catch, per module.

For each target, mutmut changes one small thing at a time in the module (``<``
for ``<=``, ``+ 1`` for ``+ 2``, ``and`` for ``or``, a removed call ...) and runs
only that module's own test file(s); a mutant that makes a test fail is *killed*.
String literals are not mutated (``--disable-mutation-types string,fstring``):
wrapping an error message in "XX...XX" changes no behaviour the tests should pin. The run happens
in a temporary copy of the checkout, so an interrupted run never leaves a
mutated module behind. Prints one line per target: ``NAME: K/N killed (P%)``.

    python -m course_utils mutation [NAME ...] [--sample K] [--show]

A target may name functions: then only their lines are mutated (the sandbox
guard is three functions of ``sandbox_runner.py``; its other lines have other
tests). mutmut's statuses: ``ok_killed`` (a test failed), ``ok_suspicious`` (a
test failed, slowly) and ``bad_timeout`` (the tests never ended) count as
killed; ``bad_survived`` as survived; ``skipped`` mutants are not counted.

``--sample K`` tests one mutant in K (chosen by a hash of its line and index,
the same ones every run) to bound the time on a slow machine. Not part of CI:
a full run takes tens of minutes.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import closing
from pathlib import Path
from typing import NamedTuple

from course_utils.tooling.arguments import positive
from course_utils.tooling.files import write_text

ROOT = Path(__file__).resolve().parents[2]


class Target(NamedTuple):
    """A module to mutate, the test files that may kill its mutants, and the functions
    whose lines are mutated (empty: the whole module)."""
    module: str
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()


TARGETS: dict[str, Target] = {
    "crf": Target("course_utils/crf.py", ("tests/test_crf.py",)),
    "lstm": Target("course_utils/lstm.py", ("tests/test_lstm.py",)),
    "sandbox-guard": Target("course_utils/tooling/sandbox_runner.py", ("tests/test_sandbox_guard.py",),
                            ("inside", "writes", "guard")),
}
KILLED = ("ok_killed", "ok_suspicious", "bad_timeout")
SURVIVED = ("bad_survived",)
_COPIED = ("course_utils", "tests", "pyproject.toml")
# mutmut's hook, run before each mutant: context.skip = True leaves it untested.
_CONFIG = '''import zlib
SAMPLE = {sample}
LINES = {lines!r}  # (first, last) 0-based line numbers that may be mutated; empty: all
def pre_mutation(context):
    number = context.mutation_id.line_number
    key = f"{{context.mutation_id.line}}:{{context.mutation_id.index}}".encode()
    outside = bool(LINES) and not any(first <= number <= last for first, last in LINES)
    context.skip = outside or (SAMPLE > 1 and zlib.crc32(key) % SAMPLE != 0)
'''


def function_lines(module: Path, functions: tuple[str, ...]) -> list[tuple[int, int]]:
    """The (first, last) 0-based line numbers of each top-level function named in `functions`,
    in the order named (mutmut numbers lines from 0). Raises ValueError if one is missing."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    spans = {node.name: (node.lineno - 1, node.end_lineno - 1) for node in tree.body
             if isinstance(node, ast.FunctionDef)}
    missing = [name for name in functions if name not in spans]
    if missing:
        raise ValueError(f"{module.name} defines no top-level function(s) {missing}; "
                         f"expected some of {sorted(spans)}")
    return [spans[name] for name in functions]


def mutmut_config(sample: int, lines: list[tuple[int, int]]) -> str:
    """The text of mutmut_config.py: test one mutant in `sample`, only on `lines` (all if empty)."""
    return _CONFIG.format(sample=sample, lines=lines)


def _copy_checkout(into: Path, config: str) -> None:
    for name in _COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, into / name)
    write_text(into / "mutmut_config.py", config)


def _query(cache: Path, sql: str) -> list[tuple]:
    """The rows of `sql` on mutmut's cache, opened read-only (a missing cache is an error, not a new file)."""
    with closing(sqlite3.connect(f"file:{cache}?mode=ro", uri=True)) as db:
        return db.execute(sql).fetchall()


def _counts(cache: Path) -> dict[str, int]:
    """{status: number of mutants} from mutmut's cache."""
    return dict(_query(cache, "SELECT status, COUNT(*) FROM Mutant GROUP BY status"))


def tally(counts: dict[str, int]) -> tuple[int, int]:
    """(killed, tested) from mutmut's {status: number}; skipped and untested mutants are not tested."""
    killed = sum(counts.get(status, 0) for status in KILLED)
    return killed, killed + sum(counts.get(status, 0) for status in SURVIVED)


def _survivors(work: Path) -> str:
    """The diff of every surviving mutant, as ``mutmut show`` prints it."""
    ids = [row[0] for row in _query(work / ".mutmut-cache", "SELECT id FROM Mutant WHERE status = 'bad_survived'")]
    return "".join(subprocess.run([sys.executable, "-m", "mutmut", "show", str(i)], cwd=work,
                                  capture_output=True, text=True).stdout for i in ids)


def measure(name: str, sample: int = 1, show: bool = False) -> str:
    """Run mutmut on target `name` and return its line ``NAME: K/N killed (P%)``
    (followed by the surviving mutants' diffs if `show`)."""
    module, tests, functions = TARGETS[name]
    missing = [t for t in (module, *tests) if not (ROOT / t).is_file()]
    if missing:
        return f"{name}: not run, missing {', '.join(missing)}"
    # A process still writing there (a peek at the cache, a test's child) must not lose the result.
    with tempfile.TemporaryDirectory(prefix="mutation-", ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        _copy_checkout(work, mutmut_config(sample, function_lines(ROOT / module, functions)))
        runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider " + " ".join(tests)
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", module,
                        "--runner", runner, "--tests-dir", "tests", "--no-progress", "--CI",
                        "--disable-mutation-types", "string,fstring"],
                       cwd=work, check=False, stdout=subprocess.DEVNULL)
        counts = _counts(work / ".mutmut-cache")
        survivors = _survivors(work) if show else ""
    killed, tested = tally(counts)
    if tested == 0:
        return f"{name}: no mutant was tested (did the tests pass before mutation?)"
    note = f", 1 in {sample} sampled" if sample > 1 else ""
    scope = f" in {', '.join(functions)}" if functions else ""
    return f"{name}: {killed}/{tested} killed ({100 * killed / tested:.1f}%){scope}{note}" + (
        f"\nsurviving mutants of {module}:\n{survivors}" if survivors else "")


def _target(text: str) -> str:
    if text not in TARGETS:
        raise argparse.ArgumentTypeError(f"unknown target {text!r}; expected one of {list(TARGETS)}")
    return text


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``mutation`` on `subparsers` (``python -m course_utils mutation``)."""
    p = subparsers.add_parser("mutation", help="mutation testing of crf, lstm and the sandbox guard (mutmut)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", type=_target, metavar="NAME",
                   help=f"targets (default: all of {', '.join(TARGETS)})")
    p.add_argument("--sample", type=positive(int), default=1, help="test one mutant in K (default: 1, all)")
    p.add_argument("--show", action="store_true", help="print the diff of every surviving mutant")
    p.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    for name in args.names or TARGETS:
        print(measure(name, args.sample, args.show), flush=True)
    return 0
