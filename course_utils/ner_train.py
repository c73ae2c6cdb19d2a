"""Training the BiLSTM-CNN-CRF tagger of ``course_utils.ner``, and its command line.

Introduced in lesson 05; lesson 06 runs the same command on several processes.

``train_tagger`` trains a tagger for a time budget and keeps the weights with
the best entity F1 on the development set. Launched by torchrun, it trains with
DistributedDataParallel: each process computes on its share of every batch,
gradients are averaged, only rank 0 scores the dev set (and tells the others),
and only rank 0 prints and saves. Without torchrun it is one ordinary process.

Command line (``python -m course_utils ner ...``)::

    ner train --train eng.train --dev eng.testa --test eng.testb --minutes 10 --out model/
    ner tag --model model/ "EU rejects German call to boycott British lamb ."
    torchrun --standalone --nproc_per_node=2 -m course_utils ner train ...   # the same, on 2 processes
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from typing import Sequence

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import distributed
from .ner import BiLSTMTagger, Batch, Tagger, TaggerConfig, Vocabularies, check_save_target, collate
from .ner_data import Corpus, read_conll
from .train import get_device, seed_everything

# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


class _Loss(nn.Module):
    """The tagger's loss as a forward pass, which is what DistributedDataParallel wraps."""

    def __init__(self, model: BiLSTMTagger) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        """The batch's mean loss: ()."""
        return self.model.loss(batch)


def _agreed(value: float, op: dist.ReduceOp.RedOpType = dist.ReduceOp.MAX) -> float:
    """``value`` reduced over all processes (the largest by default); itself in one process.
    Every process must take the same decisions (stop now, keep these weights), or one would
    wait for the others forever."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.all_reduce(tensor, op=op)
    return tensor.item()


def _from_rank_0(value: float) -> float:
    """Rank 0's ``value`` on every process (itself in one process)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64)
    dist.broadcast(tensor, src=0)
    return tensor.item()


