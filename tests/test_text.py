"""Tests for course_utils.text: the character-level language model of lesson 02."""

import math

import matplotlib
import pandas as pd
import pytest
import torch
from torch import nn

from course_utils.vocab import Vocab
from course_utils.text import (CharLSTM, best_cells, bits_per_char, evaluate_char_lstm,
                               lstm_activations, plot_activations, plot_gradient_norms,
                               plot_learning_curves, plot_text_heatmap, sample, side_by_side,
                               split_by_position, tbptt_batches, text_features, train_char_lstm)

matplotlib.use("Agg")


def _model(vocab_size=5, hidden_size=8, num_layers=2, embed_size=4, seed=0):
    torch.manual_seed(seed)
    return CharLSTM(vocab_size, embed_size=embed_size, hidden_size=hidden_size, num_layers=num_layers)


# --- vocabulary, split, batches -------------------------------------------------------------

def test_vocab_is_sorted_and_round_trips():
    vocab = Vocab.from_text("hello, world\n")
    assert vocab.itos == sorted(set("hello, world\n"))
    ids = vocab.encode_text("world, hello")
    assert ids.dtype == torch.long and ids.shape == (12,)
    assert vocab.decode_text(ids) == "world, hello"
    assert vocab.decode_text(ids.tolist()) == "world, hello"
    assert len(vocab) == 10


def test_vocab_rejects_bad_input():
    vocab = Vocab.from_text("abc")
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode_text("abz")
    with pytest.raises(TypeError, match="string"):
        vocab.encode_text(["a"])
    with pytest.raises(ValueError, match="id 3 is out of range for a vocabulary of 3"):
        vocab.decode_text([0, 3])
    with pytest.raises(TypeError, match="integer"):
        vocab.decode_text(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="distinct"):
        Vocab(["a", "a"])
    with pytest.raises(ValueError, match="non-empty"):
        Vocab.from_text("")


def test_split_by_position_keeps_order():
    ids = torch.arange(1000)
    train, val = split_by_position(ids, 0.1)
    assert len(train) == 900 and len(val) == 100
    assert torch.equal(torch.cat([train, val]), ids)
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_position(ids, 1.0)
    with pytest.raises(ValueError, match="too few"):
        split_by_position(torch.arange(3), 0.1)


@pytest.mark.parametrize("offset", [0, 3])
def test_tbptt_batches_rows_are_contiguous_streams(offset):
    ids = torch.arange(103)  # each id is its own position in the text
    chunks = list(tbptt_batches(ids, batch_size=4, seq_len=7, offset=offset))
    x = torch.cat([c[0] for c in chunks], dim=1)  # (4, length)
    y = torch.cat([c[1] for c in chunks], dim=1)
    length = (103 - offset - 1) // 4
    assert x.shape == y.shape == (4, length)
    # Row b is one contiguous stream, and chunk k + 1 continues chunk k.
    expected = offset + torch.arange(4)[:, None] * length + torch.arange(length)
    assert torch.equal(x, expected)
    assert torch.equal(y, x + 1)  # targets: the next character
    assert [c[0].shape[1] for c in chunks] == [7] * (length // 7) + ([length % 7] if length % 7 else [])


def test_tbptt_batches_rejects_bad_arguments():
    with pytest.raises(ValueError, match="too few"):
        next(tbptt_batches(torch.arange(4), batch_size=4, seq_len=2))
    with pytest.raises(ValueError, match="batch_size"):
        next(tbptt_batches(torch.arange(10), batch_size=0, seq_len=2))
    with pytest.raises(TypeError, match="integer"):
        next(tbptt_batches(torch.rand(10), batch_size=2, seq_len=2))
    with pytest.raises(ValueError, match="dimension"):
        next(tbptt_batches(torch.arange(10).view(2, 5), batch_size=2, seq_len=2))


# --- model, evaluation, training --------------------------------------------------------------

def test_char_lstm_shapes_and_carried_state():
    model = _model().eval()
    x = torch.randint(0, 5, (3, 10))
    logits, (h, c) = model(x)
    assert logits.shape == (3, 10, 5)
    assert h.shape == c.shape == (2, 3, 8)
    # Reading the sequence in two chunks, carrying the state, gives the same scores.
    first, state = model(x[:, :4])
    second, _ = model(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), logits, atol=1e-5, rtol=0)
    # Without the carried state the second chunk's scores change.
    assert not torch.allclose(model(x[:, 4:])[0], second, atol=1e-4)


