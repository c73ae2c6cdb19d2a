"""Runs one exercise function of a submission on the grader's inputs, inside the sandbox.

``python -I -S sandbox_runner.py SITE_DIR...`` in the submission's sandbox folder,
which holds ``job.json`` (the student's code, cell by cell, the function's name,
and whether it runs on several processes) and ``inputs.pt`` (one tuple of
arguments per test case). Once torch is loaded it writes "ready" on its
standard output (the grader's clock for ``--timeout`` starts there), then runs
the learner's code and writes ``answers.pt``: for each case ("returned", value)
or ("raised", type name, first line of the message, where).

An exercise that runs on several processes (lesson 06) gets, per case, each
process's parameters and gradients; the runner forks one process per rank
before any learner code runs, joins them in a gloo group (a file store in the
folder), builds a model from them and calls the learner's function with it on
every process. Process ``r`` writes ``answers.pt`` (rank 0) or ``answers-r.pt``:
for each case, the model's gradients afterwards, what it raised, or ("absent",)
where the case has fewer processes than ``r + 1``.

This file imports nothing from course_utils, and course_utils cannot be
imported here: the interpreter starts without site processing (``-S``), so the
editable install's import hook never runs, and an audit hook (which Python
does not let code remove) turns ``import course_utils`` into ModuleNotFoundError.
The same hook stops, with exit status TAMPER_EXIT and a line on stderr, any
write, delete or rename outside the folder, any read outside it and Python's own
folders (of /proc, only its own entries), new processes, sockets and ctypes. The grader reads only the answers,
with ``torch.load(weights_only=True)``, checks their form and judges them itself.
"""

import datetime
import json
import linecache
import numbers
import os
import resource
import sys
import traceback

TAMPER_EXIT = 87
MEMORY_BYTES = 4 * 2**30  # each sandbox process's data (heap and anonymous maps), torch included
READY = b"ready\n"
PROVIDED = ("get_device",)  # what code that imports these from course_utils gets: see _provided
_PROCESS_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                   "subprocess.Popen", "pty.spawn", "socket.", "ctypes.dlopen",
                   "ctypes.dlsym", "ctypes.addressof", "ctypes.cdata", "sys.addaudithook",
                   "gc.get_referrers", "gc.get_objects", "gc.get_referents", "sys._current_frames",
                   "os.kill", "os.killpg", "signal.pthread_kill")
_WRITE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "os.chmod",
                 "os.chown", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move")
