"""The course's one timer. Introduced in lesson 01; every timing cell and benchmark uses it.

Timing a model step on a shared laptop is noisy: the first calls pay for
memory allocation and lazy initialisation, and other programs steal the CPU
now and then. `median_time` therefore warms up first, then lets
``torch.utils.benchmark.Timer`` repeat the call in blocks for at least
`min_run_time` seconds and reports the median block (the median ignores the
occasional slow block that another program caused). ``num_threads`` is set
explicitly, since a step's time depends on how many CPU threads torch may use.
`onednn` switches PyTorch's oneDNN CPU kernels on or off for a block, so that a
lesson can time the same model with and without them (lessons 02 and 03).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Callable

import torch
from torch.utils.benchmark import Timer
from .checks import check_positive_int


def median_time(fn: Callable[[], object], *, threads: int | None = None, warmup: int = 2,
                min_run_time: float = 0.5) -> float:
    """Median seconds per call of ``fn()``, after `warmup` untimed calls.

    Args:
        fn: the work to time, a function of no arguments (wrap a model step in a lambda).
        threads: torch CPU threads while timing (None: torch's current setting).
            CUDA work is synchronised by the Timer, so GPU steps time correctly too.
        warmup: untimed calls first (>= 0).
        min_run_time: seconds of timed calls at least (> 0).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    threads = torch.get_num_threads() if threads is None else threads
    check_positive_int("threads", threads)
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be a non-negative int, got {warmup!r}")
    if not min_run_time > 0:
        raise ValueError(f"min_run_time must be positive, got {min_run_time!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(warmup):
            fn()
    finally:
        torch.set_num_threads(previous)
    timer = Timer("fn()", globals={"fn": fn}, num_threads=threads)
    return timer.blocked_autorange(min_run_time=min_run_time).median


@contextlib.contextmanager
def onednn(enabled: bool) -> Iterator[None]:
    """PyTorch's oneDNN CPU kernels (``torch.backends.mkldnn``) on or off inside the ``with`` block, without
    PyTorch's note about Intel GPUs. On a CPU, oneDNN runs ``nn.LSTM`` as one fused node; off, the LSTM runs
    as separate operations, as ``nn.GRU`` always does. It does nothing to CUDA work. Introduced in lesson 02."""
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be True or False, got {enabled!r}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration")
        with torch.backends.mkldnn.flags(enabled=enabled):
            yield


@contextlib.contextmanager
def unfused_lstm(*models: torch.nn.Module) -> Iterator[None]:
    """Inside the block, every ``nn.LSTM`` in ``models`` runs its forward pass with oneDNN off, so that
    autograd records it as separate operations instead of oneDNN's one fused node (and runs its backward
    so); every other layer keeps PyTorch's default kernels. Lesson 03 times its models with and without
    the fused LSTM kernel this way, without slowing their convolutions down as ``onednn(False)`` would."""
    lstms = [m for model in models for m in model.modules() if isinstance(m, torch.nn.LSTM)]
    before: list[bool] = []

    def switch_off(module: torch.nn.Module, args: tuple) -> None:
        before.append(torch.backends.mkldnn.enabled)
        torch.backends.mkldnn.enabled = False

    def switch_back(module: torch.nn.Module, args: tuple, output: object) -> None:
        torch.backends.mkldnn.enabled = before.pop()

    handles = [h for m in lstms for h in (m.register_forward_pre_hook(switch_off), m.register_forward_hook(switch_back))]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
        if before:  # a forward pass that raised left its switch on
            torch.backends.mkldnn.enabled = before[0]
