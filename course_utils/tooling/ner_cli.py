"""``python -m course_utils ner train|tag ...``: the command line of lesson 05's tagger.

    ner train --train eng.train --dev eng.testa --test eng.testb --epochs 20 --out model/
    ner tag --model model/ "EU rejects German call to boycott British lamb ."
    torchrun --standalone --nproc_per_node=2 -m course_utils ner train ...   # the same, on 2 processes

``add_parser`` registers the ``ner`` subcommand on the course's one parser
(``tooling.cli``), which then calls ``args.run(args)``. Every check that can fail
comes before training, the room on the disk for the tagger included; a user
mistake is one line on stderr and exit status 1, never a traceback (the exit
statuses are those of ``tooling.cli``). Ctrl-C, SIGTERM or SIGHUP during
training saves the best tagger so far, says where, and exits with 130, 143 or
129 (128 + the signal's number); one that arrives while the tagger is being
saved waits until the save is over. If the save fails (a full disk), the tagger
is saved to a fallback folder (see `fallback_folders`) and the message says where.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import torch

from .. import distributed
from ..ner import BiLSTMTagger, Tagger, TaggerConfig, Vocabularies
from ..ner_data import Corpus, read_conll
from ..ner_train import TrainingInterrupted, train_tagger
from .arguments import positive
from .tagger_files import STOP_SIGNALS, check_save_target, state_bytes

try:
    import resource  # Unix only: the file size limit (ulimit -f)
except ImportError:
    resource = None

# What torch.save adds to each tensor's bytes (zip entry, alignment, pickle), with room to spare.
ZIP_BYTES_PER_TENSOR = 1024


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``ner`` (with ``train`` and ``tag``) on ``subparsers``; each sets ``args.run``."""
    ner = subparsers.add_parser(
        "ner", help="train or use a BiLSTM-CNN-CRF tagger: ner --help",
        description="Train a BiLSTM-CNN-CRF named-entity tagger, or tag text with one.")
    commands = ner.add_subparsers(dest="ner_command", required=True)
    p = commands.add_parser("train", help="train on column-format files and save the tagger")
    p.add_argument("--train", required=True, help="training file (CoNLL column format)")
    p.add_argument("--dev", required=True, help="development file, picks the best weights")
    p.add_argument("--test", help="test file, scored once at the end")
    p.add_argument("--out", required=True, help="directory to save the tagger to (if that fails: a new "
                                                "folder in the temporary folder, else in the home folder)")
    p.add_argument("--epochs", type=positive(int), help="number of epochs (reproducible)")
    p.add_argument("--minutes", type=positive(float), help="time limit, as well as or instead of --epochs")
    p.add_argument("--embeddings", help="GloVe-format vectors (word, then 100 numbers, per line) "
                                        "to start the word embeddings from")
    p.add_argument("--scheme", default="BIOES", help="scheme the model predicts: BIO, BIOES, BMES")
    p.add_argument("--no-crf", action="store_true", help="a softmax tagger instead of a CRF")
    p.add_argument("--no-chars", action="store_true", help="leave out the character CNN")
    p.add_argument("--lr", type=positive(float), default=2e-3)
    p.add_argument("--batch-size", type=positive(int), default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive(int), help="torch CPU threads per process (default: torch's choice)")
    p.set_defaults(run=_train)
    p = commands.add_parser("tag", help="tag whitespace-tokenised sentences")
    p.add_argument("--model", required=True, help="a directory written by `ner train`")
    p.add_argument("--scheme", help="scheme of the printed tags (default: the model's)")
    p.add_argument("text", nargs="*", help="sentences to tag (default: one per line on stdin)")
    p.set_defaults(run=_tag)


def _read(name: str, path: str) -> Corpus:
    """The corpus at ``path``, or a ValueError that names the option and the file."""
    try:
        return read_conll(path)
    except OSError as error:
        raise ValueError(f"--{name} {path}: cannot read it ({error.strerror})") from None


def _check_embeddings(path: str) -> None:
    if not Path(path).is_file():
        raise ValueError(f"--embeddings {path}: no such file; expected GloVe-format vectors "
                         "(for example glove.6B.100d.txt)")


def _saved_size(config: TaggerConfig, train: Corpus) -> tuple[int, int]:
    """About how many bytes a tagger trained on ``train`` takes when saved: (all its files,
    its largest file). The network is built (untrained) to count its weights."""
    vocabularies = Vocabularies.from_sentences(train.convert(config.scheme).sentences, config.lowercase)
    model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars), vocabularies.tags.itos)
    weights = state_bytes(model) + ZIP_BYTES_PER_TENSOR * len(model.state_dict()) + 2**16
    words = len(json.dumps(vocabularies.to_json(), ensure_ascii=False).encode())
    return weights + words, max(weights, words)


def _check_room(out: str, total: int, largest: int) -> None:
    """Raise a ValueError if the disk under ``out`` has less than ``total`` bytes free, or the
    file size limit (``ulimit -f``) is below ``largest`` bytes."""
    folder = next(p for p in (Path(out).absolute(), *Path(out).absolute().parents) if p.exists())
    free = shutil.disk_usage(folder).free
    if free < total:
        raise ValueError(f"--out {out}: {folder} has {free / 2**20:.1f} MiB free, but the tagger needs about "
                         f"{total / 2**20:.1f} MiB; free some space or choose another --out")
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource else None
    if limit is not None and limit != resource.RLIM_INFINITY and limit < largest:
        raise ValueError(f"the file size limit (ulimit -f) is {limit:,} bytes, but the tagger's weights take "
                         f"about {largest:,}; raise it (ulimit -f unlimited) before training")


