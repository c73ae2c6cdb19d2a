"""Tests for course_utils.tooling.mutation (``make mutation``): the tally, the targets, mutmut's hook."""

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_utils.tooling import cli, mutation

ROOT = Path(__file__).resolve().parents[1]


def test_slow_failures_and_timeouts_count_as_killed_skipped_mutants_not_at_all():
    counts = {"ok_killed": 5, "ok_suspicious": 2, "bad_timeout": 1, "bad_survived": 3, "skipped": 10, "untested": 4}
    assert mutation.tally(counts) == (8, 11)
    assert mutation.tally({"ok_suspicious": 1}) == (1, 1)
    assert mutation.tally({"skipped": 7}) == (0, 0)


def test_targets_name_real_modules_and_their_own_tests(capsys):
    for name, (module, tests, _) in mutation.TARGETS.items():
        assert (ROOT / module).is_file() and all((ROOT / t).is_file() for t in tests), name
    with pytest.raises(SystemExit):
        cli.main(["mutation", "nosuch"])
    assert "unknown target 'nosuch'; expected one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["mutation", "--sample", "0"])
    assert "expected a positive int, got '0'" in capsys.readouterr().err


def test_the_sandbox_guard_target_mutates_the_guard_functions_only():
    module, _, functions = mutation.TARGETS["sandbox-guard"]
    source = (ROOT / module).read_text(encoding="utf-8").split("\n")
    spans = mutation.function_lines(ROOT / module, functions)
    assert [source[first].split("(")[0] for first, _ in spans] == ["def inside", "def writes", "def guard"]
    assert source[spans[-1][1]] == "    return hook"
    mutated = {number for first, last in spans for number in range(first, last + 1)}
    assert not any(source[n].startswith(("def portable", "def _stop", "def main")) for n in mutated)
    assert mutation.function_lines(ROOT / "course_utils/crf.py", ()) == []


def test_an_unknown_function_is_an_error_that_lists_the_real_ones():
    with pytest.raises(ValueError, match=r"defines no top-level function\(s\) \['nosuch'\]; expected some of \["):
        mutation.function_lines(ROOT / "course_utils/tooling/sandbox_runner.py", ("inside", "nosuch"))


def _skipped(config: str, line_numbers: range) -> list[int]:
    """The line numbers whose mutant mutmut_config's pre_mutation hook skips."""
    namespace: dict = {}
    exec(config, namespace)
    skipped = []
    for number in line_numbers:
        context = SimpleNamespace(mutation_id=SimpleNamespace(line=f"x = {number}", index=0, line_number=number),
                                  skip=False)
        namespace["pre_mutation"](context)
        skipped += [number] if context.skip else []
    return skipped


def test_the_hook_skips_lines_outside_the_target_and_mutants_not_sampled():
    assert _skipped(mutation.mutmut_config(1, []), range(20)) == []
    assert _skipped(mutation.mutmut_config(1, [(3, 5), (9, 9)]), range(12)) == [0, 1, 2, 6, 7, 8, 10, 11]
    sampled_out = _skipped(mutation.mutmut_config(3, []), range(300))
    assert 150 < len(sampled_out) < 250 and sampled_out == _skipped(mutation.mutmut_config(3, []), range(300))


def test_the_cache_is_read_without_ever_creating_it(tmp_path):
    """Reading the cache must not create it: an empty file left in the work folder once made its removal fail."""
    with pytest.raises(sqlite3.OperationalError):
        mutation._counts(tmp_path / ".mutmut-cache")
    assert not (tmp_path / ".mutmut-cache").exists()
    with sqlite3.connect(tmp_path / ".mutmut-cache") as db:
        db.execute("CREATE TABLE Mutant (id INTEGER, status TEXT)")
        db.executemany("INSERT INTO Mutant VALUES (?, ?)", [(1, "ok_killed"), (2, "ok_suspicious"), (3, "ok_killed")])
    assert mutation._counts(tmp_path / ".mutmut-cache") == {"ok_killed": 2, "ok_suspicious": 1}
