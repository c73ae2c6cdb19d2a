"""Training on several processes with PyTorch's own engine: torch.distributed, DDP, torchrun.

Introduced in lesson 06; ``course_utils.ddp_cnn`` (lesson 01's CNN) and
``ner train`` (lesson 05's tagger) use it.

``torchrun --nproc_per_node=N script.py`` starts N copies of a script and tells
each, through environment variables, who it is: ``RANK`` (0 .. WORLD_SIZE-1 over
all machines), ``LOCAL_RANK`` (its number on this machine), ``WORLD_SIZE``, and
where to meet (``MASTER_ADDR``, ``MASTER_PORT``). `setup` reads them and joins the
process group; without them (a plain ``python script.py``, or a notebook) it
does nothing and the code runs as one ordinary process, so the same script works
both ways.

The rest are the few things every data-parallel script needs:

- `distributed_loader`: a DataLoader whose DistributedSampler gives each process
  its own 1/N of every epoch (call ``loader.sampler.set_epoch(epoch)``);
- `print0` and `save_on_main`: only rank 0 prints and writes files, atomically;
- `load_resume_state`: the latest checkpoint, to resume after a restart.

Run ``torchrun --standalone --nproc_per_node=2 -m course_utils.distributed`` to
see a process group form: each process prints who it is and the sum of all ranks.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .checks import check_positive_int
from .train import get_device, load_verified, save_verified

ENV_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class Context:
    """Who this process is in the group. Introduced in lesson 06.

    Attributes:
        rank: 0 .. world_size-1, unique over all machines; rank 0 logs and saves.
        local_rank: the process's number on its own machine (its GPU, with CUDA).
        world_size: the number of processes; 1 when not launched by torchrun.
        backend: "gloo" (CPU) or "nccl" (CUDA GPUs); None for a single process.
        device: where this process computes.
    """

    rank: int
    local_rank: int
    world_size: int
    backend: str | None
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when there is a process group (torchrun started this process)."""
        return self.backend is not None


def launched_by_torchrun() -> bool:
    """True when torchrun's environment variables (RANK, WORLD_SIZE, ...) are all set."""
    return all(name in os.environ for name in ENV_VARS)


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${name} must be an integer, got {value!r}") from None


def pick_backend(local_processes: int) -> str:
    """"nccl" if this machine has a GPU for each of its ``local_processes`` processes, else "gloo"
    (every process on the CPU): two processes cannot share one GPU under nccl."""
    if local_processes < 1:
        raise ValueError(f"expected at least one process on this machine, got {local_processes}")
    return "nccl" if torch.cuda.is_available() and torch.cuda.device_count() >= local_processes else "gloo"


def setup(backend: str | None = None, timeout_s: float = 300.0) -> Context:
    """Join the process group described by torchrun's environment variables.

    Without them this is one ordinary process: no group, rank 0 of 1, on
    ``course_utils.train.get_device()``'s choice of CPU or GPU.

    Args:
        backend: None lets ``pick_backend`` choose: "nccl" where every process on this
            machine gets a GPU of its own, else "gloo" on the CPU. With "nccl", tensors
            on the CPU still go through gloo.
        timeout_s: how long a collective (or the rendezvous) may wait for the
            other processes before failing.

    Returns:
        The process's `Context`. With CUDA, each process uses GPU ``local_rank``.
    """

    if not launched_by_torchrun():
        missing = [name for name in ENV_VARS if name in os.environ]
        if missing:
            raise ValueError(f"some of torchrun's variables are set ({missing}) but not all of "
                             f"{list(ENV_VARS)}; launch with torchrun, or unset them")
        return Context(0, 0, 1, None, get_device())
    rank, local_rank, world_size = _env_int("RANK"), _env_int("LOCAL_RANK"), _env_int("WORLD_SIZE")
    if not 0 <= rank < world_size:
        raise ValueError(f"$RANK must be in [0, $WORLD_SIZE={world_size}), got {rank}")
    local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))  # torchrun sets it
    if backend is None:
        backend = pick_backend(local_processes)
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    if backend == "nccl":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"nccl needs one GPU per process on a machine: local rank {local_rank}, but "
                             f"{torch.cuda.device_count()} GPU(s); start fewer processes or pass backend='gloo'")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        timeout = datetime.timedelta(seconds=timeout_s)
        # with nccl, collectives on CPU tensors (the course's stop and score agreements) go through gloo
        dist.init_process_group("cpu:gloo,cuda:nccl" if backend == "nccl" else backend,
                                store=_attempt_store(rank, world_size, timeout), rank=rank,
                                world_size=world_size, timeout=timeout)
    return Context(rank, local_rank, world_size, backend, device)


