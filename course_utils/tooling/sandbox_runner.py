"""Runs one exercise function of a submission on the grader's inputs, inside the sandbox.

``python -I -S sandbox_runner.py SITE_DIR...`` in the submission's sandbox folder,
which holds ``job.json`` (the student's code, cell by cell, and the function's
name) and ``inputs.pt`` (one tuple of arguments per test case). It writes
``answers.pt``: for each case ("returned", value), ("raised", type name, first
line of the message, where) or ("died", ...) is left to the grader.

This file imports nothing from course_utils, and course_utils cannot be
imported here: the interpreter starts without site processing (``-S``), so the
editable install's import hook never runs, and an audit hook (which Python
does not let code remove) turns ``import course_utils`` into ModuleNotFoundError.
The same hook stops, with exit status TAMPER_EXIT and a line on stderr, any
write, delete or rename outside the folder, any read outside it and Python's own
folders, new processes, sockets and ctypes. The grader reads only ``answers.pt``,
with ``torch.load(weights_only=True)``, and judges the answers itself.
"""

import json
import linecache
import numbers
import os
import sys
import traceback

TAMPER_EXIT = 87
_PROCESS_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "subprocess.Popen", "pty.spawn", "socket.connect", "socket.bind", "ctypes.dlopen",
                   "ctypes.dlsym", "ctypes.addressof", "ctypes.cdata", "sys.addaudithook",
                   "gc.get_referrers", "gc.get_objects", "gc.get_referents", "sys._current_frames")
_WRITE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod",
                 "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move")
_READ_EVENTS = ("os.listdir", "os.scandir")


def _inside(path, folders):
    path = os.path.realpath(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else None
    return path is not None and any(path == f or path.startswith(f + os.sep) for f in folders)


def _stop(what):
    os.write(2, f"TAMPER: {what}\n".encode(errors="replace"))
    os._exit(TAMPER_EXIT)


def install_guard(folder, readable):
    """Add the audit hook: writes only under `folder`, reads only there and under `readable`."""
    here, readable = (folder,), tuple(readable) + (folder,)

    def guard(event, args):
        if event == "import" and args[0].split(".")[0] == "course_utils":
            raise ModuleNotFoundError(f"No module named {args[0]!r} (grading runs without course_utils)")
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            mode, flags = args[1] or "r", args[2] or 0
            writes = any(c in str(mode) for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            if not _inside(args[0], here if writes else readable):
                _stop(f"{'wrote' if writes else 'read'} outside its folder: {os.fsdecode(args[0])}")
        elif event in _WRITE_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path, here):
                    _stop(f"changed a file outside its folder ({event}): {os.fsdecode(path)}")
        elif event in _READ_EVENTS and args and args[0] is not None and not _inside(args[0], readable):
            _stop(f"listed a folder outside its own ({event}): {os.fsdecode(args[0])}")
        elif event.startswith(_PROCESS_EVENTS):
            _stop(f"used a forbidden interpreter feature ({event})")

    sys.addaudithook(guard)


def portable(value):
    """`value` as something torch.load(weights_only=True) reads back; anything else becomes
    {"__unreadable__": [type name, start of its repr]}."""
    import torch

    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, numbers.Number) and hasattr(value, "item"):  # a NumPy scalar
        return value.item()
    if isinstance(value, (tuple, list)):
        items = [portable(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: portable(v) for k, v in value.items()}
    text = repr(value) if type(value).__repr__ is not object.__repr__ else "object"
    return {"__unreadable__": [type(value).__name__, text[:57] + "..." if len(text) > 60 else text]}


def _raised(error):
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith("cell ")]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" ({frame.filename}, line {frame.lineno}" + (f": `{frame.line}`)" if frame.line else ")")
    kind = "NotImplementedError" if isinstance(error, NotImplementedError) else type(error).__name__
    return ("raised", kind, (str(error).strip().splitlines() or [""])[0][:200], where)


def main():
    sys.path[:] = [p for p in sys.path if p and os.path.isdir(p)] + sys.argv[1:]
    import torch  # before the guard: importing torch loads native libraries

    torch.set_num_threads(1)
    folder = os.path.realpath(os.getcwd())
    with open("job.json", encoding="utf-8") as file:
        job = json.load(file)
    cases = torch.load("inputs.pt", weights_only=True)
    readable = {os.path.realpath(p) for p in [sys.prefix, sys.base_prefix, sys.exec_prefix,
                                              *sys.argv[1:], "/usr", "/lib", "/proc", "/sys", "/dev"]}
    install_guard(folder, readable - {folder})
    namespace = {"__name__": "__submission__"}
    answers = []
    try:
        for cell, source in job["code"]:
            filename = f"cell {cell}"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            exec(compile(source, filename, "exec"), namespace)
        function = namespace[job["function"]]
    except Exception as error:
        answers = [_raised(error)] * len(cases)
    else:
        for args in cases:
            try:
                answers.append(("returned", portable(function(*args))))
            except Exception as error:
                answers.append(_raised(error))
    torch.save(answers, "answers.pt")


if __name__ == "__main__":
    main()
