"""The Colab-like check: every lesson runs as a learner opens it in Colab (``make colab-check``).

``python -m course_utils colab-check [--out runs/colab-check] [--nb 01,02]``

1. Builds a fresh virtual environment from ``colab_runtime.txt`` alone: what a Colab runtime
   ships that the course relies on (torch preinstalled, the scientific stack, Colab's kernel
   stack), nothing from the course's dev extras. A stand-in ``google.colab`` module goes into
   its site-packages, as Colab's own package does.
2. Registers a Jupyter kernel for that environment whose start imports ``google.colab``, as
   Colab's kernels do, so that each lesson's set-up cell takes its Colab branch.
3. For every lesson, the learner's version (``notebooks/exercises/``) and then the lesson
   itself (``--versions`` picks either) run in smoke mode with that kernel, each in an empty folder of its own (Colab's
   ``/content``) and each in a runtime as Colab starts it: whatever an earlier set-up cell
   installed is uninstalled first. Each notebook runs its own set-up cell with one change:
   the GitHub address is replaced by ``git+file://`` of this checkout at its HEAD commit.
   A cell that raises stops the check.
4. After each run, every package of ``colab_runtime.txt`` must have kept its version, torch its
   install location, and the course package must have come from the checkout's HEAD.

The executed notebooks are written to ``OUT/exercises/`` and ``OUT/lessons/``; the notebook
tests read them when ``COURSE_COLAB_RUNS`` names OUT (``make colab-check`` runs both).

``git+file://`` installs the committed HEAD: uncommitted changes are not checked; commit first.
The environment uses this machine's Python (Colab runs 3.12; see tests/test_colab.py for the
syntax check against 3.10) and the data cache named by ``$COURSE_DATA_HOME`` (default: the
checkout's ``datasets/``), so that nothing is downloaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

from . import colab
from .files import atomic_file, write_text
from .runner import NOTEBOOKS, ROOT, lesson_notebooks

RUNTIME = Path(__file__).with_name("colab_runtime.txt")
KERNEL = "colab-check"
GITHUB_URL = f"git+https://github.com/{colab.REPO}@{colab.BRANCH}"
STAND_IN = '''"""Stand-in for Colab's google.colab, written by course_utils.tooling.colab_check.

The lessons' set-up cells only test whether it is imported; it offers nothing else.
"""
'''
# Prints {name: [version, location]} for every installed distribution, as JSON.
_INVENTORY = """
import json, importlib.metadata as md
print(json.dumps({d.metadata["Name"].lower().replace("_", "-"): [d.version, str(d.locate_file(""))]
                  for d in md.distributions()}))
"""
_TORCH = "import json, torch; print(json.dumps([torch.__version__, torch.__file__]))"


def runtime_requirements(path: Path = RUNTIME) -> dict[str, str]:
    """{package name: version} of the pinned lines of `path` ("name==version", # comments)."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise ValueError(f"{path}, line {number}: expected 'name==version', got {line!r}")
        pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def colab_setup_source(source: str, checkout: Path, commit: str) -> str:
    """A set-up cell's `source` with only its GitHub address replaced by ``git+file://`` of
    `checkout` at `commit`."""
    if GITHUB_URL not in source:
        raise ValueError(f"the set-up cell does not install from {GITHUB_URL}; "
                         "run `python -m course_utils sync-headers`")
    return source.replace(GITHUB_URL, f"git+file://{checkout.resolve()}@{commit}")


def colab_notebook(notebook: Path, output: Path, checkout: Path, commit: str) -> None:
    """Write `notebook` to `output` with its set-up cell pointed at `checkout`; nothing else changes."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(colab.SETUP_MARKER)]
    if len(cells) != 1:
        raise ValueError(f"{notebook}: expected one set-up cell starting with {colab.SETUP_MARKER!r}, "
                         f"found {len(cells)}")
    cells[0].source = colab_setup_source(cells[0].source, checkout, commit)
    with atomic_file(output) as tmp:
        nbformat.write(nb, tmp)


def _python(env_dir: Path) -> Path:
    return env_dir / "bin" / "python"


def _run(command: list[str], **kwargs) -> str:
    """Run `command`; return its stdout, or raise with its output if it fails."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({done.returncode}):\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def inventory(env_dir: Path) -> dict[str, list[str]]:
    """{distribution name: [version, location]} of everything installed in `env_dir`."""
    return json.loads(_run([str(_python(env_dir)), "-I", "-c", _INVENTORY], env=_clean_env()))


def build_environment(env_dir: Path, requirements: Path = RUNTIME, torch_index: str = "") -> None:
    """A fresh venv at `env_dir` holding `requirements` and the stand-in ``google.colab``.

    `torch_index`, if given, is the index torch comes from (e.g. PyTorch's CPU wheels);
    otherwise pip's own configuration decides, as for every other package.
    """
    shutil.rmtree(env_dir, ignore_errors=True)
    venv.create(env_dir, with_pip=True)
    pins = runtime_requirements(requirements)
    python = str(_python(env_dir))
    _run([python, "-m", "pip", "install", "--quiet", f"pip=={pins['pip']}"], env=_clean_env())
    if torch_index:
        _run([python, "-m", "pip", "install", "--quiet", f"torch=={pins['torch']}", "--index-url", torch_index],
             env=_clean_env())
    _run([python, "-m", "pip", "install", "--quiet", "-r", str(requirements)], env=_clean_env())
    installed = inventory(env_dir)
    wrong = [f"{name}=={version} ({installed.get(name, ['missing'])[0]})" for name, version in pins.items()
             if installed.get(name, [""])[0].split("+")[0] != version]
    if wrong:
        raise RuntimeError(f"the Colab-like environment did not get {', '.join(wrong)}")
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        env=_clean_env()).strip())
    package = purelib / "google" / "colab"
    package.mkdir(parents=True)
    write_text(package / "__init__.py", STAND_IN)


