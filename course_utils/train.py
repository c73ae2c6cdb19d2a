"""Training and evaluation: device choice, seeding, the training loop, checkpoints.

Introduced in lesson 01. Lessons 01, 03 and 04 train with `fit`. Two lessons
keep a loop of their own, and say why: lesson 02's character model carries its
LSTM state from one batch to the next (truncated backpropagation through time,
``course_utils.text.train_char_lstm``), and lesson 05's tagger trains on
batches of sentences of similar length with a CRF loss and picks the epoch
with the best entity F1 (``course_utils.ner_train``).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .checks import check_positive_int
from .tooling.files import file_in_the_way, write_bytes

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def get_device(prefer: str | None = None) -> torch.device:
    """The best available device: "cuda", then "mps" (Apple), then "cpu".

    `prefer` forces one ("cpu" is always available); an unavailable choice is an error.
    """
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if prefer is not None:
        if prefer not in available:
            raise ValueError(f"device must be one of {sorted(available)}, got {prefer!r}")
        if not available[prefer]:
            raise ValueError(f"device {prefer!r} is not available on this machine")
        return torch.device(prefer)
    for name in ("cuda", "mps"):
        if available[name]:
            return torch.device(name)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random generators (all devices)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:  # NumPy's range
        raise ValueError(f"seed must be an int from 0 to 2**32 - 1, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def show_progress() -> bool:
    """Progress bars are on unless ``$COURSE_PROGRESS`` is "0" (batch runs set it)."""
    return os.environ.get("COURSE_PROGRESS", "1") != "0"


IGNORE_INDEX = -100  # PyTorch's default ignore_index for cross-entropy


def _counts(output: torch.Tensor, target: torch.Tensor, ignore_index: int) -> tuple[int, int, int]:
    """(targets counted by a mean loss, correct predictions, labelled targets) for one batch.

    output: (..., C) class scores for integer target (...), where targets equal to
    `ignore_index` count nowhere (padding); otherwise any outputs and targets,
    where every target element counts and there is no accuracy.
    """
    if output.ndim == target.ndim + 1 and output.shape[:-1] == target.shape and not target.is_floating_point():
        real = target != ignore_index
        correct = int(((output.argmax(-1) == target) & real).sum())
        return int(real.sum()), correct, int(real.sum())
    return target.numel(), 0, 0


def _check_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise TypeError("each batch must be a pair (inputs, targets), as a TensorDataset gives")
    return batch[0], batch[1]


def model_device(model: nn.Module, device: torch.device | str | None = None) -> torch.device:
    """`device`, or where `model`'s parameters are when `device` is None (the CPU if it has none).

    `fit`, `evaluate` and `predict` move the model and every batch there, so a model trained on
    the GPU is evaluated on the GPU without saying so again.
    """
    if device is not None:
        return torch.device(device)
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, loss_fn: LossFn,
             device: torch.device | str | None = None, ignore_index: int = IGNORE_INDEX) -> dict[str, float]:
    """Mean loss and, for classifiers, accuracy over `loader`.

    Each batch is (x, y); `loss_fn(model(x), y)` returns a mean loss over the
    batch's targets, so each batch's loss is weighted by how many targets it
    averages: examples for (B,) labels, tokens for (B, T) labels, leaving out
    targets equal to `ignore_index` (padding), as cross-entropy does. The model
    and the batches go to `device` (None: where the model is, see `model_device`).
    Returns {"loss": float, "accuracy": float} ("accuracy" only for class scores).
    """
    device = model_device(model, device)
    model.to(device).eval()
    total_loss, count, correct, labelled = 0.0, 0, 0, 0
    for batch in loader:
        x, y = (t.to(device) for t in _check_batch(batch))
        output = model(x)
        n, c, m = _counts(output, y, ignore_index)
        total_loss += float(loss_fn(output, y)) * n
        count, correct, labelled = count + n, correct + c, labelled + m
    if count == 0:
        raise ValueError("the loader gave no batches (or only ignored targets)")
    result = {"loss": total_loss / count}
    if labelled:
        result["accuracy"] = correct / labelled
    return result


@torch.no_grad()
def predict(model: nn.Module, loader: Iterable,
            device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes (on the CPU) and true labels (as the loader gives them) over `loader`.

    The model and the inputs go to `device` (None: where the model is, see `model_device`).

    Returns:
        predictions: (N,) int64, the argmax of the model's (N, C) scores.
        targets: (N,) the labels from the loader.
    """
    device = model_device(model, device)
    model.to(device).eval()
    predictions, targets = [], []
    for batch in loader:
        x, y = _check_batch(batch)
        predictions.append(model(x.to(device)).argmax(-1).cpu())
        targets.append(y)
    return torch.cat(predictions), torch.cat(targets)