def test_char_lstm_rejects_bad_input():
    model = _model()
    with pytest.raises(ValueError, match=r"ids in \[0, 5\)"):
        model(torch.tensor([[0, 5]]))
    with pytest.raises(TypeError, match="integer"):
        model(torch.rand(2, 3))
    with pytest.raises(ValueError, match="2 dimension"):
        model(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="hidden_size"):
        CharLSTM(5, hidden_size=0)


def test_evaluate_is_mean_cross_entropy_and_carries_state():
    model = _model().eval()
    ids = torch.randint(0, 5, (41,))
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
        expected = nn.functional.cross_entropy(logits[0], ids[1:]).item()
    assert evaluate_char_lstm(model, ids, batch_size=1, seq_len=100) == pytest.approx(expected, abs=1e-5)
    # Short chunks with the state carried across them: the same loss.
    assert evaluate_char_lstm(model, ids, batch_size=1, seq_len=3) == pytest.approx(expected, abs=1e-5)


def test_evaluate_with_max_chars_reads_the_start_of_every_stream():
    model = _model().eval()
    ids = torch.randint(0, 5, (41,))
    streams = ids[:40].view(2, 20)  # 2 streams of 20 inputs, targets shifted by one
    targets = ids[1:41].view(2, 20)
    with torch.no_grad():
        logits, _ = model(streams[:, :5])
        expected = nn.functional.cross_entropy(logits.flatten(0, 1), targets[:, :5].flatten()).item()
    actual = evaluate_char_lstm(model, ids, batch_size=2, seq_len=5, max_chars=10)
    assert actual == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="max_chars"):
        evaluate_char_lstm(model, ids, max_chars=0)


def test_bits_per_char():
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)
    assert bits_per_char(1.4) == pytest.approx(1.4 / math.log(2))


def test_training_learns_a_periodic_text():
    vocab = Vocab.from_text("abcde")
    train, val = split_by_position(vocab.encode_text("abcde" * 240), 0.1)
    model = _model(len(vocab), hidden_size=16, embed_size=8)
    before = evaluate_char_lstm(model, val)
    history = train_char_lstm(model, train, val, steps=60, batch_size=8, seq_len=16, lr=3e-2,
                              eval_every=20, val_chars=50, verbose=False)
    assert list(history.columns) == ["step", "chars", "train_loss", "val_loss", "lr", "seconds"]
    assert history["step"].tolist() == [20, 40, 60]
    assert history["chars"].iloc[-1] == pytest.approx(60 * 8 * 16 / 1e6)
    assert history["val_loss"].iloc[-1] == pytest.approx(evaluate_char_lstm(model, val), abs=1e-6)
    assert before > 1.0 and history["val_loss"].iloc[-1] < 0.2
    assert history["lr"].iloc[-1] < 1e-3  # the one-cycle schedule ends near zero


# --- sampling -----------------------------------------------------------------------------------

def test_sample_is_repeatable_and_starts_with_prompt():
    vocab = Vocab.from_text("abcde")
    model = _model(len(vocab))
    text = sample(model, vocab, "abc", length=20, temperature=1.0, seed=1)
    assert text.startswith("abc") and len(text) == 23 and set(text) <= set("abcde")
    assert sample(model, vocab, "abc", length=20, temperature=1.0, seed=1) == text


