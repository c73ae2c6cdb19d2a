"""The course machinery: the CLI with base dependencies only, run stamps and `stale`, metric reading."""

import ast
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from course_utils.tooling import results, runner
from course_utils.tooling.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY = ["nbformat", "nbclient", "papermill", "nbval", "jupyter", "jupyterlab", "pytest", "yaml", "torchcrf",
            "selenium", "nbgrader", "otter"]
# What the lessons teach: every top-level module and sub-package of course_utils but `tooling`
# (and `__main__`, the command line's entry point, which runs tooling.cli).
LEARNER_MODULES = sorted(path.stem if path.suffix else path.name for path in (ROOT / "course_utils").iterdir()
                         if (path.suffix == ".py" and not path.stem.startswith("__"))
                         or (path / "__init__.py").is_file() and path.name != "tooling")


def _without_dev_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter in which every dev-only library fails to import."""
    blocker = textwrap.dedent(f"""
        import importlib.abc, sys
        BLOCKED = {DEV_ONLY!r}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}} (blocked: a dev extra)")
        sys.meta_path.insert(0, Block())
    """)
    return subprocess.run([sys.executable, "-c", blocker + code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_learner_modules_are_the_top_layer_of_the_package():
    assert {"crf", "lstm", "checks", "vocab", "distributed", "ddp_cnn", "ner_train", "exercises"} <= set(LEARNER_MODULES)
    assert not {"tooling", "__init__", "__main__"} & set(LEARNER_MODULES)


def test_learner_modules_and_data_commands_work_with_base_dependencies_only(tmp_path):
    imports = "; ".join(f"import course_utils.{m}" for m in LEARNER_MODULES)
    code = imports + textwrap.dedent("""
        from course_utils.tooling.cli import main
        assert main(["data", "list"]) == 0
        assert main(["data", "verify"]) in (0, 1)
        assert main(["data", "fetch", "tinyshakespeare"]) == 0
        print("BASE-ONLY OK")
    """)
    done = _without_dev_extras(code, tmp_path)
    assert "BASE-ONLY OK" in done.stdout, done.stdout + done.stderr


def test_the_blocker_really_blocks(tmp_path):
    done = _without_dev_extras("import nbformat", tmp_path)
    assert done.returncode != 0 and "blocked: a dev extra" in done.stderr


def _lesson(folder: Path, code: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A lesson")] + [nbformat.v4.new_code_cell(c) for c in code]
    path = folder / "01_lesson.ipynb"
    nbformat.write(nb, path)
    return path


def test_fingerprint_covers_what_a_notebook_imports_and_what_that_imports():
    prints = results.code_fingerprint(["from course_utils.crf import CRF"])
    assert {"course_utils", "course_utils.crf", "course_utils.lesson", "course_utils.train",
            "course_utils.tooling.files"} <= set(prints)
    assert "course_utils.ner_data" not in prints  # the CRF stands alone
    assert "course_utils.ner_data" in results.code_fingerprint(["from course_utils.ner import Tagger"])
    assert "course_utils.video" not in prints
    assert "course_utils.video" in results.code_fingerprint(["import course_utils.video as v"])


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of course_utils whose files the test may edit; the fingerprint reads it."""
    import shutil

    copy = tmp_path / "pkg" / "course_utils"
    shutil.copytree(ROOT / "course_utils", copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(results, "PACKAGE", copy)
    return copy


def test_stale_sees_code_changes_but_not_comments_or_docstrings(tmp_path, package_copy):
    path = _lesson(tmp_path, ["from course_utils.cnn import conv_output_size\nprint(conv_output_size(28, 3))"])
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    path.write_text(json.dumps(nb))
    assert results.why_stale(path) == []

    cnn = package_copy / "cnn.py"
    original = cnn.read_text()
    cnn.write_text(original.replace('"""', '"""Edited docstring. ', 1) + "\n# a new comment\n")
    assert results.why_stale(path) == [], "docstrings and comments are not code"
    cnn.write_text(original + "\nEXTRA = 1\n")
    assert results.why_stale(path) == ["course_utils.cnn changed since the run"]


def test_stale_sees_an_edited_cell_and_an_unstamped_notebook(tmp_path, package_copy):
    path = _lesson(tmp_path, ["x = 1"])
    assert "no run stamp" in results.why_stale(path)[0]
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    nb["cells"][1]["source"] = "x = 2"
    path.write_text(json.dumps(nb))
    assert results.why_stale(path) == ["a cell was edited after the run"]


def test_stale_command_lists_stale_lessons_and_exits_1(tmp_path, monkeypatch, capsys):
    path = _lesson(tmp_path, ["x = 1"])
    monkeypatch.setattr(runner, "lesson_notebooks", lambda: [path])
    assert main(["stale"]) == 1
    assert "stale    01_lesson.ipynb" in capsys.readouterr().out
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    path.write_text(json.dumps(nb))
    assert main(["stale"]) == 0


def test_the_runner_stamps_what_it_runs(tmp_path):
    source = _lesson(tmp_path, ["from course_utils import record\nrecord('answer', 42)"])
    output = tmp_path / "out" / source.name
    runner.execute(source, output, "smoke")
    assert results.read_metrics(output)["answer"] == 42
    assert results.why_stale(output) == []
    assert not list(output.parent.glob(".*"))


def test_a_cell_over_the_timeout_stops_the_lesson_and_keeps_the_old_output(tmp_path, monkeypatch, capsys):
    source = _lesson(tmp_path, ["import time\ntime.sleep(60)"])
    out = tmp_path / "out"
    out.mkdir()
    (out / source.name).write_text("the previous run")
    monkeypatch.setattr(runner, "lesson_notebooks", lambda selection=None: [source])
    table = runner.run_lessons("smoke", out_dir=out, cell_timeout_s=2)
    assert table["status"].tolist() == ["failed: CellTimeoutError"]
    assert "error: 01_lesson.ipynb:" in capsys.readouterr().out
    assert (out / source.name).read_text() == "the previous run", "a failed run must not touch the output"
    assert [p.name for p in out.iterdir()] == [source.name], "no partial file may stay"


@pytest.mark.parametrize("value, expected", [(None, 600.0), ("12", 12.0)])
def test_the_cell_timeout_comes_from_the_option_the_environment_or_the_mode(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(runner.CELL_TIMEOUT_ENV, raising=False)
    else:
        monkeypatch.setenv(runner.CELL_TIMEOUT_ENV, value)
    assert runner.cell_timeout("smoke") == expected
    assert runner.cell_timeout("smoke", 3.0) == 3.0
    monkeypatch.setenv(runner.CELL_TIMEOUT_ENV, "never")
    with pytest.raises(ValueError, match="COURSE_CELL_TIMEOUT_S must be a positive number of seconds"):
        runner.cell_timeout("cpu")


def test_run_of_a_broken_notebook_names_it_in_one_line(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "99_bad.ipynb"
    bad.write_text("not json")
    monkeypatch.setattr(runner, "lesson_notebooks", lambda selection=None: [bad])
    assert main(["run", "--mode", "smoke", "--nb", "99"]) == 1
    out = capsys.readouterr().out
    assert f"error: 99_bad.ipynb: {bad} is not a notebook: it is not valid JSON" in out


def test_a_bad_cell_timeout_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--cell-timeout", "-1"])
    assert exit_.value.code == 2 and "expected a positive number of seconds" in capsys.readouterr().err


BROKEN_NOTEBOOKS = [
    ("not json at all", "not valid JSON"),
    (json.dumps({"cells": [], "metadata": []}), "expected 'metadata'"),
    (json.dumps({"cells": [], "metadata": {"papermill": "x"}}), "expected 'metadata'"),
    (json.dumps({"cells": [{"cell_type": "code", "source": "x", "outputs": 5}]}), "cell 1: expected 'outputs'"),
    (json.dumps({"cells": [{"cell_type": "code", "source": 7}]}), "cell 1: expected 'source'"),
]


@pytest.mark.parametrize("content, problem", [
    *BROKEN_NOTEBOOKS,
    ('{"cells": 3}', "expected a JSON object with a 'cells' list"),
    (json.dumps({"cells": [{"outputs": [{"data": {"application/vnd.course-utils.metric+json": {"value": 1}}}]}]}),
     "cell 1: a metric output must be"),
])
def test_metrics_of_a_bad_file_is_a_clear_error(tmp_path, capsys, content, problem):
    path = tmp_path / "x.ipynb"
    path.write_text(content)
    assert main(["metrics", str(path)]) == 1
    err = capsys.readouterr().err
    assert problem in err and str(path) in err


@pytest.mark.parametrize("content, problem", BROKEN_NOTEBOOKS)
def test_stale_over_a_broken_notebook_is_one_clear_line(tmp_path, monkeypatch, capsys, content, problem):
    path = tmp_path / "99_bad.ipynb"
    path.write_text(content)
    monkeypatch.setattr(runner, "lesson_notebooks", lambda: [path])
    assert main(["stale"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and problem in err and err.count("\n") == 1


def test_an_unreadable_notebook_or_a_folder_is_one_clear_line(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "adir.ipynb"
    folder.mkdir()
    assert main(["metrics", str(folder)]) == 1
    assert f"error: no notebook at {folder}" in capsys.readouterr().err
    path = tmp_path / "x.ipynb"
    path.write_text("{}")

    def unreadable(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", unreadable)
    assert main(["metrics", str(path)]) == 1
    assert f"error: cannot read the notebook {path} (Permission denied)" in capsys.readouterr().err


def test_stale_survives_a_stamped_code_cell_without_source(tmp_path):
    path = _lesson(tmp_path, ["x = 1"])
    nb = json.loads(path.read_text())
    results.stamp(nb, results.code_fingerprint(results.cell_sources(nb)))
    del nb["cells"][1]["source"]
    path.write_text(json.dumps(nb))
    assert results.why_stale(path) == ["a cell was edited after the run"]


def test_one_parser_dispatches_every_command(monkeypatch, tmp_path):
    from course_utils.tooling import cli, colab_check, grading_cli, mutation, ner_cli

    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"data", "metrics", "run", "stale", "bench", "sync-headers", "ner", "assign", "grade", "gradebook",
                             "site", "colab-check", "mutation"}
    for name, sub in commands.items():
        if name == "ner":  # ner train | ner tag: the run function sits on each
            actions = sub._subparsers._group_actions[0].choices
            assert set(actions) == {"train", "tag"}
            assert all(callable(a.get_default("run")) for a in actions.values())
        else:
            assert callable(sub.get_default("run")), f"{name} has no run function"
    seen = []
    monkeypatch.setattr(ner_cli, "_train", lambda args: seen.append(("ner train", args.epochs)) or 3)
    monkeypatch.setattr(grading_cli, "_grade", lambda args: seen.append(("grade", args.csv)) or 4)
    monkeypatch.setattr(grading_cli, "_assign", lambda args: seen.append(("assign", args.out)) or 5)
    assert main(["ner", "train", "--train", "a.txt", "--dev", "b.txt", "--out", "m", "--epochs", "1"]) == 3
    assert main(["grade", "subs", "--csv", "x.csv"]) == 4
    assert main(["assign", "--out", "student"]) == 5
    # colab-check runs run_check itself as far as building the environment (a handler once shadowed its helper)
    monkeypatch.setattr(colab_check, "build_environment", lambda env_dir, **kw: seen.append(("colab-check", env_dir.name))
                        or (_ for _ in ()).throw(OSError("stop here")))
    monkeypatch.setattr(mutation, "measure", lambda name, sample, show: seen.append(("mutation", name)) or "")
    assert main(["colab-check", "--out", str(tmp_path / "o"), "--versions", "exercises"]) == 1
    assert main(["mutation", "crf"]) == 0
    assert [(name, str(value)) for name, value in seen] == [("ner train", "1"), ("grade", "x.csv"),
                                                            ("assign", "student"), ("colab-check", "venv"),
                                                            ("mutation", "crf")]


def test_an_unknown_command_is_a_usage_error_not_a_fall_through(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == 2 and "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_bench_names_functions_not_strings(capsys):
    from course_utils.tooling import cli

    assert sorted(cli.BENCHMARKS) == ["crf", "grading", "lstm"]
    assert all(callable(f) for f in cli.BENCHMARKS.values())
    with pytest.raises(SystemExit):
        main(["bench", "nosuch"])
    assert "invalid choice: 'nosuch'" in capsys.readouterr().err



def _package_tables() -> dict[str, str]:
    """{module: its row's second column} from the README's two tables of "## The package"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The package\n")[1].split("\n## ")[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]) if line.startswith("| `") else []:
            rows[name] = cells[1]
    return rows


def _lessons_importing() -> dict[str, set[str]]:
    """{top-level module: the lessons ("01" ...) whose code cells import it by name}."""
    package = ast.parse((ROOT / "course_utils" / "__init__.py").read_text(encoding="utf-8"))
    provider = {alias.name: node.module for node in package.body if isinstance(node, ast.ImportFrom)
                for alias in node.names}  # the names `from course_utils import ...` re-exports
    found: dict[str, set[str]] = {}
    for notebook in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        for cell in nbformat.read(notebook, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            modules = re.findall(r"^\s*(?:from|import) course_utils\.(\w+)", cell.source, re.M)
            for names in re.findall(r"^\s*from course_utils import ([\w, ]+)", cell.source, re.M):
                modules += [provider.get(name.strip(), name.strip()) for name in names.split(",")]
            for module in modules:
                found.setdefault(module, set()).add(notebook.name[:2])
    return found


def _lessons_named(column: str) -> set[str]:
    """The lessons a README cell names outside parentheses: "01-03, 05" -> {"01", "02", "03", "05"}."""
    lessons = set()
    for first, last in re.findall(r"(\d\d)(?:-(\d\d))?", re.sub(r"\(.*?\)", "", column)):
        lessons.update(f"{n:02d}" for n in range(int(first), int(last or first) + 1))
    return lessons


def test_the_readme_package_tables_list_every_module():
    tooling = {path.stem for path in (ROOT / "course_utils" / "tooling").glob("*.py")} - {"__init__"}
    assert set(LEARNER_MODULES) | tooling <= set(_package_tables())


def test_the_readme_names_the_lessons_that_import_each_module():
    rows, imported = _package_tables(), _lessons_importing()
    for module in LEARNER_MODULES:
        assert _lessons_named(rows[module]) == imported.get(module, set()), module
    assert _lessons_named("01-03, 05 (06 through ner)") == {"01", "02", "03", "05"}