def register_kernel(env_dir: Path, jupyter_dir: Path, ipython_dir: Path, data_home: Path) -> None:
    """A kernelspec KERNEL under `jupyter_dir` (put it on $JUPYTER_PATH) running `env_dir`'s
    Python, whose IPython start-up file imports google.colab; smoke mode, progress bars off."""
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    write_text(startup / "00-google-colab.py", "import google.colab  # as in Colab's kernels\n")
    spec = jupyter_dir / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    env = {"COURSE_MODE": "smoke", "COURSE_PROGRESS": "0", "IPYTHONDIR": str(ipython_dir),
           "COURSE_DATA_HOME": str(data_home), "PYDEVD_DISABLE_FILE_VALIDATION": "1",
           "PATH": f"{env_dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    if os.environ.get("COURSE_DATA_MIRROR"):
        env["COURSE_DATA_MIRROR"] = os.environ["COURSE_DATA_MIRROR"]
    write_text(spec / "kernel.json", json.dumps({
        "argv": [str(_python(env_dir)), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (Colab-like)", "language": "python", "env": env}, indent=1))


def _clean_env() -> dict[str, str]:
    """This process's environment without what would let another Python see this checkout or
    the dev venv (PYTHONPATH, VIRTUAL_ENV, PYTHONHOME), or give its kernels another matplotlib
    backend than Colab's inline one (MPLBACKEND)."""
    hidden = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "MPLBACKEND")
    return {k: v for k, v in os.environ.items() if k not in hidden}


@contextlib.contextmanager
def _kernel_environment(jupyter_dir: Path) -> Iterator[None]:
    """Within: kernels started from here find KERNEL and do not inherit PYTHONPATH & co."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(_clean_env())
    os.environ["JUPYTER_PATH"] = str(jupyter_dir.resolve())  # papermill changes the working folder
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def reset_runtime(env_dir: Path, baseline: dict[str, list[str]]) -> None:
    """Uninstall whatever is in `env_dir` and not in `baseline`: a runtime as Colab starts it."""
    added = sorted(set(inventory(env_dir)) - set(baseline))
    if added:
        _run([str(_python(env_dir)), "-m", "pip", "uninstall", "--yes", "--quiet", *added], env=_clean_env())


def check_runtime(env_dir: Path, baseline: dict[str, list[str]], torch_before: list[str],
                  pins: dict[str, str], commit: str) -> None:
    """Raise AssertionError unless `env_dir` still holds every pinned package of the runtime
    at its version, torch where it was, and the course package from `commit` of a git+file URL."""
    now = inventory(env_dir)
    changed = [f"{name} {baseline[name][0]} -> {now.get(name, ['removed'])[0]}"
               for name in pins if now.get(name, [None])[0] != baseline[name][0]]
    if changed:
        raise AssertionError("the set-up cell changed what Colab ships: " + ", ".join(changed))
    torch_now = json.loads(_run([str(_python(env_dir)), "-I", "-c", _TORCH], env=_clean_env()))
    if torch_now != torch_before:
        raise AssertionError(f"torch changed: {torch_before} -> {torch_now}")
    if "course-utils" not in now:
        raise AssertionError("the set-up cell did not install course-utils (did it see google.colab?)")
    origin = _direct_url(env_dir)
    if not (origin.get("url", "").startswith("file://") and origin.get("vcs_info", {}).get("commit_id") == commit):
        raise AssertionError(f"course-utils was not installed from this checkout at {commit}: {origin}")


def _direct_url(env_dir: Path) -> dict:
    """The PEP 610 origin of the installed course-utils ({} if none)."""
    code = ("import importlib.metadata as md; "
            "print(md.distribution('course-utils').read_text('direct_url.json') or '{}')")
    return json.loads(_run([str(_python(env_dir)), "-I", "-c", code], env=_clean_env()))


def execute(notebook: Path, output: Path, workdir: Path, timeout_s: int) -> float:
    """Run `notebook` with KERNEL in `workdir` (papermill stops at the first error); return seconds."""
    import papermill

    workdir.mkdir(parents=True, exist_ok=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(str(notebook), str(output), cwd=str(workdir), kernel_name=KERNEL,
                                   progress_bar=False, execution_timeout=timeout_s)
    except papermill.PapermillExecutionError:
        print(failed_cell_report(output), file=sys.stderr, flush=True)
        raise
    return time.perf_counter() - start


def failed_cell_report(executed: Path, lines: int = 60) -> str:
    """The source and the last `lines` lines of printed output of the cell that raised in
    the executed notebook `executed`: what papermill's error leaves out (say, what a
    subprocess the cell ran printed before it failed)."""
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    failed = [c for c in cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    if not failed:
        return f"{executed}: no cell with an error output"
    cell = failed[0]
    printed = "".join("".join(o.get("text", "")) for o in cell["outputs"] if o.get("output_type") == "stream")
    tail = "\n".join(printed.splitlines()[-lines:])
    return (f"--- the cell that failed in {executed.name}:\n{''.join(cell['source'])}\n"
            f"--- the last {lines} lines it printed:\n{tail}\n---")


def head_commit(checkout: Path = ROOT) -> str:
    """The checkout's HEAD commit; warns on stderr when the work tree has uncommitted changes."""
    commit = _run(["git", "-C", str(checkout), "rev-parse", "HEAD"]).strip()
    if _run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"]).strip():
        print(f"note: uncommitted changes are not checked; the set-up cells install HEAD ({commit[:10]})",
              file=sys.stderr)
    return commit


VERSIONS = ("exercises", "lessons")


def run_check(out_dir: Path, selection: str | None = None, timeout_s: int = 600,
              torch_index: str = "", notebooks: Path = NOTEBOOKS,
              versions: tuple[str, ...] = VERSIONS) -> list[dict]:
    """The whole check (see the module docstring) of the lessons in `notebooks` and their
    learner versions in its ``exercises/`` (`versions`: either or both); returns one row per
    executed notebook."""
    unknown = set(versions) - set(VERSIONS)
    if unknown or not versions:
        raise ValueError(f"versions: expected some of {', '.join(VERSIONS)}, got {', '.join(versions) or 'none'}")
    # Absolute: papermill runs each notebook from its own folder, and the kernel is found
    # through $JUPYTER_PATH, which a relative path would point elsewhere from there.
    out_dir = Path(out_dir).resolve()
    shutil.rmtree(out_dir, ignore_errors=True)
    commit = head_commit()
    env_dir, jupyter_dir = out_dir / "venv", out_dir / "jupyter"
    data_home = Path(os.environ.get("COURSE_DATA_HOME") or ROOT / "datasets").resolve()
    pins = runtime_requirements()
    start = time.perf_counter()
    build_environment(env_dir, torch_index=torch_index)
    print(f"built the Colab-like environment in {time.perf_counter() - start:.0f} s", flush=True)
    register_kernel(env_dir, jupyter_dir, out_dir / "ipython", data_home)
    baseline = inventory(env_dir)
    torch_before = json.loads(_run([str(_python(env_dir)), "-I", "-c", _TORCH], env=_clean_env()))
    rows = []
    with _kernel_environment(jupyter_dir):
        for lesson in lesson_notebooks(selection, Path(notebooks)):
            learner = lesson.parent / colab.EXERCISES_FOLDER / lesson.name
            for version, source in (("exercises", learner), ("lessons", lesson)):
                if version not in versions:
                    continue
                if not source.is_file():
                    raise FileNotFoundError(f"no {source}: run `make exercises`")
                reset_runtime(env_dir, baseline)
                prepared = out_dir / "prepared" / version / lesson.name
                colab_notebook(source, prepared, ROOT, commit)
                seconds = execute(prepared, out_dir / version / lesson.name,
                                  out_dir / "content" / version / lesson.stem, timeout_s)
                check_runtime(env_dir, baseline, torch_before, pins, commit)
                rows.append({"notebook": f"{version}/{lesson.name}", "seconds": round(seconds, 1)})
                print(f"ok  {version}/{lesson.name}  {seconds:.0f} s; Colab's packages and torch unchanged",
                      flush=True)
    print(f"torch {torch_before[0]} at {torch_before[1]}: version and location unchanged")
    return rows


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``colab-check`` on `subparsers` (``python -m course_utils colab-check``)."""
    p = subparsers.add_parser("colab-check", help="run the lessons in a Colab-like environment",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "runs" / "colab-check"),
                   help="folder for the environment and the executed notebooks (emptied first)")
    p.add_argument("--nb", default="", help="lesson numbers, e.g. 01 or 01,03 (default: all)")
    p.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell")
    p.add_argument("--torch-index", default="", help="the index torch comes from (default: pip's configuration)")
    p.add_argument("--notebooks", default=str(NOTEBOOKS),
                   help="folder of the lessons, with their learner versions in exercises/ (default: notebooks/)")
    p.add_argument("--versions", default=",".join(VERSIONS),
                   help="which versions run: exercises, lessons or both (default: exercises,lessons)")
    p.set_defaults(run=_command)


def _command(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    rows = run_check(Path(args.out), args.nb or None, args.timeout, args.torch_index, Path(args.notebooks),
                     tuple(v.strip() for v in args.versions.split(",") if v.strip()))
    print(f"colab-check: {len(rows)} notebooks ran in the Colab-like environment; "
          f"{time.perf_counter() - start:.0f} s in all")
    return 0
