"""Character-level language modelling: text as a sequence of integers, and an LSTM that reads it.

Introduced in lesson 02 (character-level LSTM language model on Tiny Shakespeare).

The pieces, in the order the lesson uses them:

* The characters of a text become integer ids with the course's one
  vocabulary class, ``course_utils.vocab.Vocab`` (``from_text``,
  ``encode_text``, ``decode_text``).
* ``split_by_position``: the first 90% of the text for training, the rest for validation.
* ``tbptt_batches``: (x, y) chunks for truncated backpropagation through time,
  laid out so that the hidden state can be carried from one chunk to the next.
* ``CharLSTM``, ``train_char_lstm``, ``evaluate_char_lstm``, ``bits_per_char``
  and ``sample``: the model, its training loop, its loss in nats per
  character, and text generation with a temperature; ``cut_at_word_boundary``
  ends a sample at a whole word. ``CharLSTM(cell="gru")`` swaps in a GRU.
* ``lstm_activations``, ``text_features``, ``best_cells``: look inside a trained
  model for cells that track something visible in the text.
* ``split_sentence``, ``underflow_sentence``, ``speed_ratio_sentence`` and ``line_reset_sentence``:
  sentences the lesson renders from its data split, its float32 and float64 gradient norms, its
  timing of our LSTM against ``nn.LSTM``, and a cell's forget gate at line ends.
* ``plot_learning_curves``, ``plot_gradient_norms``, ``plot_activations``,
  ``plot_text_heatmap``, ``side_by_side``: the lesson's figures and tables.

Shapes use B = batch size, T = time steps (characters), V = vocabulary size,
E = embedding size, H = hidden size, L = number of layers, N = text length.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .checks import check_positive_int
from .lstm import LSTM, State
from .train import model_device, show_progress
from .verdicts import TIMING_MARGIN, ratio_reading, time_margin
from .vocab import Vocab

__all__ = [
    "split_by_position", "tbptt_batches", "CharLSTM", "train_char_lstm",
    "evaluate_char_lstm", "bits_per_char", "sample", "cut_at_word_boundary", "lstm_activations", "text_features",
    "best_cells", "plot_learning_curves", "plot_gradient_norms", "plot_activations",
    "plot_text_heatmap", "side_by_side", "split_sentence", "underflow_sentence",
]


def _check_ids(ids: object, name: str = "ids", dim: int = 1) -> None:
    """Raise unless `ids` is an integer tensor with `dim` dimensions and no negative entry."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"expected {name} to be a torch.Tensor, got {type(ids).__name__}")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"expected {name} to hold integer character ids, got dtype {ids.dtype}")
    if ids.dim() != dim:
        raise ValueError(f"expected {name} with {dim} dimension(s), got shape {tuple(ids.shape)}")


def split_by_position(ids: Tensor, val_fraction: float = 0.1) -> tuple[Tensor, Tensor]:
    """The first (1 - val_fraction) of `ids` (N,) for training, the rest for validation.

    A split by position, not at random: validation text is text the model never
    saw, not characters whose neighbours it trained on. Introduced in lesson 02.
    """
    _check_ids(ids)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"expected val_fraction in (0, 1), got {val_fraction!r}")
    cut = round(len(ids) * (1.0 - val_fraction))
    if cut < 2 or len(ids) - cut < 2:
        raise ValueError(f"{len(ids)} ids are too few to split with val_fraction={val_fraction}")
    return ids[:cut], ids[cut:]


