"""How a trained tagger lies on disk (course_utils.ner.Tagger.save and Tagger.load use it).

A saved tagger is a folder of config.json, vocabularies.json, weights.pt and
manifest.json, the sha256 of the other three written last. This module writes
such a folder at once (staged beside it, then swapped in, with SIGINT, SIGTERM
and SIGHUP held back until it is over), and reads it back only after checking
every file's size and digest, so that a flipped byte, a truncated file or a
half-written save is named instead of loaded.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, TypeVar

from torch import nn

from .files import atomic_folder, file_in_the_way

# The files of a saved tagger (see Tagger.save), and the manifest that records their sha256.
MANIFEST = "manifest.json"
SAVED_FILES = ("config.json", "vocabularies.json", "weights.pt", MANIFEST)
# The most bytes a saved tagger's JSON files may hold (far more than any real vocabulary needs),
# and the room weights.pt may take beyond its tensors' bytes (zip and pickle bookkeeping).
MAX_JSON_BYTES = 256 * 2**20
WEIGHTS_OVERHEAD_BYTES = 2 * 2**20
# What every file torch.save writes starts with: it is a zip archive.
ZIP_MAGIC = b"PK\x03\x04"
# The signals a save holds back until it has finished (see Tagger.save).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
_SHA256 = re.compile(r"[0-9a-f]{64}")
_T = TypeVar("_T")


def _check_writable(directory: Path) -> None:
    """Raise a ValueError unless a folder can be made beside ``directory`` (where Tagger.save
    stages its files), by making and removing one in the nearest folder that exists."""
    parent = next((p for p in directory.absolute().parents if p.exists()), Path("/"))
    try:
        tempfile.TemporaryDirectory(dir=parent, prefix=f".{directory.name}.", suffix=".check").cleanup()
    except OSError as error:
        raise ValueError(f"cannot save a tagger to {directory}: cannot write in {parent} "
                         f"({error.strerror})") from None


def check_save_target(directory: str | Path) -> Path:
    """``directory`` as a Path, if a tagger can be saved there: a new folder, an empty one or
    a saved tagger (which is replaced). Introduced in lesson 05.

    Raises:
        ValueError: ``directory`` is a file, lies under a file, lies in a folder this
            process cannot write to, or is a folder that holds files other than a saved
            tagger's (saving would delete them).
    """
    directory = Path(directory)
    blocker = file_in_the_way(directory)
    if blocker is not None:
        where = "is" if blocker == directory else f"lies under {blocker}, which is"
        raise ValueError(f"cannot save a tagger to {directory}: it {where} a file, not a folder")
    if directory.is_dir():
        others = sorted(p.name for p in directory.iterdir() if p.name not in SAVED_FILES)
        if others:
            raise ValueError(f"cannot save a tagger to {directory}: it holds other files than a saved "
                             f"tagger ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}); "
                             f"choose a new or empty folder")
    _check_writable(directory)
    return directory


def manifest_text(files: dict[str, bytes]) -> str:
    """The manifest of a saved tagger: the sha256 of each file, as compact, sorted JSON, so
    that the text is canonical and no byte of it can change unnoticed."""
    return _manifest_json({name: hashlib.sha256(data).hexdigest() for name, data in files.items()})


def _manifest_json(digests: dict[str, str]) -> str:
    return json.dumps({"sha256": digests}, sort_keys=True, separators=(",", ":"))


def leftovers(directory: Path, kinds: tuple[str, ...]) -> list[Path]:
    """The folders an interrupted save of ``directory`` left beside it, named as
    ``files.atomic_folder`` (``.NAME.xxxxxxxx.part``, ``.old``) and `_check_writable`
    (``.check``) name theirs; ``kinds`` picks the suffixes."""
    directory = directory.absolute()
    if not directory.name:
        return []
    pattern = f".{glob.escape(directory.name)}.{'[a-z0-9_]' * 8}.*"
    return sorted(p for p in directory.parent.glob(pattern) if p.suffix in kinds and p.is_dir())


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of ``path``; a file over ``limit`` bytes is refused before it is read."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ValueError(f"{path} is {size:,} bytes, more than the {limit:,} this file of a saved tagger "
                             "can hold: it is not a file Tagger.save wrote")
        return path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read {path} ({error.strerror or error})") from None
    except MemoryError:
        raise ValueError(f"{path} ({size:,} bytes) does not fit in memory") from None


def read_manifest(directory: Path) -> dict[str, str]:
    """{file name: sha256} as the ``manifest.json`` of the tagger saved in ``directory`` records them.

    Raises:
        FileNotFoundError: a file of a saved tagger is missing (naming a previous tagger that
            an interrupted save left beside ``directory``, if there is one).
        ValueError: the manifest is not the canonical JSON that ``Tagger.save`` writes.
    """
    missing = [name for name in SAVED_FILES if not (directory / name).is_file()]
    if missing:
        hint = "".join(f"; an interrupted save left the previous tagger in {old}: rename it to {directory}"
                       for old in leftovers(directory, (".old",))[:1])
        raise FileNotFoundError(f"{directory} is not a saved tagger: missing {missing}{hint}")
    path, names = directory / MANIFEST, sorted(set(SAVED_FILES) - {MANIFEST})
    data = read_limited(path, MAX_JSON_BYTES)
    try:
        digests = json.loads(data)["sha256"]
    except (ValueError, TypeError, KeyError, RecursionError):
        digests = None
    if not (isinstance(digests, dict) and sorted(digests) == names
            and all(isinstance(d, str) and _SHA256.fullmatch(d) for d in digests.values())
            and data == _manifest_json(digests).encode()):
        raise ValueError(f"{path} does not match the manifest Tagger.save writes (expected "
                         f'{{"sha256": {{name: 64 hex digits}}}} for {names}): it is corrupted or was '
                         "edited; save the tagger again")
    return digests


def read_verified(path: Path, recorded: str, limit: int) -> bytes:
    """The bytes of ``path`` (at most ``limit``), once their sha256 is ``recorded``."""
    data = read_limited(path, limit)
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        first = next(i for i, (a, b) in enumerate(zip(actual, recorded)) if a != b)
        raise ValueError(f"{path} does not match {MANIFEST} (its sha256 differs): the file has {actual}, the "
                         f"manifest records {recorded} (from digit {first + 1} on); the saved tagger is corrupted "
                         "or was edited; save it again")
    return data


def read_json(path: Path, digests: dict[str, str], build: Callable[[Any], _T]) -> _T:
    """``build`` applied to the JSON in ``path``, once the file matches the manifest's ``digests``."""
    data = read_verified(path, digests[path.name], MAX_JSON_BYTES)
    try:
        return build(json.loads(data))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise ValueError(f"{path} is not the {path.stem} Tagger.save writes ({type(error).__name__}: "
                         f"{error})") from None


