"""Our LSTM timed against ``torch.nn.LSTM`` and our CRF against pytorch-crf (lessons 02 and 05 run them
in a cell; ``python -m course_utils bench lstm|crf``).

Introduced in lesson 02. The grader's benchmark lives with the grader, in
course_utils.tooling. Every timing uses the one timer of course_utils.timing.
"""

from __future__ import annotations

import itertools
from typing import Sequence

import pandas as pd
import torch
from torch import Tensor, nn

from .crf import CRF
from .lstm import LSTM
from .timing import median_time


def _forward_backward_ms(model: nn.Module, x: Tensor, warmup: int, min_run_time: float) -> float:
    """Median milliseconds of one forward + backward pass of ``model`` on ``x`` (B, T, I)."""
    def step() -> None:
        model.zero_grad(set_to_none=True)
        output, _ = model(x)
        output.sum().backward()

    return median_time(step, warmup=warmup, min_run_time=min_run_time) * 1000.0


def lstm_benchmark(
    sizes: Sequence[tuple[int, int, int, int]] = (
        (128, 32, 50, 1),
        (256, 64, 100, 1),
        (256, 64, 100, 2),
    ),
    input_size: int = 64,
    warmup: int = 2,
    min_run_time: float = 0.5,
    seed: int = 0,
) -> pd.DataFrame:
    """Time forward + backward of our ``LSTM`` against ``torch.nn.LSTM``.

    Both models get the same weights and the same input x (batch, steps,
    input_size) and the loss output.sum(). Each is timed with the course's
    timer, course_utils.timing.median_time (the median after warm-up), with
    torch's current number of threads. Not a test: print the table and read
    the ratio.

    Args:
        sizes: (hidden, batch, steps, layers) for each row.
        input_size: I, e.g. the embedding size of a character model.
        warmup: untimed runs per model and size before timing.
        min_run_time: seconds of timed runs per model and size, at least.
        seed: seed for the weights and the input.

    Returns:
        One row per size with columns hidden, batch, steps, layers, ours_ms,
        torch_ms and ratio (ours_ms / torch_ms).
    """
    rows = []
    for size in sizes:
        if len(size) != 4:
            raise ValueError(f"expected each size as (hidden, batch, steps, layers), got {size!r}")
        hidden, batch, steps, layers = size
        torch.manual_seed(seed)
        torch_lstm = nn.LSTM(input_size, hidden, layers, batch_first=True)
        ours = LSTM.from_torch(torch_lstm)
        x = torch.randn(batch, steps, input_size)
        ours_ms = _forward_backward_ms(ours, x, warmup, min_run_time)
        torch_ms = _forward_backward_ms(torch_lstm, x, warmup, min_run_time)
        rows.append(
            {
                "hidden": hidden,
                "batch": batch,
                "steps": steps,
                "layers": layers,
                "ours_ms": ours_ms,
                "torch_ms": torch_ms,
                "ratio": ours_ms / torch_ms,
            }
        )
    return pd.DataFrame(rows)


def crf_benchmark(
    thread_counts: tuple[int, ...] | None = None, batch_size: int = 64, max_length: int = 50,
    min_length: int | None = None, tag_counts: tuple[int, ...] = (9, 17), seed: int = 0,
) -> pd.DataFrame:
    """Time course_utils.crf.CRF against pytorch-crf on CPU (NLL forward+backward, and decoding).

    Lesson 05 runs it in a cell. Sentence lengths are drawn uniformly from
    [min_length, max_length], with one sentence of full length.

    Args:
        thread_counts: torch CPU thread counts to try; None means 1 and torch's
            current setting.
        batch_size, max_length: B and L of the random emissions (B, L, T).
        min_length: shortest sentence; None means max_length // 2.
        tag_counts: the values of T to try.
        seed: random seed for emissions, tags and lengths.

    Returns:
        DataFrame with columns threads, tags, op, ours_ms, torchcrf_ms, speedup
        (torchcrf_ms / ours_ms; above 1 means ours is faster). Without
        pytorch-crf installed, an empty table, and a one-line message that
        says how to get it.
    """
    columns = ["threads", "tags", "op", "ours_ms", "torchcrf_ms", "speedup"]
    try:
        from torchcrf import CRF as TorchCRF
    except ImportError:
        print("skipped: the comparison needs pytorch-crf; `pip install pytorch-crf`, then run this again")
        return pd.DataFrame(columns=columns)

    if thread_counts is None:
        thread_counts = tuple(sorted({1, torch.get_num_threads()}))
    generator = torch.Generator().manual_seed(seed)
    min_length = max_length // 2 if min_length is None else min_length
    if not 1 <= min_length <= max_length:
        raise ValueError(f"expected 1 <= min_length <= max_length, got {min_length} and {max_length}")
    lengths = torch.randint(min_length, max_length + 1, (batch_size,), generator=generator)
    lengths[0] = max_length
    mask = torch.arange(max_length) < lengths.unsqueeze(1)                # (B, L)

    rows = []
    for num_tags in tag_counts:
        ours, theirs = CRF(num_tags), TorchCRF(num_tags, batch_first=True)
        theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if "allowed" not in k})
        emissions = torch.randn(batch_size, max_length, num_tags, generator=generator)
        emissions.requires_grad_(True)
        tags = torch.randint(num_tags, (batch_size, max_length), generator=generator)

        def ours_nll() -> None:
            ours(emissions, tags, mask, reduction="sum").backward()

        def theirs_nll() -> None:
            (-theirs(emissions, tags, mask, reduction="sum")).backward()

        frozen = emissions.detach()  # decoding happens without autograd
        jobs = {
            "nll forward+backward": (ours_nll, theirs_nll),
            "decode": (lambda: ours.decode(frozen, mask), lambda: theirs.decode(frozen, mask)),
        }
        for threads, (op, (ours_fn, theirs_fn)) in itertools.product(thread_counts, jobs.items()):
            ms = [median_time(fn, threads=threads) * 1e3 for fn in (ours_fn, theirs_fn)]
            rows.append({"threads": threads, "tags": num_tags, "op": op, "ours_ms": ms[0],
                         "torchcrf_ms": ms[1], "speedup": ms[1] / ms[0]})
    return pd.DataFrame(rows, columns=columns).sort_values(["threads", "tags"], kind="stable").round(3)