def fit(model: nn.Module, train_loader: Iterable, loss_fn: LossFn,
        optimizer: torch.optim.Optimizer, *, epochs: int,
        val_loader: Iterable | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        scheduler_step: str = "epoch", device: torch.device | str | None = None,
        clip_grad_norm: float | None = None, stop_at_accuracy: float | None = None,
        ignore_index: int = IGNORE_INDEX, verbose: bool = True) -> pd.DataFrame:
    """Train `model` for up to `epochs` epochs; return the history, one row per epoch.

    Each batch is (x, y), with `loss_fn(model(x), y)` a mean loss; the model and the batches
    go to `device` (None: where the model is, see `model_device`). The history has
    columns epoch, train_loss, [train_accuracy], [val_loss, val_accuracy], lr, seconds
    (accuracy columns appear when the model outputs class scores (..., C) for
    integer targets (...); targets equal to `ignore_index` count in neither loss
    nor accuracy). ``seconds`` is the time since training started. `scheduler`
    steps once per epoch, or once per batch with ``scheduler_step="batch"`` (e.g.
    OneCycleLR). With `stop_at_accuracy`, training stops after the first epoch
    whose validation accuracy reaches it.
    """
    check_positive_int("epochs", epochs)
    if scheduler_step not in ("epoch", "batch"):
        raise ValueError(f"scheduler_step must be 'epoch' or 'batch', got {scheduler_step!r}")
    if stop_at_accuracy is not None and val_loader is None:
        raise ValueError("stop_at_accuracy needs a val_loader to measure the accuracy on")
    device = model_device(model, device)
    model.to(device)
    rows = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        total_loss, count, correct, labelled = 0.0, 0, 0, 0
        batches = tqdm(train_loader, desc=f"epoch {epoch}/{epochs}", leave=False, disable=not show_progress())
        for batch in batches:
            x, y = (t.to(device) for t in _check_batch(batch))
            output = model(x)
            loss = loss_fn(output, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            if scheduler is not None and scheduler_step == "batch":
                scheduler.step()
            n, c, m = _counts(output.detach(), y, ignore_index)
            total_loss += loss.item() * n
            count, correct, labelled = count + n, correct + c, labelled + m
            batches.set_postfix(loss=f"{loss.item():.3f}")
        if count == 0:
            raise ValueError("the training loader gave no batches (or only ignored targets)")
        row: dict[str, float] = {"epoch": epoch, "train_loss": total_loss / count}
        if labelled:
            row["train_accuracy"] = correct / labelled
        if val_loader is not None:
            row.update({f"val_{k}": v for k, v in evaluate(model, val_loader, loss_fn, device, ignore_index).items()})
        row["lr"] = optimizer.param_groups[0]["lr"]
        if scheduler is not None and scheduler_step == "epoch":
            scheduler.step()
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
        if verbose:
            print("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        if stop_at_accuracy is not None and row.get("val_accuracy", 0.0) >= stop_at_accuracy:
            break
    return pd.DataFrame(rows)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters (weights and biases) in `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# How deeply checkpoint metadata may nest (torch.save recurses once per level).
_META_DEPTH = 100


def _check_meta(value: Any, where: str, depth: int = 0) -> None:
    """Raise a TypeError unless `value` is what torch.load(weights_only=True) reads back:
    None, bool, int, float, str, or lists, tuples and str-keyed dicts of them, nested at
    most _META_DEPTH deep."""
    if value is None or type(value) in (bool, int, float, str):
        return
    if depth >= _META_DEPTH and type(value) in (list, tuple, dict):
        raise TypeError(f"checkpoint metadata {where.split('[')[0]} is nested more than {_META_DEPTH} levels "
                        "deep; expected a few levels of lists and dicts")
    if type(value) in (list, tuple):
        for i, item in enumerate(value):
            _check_meta(item, f"{where}[{i}]", depth + 1)
        return
    if type(value) is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"checkpoint metadata {where} has a key {key!r}; keys must be strings")
            _check_meta(item, f"{where}[{key!r}]", depth + 1)
        return
    hint = " (use float(x) or int(x))" if hasattr(value, "item") else " (use str(path))" if isinstance(value, Path) else ""
    raise TypeError(f"checkpoint metadata {where} is a {type(value).__name__}{hint}; expected None, bool, "
                    "int, float, str, or lists and str-keyed dicts of them, which load_checkpoint can read")


# The first line of every file `save_verified` writes: this prefix, the sha256 of the rest, "\n".
_CHECKSUM_HEADER = b"course_utils sha256 "


def _check_folder_for(path: Path) -> None:
    """Raise a ValueError if a folder stands at `path`, or a file where it needs a folder."""
    if path.is_dir():
        raise ValueError(f"cannot save to {path}: it is a folder; expected a file name")
    blocker = file_in_the_way(path.parent)
    if blocker is not None:
        raise ValueError(f"cannot save to {path}: {blocker} is a file, not a folder")


def save_verified(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to `path` atomically, behind a header with the sha256 of the saved
    bytes, so that `load_verified` notices any changed byte.

    Raises:
        ValueError: a file stands where a folder is needed.
        OSError: the file could not be written (a full disk, no permission); the previous
            file at `path`, if any, is left as it was.
    """
    path = Path(path)
    _check_folder_for(path)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    payload = buffer.getvalue()
    header = _CHECKSUM_HEADER + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    try:
        write_bytes(path, header + payload)
    except OSError as error:
        message = (f"could not write {path} ({error.strerror or error}); "
                   "the previous file there, if any, is unchanged")
        raise (OSError(error.errno, message) if error.errno else OSError(message)) from error
    return path


def load_verified(path: str | Path) -> Any:
    """What `save_verified` wrote to `path`, once its sha256 matches (loaded on the CPU with
    ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only).

    Raises:
        FileNotFoundError: there is no file at `path`.
        ValueError: the file is not one `save_verified` wrote, or a byte of it changed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"{path} is not a readable checkpoint ({error.strerror})") from error
    header, _, payload = data.partition(b"\n")
    if not header.startswith(_CHECKSUM_HEADER):
        raise ValueError(f"{path} is not a readable checkpoint: expected the line "
                         f"'{_CHECKSUM_HEADER.decode()}<sha256>' that save_checkpoint writes first")
    recorded, actual = header[len(_CHECKSUM_HEADER):].decode(errors="replace"), hashlib.sha256(payload).hexdigest()
    if recorded != actual:  # repr: a space or a control character in the header is shown
        raise ValueError(f"{path} is corrupted: its content has sha256 {actual!r}, but the file records "
                         f"{recorded!r} (a changed byte or a truncated copy?); save it again")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as error:  # RecursionError and MemoryError too: a hostile file
        raise ValueError(f"{path} is not a readable checkpoint ({error})") from error


def save_checkpoint(path: str | Path, model: nn.Module, **meta: Any) -> Path:
    """Save `model`'s weights and JSON-like `meta` (numbers, strings, lists, dicts).

    `meta` is checked first, so that a value `load_checkpoint` could not read
    back (a NumPy scalar, a Path) fails now, not after training. The file is
    written atomically with the sha256 of its content (see `save_verified`).
    """
    for key, value in meta.items():
        _check_meta(value, key)
    return save_verified({"state_dict": model.state_dict(), "meta": meta}, path)


def load_checkpoint(path: str | Path, model: nn.Module) -> dict[str, Any]:
    """Load weights saved by `save_checkpoint` into `model`; return the saved meta.

    The file's sha256 is checked first, so a corrupted file is refused (see `load_verified`).
    """
    path = Path(path)
    saved = load_verified(path)
    if not (isinstance(saved, dict) and isinstance(saved.get("state_dict"), dict)
            and isinstance(saved.get("meta", {}), dict)):
        raise ValueError(f"{path} was not written by save_checkpoint (expected a dict with a 'state_dict' "
                         "dict and a 'meta' dict)")
    try:
        model.load_state_dict(saved["state_dict"])
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"the checkpoint {path} does not fit this model: {err}") from err
    return saved.get("meta", {})
