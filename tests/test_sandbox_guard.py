"""The sandbox's file guard (course_utils.tooling.sandbox_runner.guard), unit by unit.

The hook is called here directly with the audit events Python would raise; a
blocked event ends the process, so `_stop` is replaced by one that raises.
"""

import os
import subprocess
import sys

import pytest

from course_utils.tooling import sandbox_runner
from course_utils.tooling.sandbox_runner import guard, inside, portable, writes


class Stopped(Exception):
    pass


@pytest.fixture
def hook(tmp_path, monkeypatch):
    """The guard of a sandbox folder tmp_path/sandbox that may also read tmp_path/lib."""
    def stop(what):
        raise Stopped(what)

    monkeypatch.setattr(sandbox_runner, "_stop", stop)
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "lib").mkdir()
    return guard(str(tmp_path / "sandbox"), [str(tmp_path / "lib")])


def test_inside_is_the_folder_or_below_it_not_a_sibling_with_the_same_prefix(tmp_path):
    folder = str(tmp_path / "sandbox")
    assert inside(folder, [folder]) and inside(f"{folder}/a/b", [folder])
    assert not inside(f"{folder}X", [folder]) and not inside(f"{folder}X/a", [folder])
    assert not inside(str(tmp_path), [folder]) and not inside(f"{folder}/../x", [folder])
    assert inside(os.fsencode(f"{folder}/a"), [folder]) and not inside(3, [folder])
    (tmp_path / "sandbox").mkdir()
    os.symlink("/etc", tmp_path / "sandbox" / "link")
    assert not inside(f"{folder}/link/passwd", [folder])  # links are followed


@pytest.mark.parametrize("mode, flags, changes", [
    ("r", 0, False), ("rb", 0, False), (None, None, False), ("w", 0, True), ("a", 0, True),
    ("ab", 0, True), ("x", 0, True), ("r+", 0, True), (None, os.O_WRONLY, True), (None, os.O_RDWR, True),
    (None, os.O_CREAT, True), (None, os.O_APPEND, True), (None, os.O_TRUNC, True), (None, os.O_RDONLY, False),
])
def test_writes_knows_every_mode_that_changes_a_file(mode, flags, changes):
    assert writes(mode, flags) is changes
    assert writes("X", 0) is False  # only w, a, x and + open a file for writing


@pytest.mark.parametrize("mode", ["w", "a", "r+", "x"])
def test_writing_outside_the_folder_stops_it(hook, tmp_path, mode):
    hook("open", (str(tmp_path / "sandbox" / "mine.txt"), mode, 0))
    for outside in [tmp_path / "sandboxX" / "f", tmp_path / "lib" / "f", tmp_path / "f"]:
        with pytest.raises(Stopped, match=f"wrote outside its folder: {outside}"):
            hook("open", (str(outside), mode, 0))


def test_appending_by_flags_outside_the_folder_stops_it(hook, tmp_path):
    with pytest.raises(Stopped, match="wrote outside"):
        hook("open", (str(tmp_path / "f"), None, os.O_WRONLY | os.O_APPEND))


def test_reading_is_allowed_in_the_folder_and_the_readable_ones_only(hook, tmp_path):
    hook("open", (str(tmp_path / "sandbox" / "inputs.pt"), "rb", 0))
    hook("open", (str(tmp_path / "lib" / "torch.py"), "r", 0))
    hook("open", (3, "r", 0))  # an open file descriptor: not a path
    for outside in [tmp_path / "libX" / "a.py", tmp_path / "other.ipynb", "/etc/passwd"]:
        with pytest.raises(Stopped, match=f"read outside its folder: {outside}"):
            hook("open", (str(outside), "r", 0))


def test_changing_or_listing_outside_the_folder_stops_it(hook, tmp_path):
    hook("os.remove", (str(tmp_path / "sandbox" / "x"), None))
    hook("os.rename", (str(tmp_path / "sandbox" / "x"), str(tmp_path / "sandbox" / "y")))
    with pytest.raises(Stopped, match=r"changed a file outside its folder \(os.rename\)"):
        hook("os.rename", (str(tmp_path / "sandbox" / "x"), str(tmp_path / "sandboxX")))
    with pytest.raises(Stopped, match=r"changed a file outside its folder \(os.remove\)"):
        hook("os.remove", (str(tmp_path / "lib" / "x"), None))
    hook("os.listdir", (str(tmp_path / "lib"),))
    hook("os.scandir", (None,))
    with pytest.raises(Stopped, match=r"listed a folder outside its own \(os.scandir\)"):
        hook("os.scandir", (str(tmp_path),))


def test_opening_a_readable_folder_stops_it_and_its_own_folder_does_not(hook, tmp_path):
    hook("open", (str(tmp_path / "sandbox"), None, os.O_RDONLY))
    with pytest.raises(Stopped, match=f"opened a folder outside its own: {tmp_path / 'lib'}"):
        hook("open", (str(tmp_path / "lib"), None, os.O_RDONLY))