def test_sample_with_low_temperature_is_greedy():
    vocab = Vocab.from_text("abcde")
    model = _model(len(vocab)).eval()
    text = sample(model, vocab, "a", length=6, temperature=1e-4, seed=3)
    greedy, state = "a", None
    logits, state = model(vocab.encode_text("a")[None])
    for _ in range(6):
        next_id = logits[0, -1].argmax()
        greedy += vocab.itos[next_id]
        logits, state = model(next_id.view(1, 1), state)
    assert text == greedy


@pytest.mark.parametrize("kwargs, error", [({"temperature": 0.0}, ValueError),
                                           ({"prompt": ""}, ValueError),
                                           ({"prompt": "xyz"}, ValueError),
                                           ({"length": 0}, ValueError)])
def test_sample_rejects_bad_arguments(kwargs, error):
    vocab = Vocab.from_text("abcde")
    with pytest.raises(error):
        sample(_model(len(vocab)), vocab, **{"prompt": "ab", "length": 5, **kwargs})


# --- looking inside -----------------------------------------------------------------------------

def test_lstm_activations_match_the_model():
    model = _model(hidden_size=6).eval()
    ids = torch.randint(0, 5, (12,))
    with torch.no_grad():
        output, _ = model.lstm(model.embed(ids[None]))
    top = lstm_activations(model, ids, layer=1)
    assert set(top) == {"input", "forget", "cell_candidate", "output", "cell", "hidden"}
    assert all(v.shape == (12, 6) for v in top.values())
    torch.testing.assert_close(top["hidden"], output[0], atol=1e-5, rtol=0)
    # The cell update: c_t = f_t * c_{t-1} + i_t * g_t, with c_{-1} = 0.
    previous = torch.cat([torch.zeros(1, 6), top["cell"][:-1]])
    torch.testing.assert_close(top["cell"], top["forget"] * previous + top["input"] * top["cell_candidate"])
    torch.testing.assert_close(top["hidden"], top["output"] * torch.tanh(top["cell"]))
    assert lstm_activations(model, ids, layer=0)["hidden"].shape == (12, 6)
    with pytest.raises(ValueError, match="layer"):
        lstm_activations(model, ids, layer=2)


def test_text_features():
    text = "ROMEO:\nGood day.\n\nJULIET:\nHi"
    features = text_features(text)
    assert "".join(features["char"]) == text
    assert features["line_position"].tolist()[:9] == [0, 1, 2, 3, 4, 5, 6, 0, 1]
    speaker = "".join(c for c, s in zip(text, features["speaker_name"]) if s)
    assert speaker == "ROMEO:JULIET:"
    assert features["in_word"].tolist()[:7] == [1, 1, 1, 1, 1, 0, 0]


def test_best_cells_finds_the_correlated_unit():
    torch.manual_seed(0)
    features = pd.DataFrame({"char": list("abcdefghij" * 3), "up": range(30),
                             "flag": [0, 1, 1] * 10})
    activations = torch.randn(30, 5)
    activations[:, 3] = torch.arange(30.0) * 0.1
    activations[:, 1] = -torch.tensor([0.0, 1.0, 1.0] * 10)
    table = best_cells(activations, features)
    assert table["feature"].tolist() == ["up", "flag"]
    assert table["cell"].tolist() == [3, 1]
    assert table["correlation"].tolist() == pytest.approx([1.0, -1.0])
    with pytest.raises(ValueError, match="one feature row per time step"):
        best_cells(activations[:10], features)


# --- figures and tables -------------------------------------------------------------------------