def _train(args: argparse.Namespace) -> int:
    """``ner train``: every check that can fail comes before training, on every process."""
    if args.minutes is None and args.epochs is None:
        raise ValueError("give --minutes or --epochs (or both)")
    check_save_target(args.out)
    if args.embeddings:
        _check_embeddings(args.embeddings)
    corpora = {name: _read(name, path) for name, path in
               [("train", args.train), ("dev", args.dev), ("test", args.test)] if path}
    config = TaggerConfig(scheme=args.scheme, use_crf=not args.no_crf, use_chars=not args.no_chars)
    _check_room(args.out, *_saved_size(config, corpora["train"]))
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    context = distributed.setup()
    try:
        if context.distributed:
            distributed.print0(f"training on {context.world_size} processes ({context.backend}); "
                               f"rank 0 logs and saves")
        with _stop_signals() as stops:
            return _train_and_save(args, config, corpora, context, stops)
    finally:
        distributed.teardown()


def _train_and_save(args: argparse.Namespace, config: TaggerConfig, corpora: dict[str, Corpus],
                    context: distributed.Context, stops: _Stops) -> int:
    """Train, save (rank 0) and score; the exit status (128 + N after signal N)."""
    try:
        tagger, _ = train_tagger(corpora["train"], corpora["dev"], config=config, minutes=args.minutes,
                                 epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                 seed=args.seed, device=context.device, embeddings=args.embeddings)
        if context.is_main:
            print(f"saved the tagger to {_save(tagger, args.out, stops)}", flush=True)
            if not stops.received:
                _print_scores(tagger, corpora)
    except TrainingInterrupted as stop:
        why = stops.name() if stop.error is None else f"{type(stop.error).__name__}: {stop.error}"
        if context.is_main and stop.tagger is None:
            print(f"stopped by {why} before the first evaluation: no tagger to save", file=sys.stderr)
        elif context.is_main:
            print(f"stopped by {why}: saved the best tagger so far (dev F1 "
                  f"{stop.history['dev_f1'].max():.4f}) to {_save(stop.tagger, args.out, stops)}",
                  file=sys.stderr, flush=True)
        return stops.status() if stop.error is None else 1
    except KeyboardInterrupt:  # while scoring the saved tagger
        stopped = True
    else:
        stopped = bool(stops.received)  # a signal held back while the tagger was being saved
    if stopped:
        print(f"stopped by {stops.name()} after the tagger was saved", file=sys.stderr)
        return stops.status()
    return 0


def _print_scores(tagger: Tagger, corpora: dict[str, Corpus]) -> None:
    for name in ("dev", "test"):
        if name in corpora:
            scores = tagger.evaluate(corpora[name])
            print(f"{name} entity F1 {scores['f1']:.4f}  precision {scores['precision']:.4f}  "
                  f"recall {scores['recall']:.4f}")


def fallback_folders() -> list[Path]:
    """Where ``ner train`` saves the tagger when ``--out`` fails: a new folder named after the
    time and the process in the temporary folder, else in the home folder."""
    name = f"course_utils-tagger-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    return [Path(tempfile.gettempdir()) / name, Path.home() / name]


def _save(tagger: Tagger, out: str, stops: _Stops) -> Path:
    """``tagger.save(out)``, with the stop signals only recorded meanwhile; if the save fails,
    the tagger is saved to the first of `fallback_folders` that works and an OSError says where.

    Raises:
        OSError: ``out`` failed; the message says where the tagger is, or that no folder took it.
    """
    stops.held = True
    try:
        return tagger.save(out)
    except OSError as error:
        saved, tried = None, []
        for folder in fallback_folders():
            try:
                saved = tagger.save(folder)
                break
            except (OSError, ValueError):
                tried.append(str(folder))
        where = (f"the trained tagger was saved to {saved} instead: move it where you want it" if saved else
                 f"saving to {' and '.join(tried)} failed too: the trained tagger is lost when this process ends")
        raise OSError(f"{error.strerror or error}; {where}") from None
    finally:
        stops.held = False


class _Stops:
    """A signal handler that records each stop signal and, unless ``held``, raises
    KeyboardInterrupt (which ``train_tagger`` turns into TrainingInterrupted)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.held = False

    def __call__(self, number: int, frame: FrameType | None) -> None:
        self.received.append(number)
        if not self.held:
            raise KeyboardInterrupt

    def name(self) -> str:
        """The last signal's name (SIGINT if none came: a KeyboardInterrupt from elsewhere)."""
        return signal.Signals(self.received[-1] if self.received else signal.SIGINT).name

    def status(self) -> int:
        """128 + the last signal's number, the exit status of a process it stopped."""
        return 128 + (self.received[-1] if self.received else signal.SIGINT)


@contextlib.contextmanager
def _stop_signals() -> Iterator[_Stops]:
    """Within the block, STOP_SIGNALS (SIGINT, SIGTERM, SIGHUP) go to a `_Stops`, which it yields."""
    stops = _Stops()
    previous = {number: signal.signal(number, stops) for number in STOP_SIGNALS}
    try:
        yield stops
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _tag(args: argparse.Namespace) -> int:
    """``ner tag``: print token/tag pairs, one sentence per line."""
    tagger = Tagger.load(args.model)
    # One sentence per line, split at LF, CRLF or CR only: splitlines() would also split at U+2028 or
    # U+0085 inside a sentence.
    lines = args.text or [line for line in re.split(r"\r\n|\r|\n", sys.stdin.read()) if line.strip()]
    if not lines:
        raise ValueError("no text to tag: pass sentences as arguments or on stdin")
    for pairs in tagger.tag(lines, scheme=args.scheme):
        print(" ".join(f"{token}/{tag}" for token, tag in pairs))
    return 0