def _attempt_store(rank: int, world_size: int, timeout: datetime.timedelta) -> dist.Store:
    """The key-value store at $MASTER_ADDR:$MASTER_PORT where the processes exchange their
    addresses, with a prefix per restart (``$TORCHELASTIC_RESTART_COUNT``).

    After ``torchrun --max-restarts`` restarts a group, the store still holds the addresses
    the failed attempt's processes published; without the prefix a new process may read a
    dead one's address and fail to connect.
    """
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"  # torchrun's own store
    store = dist.TCPStore(os.environ["MASTER_ADDR"], _env_int("MASTER_PORT"), world_size,
                          is_master=rank == 0 and not agent_hosts_it, timeout=timeout)
    return dist.PrefixStore(f"course_utils/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)


def teardown() -> None:
    """Leave the process group (a no-op for a single process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def is_main() -> bool:
    """True on rank 0, or when there is no process group."""
    return not dist.is_initialized() or dist.get_rank() == 0


def print0(*args: Any, **kwargs: Any) -> None:
    """``print`` on rank 0 only (flushed), so that a log is not repeated N times."""
    if is_main():
        print(*args, **kwargs, flush=True)


def barrier() -> None:
    """Wait until every process gets here (a no-op for a single process)."""
    if dist.is_initialized():
        dist.barrier()


def distributed_loader(dataset: Dataset, batch_size: int, *, seed: int, shuffle: bool = True,
                       rank: int | None = None, world_size: int | None = None) -> DataLoader:
    """A DataLoader over this process's share of ``dataset``, ``batch_size`` items per batch.

    Its DistributedSampler shuffles all N indices with the same permutation on
    every process (seeded by ``seed`` + epoch), keeps the first
    ``world_size * (N // world_size)`` and gives rank r every world_size-th one,
    starting at r. So the processes' k-th batches together are the k-th batch of
    ``world_size * batch_size`` items that one process would see with the same
    seed. Call ``loader.sampler.set_epoch(epoch)`` before each epoch, or every
    epoch repeats the first one's order. Incomplete last batches are dropped.

    Args:
        rank, world_size: default to the process group's (0 and 1 without one).
    """
    check_positive_int("batch_size", batch_size)
    if rank is None or world_size is None:
        rank = dist.get_rank() if dist.is_initialized() else 0
        world_size = dist.get_world_size() if dist.is_initialized() else 1
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                 seed=seed, drop_last=True)
    if len(sampler) < batch_size:
        raise ValueError(f"each of the {world_size} processes gets {len(sampler)} items, "
                         f"fewer than one batch of {batch_size}")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True)


def save_on_main(obj: Any, path: str | Path) -> Path | None:
    """Write ``obj`` to ``path`` from rank 0 only (``course_utils.train.save_verified``: atomically,
    with its sha256); returns the path there, None elsewhere.

    Every process holds the same weights after a DDP step, so one copy is
    enough; N processes writing one file would race.
    """
    return save_verified(obj, path) if is_main() else None


def load_resume_state(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint at ``path`` (loaded on the CPU with ``weights_only=True``), or None if
    there is none yet: a fresh start."""
    path = Path(path)
    if not path.exists():
        return None
    return load_verified(path)


def _hello() -> None:
    """What ``python -m course_utils.distributed`` prints from each process."""
    context = setup()
    total = torch.tensor([float(context.rank)])
    if context.distributed:
        dist.all_reduce(total)  # the sum over all processes, the same on every one
    line = (f"rank {context.rank} of {context.world_size} (local rank {context.local_rank}, "
            f"backend {context.backend}, host {os.uname().nodename}, pid {os.getpid()}): "
            f"the sum of all ranks is {total.item():.0f}\n")
    # One write of the whole line, newline included: the processes share one pipe, and a line written in
    # two pieces can be cut by another process's line.
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), line.encode())
    teardown()


if __name__ == "__main__":
    _hello()
