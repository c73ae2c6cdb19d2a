"""What an executed lesson notebook recorded, and whether the code it ran with has changed.

`read_metrics` reads the values lessons store with ``course_utils.record``.
`code_fingerprint` hashes every course_utils module a notebook imports (and the
modules those import), from their syntax trees without docstrings, so that
editing a comment or a docstring does not count as a change. The runner stamps
each executed notebook with that fingerprint and a hash of its cells' sources;
`stale_notebooks` compares the stamps with the code as it is now
(``python -m course_utils stale``).
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

from ..lesson import METRIC_MIME

PACKAGE = Path(__file__).resolve().parent.parent
STAMP_KEY = "course_utils"


def read_notebook(path: str | Path) -> dict[str, Any]:
    """A notebook file read as JSON, checked for the fields the course reads.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file cannot be read, or is not a notebook: a JSON object
            with a 'cells' list, a 'metadata' object, and each cell an object whose
            'source' is a string or a list of strings and whose 'outputs' (if any)
            are a list of objects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook at {path}")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ValueError(f"cannot read the notebook {path} ({err.strerror})") from None
    except (UnicodeDecodeError, ValueError) as err:  # ValueError: JSONDecodeError, or a number too long to read
        raise ValueError(f"{path} is not a notebook: it is not valid JSON ({err})") from None
    except RecursionError:
        raise ValueError(f"{path} is not a notebook: its JSON is nested too deeply to read") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a notebook: expected a JSON object with a 'cells' list")
    problem = _notebook_problem(nb)
    if problem:
        raise ValueError(f"{path} is not a notebook: {problem}")
    return nb


def _notebook_problem(nb: dict[str, Any]) -> str | None:
    """What is wrong with the structure of `nb`, or None."""
    metadata = nb.get("metadata", {})
    if not isinstance(metadata, dict) or not isinstance(metadata.get("papermill", {}), dict):
        return "expected 'metadata' (and its 'papermill' entry) to be JSON objects"
    for index, cell in enumerate(nb["cells"], start=1):
        if not isinstance(cell, dict):
            continue  # not a cell the course reads: it holds no code and no output
        source = cell.get("source", "")
        if not (isinstance(source, str) or isinstance(source, list) and all(isinstance(s, str) for s in source)):
            return f"cell {index}: expected 'source' to be a string or a list of strings"
        outputs = cell.get("outputs", [])
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            return f"cell {index}: expected 'outputs' to be a list of JSON objects"
    return None


def read_metrics(notebook: str | Path) -> dict[str, Any]:
    """All metrics recorded in an executed notebook, in recording order (last value wins),
    plus ``seconds``: the papermill run's duration, where the notebook has one.

    Raises:
        FileNotFoundError: no file at `notebook`.
        ValueError: the file is not a notebook, or a metric output is not
            ``{"name": identifier, "value": finite number | bool | str}`` (``record``
            refuses NaN and infinities, so such a value was not written by it).
    """
    path = Path(notebook)
    nb = read_notebook(path)
    metrics: dict[str, Any] = {}
    for index, cell in enumerate(nb["cells"], start=1):
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            item = data.get(METRIC_MIME) if isinstance(data, dict) else None
            if item is None:
                continue
            name = item.get("name") if isinstance(item, dict) else None
            value = item.get("value") if isinstance(item, dict) else None
            if (not isinstance(name, str) or not name.isidentifier()
                    or not isinstance(value, (int, float, bool, str))):
                raise ValueError(f"{path}, cell {index}: a metric output must be "
                                 f'{{"name": identifier, "value": number, bool or string}}, got {item!r:.200}')
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{path}, cell {index}: metric {name!r} is {value}; expected a finite number "
                                 "(course_utils.record refuses NaN and infinities)")
            metrics[name] = value
    duration = nb.get("metadata", {}).get("papermill", {}).get("duration")
    if isinstance(duration, (int, float)):
        metrics["seconds"] = round(float(duration), 1)
    return metrics


# ---------------------------------------------------------------------------
# Fingerprints: which course_utils code a notebook ran with
# ---------------------------------------------------------------------------

_NOTEBOOK_IMPORT = re.compile(r"^\s*(?:from|import)\s+(course_utils(?:\.\w+)*)", re.MULTILINE)
# A module a cell runs in another process: "python -m course_utils.ddp_cnn", ["-m", "course_utils", "ner", ...].
_RUN_AS_SCRIPT = re.compile(r"""-m["',\s]+(course_utils(?:\.\w+)*)(?:["',\s]+([a-z][\w-]*))?""")
# The module behind a subcommand of ``python -m course_utils`` that a lesson runs; others count as the whole CLI.
_SUBCOMMAND_MODULES = {"ner": "course_utils.tooling.ner_cli", "bench": "course_utils.benchmarks",
                       "data": "course_utils.tooling.datasets"}


