"""The data hub's machinery: where every dataset file comes from, and how it lands in the cache.

Each dataset is a list of files with a public URL and a sha256 checksum.
`fetch(name)` returns the local paths, getting each file from the first source
that has a correct copy:

1. the cache (``datasets/`` in a checkout, or ``$COURSE_DATA_HOME``);
2. local copies: each folder in ``$COURSE_DATA_MIRROR`` (colon-separated, one
   sub-folder per dataset) and system folders such as Debian's
   ``/usr/share/datasets/fashion-mnist``;
3. the public URL.

Whatever the source, the sha256 is checked before a file lands in the cache,
and files are written with course_utils.tooling.files.atomic_file, so an
interrupted copy never leaves a half-written file behind; the ``.part`` files of
processes that died are removed by the next fetch. Cached files follow the umask
like any file written with ``open``.

A download says which source it tries, shows a progress bar, and gives up
after ``$COURSE_DOWNLOAD_STALL_S`` seconds without a byte (default 30) or
``$COURSE_DOWNLOAD_DEADLINE_S`` seconds in all (default 900).

Lessons use course_utils.data (``load_*`` and ``fetch``); this module is behind
``python -m course_utils data list | fetch NAME|all | verify``.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from .files import atomic_file, file_in_the_way

STALL_ENV, DEADLINE_ENV = "COURSE_DOWNLOAD_STALL_S", "COURSE_DOWNLOAD_DEADLINE_S"
# The most bytes one download may bring (the largest course file is 26 MB): a server that
# sends more, or announces more, is refused before the disk fills.
MAX_DOWNLOAD_BYTES = 200 * 2**20
DEFAULT_STALL_S, DEFAULT_DEADLINE_S = 30.0, 900.0
_CHUNK = 1 << 16


class DataError(RuntimeError):
    """A dataset file could not be had from any source."""


class ChecksumError(DataError):
    """A file's sha256 is not the one the registry expects."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where it comes from and what its bytes hash to.

    `also_accepted` lists the sha256 of known repackagings whose bytes differ
    but whose content is the same (Debian's Fashion-MNIST gzip files carry
    another header timestamp and no file name).
    """

    name: str
    url: str
    sha256: str
    also_accepted: tuple[str, ...] = ()

    def accepts(self, digest: str) -> bool:
        return digest == self.sha256 or digest in self.also_accepted


@dataclass(frozen=True)
class DatasetInfo:
    """A named dataset: its files and any system folder that may hold them."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    system_dirs: tuple[str, ...] = ()