def state_bytes(model: nn.Module) -> int:
    """The bytes of ``model``'s tensors, as its state_dict holds them (what weights.pt takes, less
    the bookkeeping of WEIGHTS_OVERHEAD_BYTES at most)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Within the block, the STOP_SIGNALS are recorded instead of acted on; on leaving, the
    previous handlers come back and each signal received is raised again, once, in order.
    Outside the main thread, where Python cannot set handlers, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {number: signal.signal(number, lambda number, frame: held.append(number))
                for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(held):
            signal.raise_signal(number)


def write_tagger_files(directory: Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` ({name: bytes}) and their manifest to ``directory`` at once, as Tagger.save
    describes: staged in a sibling folder that then takes its place, with the stop signals held
    back meanwhile and the staging folders of killed saves removed first.

    Raises:
        OSError: the files could not be written; a tagger saved there before is unchanged.
    """
    try:
        with signals_held():
            for leftover in leftovers(directory, (".part", ".check")):
                shutil.rmtree(leftover, ignore_errors=True)
            with atomic_folder(directory) as staging:
                for name, data in files.items():
                    (staging / name).write_bytes(data)
                (staging / MANIFEST).write_text(manifest_text(files), encoding="utf-8")
    except OSError as error:
        reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or str(error)
        raise OSError(error.errno, f"could not save the tagger to {directory} ({reason}); "
                      "a tagger saved there before is unchanged") from error
    return directory