def _modules_run(source: str) -> set[str]:
    """The course_utils modules that a cell imports, or runs with ``-m`` (for ``-m course_utils COMMAND``, the
    module of that subcommand)."""
    run = {module if module != "course_utils" else _SUBCOMMAND_MODULES.get(command, "course_utils.__main__")
           for module, command in _RUN_AS_SCRIPT.findall(source)}
    return set(_NOTEBOOK_IMPORT.findall(source)) | run


def _module_file(module: str) -> Path | None:
    """``course_utils.crf`` -> course_utils/crf.py (or a sub-package's __init__.py)."""
    parts = module.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def without_docstrings(tree: ast.AST) -> ast.AST:
    """`tree` with the docstring of its module and of every class and function taken out (in place):
    editing a docstring changes neither a lesson's code stamp nor a copy check."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _imports_of(module: str, tree: ast.AST) -> set[str]:
    """The course_utils modules that `module`'s code imports, relative imports resolved."""
    package = module if _module_file(module) and _module_file(module).name == "__init__.py" \
        else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("course_utils")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("course_utils"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names if _module_file(f"{target}.{a.name}")}
    return found


def _syntax_tree(path: Path) -> ast.AST:
    """The syntax tree of the module at `path`, or a ValueError that names it."""
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError, RecursionError, ValueError) as err:
        raise ValueError(f"cannot fingerprint {path}: {type(err).__name__}: {err}") from None


def code_fingerprint(sources: list[str]) -> dict[str, str]:
    """{module: sha256 of its docstring-free syntax tree} for every course_utils module
    that code with these cell `sources` imports or runs as a script (``-m``), directly or through
    other modules."""
    todo = {"course_utils"} | {m for s in sources for m in _modules_run(s)}
    seen: dict[str, str] = {}
    while todo:
        module = todo.pop()
        # importing course_utils.a.b runs course_utils/__init__ and course_utils/a/__init__ too
        parents = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)}
        todo |= parents - set(seen)
        path = _module_file(module)
        if module in seen or path is None:
            continue
        tree = without_docstrings(_syntax_tree(path))
        seen[module] = hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]
        todo |= _imports_of(module, tree) - set(seen)
    return dict(sorted(seen.items()))


def cell_sources(nb: dict[str, Any]) -> list[str]:
    """The source text of every code cell of a notebook read as JSON."""
    return ["".join(c.get("source", "")) for c in nb["cells"]
            if isinstance(c, dict) and c.get("cell_type") == "code"]


def sources_hash(nb: dict[str, Any]) -> str:
    """sha256 of every cell's type and source: changes when any cell is edited."""
    text = json.dumps([[c.get("cell_type"), "".join(c.get("source", ""))] for c in nb["cells"]
                       if isinstance(c, dict)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stamp(nb: dict[str, Any], fingerprint: dict[str, str]) -> None:
    """Record in `nb`'s metadata the code it ran with and the hash of its cells."""
    nb.setdefault("metadata", {})[STAMP_KEY] = {"code": fingerprint, "sources": sources_hash(nb)}


def why_stale(notebook: str | Path) -> list[str]:
    """Why a committed notebook's outputs may not be what its code makes now; [] if they are."""
    path = Path(notebook)
    nb = read_notebook(path)
    recorded = nb.get("metadata", {}).get(STAMP_KEY)
    if not isinstance(recorded, dict):
        return ["it was not executed by `python -m course_utils run` (no run stamp)"]
    before = recorded.get("code", {})
    if not (isinstance(before, dict) and all(isinstance(v, str) for v in before.values())):
        return [f"its run stamp is malformed (expected metadata.{STAMP_KEY}.code to map modules to hashes)"]
    reasons = []
    if recorded.get("sources") != sources_hash(nb):
        reasons.append("a cell was edited after the run")
    now = code_fingerprint(cell_sources(nb))
    for module in sorted(set(before) | set(now)):
        if before.get(module) != now.get(module):
            reasons.append(f"{module} changed since the run" if module in before and module in now
                           else f"{module} is {'new' if module in now else 'no longer imported'}")
    return reasons


def stale_notebooks(notebooks: list[Path]) -> dict[Path, list[str]]:
    """{notebook: reasons} for each of `notebooks` that must be re-run."""
    return {nb: reasons for nb in notebooks if (reasons := why_stale(nb))}