_READ_EVENTS = ("os.listdir", "os.scandir")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def inside(path, folders):
    """Whether `path` (resolved, links followed) is one of `folders` or below one; False for a non-path."""
    path = os.path.realpath(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else None
    return path is not None and any(path == f or path.startswith(f + os.sep) for f in folders)


def writes(mode, flags):
    """Whether an ``open`` audit event with this mode and these flags may change the file."""
    return any(c in str(mode) for c in "wax+") or bool((flags or 0) & _WRITE_FLAGS)


def _stop(what, write=os.write, exit=os._exit):
    """Say on stderr what the code did, and end the process at once (TAMPER_EXIT); `write` and `exit`
    are bound when this module loads, so that code which replaces os._exit cannot make this return."""
    write(2, f"TAMPER: {what}\n".encode(errors="replace"))
    exit(TAMPER_EXIT)


def guard(folder, readable, setting_up=None):
    """The audit hook: writes only under `folder`, reads only there and under `readable` (resolved paths).

    A blocked event stops the process (`_stop`), except while ``setting_up["now"]`` is true (`_run`):
    then it raises PermissionError in the code that caused it, which has done nothing.
    """
    here, readable, stop = (folder,), tuple(readable) + (folder,), _stop  # bound now: code can't swap it

    def blocked(what):
        if setting_up and setting_up["now"]:
            raise PermissionError(f"the grader's sandbox does not allow this: its code {what}")
        stop(what)

    def hook(event, args):
        if event == "import" and args[0].split(".")[0] == "course_utils":
            raise ModuleNotFoundError(f"No module named {args[0]!r} (grading runs without course_utils)")
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            changes = writes(args[1], args[2])
            if not inside(args[0], here if changes else readable):
                blocked(f"{'wrote' if changes else 'read'} outside its folder: {os.fsdecode(args[0])}")
            # A descriptor of another folder would let dir_fd= calls (which the audit events do not
            # show) write there under a name the hook resolves inside `folder`: no such descriptor.
            if not inside(args[0], here) and os.path.isdir(args[0]):
                blocked(f"opened a folder outside its own: {os.fsdecode(args[0])}")
        elif event in _WRITE_EVENTS:
            for path in args:
                if isinstance(path, (str, bytes, os.PathLike)) and not inside(path, here):
                    blocked(f"changed a file outside its folder ({event}): {os.fsdecode(path)}")
        elif event in _READ_EVENTS and args and args[0] is not None and not inside(args[0], readable):
            blocked(f"listed a folder outside its own ({event}): {os.fsdecode(args[0])}")
        elif event.startswith(_PROCESS_EVENTS):
            blocked(f"used a forbidden interpreter feature ({event})")

    return hook


def portable(value):
    """`value` as something torch.load(weights_only=True) reads back: subclasses of int, float and
    str become the plain type; an int too large for it, or anything else, becomes
    {"__unreadable__": [type name, start of its repr]}."""
    import torch

    if type(value) is int and value.bit_length() > 2000:  # torch.load reads back ints of at most 255 bytes
        return {"__unreadable__": ["int", f"(an int of {value.bit_length()} bits)"]}
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, numbers.Number) and hasattr(value, "item"):  # a NumPy scalar
        return value.item()
    for plain in (bool, int, float, str):
        if isinstance(value, plain):  # a subclass, whose methods the grader must not meet
            return portable(plain(value))
    if isinstance(value, (tuple, list)):
        items = [portable(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict) and all(type(k) is str for k in value):
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
    text = (str(error).strip().splitlines() or [""])[0][:200]
    if isinstance(error, MemoryError) and not text:
        text = f"more memory than the sandbox allows ({MEMORY_BYTES // 2**30} GiB per process)"
    return ("raised", kind, text, where)


def _provided():
    """The names of PROVIDED: course_utils.train.get_device gives the CPU, as the sandbox has no GPU."""
    import torch

    return {"get_device": lambda *args, **kwargs: torch.device("cpu")}


def _answer(call):
    """("returned", portable result of call()) or what it raised."""
    try:
        return ("returned", portable(call()))
    except (Exception, SystemExit) as error:
        return _raised(error)


def _model(parameters):
    """A model whose parameters are `parameters` [(value, grad or None), ...], each with its gradient."""
    import torch

    model = torch.nn.Module()
    for number, (value, grad) in enumerate(parameters):
        parameter = torch.nn.Parameter(value, requires_grad=grad is not None)
        parameter.grad = grad
        model.register_parameter(f"p{number}", parameter)
    return model


def _in_group(function, per_rank, rank, store):
    """Join a gloo group of len(per_rank) processes, call ``function(model)`` on this rank's model,
    and return its gradients afterwards; every rank waits for the others before leaving the group."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=len(per_rank),
                            timeout=datetime.timedelta(seconds=20))
    try:
        model = _model(per_rank[rank])
        function(model)
        return [p.grad for p in model.parameters()]
    finally:
        try:
            dist.barrier()  # no rank leaves while another still connects or reduces
        finally:
            dist.destroy_process_group()


def _run_on_processes(function, cases, rank, folder):
    """This rank's answers for each case: the gradients after ``function(model)`` in a gloo group."""
    return [_answer(lambda: _in_group(function, per_rank, rank, f"{folder}/store-{number}"))
            if rank < len(per_rank) else ("absent",) for number, per_rank in enumerate(cases)]


def _fork_ranks(world_size):
    """Fork world_size - 1 processes (before the guard forbids it); this process's rank."""
    for rank in range(1, world_size):
        if os.fork() == 0:
            return rank
    return 0


def _remember(filename, source):
    """Put `source` (a statement of a cell, after blank lines) into linecache under `filename`, over
    the lines of that cell's other statements, for the line of code that a traceback shows."""
    old = linecache.cache.get(filename, (0, None, [], filename))[2]
    new = source.splitlines(True)
    lines = [n if n.strip() or i >= len(old) else old[i] for i, n in enumerate(new)] + old[len(new):]
    linecache.cache[filename] = (sum(map(len, lines)), None, lines, filename)


def _set_up(job, namespace, setting_up):
    """Execute the learner's statements in `namespace`, in order. A setup statement (job["setup"]) that
    fails is skipped: what it could not do, "cell N: Error: message", is returned for the messages."""
    skipped = []
    for index, (cell, source) in enumerate(job["code"]):
        filename = f"cell {cell}"
        _remember(filename, source)
        code = compile(source, filename, "exec")
        if index not in job["setup"]:
            exec(code, namespace)
            continue
        setting_up["now"] = True
        try:
            exec(code, namespace)
        except (Exception, SystemExit) as error:
            skipped.append(f"{filename}: {type(error).__name__}: {str(error).strip()[:120]}")
        finally:
            setting_up["now"] = False
    return skipped


def _explained(answer, skipped):
    """`answer`, and if it is a NameError while some setup statement failed, what that statement raised."""
    if skipped and answer[:2] == ("raised", "NameError"):
        note = f" (the grader could not run {'; '.join(skipped)})"
        return answer[:2] + ((answer[2] + note)[:400],) + answer[3:]
    return answer


def _run(job, cases, namespace, rank, folder, setting_up):
    """Execute the learner's statements in `namespace`, then call the function on every case."""
    try:
        skipped = _set_up(job, namespace, setting_up)
        function = namespace[job["function"]]
    except (Exception, SystemExit) as error:
        return [_raised(error)] * len(cases)
    if job["processes"]:
        return _run_on_processes(function, cases, rank, folder)
    return [_explained(_answer(lambda: function(*args)), skipped) for args in cases]


def readable_folders(extra):
    """The resolved folders and files that code in the sandbox may read besides its own folder: Python's,
    the `extra` ones (where torch lives), the system's libraries and devices, and of /proc only this
    process's own entries and the machine's description: another process's (the grader's environ, say)
    is not the submission's to read."""
    return {os.path.realpath(p) for p in [sys.prefix, sys.base_prefix, sys.exec_prefix, *extra, "/usr", "/lib",
                                          "/sys", "/dev", f"/proc/{os.getpid()}", "/proc/cpuinfo",
                                          "/proc/meminfo", "/proc/stat"]}


def main():
    sys.path[:] = [p for p in sys.path if p and os.path.isdir(p)] + sys.argv[1:]
    import torch  # before the guard: importing torch loads native libraries
    import torch.distributed  # noqa: F401 (the same, for lesson 06)

    torch.set_num_threads(1)
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_BYTES, MEMORY_BYTES))  # a grab raises MemoryError
    folder = os.path.realpath(os.getcwd())
    with open("job.json", encoding="utf-8") as file:
        job = json.load(file)
    cases = torch.load("inputs.pt", weights_only=True)
    rank = _fork_ranks(max(len(case) for case in cases)) if job["processes"] else 0
    if rank == 0:
        os.write(1, READY)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # what the learner prints goes nowhere
    readable = readable_folders(sys.argv[1:])
    setting_up = {"now": False}
    sys.addaudithook(guard(folder, readable - {folder}, setting_up))
    namespace = {"__name__": "__submission__", **_provided()}
    answers = _run(job, cases, namespace, rank, folder, setting_up)
    torch.save(answers, "answers.pt" if rank == 0 else f"answers-{rank}.pt")
    if rank == 0 and job["processes"]:
        for _ in range(1, max(len(case) for case in cases)):
            os.wait()
    os._exit(0)  # skips the interpreter's slow clean-up, which would count in the function's time


if __name__ == "__main__":
    main()
