"""Train lesson 01's CNN on Fashion-MNIST with DistributedDataParallel: the script lesson 06 launches.

Introduced in lesson 06. One script for one process or many::

    python -m course_utils.ddp_cnn --steps 200 --out runs/one               # one process
    torchrun --standalone --nproc_per_node=2 -m course_utils.ddp_cnn --steps 200 --out runs/two

``--batch-size`` is the *global* batch: with N processes (and ``--accumulate A``
micro-batches in each) every process computes on batch_size / (N * A) images per
micro-batch, and DDP averages the gradients, so a step is the same step whatever
N is. Each micro-batch seeds dropout from (seed, step, its place in the global
batch), so one process with ``--accumulate 2`` draws the same dropout masks as
two processes do: the two runs compute the same thing and reach the same weights.

Rank 0 writes ``checkpoint.pt`` every ``--checkpoint-every`` steps, and
``model.pt`` (see ``course_utils.train.load_checkpoint``) and ``result.json`` at the
end. A run that finds ``checkpoint.pt`` in ``--out`` resumes from it, which is
what happens when ``torchrun --max-restarts 1`` restarts a group after a worker
died (``--crash-at-step`` kills the last rank once, to show it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import TensorDataset

from . import distributed
from .cnn import make_cnn
from .data import load_fashion_mnist
from .tooling.arguments import positive
from .tooling.files import file_in_the_way, write_text
from .train import evaluate, save_checkpoint


def step_seed(seed: int, step: int, position: int) -> int:
    """The dropout seed of one micro-batch: its step and its place in the global batch
    (``micro_batch * world_size + rank``), the same whichever process computes it."""
    return (seed * 1_000_003 + step) * 1_009 + position


def fashion_mnist_tensors(split: str, size: int | None = None) -> TensorDataset:
    """Fashion-MNIST as standardised images (N, 1, 28, 28) float and labels (N,) int64, as in
    lesson 01 (mean and standard deviation of the first 55,000 training images)."""
    train_images, _ = load_fashion_mnist("train")
    pixels = train_images[:55_000].float() / 255
    mean, std = pixels.mean().item(), pixels.std().item()
    images, labels = load_fashion_mnist(split)
    if size is not None:
        images, labels = images[:size], labels[:size]
    return TensorDataset(((images.float() / 255 - mean) / std).unsqueeze(1), labels)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_utils.ddp_cnn", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="folder for checkpoint.pt, model.pt and result.json")
    parser.add_argument("--steps", type=positive(int), required=True, help="optimiser steps in all")
    parser.add_argument("--batch-size", type=positive(int), default=256, help="global batch, over all processes")
    parser.add_argument("--accumulate", type=positive(int), default=1, help="micro-batches per process and step")
    parser.add_argument("--lr", type=positive(float), default=1e-3, help="AdamW's learning rate")
    parser.add_argument("--train-size", type=positive(int), default=55_000, help="training images used")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive(int), help="torch threads per process (default: cores / processes)")
    parser.add_argument("--checkpoint-every", type=int, default=0, help="steps between checkpoints (0: none)")
    parser.add_argument("--crash-at-step", type=int, help="the last rank kills itself there, on the first try")
    parser.add_argument("--evaluate", action="store_true", help="rank 0 scores the test set at the end")
    parser.add_argument("--log-every", type=int, default=0, help="steps between log lines (0: 5 lines)")
    return parser


def _check(args: argparse.Namespace, world_size: int) -> int:
    """Validate what the parser's types cannot; return the per-micro-batch batch size."""
    if args.checkpoint_every < 0:
        raise ValueError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    parts = world_size * args.accumulate
    if args.batch_size % parts:
        raise ValueError(f"--batch-size {args.batch_size} must be divisible by processes x accumulate = {parts}")
    blocker = file_in_the_way(args.out)
    if blocker is not None:
        raise ValueError(f"--out {args.out}: {blocker} is a file, not a folder")
    return args.batch_size // parts