def test_a_write_through_dir_fd_into_a_readable_folder_is_stopped(tmp_path):
    """Code review: os.open(readable_folder) then os.open(name, O_CREAT, dir_fd=fd) wrote there, because
    the audit event of the second open carries the name but not the folder it is relative to."""
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "lib").mkdir()
    code = ("import os, sys; from course_utils.tooling import sandbox_runner as r; "
            f"sys.addaudithook(r.guard({str(tmp_path / 'sandbox')!r}, [{str(tmp_path / 'lib')!r}])); "
            f"fd = os.open({str(tmp_path / 'lib')!r}, os.O_RDONLY); "
            "os.open('pwn.pth', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path / "sandbox")
    assert run.returncode == sandbox_runner.TAMPER_EXIT
    assert run.stderr.splitlines()[-1] == f"TAMPER: opened a folder outside its own: {tmp_path / 'lib'}"
    assert not (tmp_path / "lib" / "pwn.pth").exists()


def test_a_blocked_event_ends_the_process_with_the_tamper_status_and_says_why(tmp_path):
    code = ("import sys; from course_utils.tooling import sandbox_runner as r; "
            f"sys.addaudithook(r.guard({str(tmp_path)!r}, [])); open('/etc/hostname')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == sandbox_runner.TAMPER_EXIT == 87
    assert run.stderr.splitlines()[-1] == "TAMPER: read outside its folder: /etc/hostname"


@pytest.mark.parametrize("event", ["os.system", "subprocess.Popen", "os.fork", "socket.connect",
                                   "ctypes.dlopen", "sys.addaudithook", "os.posix_spawn", "socket.__new__",
                                   "socket.sendto", "socket.sendmsg", "socket.getaddrinfo"])
def test_processes_sockets_and_ctypes_stop_it(hook, event):
    with pytest.raises(Stopped, match=f"used a forbidden interpreter feature \\({event}\\)"):
        hook(event, ("x",))


def _guarded(tmp_path, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a new interpreter, its folder tmp_path, with the guard as the sandbox installs it."""
    setup = ("import sys; from course_utils.tooling import sandbox_runner as r; "
             f"sys.addaudithook(r.guard({str(tmp_path)!r}, r.readable_folders([]) - {{{str(tmp_path)!r}}})); ")
    return subprocess.run([sys.executable, "-c", setup + code], capture_output=True, text=True, cwd=tmp_path)


def test_a_udp_datagram_cannot_leave(tmp_path):
    """Package review: socket.connect and socket.bind were stopped, but sendto on a new UDP socket sent."""
    run = _guarded(tmp_path, "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', "
                             "('127.0.0.1', 9))")
    assert run.returncode == sandbox_runner.TAMPER_EXIT
    assert run.stderr.splitlines()[-1] == "TAMPER: used a forbidden interpreter feature (socket.__new__)"


def test_another_processs_environment_cannot_be_read_and_its_own_entries_can(tmp_path):
    """Package review: all of /proc was readable, so the submission could read the grader's environ."""
    run = _guarded(tmp_path, "import os; open(f'/proc/{os.getppid()}/environ').read()")
    assert run.returncode == sandbox_runner.TAMPER_EXIT
    assert run.stderr.splitlines()[-1].startswith(f"TAMPER: read outside its folder: /proc/{os.getpid()}/environ")
    own = _guarded(tmp_path, "open('/proc/self/status').read(); open('/proc/cpuinfo').read()")
    assert own.returncode == 0, own.stderr


def test_course_utils_cannot_be_imported_and_other_modules_can(hook):
    with pytest.raises(ModuleNotFoundError, match="No module named 'course_utils.exercises' .grading runs "):
        hook("import", ("course_utils.exercises", None, None, None, None))
    hook("import", ("torch", None, None, None, None))


def test_portable_answers_are_plain_types():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    assert type(portable(Liar(3))) is int and portable(Liar(3)) == 3
    assert portable((1, [2.5, "a"], None)) == (1, [2.5, "a"], None)
    assert portable(object()) == {"__unreadable__": ["object", "object"]}


def test_portable_reads_numpy_scalars_and_string_keyed_dicts_and_marks_the_rest():
    import numpy as np
    import torch

    assert portable(np.float32(1.5)) == 1.5 and type(portable(np.int64(3))) is int
    value = portable({"a": torch.ones(2), "b": [np.int64(1)]})
    assert torch.equal(value["a"], torch.ones(2)) and value["b"] == [1] and type(value["b"][0]) is int
    assert portable({1: 2}) == {"__unreadable__": ["dict", "{1: 2}"]}


class _Shown:
    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return self.text


@pytest.mark.parametrize("length, shown", [(60, "x" * 60), (61, "x" * 57 + "...")])
def test_portable_keeps_at_most_60_characters_of_an_unreadable_answers_repr(length, shown):
    assert portable(_Shown("x" * length)) == {"__unreadable__": ["_Shown", shown]}