def tbptt_batches(ids: Tensor, batch_size: int, seq_len: int,
                  offset: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
    """Chunks of `batch_size` parallel streams for truncated backpropagation through time.

    ``ids[offset:]`` is cut into `batch_size` equal, contiguous streams, one per
    row; the chunks walk along them `seq_len` characters at a time. Row b of
    one chunk continues exactly where row b of the previous chunk stopped, so
    the model's final state after one chunk is the right initial state for
    the next. The last chunk may be shorter. Introduced in lesson 02.

    Args:
        ids: (N,) character ids.
        batch_size: B, the number of parallel streams.
        seq_len: T, the chunk length (how far back gradients flow).
        offset: characters skipped at the start (vary it between epochs so
            that chunk boundaries fall in new places).

    Yields:
        x: (B, t) inputs, t <= T.
        y: (B, t) targets, the next character of every input.
    """
    _check_ids(ids)
    check_positive_int("batch_size", batch_size)
    check_positive_int("seq_len", seq_len)
    if not isinstance(offset, int) or offset < 0:
        raise ValueError(f"expected offset to be a non-negative int, got {offset!r}")
    length = (len(ids) - offset - 1) // batch_size  # characters per stream
    if length < 1:
        raise ValueError(f"{len(ids)} ids (offset {offset}) are too few for {batch_size} streams")
    inputs = ids[offset:offset + batch_size * length].view(batch_size, length)
    targets = ids[offset + 1:offset + 1 + batch_size * length].view(batch_size, length)
    for start in range(0, length, seq_len):
        yield inputs[:, start:start + seq_len], targets[:, start:start + seq_len]


class CharLSTM(nn.Module):
    """A character-level language model: embedding, stacked LSTM, linear read-out.

    Introduced in lesson 02. Uses ``torch.nn.LSTM`` (fast); ``lstm_activations``
    copies its weights into the from-scratch ``course_utils.lstm.LSTM`` to look inside.
    With ``cell="gru"`` the recurrent layers are a ``torch.nn.GRU`` (held in
    ``self.gru`` instead of ``self.lstm``; its state is one tensor h instead
    of (h, c)): lesson 02's GRU swap.

    Args:
        vocab_size: V, the number of characters.
        embed_size: E, the size of each character's learned vector.
        hidden_size: H, the size of each layer's hidden and cell states.
        num_layers: L, the number of stacked LSTM layers.
        dropout: dropout between the LSTM layers (0 = off).
        cell: "lstm" or "gru", the recurrent layer.
    """

    def __init__(self, vocab_size: int, embed_size: int = 64, hidden_size: int = 256,
                 num_layers: int = 2, dropout: float = 0.0, cell: str = "lstm") -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embed_size", embed_size),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            check_positive_int(name, value)
        if cell not in ("lstm", "gru"):
            raise ValueError(f"expected cell 'lstm' or 'gru', got {cell!r}")
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_size)
        layer = nn.LSTM if cell == "lstm" else nn.GRU
        setattr(self, cell, layer(embed_size, hidden_size, num_layers, batch_first=True, dropout=dropout))
        self.cell = cell
        self.head = nn.Linear(hidden_size, vocab_size)

    @property
    def recurrent(self) -> nn.LSTM | nn.GRU:
        """The stacked recurrent layers: ``self.lstm`` or ``self.gru``."""
        return getattr(self, self.cell)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Next-character scores for every position.

        Args:
            x: (B, T) character ids.
            state: optional (h, c), each (L, B, H), e.g. the final state of the previous chunk
                (for cell="gru": h alone).

        Returns:
            logits: (B, T, V), unnormalised scores of the next character.
            (h, c): the final states, each (L, B, H) (for cell="gru": h alone).
        """
        _check_ids(x, "x", dim=2)
        if x.numel() and (x.min() < 0 or x.max() >= self.vocab_size):
            raise ValueError(f"expected ids in [0, {self.vocab_size}), got values in "
                             f"[{int(x.min())}, {int(x.max())}]")
        output, state = self.recurrent(self.embed(x), state)  # output: (B, T, H)
        return self.head(output), state


def _detach(state: State | Tensor) -> State | Tensor:
    """Keep the values of (h, c) (or a GRU's h) but cut the graph: gradients stop at the chunk boundary."""
    if isinstance(state, Tensor):
        return state.detach()
    return state[0].detach(), state[1].detach()


@torch.no_grad()
def evaluate_char_lstm(model: CharLSTM, ids: Tensor, batch_size: int = 32, seq_len: int = 256,
                       max_chars: int | None = None, device: torch.device | str | None = None) -> float:
    """Mean cross-entropy of predicting each next character of `ids` (N,), in nats per character.

    The text is read as `batch_size` streams with the state carried across
    chunks, as in training; every character but the last (up to batch_size - 1
    left over at the end) is predicted. With `max_chars`, only the start of
    each stream is read, about `max_chars` characters in all, spread over the
    whole text: a quicker estimate. The model and the text go to `device` (None: where the
    model is). Introduced in lesson 02.
    """
    if max_chars is not None:
        check_positive_int("max_chars", max_chars)
    device = model_device(model, device)
    model.to(device).eval()
    total, count, state = 0.0, 0, None
    for x, y in tbptt_batches(ids, batch_size, seq_len):
        if max_chars is not None and count >= max_chars:
            break
        logits, state = model(x.to(device), state)
        total += nn.functional.cross_entropy(logits.flatten(0, 1), y.to(device).flatten(),
                                             reduction="sum").item()
        count += y.numel()
    return total / count


def bits_per_char(nats: float) -> float:
    """A loss in nats per character as bits per character: nats / ln 2. Introduced in lesson 02."""
    return nats / math.log(2)


def train_char_lstm(model: CharLSTM, train_ids: Tensor, val_ids: Tensor, *, steps: int,
                    batch_size: int, seq_len: int, lr: float, eval_every: int,
                    val_chars: int | None = None, pct_start: float = 0.05,
                    clip_grad_norm: float = 1.0, device: torch.device | str | None = None,
                    seed: int = 0, verbose: bool = True,
                    max_seconds: float | None = None) -> pd.DataFrame:
    """Train `model` for `steps` updates with truncated BPTT; return the learning curves.

    Each update reads one (B, T) chunk of `tbptt_batches`, starting from the
    final state of the previous chunk, detached (the state's values carry over,
    gradients stop at the chunk boundary). At the end of the training text the
    state is reset and a new pass starts at a random offset. The optimiser is
    Adam with a one-cycle schedule: the learning rate warms up to `lr` over the
    first `pct_start` of the steps, then anneals to about zero at `steps`.
    Introduced in lesson 02.

    Args:
        model: the CharLSTM to train (moved to `device`).
        train_ids, val_ids: (N_train,) and (N_val,) character ids.
        steps: the number of updates; characters seen = steps * B * T.
        batch_size, seq_len: B and T of each chunk.
        lr: the peak learning rate.
        eval_every: steps between two rows of the history.
        val_chars: during training, evaluate on about `val_chars` characters
            spread over `val_ids` (see `evaluate_char_lstm`'s `max_chars`);
            None = all of it. The last row always uses all of it.
        pct_start: the warm-up fraction of the one-cycle schedule.
        clip_grad_norm: gradients are rescaled to at most this total norm.
        device: where to train (None: where the model is).
        seed: seed of the random pass offsets.
        verbose: print each history row.
        max_seconds: stop after the first step that ends `max_seconds` or more
            after the start (the learning rate then has not annealed to zero);
            the last row, with all of `val_ids`, is that step's. None = run all
            `steps`. For comparisons at equal training time.

    Returns:
        One row per evaluation: step, chars (characters seen, millions),
        train_loss (mean over the steps since the last row) and val_loss
        (both nats per character), lr, seconds.
    """
    for name, value in (("steps", steps), ("batch_size", batch_size), ("seq_len", seq_len),
                        ("eval_every", eval_every)):
        check_positive_int(name, value)
    _check_ids(train_ids, "train_ids")
    _check_ids(val_ids, "val_ids")
    if max_seconds is not None and (not isinstance(max_seconds, (int, float)) or max_seconds <= 0):
        raise ValueError(f"expected max_seconds > 0 or None, got {max_seconds!r}")
    device = model_device(model, device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps,
                                                    pct_start=pct_start)
    generator = torch.Generator().manual_seed(seed)
    rows, losses, step, start = [], [], 0, time.perf_counter()
    progress = tqdm(total=steps, desc="training", disable=not show_progress())
    while step < steps:
        offset = int(torch.randint(seq_len, (1,), generator=generator)) if step else 0
        state = None  # a new pass over the text starts from zeros
        for x, y in tbptt_batches(train_ids, batch_size, seq_len, offset):
            model.train()
            logits, state = model(x.to(device), state)
            state = _detach(state)
            loss = nn.functional.cross_entropy(logits.flatten(0, 1), y.to(device).flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            step += 1
            progress.update()
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                steps = step  # the time is up: this step is the last one
            if step % eval_every == 0 or step == steps:
                rows.append({"step": step, "chars": step * batch_size * seq_len / 1e6,
                             "train_loss": float(np.mean(losses)),
                             "val_loss": evaluate_char_lstm(
                                 model, val_ids, max_chars=None if step == steps else val_chars,
                                 device=device),
                             "lr": scheduler.get_last_lr()[0],
                             "seconds": time.perf_counter() - start})
                losses = []
                if verbose:
                    print("  ".join(f"{k} {v:.4g}" for k, v in rows[-1].items()), flush=True)
            if step == steps:
                break
    progress.close()
    return pd.DataFrame(rows)


@torch.no_grad()
def sample(model: CharLSTM, vocab: Vocab, prompt: str, length: int,
           temperature: float = 1.0, seed: int = 0, device: torch.device | str | None = None) -> str:
    """Generate `length` characters after `prompt`, one at a time. Introduced in lesson 02.

    The model reads the prompt, then repeatedly draws the next character from
    softmax(logits / temperature) and feeds it back in. Temperature < 1
    sharpens the distribution (safer, more repetitive text), > 1 flattens it
    (more varied, more mistakes). The model runs on `device` (None: where it is); the
    characters are drawn on the CPU, from a generator seeded with `seed`.

    Returns:
        The prompt followed by the generated characters.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("expected a non-empty prompt string (the model needs a first character)")
    check_positive_int("length", length)
    if not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"expected a temperature > 0, got {temperature!r}")
    device = model_device(model, device)
    model.to(device).eval()
    generator = torch.Generator().manual_seed(seed)
    logits, state = model(vocab.encode_text(prompt)[None].to(device))  # (1, len(prompt), V)
    generated = []
    for _ in range(length):
        probs = torch.softmax(logits[0, -1].float().cpu() / temperature, dim=-1)  # (V,)
        next_id = torch.multinomial(probs, 1, generator=generator)  # (1,)
        generated.append(int(next_id))
        logits, state = model(next_id[None].to(device), state)
    return prompt + vocab.decode_text(generated)


def cut_at_word_boundary(text: str, start: int = 0) -> str:
    """`text` without the word that its end cuts in two. Introduced in lesson 02.

    A sample of a fixed number of characters usually stops in the middle of a
    word. This keeps `text` up to its last whitespace after position `start`
    (e.g. the prompt's length, so the prompt is always kept), with trailing
    whitespace removed. If nothing after `start` ends at a whitespace, `text`
    is returned whole.

    Examples:
        >>> cut_at_word_boundary("To be, or not to b")
        'To be, or not to'
    """
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if not isinstance(start, int) or not 0 <= start <= len(text):
        raise ValueError(f"expected start in [0, {len(text)}], got {start!r}")
    cut = max(text.rfind(space, start) for space in (" ", "\n", "\t"))
    return text if cut < 0 else text[:cut].rstrip()


@torch.no_grad()
def lstm_activations(model: CharLSTM, ids: Tensor, layer: int) -> dict[str, Tensor]:
    """Gates and states of one LSTM layer while `model` reads `ids` (T,). Introduced in lesson 02.

    The weights of ``model.lstm`` are copied into the from-scratch
    ``course_utils.lstm.LSTM``, whose ``LSTMLayer.trace`` records every gate.

    Returns:
        {"input", "forget", "cell_candidate", "output", "cell", "hidden"}: each (T, H) on the CPU.
    """
    _check_ids(ids)
    if getattr(model, "cell", "lstm") != "lstm":
        raise ValueError(f"lstm_activations needs a CharLSTM with cell='lstm', got cell={model.cell!r}")
    num_layers = model.lstm.num_layers
    if not isinstance(layer, int) or not 0 <= layer < num_layers:
        raise ValueError(f"expected layer in [0, {num_layers}), got {layer!r}")
    model.eval()
    ours = LSTM.from_torch(model.lstm).eval()  # on the CPU, whatever the model's device
    x = model.embed(ids[None].to(model.embed.weight.device)).cpu()  # (1, T, E)
    for cell in ours.layers[:layer]:
        x, _ = cell(x)
    return {name: values[0] for name, values in ours.layers[layer].trace(x).items()}


def text_features(text: str) -> pd.DataFrame:
    """Things a reader can see at each character of `text`. Introduced in lesson 02.

    Returns:
        One row per character: char; line_position (characters since the last
        newline); speaker_name (1 inside a line like "ROMEO:" that introduces a
        speech, else 0); in_word (1 for letters and apostrophes, else 0).
    """
    if not isinstance(text, str) or not text:
        raise ValueError("expected a non-empty string")
    lines = text.split("\n")
    rows = []
    for k, line in enumerate(lines):
        is_speaker = line.endswith(":") and (k == 0 or lines[k - 1] == "")
        for position, char in enumerate(line + ("\n" if k < len(lines) - 1 else "")):
            rows.append({"char": char, "line_position": position,
                         "speaker_name": int(is_speaker and char != "\n"),
                         "in_word": int(char.isalpha() or char == "'")})
    return pd.DataFrame(rows)


def best_cells(activations: Tensor, features: pd.DataFrame) -> pd.DataFrame:
    """For each numeric feature, the unit whose activation correlates with it most.

    Introduced in lesson 02.

    Args:
        activations: (T, H), e.g. ``lstm_activations(...)["cell"]``.
        features: T rows, e.g. ``text_features(text)``; non-numeric columns are skipped.

    Returns:
        One row per feature: feature, cell (the unit index), correlation
        (Pearson, signed; the unit with the largest absolute value wins).
    """
    if not isinstance(activations, Tensor) or activations.dim() != 2:
        shape = getattr(activations, "shape", activations)
        raise ValueError(f"expected activations as a (T, H) tensor, got {shape!r}")
    if len(features) != len(activations):
        raise ValueError(f"expected one feature row per time step: {len(activations)} steps, "
                         f"{len(features)} rows")
    acts = activations.detach().double().cpu().numpy()
    acts = (acts - acts.mean(0)) / (acts.std(0) + 1e-12)
    rows = []
    for name in features.select_dtypes("number").columns:
        f = features[name].to_numpy(dtype=float)
        f = (f - f.mean()) / (f.std() + 1e-12)
        corr = (acts * f[:, None]).mean(0)  # (H,)
        cell = int(np.abs(corr).argmax())
        rows.append({"feature": name, "cell": cell, "correlation": float(corr[cell])})
    return pd.DataFrame(rows)


def _shown(char: str) -> str:
    """How a character is drawn in a figure: newline as an arrow, space as a middle dot."""
    return {"\n": "\u21b5", " ": "\u00b7"}.get(char, char)


def plot_learning_curves(history: pd.DataFrame, target: float | None = None,
                         title: str = "Learning curves") -> plt.Figure:
    """Train and validation loss (nats per character) against characters seen.

    `history` is what `train_char_lstm` returns. A right-hand axis shows bits
    per character; `target` draws a horizontal line. Introduced in lesson 02.
    """
    missing = {"chars", "train_loss", "val_loss"} - set(history.columns)
    if missing:
        raise ValueError(f"history needs columns {sorted(missing)}, got {list(history.columns)}")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history["chars"], history["train_loss"], "o-", ms=3, label="train (mean since last point)")
    ax.plot(history["chars"], history["val_loss"], "s--", ms=3, label="validation")
    if target is not None:
        ax.axhline(target, color="grey", lw=1, ls=":", label=f"target {target}")
    ax.set(xlabel="characters seen in training (millions)", ylabel="loss (nats per character)",
           title=title)
    right = ax.secondary_yaxis("right", functions=(bits_per_char, lambda b: b * math.log(2)))
    right.set_ylabel("bits per character")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_gradient_norms(norms: dict[str, Tensor],
                        title: str = "Gradient reaching the input k steps back") -> plt.Figure:
    """Gradient norm against distance k, relative to k = 0, on a log scale. Introduced in lesson 02.

    norms: {model name: (T,) tensor}, as `course_utils.lstm.input_gradient_norms` returns
    (``norms[k]`` belongs to the input k steps before the end). Exact zeros (underflow) are not drawn.
    """
    if not norms:
        raise ValueError("expected at least one curve")
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in norms.items():
        if not isinstance(values, Tensor) or values.dim() != 1 or not values[0] > 0:
            raise ValueError(f"expected {name!r} as a 1-D tensor with a positive first entry")
        relative = (values / values[0]).detach().double().cpu().numpy()
        ax.semilogy(np.arange(len(relative)), np.where(relative > 0, relative, np.nan), label=name)
    ax.set(xlabel="distance k (steps back from the last input)",
           ylabel="||dL/dx|| relative to k = 0 (log scale)", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_activations(values: Tensor, text: str, units: Sequence[int] | None = None,
                     title: str = "Activations", unit_name: str = "unit",
                     value_name: str = "activation") -> plt.Figure:
    """A heatmap of units (rows) against the characters of `text` (columns).

    Introduced in lesson 02.

    Args:
        values: (T, H) activations, one row per character of `text`.
        text: the T characters, used as the column labels.
        units: which of the H units to show (default: the first 32).
        unit_name / value_name: the y-axis label (what a row is) and the colour bar's label.
    """
    if not isinstance(values, Tensor) or values.dim() != 2 or len(values) != len(text):
        raise ValueError(f"expected values of shape ({len(text)}, H), one row per character, "
                         f"got {getattr(values, 'shape', values)!r}")
    units = list(range(min(32, values.shape[1]))) if units is None else list(units)
    matrix = values[:, units].T.detach().cpu().numpy()  # (units, T)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * len(text) + 1.5), 0.25 * len(units) + 1.6))
    signed = matrix.min() < 0  # a diverging map for values in [-1, 1], a sequential one for [0, 1] (gates)
    image = ax.imshow(matrix, aspect="auto", cmap="coolwarm" if signed else "viridis", vmin=-1 if signed else 0,
                      vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(text)), [_shown(c) for c in text], fontsize=7, fontfamily="monospace")
    ax.set_yticks(range(len(units)), [str(u) for u in units], fontsize=7)
    ax.set(xlabel="character of the passage", ylabel=unit_name, title=title)
    fig.colorbar(image, ax=ax, pad=0.01, label=value_name)
    fig.tight_layout()
    return fig


def plot_text_heatmap(text: str, values: Sequence[float] | Tensor,
                      title: str = "One cell over a passage", label: str = "activation",
                      limit: float | None = None) -> plt.Figure:
    """`text` laid out line by line, each character coloured by its value. Introduced in lesson 02.

    values: (T,), one per character of `text`; newlines are drawn as arrows. The colour scale runs from
    -limit to +limit (default: the largest absolute value), so that figures with one limit share a scale.
    """
    values = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=float)
    if values.shape != (len(text),):
        raise ValueError(f"expected one value per character, shape ({len(text)},), got {values.shape}")
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not lines[-1]:
        lines.pop()
    width = max(len(line) for line in lines)
    grid = np.full((len(lines), width), np.nan)
    fig, ax = plt.subplots(figsize=(0.14 * width + 1.8, 0.24 * len(lines) + 1.0))
    index = 0
    for row, line in enumerate(lines):
        grid[row, :len(line)] = values[index:index + len(line)]
        for col, char in enumerate(line):
            ax.text(col, row, _shown(char), ha="center", va="center", fontsize=7, fontfamily="monospace")
        index += len(line)
    limit = (float(np.nanmax(np.abs(grid))) or 1.0) if limit is None else float(limit)
    image = ax.imshow(grid, aspect="auto", cmap="coolwarm", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set(title=title, xlabel="characters, line by line (\u21b5 = newline)")
    fig.colorbar(image, ax=ax, pad=0.01, label=label)
    fig.tight_layout()
    return fig


def side_by_side(texts: dict[str, str], width: int = 44) -> pd.DataFrame:
    """Texts as columns of a table, one text line (cut to `width` characters) per row.

    Short columns are padded with empty strings. Introduced in lesson 02.
    """
    check_positive_int("width", width)
    if not texts:
        raise ValueError("expected at least one text")
    columns = {}
    for name, text in texts.items():
        columns[name] = [part[i:i + width] or "" for part in text.split("\n")
                         for i in range(0, max(len(part), 1), width)]
    rows = max(len(lines) for lines in columns.values())
    return pd.DataFrame({name: lines + [""] * (rows - len(lines)) for name, lines in columns.items()})


# --------------------------------------------------------------------------- sentences lesson 02 renders

TEMPEST_OPENING = "Master:\nBoatswain!"  # the first speech of The Tempest (Act 1, Scene 1) in Tiny Shakespeare
TEMPEST_SPEAKERS = ("PROSPERO:", "MIRANDA:", "ARIEL:")


def _speakers(text: str) -> list[str]:
    """The speaker names of a play text, one per speech: a line that is a capitalised name and a colon,
    at the start of the text or after a blank line (as ``text_features`` reads them; a verse line that
    ends in a colon is not one)."""
    import re

    return re.findall(r"(?:\A|\n\n)([A-Z][A-Za-z ]*):(?=\n|\Z)", text)


def split_sentence(train_text: str, val_text: str) -> str:
    """What the validation text of a split by position is made of, from the texts themselves.

    Names the plays only when it finds The Tempest's first speech in the validation text and none of its
    main speakers in the training text (true of Tiny Shakespeare split at 90%); otherwise it says
    nothing about plays. Always gives the share of the validation speeches whose speaker name also
    speaks in the training text.
    """
    speakers, seen = _speakers(val_text), set(_speakers(train_text))
    start = val_text.find(TEMPEST_OPENING)
    if start > 0 and not any(name in train_text for name in TEMPEST_SPEAKERS):
        text = (f"The split is by position, so the validation text is the end of the file: its first {start:,} "
                f"characters ({start / len(val_text):.0%}) continue *The Taming of the Shrew*, whose first scenes "
                f"and speakers are in the training text, and the other {len(val_text) - start:,} "
                f"({1 - start / len(val_text):.0%}) are *The Tempest*, whose main speakers (Prospero, Miranda, "
                "Ariel) never speak in the training text.")
    else:
        text = "The split is by position, so the validation text is the end of this mode's text."
    if not speakers:
        return text + " The validation text has no speaker names to compare."
    share = sum(name in seen for name in speakers) / len(speakers)
    return text + (f" {share:.0%} of its {len(speakers):,} speeches are by a speaker name that also speaks in the "
                   "training text.")


def underflow_sentence(name: str, norms32: Tensor, norms64: Tensor, entries: int) -> str:
    """What float32 does to the norm of a tiny gradient, from the same model's float32 and float64 norms.

    norms32 / norms64: (K,) gradient norms for k = 0 .. K-1, the model in float32 and a float64 copy with the
    same weights; entries: how many entries the gradient at one k has. Says where the float32 norm is exactly 0
    (from a k on, or only at some k), why (a norm squares its entries), and how far it is off just before.
    """
    if norms32.shape != norms64.shape or norms32.dim() != 1 or entries < 1:
        raise ValueError("expected two (K,) norm tensors of the same shape and a positive number of entries")
    tiny = torch.finfo(torch.float32).smallest_normal * torch.finfo(torch.float32).eps  # 2^-149
    zero = norms32 == 0
    if not bool(zero.any()):
        last = len(norms32) - 1
        error = float(norms32[last]) / float(norms64[last]) - 1
        return (f"In this run no float32 norm of the {name} reached exactly 0; at k = {last} it is "
                f"{float(norms32[last]):.2e} against {float(norms64[last]):.2e} in float64 ({error:+.0%}).")
    first = int(zero.nonzero()[0])
    if bool(zero[first:].all()):
        where = f"from k = {first} on"
    else:
        where = (f"at {int(zero.sum())} of the k from {first} to {len(zero) - 1} (but not at all of them: a "
                 "later norm comes back above 0)")
    rms = float(norms64[first]) / math.sqrt(entries)  # root mean square of one entry, from float64
    text = (f"In float32 the norm of the {name} is exactly 0 {where}, while the float64 copy gives "
            f"{float(norms64[first]):.1e} at k = {first}. There its {entries:,} entries have a root mean square of "
            f"{rms:.0e}, " + ("a normal float32 number" if rms >= torch.finfo(torch.float32).smallest_normal
                               else "below float32's normal range")
            + f", but PyTorch's float32 norm squares them first: {rms ** 2:.0e} "
            + (f"is below {tiny:.1e}, the smallest positive float32 number." if rms ** 2 < tiny else
               f"is not below {tiny:.1e}, the smallest positive float32 number, so squaring alone does not explain "
               "the 0 here, and this lesson does not measure what does."))
    if first == 0:
        return text
    before = first - 1
    error = float(norms32[before]) / float(norms64[before]) - 1
    text += (f" Just before, at k = {before}, the float32 norm is {float(norms32[before]):.2e} against "
             f"{float(norms64[before]):.2e} in float64 ({error:+.0%}): ")
    if abs(error) <= 0.01:
        return text + "there it still agrees with float64 to 1%."
    mean_square = float(norms64[before]) ** 2 / entries
    if mean_square < torch.finfo(torch.float32).smallest_normal:
        return text + (f"it is already wrong before it reaches 0. The mean square of its entries at k = {before}, "
                       f"{mean_square:.0e}, "
                       f"is below float32's normal range ({torch.finfo(torch.float32).smallest_normal:.1e}), where "
                       "squares keep fewer digits or round to 0.")
    return text + "it is already off before it reaches 0, for a reason this lesson does not measure."


def speed_ratio_sentence(ratios: Sequence[float], repeat_ratio: float) -> str:
    """One sentence on ``benchmarks.lstm_benchmark``'s ratios, our LSTM's time over ``nn.LSTM``'s, one per
    repeat of the benchmark. ``repeat_ratio``: the larger over the smaller of two timings of one model
    across the repeats. The course's rule for a ratio of two timings (``verdicts.time_margin``, as in
    lessons 03 and 04): it counts beyond ``TIMING_MARGIN``, or beyond the repeat ratio if that is larger;
    ours is called slower (faster) only if every repeat's ratio is beyond that margin."""
    if not ratios or not all(0 < r < math.inf for r in ratios):
        raise ValueError(f"expected positive, finite time ratios, got {list(ratios)}")
    margin = time_margin(repeat_ratio)
    listed = " and ".join(f"{r:.2f}x" for r in ratios)
    head = (f"Our LSTM took {listed} the time of nn.LSTM ({len(ratios)} repeat{'s' if len(ratios) > 1 else ''}, one "
            f"median each); two timings of one model differed by up to {repeat_ratio:.2f}x, so a ratio counts only "
            f"beyond {margin:.2f}x (the course's timing margin, {TIMING_MARGIN}x, or that spread if larger)")
    readings = {ratio_reading(r, margin) for r in ratios}
    if readings == {"above"}:
        return head + ": slower beyond it in every repeat, so ours was slower on this machine in this run."
    if readings == {"below"}:
        return head + ": faster beyond it in every repeat, so ours was faster on this machine in this run."
    return head + ": not beyond it in every repeat, so these timings do not tell which of the two is faster."


RESET_GATE = 0.1  # a forget gate below this is read as emptying the cell


def line_reset_sentence(newline_gate: float, other_gate: float, emptied: float) -> str:
    """What one cell's forget gate does at line ends. newline_gate, other_gate: its mean gate where the
    cell reads a newline and elsewhere; emptied: the share of the newlines at which it is below
    ``RESET_GATE``. Says that its memory is mostly one line only when it empties the cell at most
    newlines (emptied > 0.5) and closes more there than elsewhere. A gate below ``RESET_GATE`` lets less
    than a tenth of the cell's content through: a reset, though not an empty cell (the input still adds)."""
    if not all(0 <= v <= 1 for v in (newline_gate, other_gate, emptied)):
        raise ValueError(f"expected gates and a share in [0, 1], got {newline_gate}, {other_gate}, {emptied}")
    at = (f"Its gate is below {RESET_GATE} at {emptied:.0%} of the newlines (mean {newline_gate:.2f} there, "
          f"{other_gate:.2f} at the other characters)")
    closes_more = newline_gate < other_gate
    share = "at every line end" if emptied == 1 else "at more than half of the line ends"
    if emptied > 0.5 and closes_more:
        return at + (f": {share} it lets less than a tenth of the cell's content through, "
                     "so whatever its median gate says, its content mostly does not survive a line end: its memory is "
                     "mostly one line, not the median span.")
    if emptied > 0.5:
        return at + (f": {share} it lets less than a tenth of the cell's content through, but "
                     "its gate is no higher elsewhere, so the resets are not about line ends, and this lesson does not "
                     "read a line memory from this cell.")
    return at + (f": it resets the cell at no more than half of the line ends ({RESET_GATE} is the level at which "
                 "this lesson reads a gate as resetting the cell)"
                 + (", though it keeps less across a line end than elsewhere." if closes_more else
                    ", and it keeps no less across a line end than elsewhere.")
                 + " The lesson looks for resets at newlines only: one at other characters would not show here.")