_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# Upstream sha256 as listed by tensorflow/datasets (url_checksums/fashion_mnist.txt);
# the Debian ones were computed on the files of the package dataset-fashion-mnist.
_FASHION_FILES = (
    ("train-images-idx3-ubyte.gz",
     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
     "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
    ("train-labels-idx1-ubyte.gz",
     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
     "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
    ("t10k-images-idx3-ubyte.gz",
     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
     "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
    ("t10k-labels-idx1-ubyte.gz",
     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
     "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"),
)

_GITHUB = "https://raw.githubusercontent.com/"
_CONLL = _GITHUB + "synalp/NER/c0ea07c81ec3512b5047dcd804b0ac2b10a3bdfc/corpus/CoNLL-2003/"
_RESUME = _GITHUB + "jiesutd/LatticeLSTM/24d17f4270f11d2f75046789d8b67eaa2b907dce/ResumeNER/"
_SHAKESPEARE = (_GITHUB + "karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/"
                "data/tinyshakespeare/input.txt")


def _files(base_url: str, sha256: dict[str, str]) -> tuple[RemoteFile, ...]:
    """The files {name: sha256} found at ``base_url + name``."""
    return tuple(RemoteFile(name, base_url + name, digest) for name, digest in sha256.items())


REGISTRY: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            "fashion_mnist",
            "Fashion-MNIST: 70,000 28x28 grey images of 10 garment classes (lessons 01, 03, 04)",
            tuple(RemoteFile(n, _FASHION_URL + n, up, (deb,)) for n, up, deb in _FASHION_FILES),
            system_dirs=("/usr/share/datasets/fashion-mnist",),
        ),
        DatasetInfo(
            "tinyshakespeare",
            "Tiny Shakespeare: 1.1 MB of plays, the char-rnn corpus (lesson 02)",
            (RemoteFile("input.txt", _SHAKESPEARE,
                        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),),
        ),
        DatasetInfo(
            "conll2003",
            "CoNLL-2003 English NER, original IOB1 files (lesson 05)",
            _files(_CONLL, {
                "eng.train": "eac0822f501353f265383ddf1edb0dcd42a1b6eefd3e383d7074db98c38eb41c",
                "eng.testa": "aedc4ccbd1ae9795feaa0e86fe72d195b0258abed9d705b630d1c889276fac1e",
                "eng.testb": "0632f32c090ef31c223135b7fee3187a7cf8e65c4015c7866bb7783428cdd9a6",
            }),
        ),
        DatasetInfo(
            "resume_ner",
            "Resume NER: Chinese resumes, one character per token, BMES tags (lesson 05)",
            _files(_RESUME, {
                "train.char.bmes": "93b9bb0be5dd4730121587f9dc1378de3fbbe55cba1c575edec271f822c27be7",
                "dev.char.bmes": "1b0d67153e6e8543e9444936ed1b107bd843078c282533898085e1a9aa293952",
                "test.char.bmes": "c4a9f42622819a4b59f66e184d446ebfa89b2f1dbba06e11d70675e59fe7e79b",
            }),
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name`, or a ValueError listing the known names."""
    if not isinstance(name, str):
        raise TypeError(f"expected a dataset name (a str) such as {next(iter(REGISTRY))!r}, "
                        f"got {type(name).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(REGISTRY)}")
    return REGISTRY[name]


COLAB_DATA_HOME = Path("/content/datasets")


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def data_home() -> Path:
    """Where fetched files are cached.

    ``$COURSE_DATA_HOME`` if set (in Colab, a folder on Google Drive keeps the
    cache across restarts); else the ``datasets/`` folder of the checkout this
    package sits in; else, in Colab, ``/content/datasets``; else ``./datasets``.
    """
    if os.environ.get("COURSE_DATA_HOME"):
        return Path(os.environ["COURSE_DATA_HOME"]).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "datasets"
    if (checkout / "README.md").is_file():
        return checkout
    return COLAB_DATA_HOME if in_colab() else Path.cwd() / "datasets"


def _seconds_from_env(name: str, default: float) -> float:
    """A positive number of seconds from environment variable `name`, else `default`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise DataError(f"{name} must be a positive number of seconds, got {text!r}")
    return seconds


def stall_limit() -> float:
    """Seconds a download may go without receiving a byte (``$COURSE_DOWNLOAD_STALL_S``)."""
    return _seconds_from_env(STALL_ENV, DEFAULT_STALL_S)


def deadline() -> float:
    """Seconds one file's download may take in all (``$COURSE_DOWNLOAD_DEADLINE_S``)."""
    return _seconds_from_env(DEADLINE_ENV, DEFAULT_DEADLINE_S)


def _writable_folder(folder: Path) -> None:
    """Create the cache folder `folder` if needed, or say clearly why it cannot be used."""
    home = data_home()
    blocker = file_in_the_way(home)
    if blocker is not None:
        raise DataError(f"the data cache {home} cannot be created: {blocker} is a file, not a folder. "
                        "Set COURSE_DATA_HOME to a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create the data cache folder {folder}: {err.strerror}. "
                        "Set COURSE_DATA_HOME to a folder you can write to.") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"the data cache folder {folder} is not writable. "
                        "Set COURSE_DATA_HOME to a folder you can write to.")


def local_sources(info: DatasetInfo) -> list[Path]:
    """Folders that may hold a local copy of `info`'s files, in the order tried."""
    mirrors = [Path(p) / info.name for p in os.environ.get("COURSE_DATA_MIRROR", "").split(":") if p]
    return mirrors + [Path(d) for d in info.system_dirs]


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def remove_dead_parts(folder: Path) -> list[Path]:
    """Remove the ``.NAME.*.part`` files left in `folder` by processes that died
    (kill -9, a crash) while writing them; return the removed paths.

    A live writer adds bytes at least every `stall_limit()` seconds (a download
    that stalls longer gives up), so a part file untouched for longer is dead.
    """
    removed = []
    oldest_alive = time.time() - stall_limit()
    for part in folder.glob(".*.part"):
        try:
            if part.is_file() and part.stat().st_mtime < oldest_alive:
                part.unlink()
                removed.append(part)
        except FileNotFoundError:  # its writer finished or another fetch removed it
            continue
    return removed


def _check(file: RemoteFile, path: Path) -> None:
    """Raise ChecksumError unless `path` holds `file`'s bytes."""
    digest = sha256_of(path)
    if not file.accepts(digest):
        raise ChecksumError(f"checksum mismatch: expected sha256 {file.sha256}, got {digest} "
                            f"({path.stat().st_size:,} bytes; a truncated or corrupted copy?)")


_CACHE_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def _install(file: RemoteFile, target: Path, copy_into: Callable[[Path], None]) -> None:
    """Write `file` to `target` atomically: `copy_into(tmp)` fills a temporary
    file next to the target, whose checksum is checked before the rename."""
    _writable_folder(target.parent)
    remove_dead_parts(target.parent)
    with atomic_file(target) as tmp:
        try:
            copy_into(tmp)
        except OSError as err:
            if err.errno in _CACHE_FULL:
                raise DataError(f"cannot write to the data cache {target.parent}: {err.strerror}. "
                                "Free some space, or set COURSE_DATA_HOME to another folder.") from None
            raise
        _check(file, tmp)


def download(url: str, target: Path, label: str = "") -> None:
    """Download `url` into the file `target`, with a progress bar (named `label`) on stderr.

    Raises TimeoutError when no byte arrives for `stall_limit()` seconds or the
    whole download takes longer than `deadline()` seconds (give or take one
    stall limit: the clock is read between reads).
    """
    stall, limit = stall_limit(), deadline()
    start = time.monotonic()
    try:
        response = urllib.request.urlopen(url, timeout=stall)
    except TimeoutError:
        raise TimeoutError(f"no answer for {stall:g} s ({STALL_ENV}); the server stalled") from None
    with response, open(target, "wb") as out:
        size = response.headers.get("Content-Length")
        if size and size.isdigit() and int(size) > MAX_DOWNLOAD_BYTES:
            raise ValueError(f"{url} announces {int(size):,} bytes, more than the {MAX_DOWNLOAD_BYTES:,} "
                             "a course file can take: not the file expected")
        with tqdm(total=int(size) if size and size.isdigit() else None, unit="B", unit_scale=True,
                  desc=label or target.name, file=sys.stderr, mininterval=1) as bar:
            while chunk := _read_some(response, stall):
                out.write(chunk)
                bar.update(len(chunk))
                if bar.n > MAX_DOWNLOAD_BYTES:
                    raise ValueError(f"{url} sent more than {MAX_DOWNLOAD_BYTES:,} bytes, more than a course "
                                     "file can take: not the file expected")
                if time.monotonic() - start > limit:
                    raise TimeoutError(f"the download took longer than {limit:g} s ({DEADLINE_ENV}); "
                                       f"{bar.n:,} bytes received")


def _read_some(response, stall: float) -> bytes:
    """The next bytes of `response` (b"" at the end), as soon as any arrive."""
    try:
        return response.read1(_CHUNK)
    except TimeoutError:
        raise TimeoutError(f"no data for {stall:g} s ({STALL_ENV}); the server stalled") from None


def _cached(file: RemoteFile, target: Path) -> bool:
    """True if `target` holds a good copy; a corrupted one is removed with a warning."""
    if not os.path.lexists(target):
        return False
    if target.is_dir():
        raise DataError(f"the cache holds a folder where {target.name} belongs: {target}. "
                        "Remove that folder and run this again.")
    if not target.exists():  # a dangling link: the fetch replaces it
        return False
    try:
        digest = sha256_of(target)
    except OSError as err:
        raise DataError(f"cannot read the cached file {target} ({err.strerror}). "
                        "Fix its permissions or remove it, then run this again.") from None
    if file.accepts(digest):
        return True
    warnings.warn(f"cached file {target} is corrupted (sha256 {digest}, expected {file.sha256}); "
                  "removing it and fetching it again", stacklevel=3)
    target.unlink(missing_ok=True)  # another process may have removed it first
    return False


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fetch_file(info: DatasetInfo, file: RemoteFile) -> Path:
    """Return the cached path of one file, fetching it if needed (see module doc)."""
    target = data_home() / info.name / file.name
    if _cached(file, target):
        return target
    tried: list[str] = []
    for folder in local_sources(info):
        source = folder / file.name
        if not source.is_file():
            tried.append(f"{source}: not found")
            continue
        try:
            _install(file, target, lambda tmp: shutil.copyfile(source, tmp))
            _say(f"copied {info.name}/{file.name} from {source}")
            return target
        except ChecksumError as err:
            tried.append(f"{source}: {err}")
        except OSError as err:  # an unreadable copy: try the next source
            tried.append(f"{source}: cannot read it ({err.strerror})")
    _say(f"downloading {info.name}/{file.name} from {file.url}")
    try:
        _install(file, target, lambda tmp: download(file.url, tmp, f"{info.name}/{file.name}"))
        return target
    except DataError as err:
        if not isinstance(err, ChecksumError):
            raise  # the cache itself is unusable: no other source can help
        tried.append(f"{file.url}: {err}")
    except Exception as err:  # network errors come in many types; each is reported below
        tried.append(f"{file.url}: {type(err).__name__}: {err}")
    raise DataError(
        f"could not fetch {info.name}/{file.name}. Sources tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nWhat to try: check the internet connection (in Colab, that the runtime is connected) "
        f"and that {file.url} opens in a browser; or download that file by hand into "
        f"{target.parent}, or into a folder listed in $COURSE_DATA_MIRROR (one sub-folder per "
        "dataset); then run this again."
    )


def fetch(name: str) -> dict[str, Path]:
    """Fetch every file of dataset `name`; return {file name: cached path}."""
    info = dataset_info(name)
    return {f.name: fetch_file(info, f) for f in info.files}


def verify(name: str) -> dict[str, str]:
    """Check every cached file of `name`: {file name: "ok" | "missing" | "BAD: why"}.

    A file with a wrong checksum is removed (its entry names the expected and
    actual sha256 and says how to get it again); an unreadable one is reported.
    Every file is checked, whatever the earlier ones gave.
    """
    info = dataset_info(name)
    status = {}
    for file in info.files:
        path = data_home() / info.name / file.name
        if not path.exists():
            status[file.name] = "missing"
            continue
        try:
            digest = sha256_of(path)
        except OSError as err:
            status[file.name] = f"BAD: {path} cannot be read ({err.strerror})"
            continue
        if file.accepts(digest):
            status[file.name] = "ok"
            continue
        path.unlink(missing_ok=True)
        status[file.name] = (f"BAD: {path} was corrupted (expected sha256 {file.sha256}, got {digest}) "
                             f"and was removed; run `python -m course_utils data fetch {name}` to get it again")
    return status


def data_command(action: str, name: str | None) -> int:
    """``python -m course_utils data list | fetch NAME|all | verify``; returns the exit status."""
    if action == "list":
        for info in REGISTRY.values():
            cached = sum((data_home() / info.name / f.name).is_file() for f in info.files)
            print(f"{info.name:16s} {cached}/{len(info.files)} files cached  {info.description}")
        return 0
    if action == "verify":
        bad = 0
        for dataset in REGISTRY:
            for file, status in verify(dataset).items():
                print(status if status.startswith("BAD") else f"{status:8s} {dataset}/{file}")
                bad += status.startswith("BAD")
        return 1 if bad else 0
    if not name:
        print("fetch needs a dataset name, or 'all'; see `data list`", file=sys.stderr)
        return 2
    for dataset in list(REGISTRY) if name == "all" else [name]:
        for file, path in fetch(dataset).items():
            print(f"ok       {dataset}/{file} -> {path}")
    return 0
