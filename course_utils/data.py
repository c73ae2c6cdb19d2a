"""The course's datasets, loaded as tensors or text.

`load_fashion_mnist` and `load_tiny_shakespeare` return a dataset ready to use;
`fetch(name)` returns the local paths of a dataset's files (lessons 05 and 06
read the corpora themselves). Each file is checked against its sha256 before
it is used. Where the files come from (a cache, `$COURSE_DATA_MIRROR`, the web)
is course machinery, in course_utils.tooling.datasets; the command line is
``python -m course_utils data list | fetch NAME|all | verify``.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from .tooling.datasets import DataError, fetch

__all__ = ["DataError", "FASHION_MNIST_CLASSES", "fetch", "load_fashion_mnist", "load_tiny_shakespeare"]

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
    """Fashion-MNIST images and labels.

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
    """The Tiny Shakespeare corpus as one string (1,115,394 characters)."""
    return fetch("tinyshakespeare")["input.txt"].read_text(encoding="utf-8")
