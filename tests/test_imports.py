"""The package's import graph: every module imports in a fresh interpreter, and no module
imports itself through others (an import cycle), lazily inside a function or not."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course_utils"


def module_names() -> list[str]:
    """Every module of the package, dotted (a package is named by its folder, from its __init__.py)."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _source(module: str) -> Path:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def imported_modules(module: str, known: set[str]) -> set[str]:
    """The modules of the package that `module` imports anywhere in its source (top level or lazily)."""
    package = module if _source(module).name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(_source(module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            source = ".".join(part for part in (base, node.module) if part)
            # `from package import name` imports the module package.name if there is one.
            found.update(f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source
                         for alias in node.names)
    return found & known - {module}


def import_graph() -> dict[str, set[str]]:
    """{module: the package's modules it imports}, from the sources' syntax trees."""
    known = set(module_names())
    return {module: imported_modules(module, known) for module in sorted(known)}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle [a, b, ..., a] of `graph`, or [] if it is acyclic (depth-first search)."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str]:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return []
        for imported in sorted(graph[module]):
            cycle = visit(imported, path + [module])
            if cycle:
                return cycle
        done.add(module)
        return []

    for module in graph:
        cycle = visit(module, [])
        if cycle:
            return cycle
    return []


def test_the_graph_knows_every_module_and_resolves_relative_imports():
    graph = import_graph()
    assert {"course_utils", "course_utils.crf", "course_utils.exercises", "course_utils.exercises.engine",
            "course_utils.tooling", "course_utils.tooling.files"} <= set(graph)
    assert {"course_utils.lesson", "course_utils.train"} <= graph["course_utils"]           # from .lesson import
    assert "course_utils.distributed" in graph["course_utils.ddp_cnn"]                      # from . import distributed
    assert "course_utils.tooling.files" in graph["course_utils.train"]                      # from .tooling.files import
    assert "course_utils.vocab" in graph["course_utils.ner_data"]


def test_find_cycle_names_the_cycle_and_finds_none_in_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"b", "c"}}) == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": set(), "y": {"z"}, "z": {"z2"}, "z2": {"z"}}) == ["z", "z2", "z"]


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_the_crf_imports_nothing_from_the_package():
    assert import_graph()["course_utils.crf"] == set()


def test_every_module_imports_in_a_fresh_interpreter():
    code = ("import importlib, sys\n"
            f"for name in {module_names()!r}:\n"
            "    importlib.import_module(name)\n"
            "print('IMPORTED', len(sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "IMPORTED" in done.stdout, done.stderr


def lesson_imports(notebook: Path) -> set[str]:
    """The modules that a lesson's code cells import (magics and shell lines skipped)."""
    import json

    found = set()
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        lines = "".join(cell["source"]).splitlines()
        source = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_lessons_import_only_the_teaching_layer():
    lessons = sorted((PACKAGE.parent / "notebooks").glob("0*.ipynb"))
    assert len(lessons) == 6
    for notebook in lessons:
        imports = lesson_imports(notebook)
        assert any(name.startswith("course_utils") for name in imports), notebook.name
        assert not [name for name in imports if name.startswith("course_utils.tooling")], notebook.name


def test_lesson_imports_sees_a_tooling_import():
    import json
    import tempfile

    cell = {"cell_type": "code", "source": ["%%time\n", "from course_utils.tooling.files import write_text\n"]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "lesson.ipynb"
        path.write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
        assert "course_utils.tooling.files.write_text" in lesson_imports(path)
