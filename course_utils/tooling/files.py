"""The course's one way to write a file or a folder so that a crash never leaves half of it.

Every writer in the package (checkpoints, saved taggers, downloads, executed
notebooks, grade files) goes through `atomic_file` or `atomic_folder`: the
content is written next to its target under a temporary name, flushed to disk,
and only then renamed into place, so a reader sees the old version or the new
one, never a mixture. If writing fails (a full disk, Ctrl-C, an exception), the
temporary file is removed and the previous target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path


def _new_beside(target: Path, suffix: str, make: Callable[[Path], None]) -> Path:
    """A new path ``.NAME.xxxxxxxx<suffix>`` beside `target`, created by `make` (which must
    fail with FileExistsError if the path exists). The kernel applies the umask to the mode
    `make` asks for, so the umask is never changed (``os.umask`` is process-wide: another
    thread could create files with mode 0o666 meanwhile)."""
    for _ in range(100):
        path = target.parent / f".{target.name}.{secrets.token_hex(4)}{suffix}"
        try:
            make(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary name beside {target}")


def _new_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Flush `folder`'s entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def file_in_the_way(folder: str | Path) -> Path | None:
    """The first of `folder` and the folders above it that exists but is a file, so that `folder`
    cannot be a folder; None if there is none."""
    folder = Path(folder)
    return next((path for path in (folder, *folder.parents) if path.exists() and not path.is_dir()), None)


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; once the block ends without an
    exception, the file written there replaces `target` in one rename.

    The temporary file is created empty with the permissions ``open()`` would
    give (the umask decides), so the caller may open it by name.

        with atomic_file("model.pt") as tmp:
            torch.save(state, tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_beside(target, ".part", _new_file)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync_folder(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `target` atomically; return `target` as a Path."""
    with atomic_file(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write `data` to `target` atomically; return `target` as a Path."""
    with atomic_file(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


@contextlib.contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; once the block ends without
    an exception, the staging folder replaces `target` by renames (an existing
    `target` is moved aside first, and put back if the swap fails).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _new_beside(target, ".part", lambda path: os.mkdir(path, 0o777))
    try:
        yield staging
        for file in staging.rglob("*"):
            if file.is_file():
                _fsync(file)
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    old = _new_beside(target, ".old", lambda path: os.mkdir(path, 0o700))
    os.replace(target, old)  # replaces the empty folder made just above
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
