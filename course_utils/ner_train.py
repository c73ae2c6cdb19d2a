"""Training the BiLSTM-CNN-CRF tagger of ``course_utils.ner``.

Introduced in lesson 05; lesson 06 runs the same command on several processes.

``train_tagger`` trains a tagger for a number of epochs (reproducible), a time
budget, or both, and keeps the weights with the best entity F1 on the
development set. Launched by torchrun, it trains with DistributedDataParallel:
each process computes on its share of every batch, gradients are averaged,
only rank 0 scores the dev set (and tells the others), and only rank 0 prints
and saves. Without torchrun it is one ordinary process. Ctrl-C, or an error during
training (a run that diverged), stops it with
``TrainingInterrupted``, which carries the best tagger so far.

Its command line, ``python -m course_utils ner train|tag ...``, is in
``course_utils.tooling.ner_cli``.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .checks import check_positive_int
from .ner import BiLSTMTagger, Batch, Tagger, TaggerConfig, Vocabularies, collate, read_embeddings
from .ner_data import Corpus
from .train import get_device, seed_everything

# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


class TrainingInterrupted(Exception):
    """Raised by ``train_tagger`` when Ctrl-C (KeyboardInterrupt) or an error (a run that
    diverged to NaN, memory running out) stops it. Introduced in lesson 05.

    Attributes:
        tagger: the tagger with the best dev F1 so far (in eval mode), or None if
            no epoch was scored yet.
        history: the evaluations so far (see ``train_tagger``).
        error: the error that stopped training, or None after Ctrl-C.
    """

    def __init__(self, tagger: Tagger | None, history: pd.DataFrame, error: Exception | None = None) -> None:
        kept = "; .tagger holds the best tagger so far" if tagger is not None else ""
        super().__init__("training was interrupted" + kept if error is None else
                         f"training stopped by {type(error).__name__}: {error}{kept}")
        self.tagger = tagger
        self.history = history
        self.error = error


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


def _batches_per_epoch(num_sentences: int, batch_size: int, world: int) -> int:
    """How many batches of ``_length_batches`` an epoch trains on ``world`` processes: it cuts at most
    one batch short (the rest of ``num_sentences / batch_size``), and under DDP a batch with fewer
    sentences than processes is skipped, so that every process has at least one sentence."""
    full, rest = divmod(num_sentences, batch_size)
    return (full if batch_size >= world else 0) + (1 if rest >= max(world, 1) else 0)


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
    embeddings: str | Path | None = None, verbose: bool = True,
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
        seed: seeds weights, batching and dropout. With ``epochs`` alone the
            run is reproducible; a time budget makes the number of updates
            depend on the machine.
        device: where to train; None picks ``course_utils.train.get_device()``.
        embeddings: a GloVe-format file (a word and its vector per line) whose
            vectors start the embeddings of the words of the vocabulary; its
            width must equal ``config.word_dim`` (see ``ner.read_embeddings``).
        verbose: print a line per epoch.

    Under torchrun (a process group is initialised, see ``course_utils.distributed``)
    every process runs this function: ``batch_size`` is the global batch, each
    process computes on every world_size-th sentence of it (batches with fewer
    sentences than processes are skipped, and an epoch of ``epochs`` counts the
    batches it trains), and the stopping time and dev F1 are
    agreed on, so that all processes return the same tagger.

    Returns:
        The tagger (best dev F1 weights, in eval mode) and the history: one row
        per evaluation with columns epoch (fractional at the time limit), step,
        seconds, lr, train_loss (averaged over processes), dev_f1.

    Raises:
        TrainingInterrupted: on Ctrl-C (or a signal turned into KeyboardInterrupt)
            or an error during training (the error is its ``error`` and its cause),
            carrying the best tagger so far, so that nothing trained is lost.
    """
    train, dev = _check_corpus(train, "train"), _check_corpus(dev, "dev")
    config = TaggerConfig() if config is None else config
    if not isinstance(config, TaggerConfig):
        raise TypeError(f"config must be a TaggerConfig, got {type(config).__name__}")
    if minutes is None and epochs is None:
        raise ValueError("give a time budget (minutes) or a number of epochs, or both")
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    if epochs is not None:
        check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 <= unk_replace <= 1:
        raise ValueError(f"unk_replace must be a probability in [0, 1], got {unk_replace!r}")
    seed_everything(seed)
    device = get_device() if device is None else torch.device(device)
    train = train.convert(config.scheme)

    vocabularies = Vocabularies.from_sentences(train.sentences, config.lowercase)
    model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars),
                         vocabularies.tags.itos)
    if embeddings is not None:
        vectors, found = read_embeddings(embeddings, vocabularies, config.word_dim)
        with torch.no_grad():
            model.word_embedding.weight[found] = vectors[found]
        if verbose and not (dist.is_initialized() and dist.get_rank()):
            print(f"{int(found.sum())} of {len(found) - 2} words start from the vectors of {embeddings}")
    model = model.to(device)
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
    steps_per_epoch = _batches_per_epoch(len(train), batch_size, world)  # the epoch budget counts these
    if steps_per_epoch == 0:
        raise ValueError(f"{len(train)} training sentences make no batch of at least {world} sentences, one per "
                         "process: give more sentences or run fewer processes")
    total_steps = math.inf if epochs is None else epochs * steps_per_epoch
    start, step, best_f1, best_state, rows = time.perf_counter(), 0, -1.0, None, []
    epoch = 0
    try:
        while _agreed(max((time.perf_counter() - start) / budget, step / total_steps)) < 1:
            epoch += 1
            model.train()
            losses = []
            for indices in _length_batches([len(s) for s in train], batch_size, generator):
                progress = _agreed(max((time.perf_counter() - start) / budget, step / total_steps))
                if progress >= 1:
                    break
                if len(indices) < world:  # too few sentences to give every process one (_batches_per_epoch)
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
    except (KeyboardInterrupt, Exception) as stop:  # Ctrl-C or an error: never lose the best tagger so far
        if best_state is not None:
            model.load_state_dict(best_state)
            model.eval()
        error = stop if isinstance(stop, Exception) else None
        raise TrainingInterrupted(tagger if best_state is not None else None, pd.DataFrame(rows), error) from error
    model.load_state_dict(best_state)
    model.eval()
    return tagger, pd.DataFrame(rows)