def _length_batches(lengths: Sequence[int], batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Shuffled batches of sentence indices, each of sentences of similar length
    (sorted within chunks of 50 batches), so that little padding is computed."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    batches = []
    chunk = 50 * batch_size
    for start in range(0, len(order), chunk):
        part = sorted(order[start:start + chunk], key=lambda i: lengths[i])
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def _check_corpus(corpus: object, name: str) -> Corpus:
    if not isinstance(corpus, Corpus):
        raise TypeError(f"{name} must be a ner_data.Corpus (see read_conll), got {type(corpus).__name__}")
    if not len(corpus):
        raise ValueError(f"{name} has no sentences")
    return corpus


def train_tagger(
    train: Corpus, dev: Corpus, *, config: TaggerConfig | None = None,
    minutes: float | None = None, epochs: int | None = None, batch_size: int = 32,
    lr: float = 2e-3, decay_lr: bool = True, clip_grad_norm: float = 5.0,
    unk_replace: float = 0.5, seed: int = 0, device: torch.device | str | None = None,
    verbose: bool = True,
) -> tuple[Tagger, pd.DataFrame]:
    """Train a tagger with Adam; keep the weights with the best dev entity F1. Introduced in lesson 05.

    Training stops after ``epochs`` epochs or ``minutes`` minutes, whichever
    comes first (at least one must be given); the dev set is scored after
    every epoch and when the time is up.

    Args:
        train, dev: corpora in any scheme (train is converted to ``config.scheme``).
        config: the architecture; None means ``TaggerConfig()``.
        minutes: time budget for training and dev scoring.
        epochs: maximum number of passes over ``train``.
        batch_size: sentences per update.
        lr: Adam's learning rate.
        decay_lr: decay the learning rate linearly to 0 over the budget
            (time or epochs, whichever runs out first).
        clip_grad_norm: clip the gradient's norm to this value.
        unk_replace: during training, replace each word seen only once in
            ``train`` by "<unk>" with this probability, so that "<unk>" gets
            an embedding and the model learns to rely on characters and casing.
        seed: seeds weights, batching and dropout (a time budget still makes
            the number of updates depend on the machine).
        device: where to train; None picks ``course_utils.train.get_device()``.
        verbose: print a line per epoch.

    Under torchrun (a process group is initialised, see ``course_utils.distributed``)
    every process runs this function: ``batch_size`` is the global batch, each
    process computes on every world_size-th sentence of it (batches with fewer
    sentences than processes are skipped), and the stopping time and dev F1 are
    agreed on, so that all processes return the same tagger.

    Returns:
        The tagger (best dev F1 weights, in eval mode) and the history: one row
        per evaluation with columns epoch (fractional at the time limit), step,
        seconds, lr, train_loss (averaged over processes), dev_f1.
    """
    train, dev = _check_corpus(train, "train"), _check_corpus(dev, "dev")
    config = TaggerConfig() if config is None else config
    if not isinstance(config, TaggerConfig):
        raise TypeError(f"config must be a TaggerConfig, got {type(config).__name__}")
    if minutes is None and epochs is None:
        raise ValueError("give a time budget (minutes) or a number of epochs, or both")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 <= unk_replace <= 1:
        raise ValueError(f"unk_replace must be a probability in [0, 1], got {unk_replace!r}")
    seed_everything(seed)
    device = get_device() if device is None else torch.device(device)
    train = train.convert(config.scheme)

    vocabularies = Vocabularies.from_sentences(train.sentences, config.lowercase)
    model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars),
                         vocabularies.tags.itos).to(device)
    tagger = Tagger(model, vocabularies)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    network = _Loss(model)
    if world > 1:
        network = DistributedDataParallel(network)  # copies rank 0's weights to every process
        torch.manual_seed(seed * 1_000 + rank)  # different dropout and <unk> draws on each process
    encoded = [vocabularies.encode(s.tokens, s.tags) for s in train]
    counts = torch.bincount(torch.cat([e["words"] for e in encoded]), minlength=len(vocabularies.words))
    singletons = (counts == 1).to(device)                                  # (V,) bool
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)

    budget = math.inf if minutes is None else minutes * 60
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total_steps = math.inf if epochs is None else epochs * steps_per_epoch
    start, step, best_f1, best_state, rows = time.perf_counter(), 0, -1.0, None, []
    epoch = 0
    while _agreed(max((time.perf_counter() - start) / budget, step / total_steps)) < 1:
        epoch += 1
        model.train()
        losses = []
        for indices in _length_batches([len(s) for s in train], batch_size, generator):
            progress = _agreed(max((time.perf_counter() - start) / budget, step / total_steps))
            if progress >= 1:
                break
            if world > 1:
                if len(indices) < world:
                    continue
                indices = indices[rank::world]
            for group in optimizer.param_groups:
                group["lr"] = lr * (1 - progress) if decay_lr else lr
            batch = collate([encoded[i] for i in indices]).to(device)
            dropped = singletons[batch.words] & (torch.rand(batch.words.shape, device=device) < unk_replace)
            batch.words = batch.words.masked_fill(dropped, vocabularies.words.unk_index)
            loss = network(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            losses.append(loss.item())
            step += 1
        dev_f1 = _from_rank_0(tagger.evaluate(dev)["f1"] if rank == 0 else math.nan)
        train_loss = _agreed(sum(losses) / len(losses) if losses else math.nan, dist.ReduceOp.SUM) / world
        row = {"epoch": round(epoch - 1 + len(losses) / steps_per_epoch, 3), "step": step,
               "seconds": round(time.perf_counter() - start, 1), "lr": optimizer.param_groups[0]["lr"],
               "train_loss": train_loss, "dev_f1": dev_f1}
        rows.append(row)
        if verbose and rank == 0:
            print(f"epoch {row['epoch']:6.2f}  step {step:6d}  {row['seconds']:6.0f} s  "
                  f"loss {row['train_loss']:.3f}  dev F1 {dev_f1:.4f}", flush=True)
        if dev_f1 > best_f1:
            best_f1, best_state = dev_f1, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    model.eval()
    return tagger, pd.DataFrame(rows)



# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_utils ner",
        description="Train a BiLSTM-CNN-CRF named-entity tagger, or tag text with one.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train on column-format files and save the tagger")
    p.add_argument("--train", required=True, help="training file (CoNLL column format)")
    p.add_argument("--dev", required=True, help="development file, picks the best weights")
    p.add_argument("--test", help="test file, scored once at the end")
    p.add_argument("--out", required=True, help="directory to save the tagger to")
    p.add_argument("--minutes", type=float, help="time budget (default: none)")
    p.add_argument("--epochs", type=int, help="maximum number of epochs (default: none)")
    p.add_argument("--scheme", default="BIOES", help="scheme the model predicts: BIO, BIOES, BMES")
    p.add_argument("--no-crf", action="store_true", help="a softmax tagger instead of a CRF")
    p.add_argument("--no-chars", action="store_true", help="leave out the character CNN")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads per process (default: torch's choice)")
    p = commands.add_parser("tag", help="tag whitespace-tokenised sentences")
    p.add_argument("--model", required=True, help="a directory written by `ner train`")
    p.add_argument("--scheme", help="scheme of the printed tags (default: the model's)")
    p.add_argument("text", nargs="*", help="sentences to tag (default: one per line on stdin)")
    return parser


def _train_command(args: argparse.Namespace) -> int:
    """``ner train``: every check that can fail comes before training, on every process."""
    if args.minutes is None and args.epochs is None:
        raise ValueError("give --minutes or --epochs (or both)")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be a positive number of threads, got {args.threads}")
    check_save_target(args.out)
    corpora = {name: read_conll(path) for name, path in
               [("train", args.train), ("dev", args.dev), ("test", args.test)] if path}
    config = TaggerConfig(scheme=args.scheme, use_crf=not args.no_crf, use_chars=not args.no_chars)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    context = distributed.setup()
    try:
        if context.distributed:
            distributed.print0(f"training on {context.world_size} processes ({context.backend}); "
                               f"rank 0 logs and saves")
        tagger, _ = train_tagger(corpora["train"], corpora["dev"], config=config, minutes=args.minutes,
                                 epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                 seed=args.seed, device=context.device)
        if context.is_main:
            for name in ("dev", "test"):
                if name in corpora:
                    scores = tagger.evaluate(corpora[name])
                    print(f"{name} entity F1 {scores['f1']:.4f}  precision {scores['precision']:.4f}  "
                          f"recall {scores['recall']:.4f}")
            print(f"saved the tagger to {tagger.save(args.out)}", flush=True)
    finally:
        distributed.teardown()
    return 0


def _tag_command(args: argparse.Namespace) -> int:
    tagger = Tagger.load(args.model)
    lines = args.text or [line for line in sys.stdin.read().splitlines() if line.strip()]
    if not lines:
        raise ValueError("no text to tag: pass sentences as arguments or on stdin")
    for pairs in tagger.tag(lines, scheme=args.scheme):
        print(" ".join(f"{token}/{tag}" for token, tag in pairs))
    return 0


def main(argv: Sequence[str]) -> int:
    """``python -m course_utils ner train|tag ...``; returns the exit status. Introduced in lesson 05."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exit_:  # --help, or a usage error argparse has already printed
        return int(exit_.code or 0)
    try:
        return _train_command(args) if args.command == "train" else _tag_command(args)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
