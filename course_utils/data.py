"""The data hub: every file of every dataset the course uses, fetched and checked.

Introduced in lesson 01. Each dataset is a list of files with a public URL and
a sha256 checksum. `fetch(name)` returns the local paths, getting each file
from the first source that has a correct copy:

1. the cache (``datasets/`` in a checkout, or ``$COURSE_DATA_HOME``);
2. local copies: each folder in ``$COURSE_DATA_MIRROR`` (colon-separated, one
   sub-folder per dataset) and system folders such as Debian's
   ``/usr/share/datasets/fashion-mnist``;
3. the public URL (downloaded with pooch).

Whatever the source, the sha256 is checked before a file lands in the cache,
and files are written atomically (a temporary ``.part`` file named after the
writing process, then a rename), so an interrupted download never leaves a
half-written file behind; the ``.part`` files of processes that died are
removed by the next fetch. Cached files are readable by every user of a
shared cache (as the umask allows), like any file written with ``open``.

Command line: ``python -m course_utils data list | fetch NAME|all | verify``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pooch
import torch


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
            (
                RemoteFile("eng.train", _CONLL + "eng.train",
                           "eac0822f501353f265383ddf1edb0dcd42a1b6eefd3e383d7074db98c38eb41c"),
                RemoteFile("eng.testa", _CONLL + "eng.testa",
                           "aedc4ccbd1ae9795feaa0e86fe72d195b0258abed9d705b630d1c889276fac1e"),
                RemoteFile("eng.testb", _CONLL + "eng.testb",
                           "0632f32c090ef31c223135b7fee3187a7cf8e65c4015c7866bb7783428cdd9a6"),
            ),
        ),
        DatasetInfo(
            "resume_ner",
            "Resume NER: Chinese resumes, one character per token, BMES tags (lesson 05)",
            (
                RemoteFile("train.char.bmes", _RESUME + "train.char.bmes",
                           "93b9bb0be5dd4730121587f9dc1378de3fbbe55cba1c575edec271f822c27be7"),
                RemoteFile("dev.char.bmes", _RESUME + "dev.char.bmes",
                           "1b0d67153e6e8543e9444936ed1b107bd843078c282533898085e1a9aa293952"),
                RemoteFile("test.char.bmes", _RESUME + "test.char.bmes",
                           "c4a9f42622819a4b59f66e184d446ebfa89b2f1dbba06e11d70675e59fe7e79b"),
            ),
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name`, or a ValueError listing the known names."""
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
    checkout = Path(__file__).resolve().parent.parent / "datasets"
    if (checkout / "README.md").is_file():
        return checkout
    return COLAB_DATA_HOME if in_colab() else Path.cwd() / "datasets"


def _writable_folder(folder: Path) -> None:
    """Create the cache folder `folder` if needed, or say clearly why it cannot be used."""
    home = data_home()
    for parent in (home, *home.parents):
        if parent.exists() and not parent.is_dir():
            raise DataError(f"the data cache {home} cannot be created: {parent} is a file, not a folder. "
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
    return pooch.file_hash(str(path), alg="sha256")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_parts(folder: Path) -> list[Path]:
    """Remove the ``.NAME.PID.part`` files left in `folder` by processes that died
    (kill -9, SIGTERM, a crash) while writing them; return the removed paths."""
    removed = []
    for part in folder.glob(".*.part"):
        pid = part.name[: -len(".part")].rpartition(".")[2]
        if pid.isdigit() and not _pid_alive(int(pid)):
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def _install(file: RemoteFile, target: Path, copy_into) -> None:
    """Write `file` to `target` atomically: `copy_into(tmp)` fills a temporary
    file next to the target, whose checksum is checked before the rename."""
    _writable_folder(target.parent)
    remove_dead_parts(target.parent)
    tmp = target.parent / f".{file.name}.{os.getpid()}.part"
    try:
        tmp.touch(mode=0o666)  # like open(): the umask decides who may read the cache
        copy_into(tmp)
        digest = sha256_of(tmp)
        if not file.accepts(digest):
            raise ChecksumError(
                f"checksum mismatch: expected sha256 {file.sha256}, got {digest} "
                f"({tmp.stat().st_size:,} bytes; a truncated or corrupted copy?)"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_file(info: DatasetInfo, file: RemoteFile) -> Path:
    """Return the cached path of one file, fetching it if needed (see module doc)."""
    target = data_home() / info.name / file.name
    if target.exists():
        digest = sha256_of(target)
        if file.accepts(digest):
            return target
        warnings.warn(
            f"cached file {target} is corrupted (sha256 {digest}, expected {file.sha256}); "
            "removing it and fetching it again",
            stacklevel=2,
        )
        target.unlink(missing_ok=True)  # another process may have removed it first

    tried: list[str] = []
    for folder in local_sources(info):
        source = folder / file.name
        if not source.is_file():
            tried.append(f"{source}: not found")
            continue
        try:
            _install(file, target, lambda tmp: shutil.copyfile(source, tmp))
            return target
        except ChecksumError as err:
            tried.append(f"{source}: {err}")
        except OSError as err:  # an unreadable copy: try the next source
            tried.append(f"{source}: cannot read it ({err.strerror})")
    try:
        download = pooch.HTTPDownloader(progressbar=True, timeout=60)
        _install(file, target, lambda tmp: download(file.url, str(tmp), None))
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


# --- Loaders ---------------------------------------------------------------

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def _read_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    header = np.frombuffer(raw[: 4 * (ndim + 1)], dtype=">i4")
    if len(header) != ndim + 1 or header[0] != magic:
        raise DataError(f"{path} is not an IDX file with magic number {magic}")
    shape = tuple(int(n) for n in header[1:])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 * (ndim + 1))
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def load_fashion_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST images and labels. Introduced in lesson 01.

    Args:
        split: "train" (60,000 images) or "test" (10,000 images).

    Returns:
        images: (N, 28, 28) uint8, 0 = background.
        labels: (N,) int64 in [0, 10), names in FASHION_MNIST_CLASSES.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    prefix = "train" if split == "train" else "t10k"
    paths = fetch("fashion_mnist")
    images = _read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"], magic=2051, ndim=3)
    labels = _read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"], magic=2049, ndim=1)
    if len(images) != len(labels):
        raise DataError(f"{len(images)} images but {len(labels)} labels in the {split} split")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def load_tiny_shakespeare() -> str:
    """The Tiny Shakespeare corpus as one string (1,115,394 characters). Introduced in lesson 02."""
    return fetch("tinyshakespeare")["input.txt"].read_text(encoding="utf-8")