def test_plots_return_labelled_figures():
    history = pd.DataFrame({"chars": [0.1, 0.2], "train_loss": [2.0, 1.8], "val_loss": [2.1, 1.9]})
    fig = plot_learning_curves(history, target=1.45)
    assert fig.axes[0].get_ylabel() == "loss (nats per character)"
    assert fig.axes[0].get_title()
    text = "ab\ncd"
    fig = plot_activations(torch.rand(5, 4), text, units=[0, 2], title="gates")
    assert fig.axes[0].get_title() == "gates"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "\u21b5", "c", "d"]
    fig = plot_text_heatmap(text, torch.linspace(-1, 1, 5), title="cell 3")
    assert fig.axes[0].get_title() == "cell 3"
    with pytest.raises(ValueError, match="one value per character"):
        plot_text_heatmap(text, [0.0, 1.0])
    with pytest.raises(ValueError, match="one row per character"):
        plot_activations(torch.rand(4, 4), text)
    with pytest.raises(ValueError, match="val_loss"):
        plot_learning_curves(history.drop(columns="val_loss"))
    fig = plot_gradient_norms({"rnn": torch.tensor([2.0, 0.2, 0.0]), "lstm": torch.tensor([1.0, 0.9, 0.8])})
    assert fig.axes[0].get_yscale() == "log"
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["rnn", "lstm"]
    assert fig.axes[0].get_lines()[0].get_ydata()[1] == pytest.approx(0.1)  # relative to k = 0
    with pytest.raises(ValueError, match="positive first entry"):
        plot_gradient_norms({"dead": torch.zeros(3)})
    matplotlib.pyplot.close("all")


def test_side_by_side_pads_and_wraps():
    table = side_by_side({"cold": "ab\ncd", "hot": "abcdefg"}, width=3)
    assert list(table.columns) == ["cold", "hot"]
    assert table["cold"].tolist() == ["ab", "cd", ""]
    assert table["hot"].tolist() == ["abc", "def", "g"]
    with pytest.raises(ValueError, match="at least one"):
        side_by_side({})


def test_decoding_no_ids_gives_the_empty_string():
    vocab = Vocab(["a", "b"])
    assert vocab.decode_text([]) == "" and vocab.decode_text(()) == ""
    assert vocab.decode_text(torch.zeros(0, dtype=torch.long)) == ""


def test_cut_at_word_boundary_drops_the_cut_word_and_keeps_the_prompt():
    from course_utils.text import cut_at_word_boundary
    assert cut_at_word_boundary("To be, or not to b") == "To be, or not to"
    assert cut_at_word_boundary("ROMEO:\nI will go\nand") == "ROMEO:\nI will go"
    assert cut_at_word_boundary("ROMEO:\nabc", start=7) == "ROMEO:\nabc"  # no space after the prompt
    assert cut_at_word_boundary("") == ""
    with pytest.raises(ValueError, match="start"):
        cut_at_word_boundary("abc", start=5)
    with pytest.raises(TypeError, match="string"):
        cut_at_word_boundary(b"abc")


def test_char_lstm_with_a_gru_cell_carries_its_state_and_trains_for_a_time_budget():
    torch.manual_seed(0)
    model = CharLSTM(5, embed_size=4, hidden_size=8, num_layers=2, cell="gru")
    assert isinstance(model.recurrent, nn.GRU) and not hasattr(model, "lstm")
    x = torch.randint(5, (3, 7))
    logits, h = model(x)
    assert logits.shape == (3, 7, 5) and h.shape == (2, 3, 8)
    whole, _ = model(torch.cat([x, x], dim=1))
    second, _ = model(x, h)
    assert torch.allclose(whole[:, 7:], second, atol=1e-6)
    ids = torch.arange(400) % 5
    history = train_char_lstm(model, ids, ids, steps=1000, batch_size=2, seq_len=8, lr=1e-2,
                              eval_every=5, verbose=False, max_seconds=1e-9)
    assert history["step"].tolist() == [1]  # the time was up after the first step
    with pytest.raises(ValueError, match="max_seconds"):
        train_char_lstm(model, ids, ids, steps=2, batch_size=2, seq_len=8, lr=1e-2, eval_every=1,
                        max_seconds=0)
    with pytest.raises(ValueError, match="cell"):
        CharLSTM(5, cell="rnn")
    with pytest.raises(ValueError, match="cell='lstm'"):
        lstm_activations(model, ids[:10], layer=0)