def _maybe_crash(args: argparse.Namespace, context: distributed.Context, step: int) -> None:
    """Simulate a worker that dies (kill -9) at ``--crash-at-step``, on the first attempt only."""
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"
    if step == args.crash_at_step and context.rank == context.world_size - 1 and first_attempt:
        print(f"rank {context.rank}: killing myself at step {step} (simulated failure)", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)


def train(args: argparse.Namespace) -> dict:
    """Run the training the arguments describe; returns (on every rank) what rank 0 writes
    to result.json."""
    micro = _check(args, int(os.environ.get("WORLD_SIZE", "1")))  # before a process group exists
    context = distributed.setup()
    try:
        return _train(args, context, micro)
    finally:
        distributed.teardown()


def _train(args: argparse.Namespace, context: distributed.Context, micro: int) -> dict:
    """``train`` inside the process group."""
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // local_world))
    out = Path(args.out)
    checkpoint_path = out / "checkpoint.pt"

    data = fashion_mnist_tensors("train", args.train_size)
    loader = distributed.distributed_loader(data, micro * args.accumulate, seed=args.seed)
    torch.manual_seed(args.seed)
    model = make_cnn(args.dropout).to(context.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    state = distributed.load_resume_state(checkpoint_path)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        distributed.print0(f"resuming from the checkpoint of step {start}")
    # DDP copies rank 0's weights to every process, then averages gradients during backward.
    network = DistributedDataParallel(model) if context.distributed else model
    steps_per_epoch = len(loader)
    log_every = args.log_every or max(1, args.steps // 5)
    distributed.print0(f"{context.world_size} process(es) x {args.accumulate} micro-batch(es) of {micro} "
                       f"images = global batch {args.batch_size}; {steps_per_epoch} steps per epoch")

    distributed.barrier()
    began, step = time.perf_counter(), start
    while step < args.steps:
        epoch = step // steps_per_epoch
        loader.sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every process
        done = step - epoch * steps_per_epoch
        for i, (images, labels) in enumerate(loader):
            if i < done:  # batches this epoch had already trained on before a restart
                continue
            if step >= args.steps:
                break
            _maybe_crash(args, context, step)
            images, labels = images.to(context.device), labels.to(context.device)
            losses = []
            for m in range(args.accumulate):
                torch.manual_seed(step_seed(args.seed, step, m * context.world_size + context.rank))
                last = m == args.accumulate - 1
                # no_sync: add this micro-batch's gradient locally; DDP communicates on the last one.
                with nullcontext() if last or not context.distributed else network.no_sync():
                    loss = F.cross_entropy(network(images[m::args.accumulate]),
                                           labels[m::args.accumulate]) / args.accumulate
                    loss.backward()
                losses.append(loss.item() * args.accumulate)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % log_every == 0 or step == args.steps:
                distributed.print0(f"step {step:5d}/{args.steps}  loss on rank 0's images {losses[0]:.4f}")
            if args.checkpoint_every and step % args.checkpoint_every == 0:
                distributed.save_on_main({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                          "step": step}, checkpoint_path)
    distributed.barrier()
    seconds = time.perf_counter() - began
    result = {"world_size": context.world_size, "accumulate": args.accumulate, "steps": args.steps,
              "resumed_from_step": start, "train_seconds": round(seconds, 3),
              "threads_per_process": torch.get_num_threads()}
    if context.is_main:
        if args.evaluate:
            test = fashion_mnist_tensors("test")
            scores = evaluate(model, torch.utils.data.DataLoader(test, batch_size=1000), F.cross_entropy,
                              context.device)
            result["test_accuracy"] = scores["accuracy"]
        save_checkpoint(out / "model.pt", model, **result)
        write_text(out / "result.json", json.dumps(result, indent=1))
        print(f"rank 0 wrote {out / 'model.pt'}: " + json.dumps(result), flush=True)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m course_utils.ddp_cnn ...`` (or under torchrun); returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        train(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
