"""Tests for course_utils.ner (the BiLSTM-CNN-CRF tagger and its saving) and course_utils.ner_train
(its training and CLI)."""

import errno
import hashlib
import io
import itertools
import json
import os
import re
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from course_utils import ner
from course_utils.tooling import cli, ner_cli, tagger_files
from course_utils.ner import (
    Batch, BiLSTMTagger, CharCNN, Tagger, TaggerConfig, Vocabularies, casing, collate,
    entity_report, entity_scores, invalid_sequences, normalise_word,
)
from course_utils.ner_train import TrainingInterrupted, train_tagger
from course_utils.ner_data import Corpus, Sentence, read_conll, tag_violations


def run_ner(argv: list[str]) -> int:
    """``python -m course_utils ner ARGS``, returning the exit status (--help and usage errors exit)."""
    try:
        return cli.main(["ner", *argv])
    except SystemExit as exit_:
        return int(exit_.code or 0)


PEOPLE = [["John", "Smith"], ["Mary"], ["Ann", "Lee"]]
PLACES = [["Paris"], ["New", "York"], ["Berlin"]]
TEMPLATES = [
    (["{PER}", "lives", "in", "{LOC}", "."]),
    (["{PER}", "visited", "{LOC}", "in", "1996", "."]),
    (["In", "{LOC}", ",", "{PER}", "smiled", "."]),
]
SMALL = dict(word_dim=16, casing_dim=4, char_dim=8, char_filters=8, hidden_size=16, dropout=0.0)


def fill(template: list[str], person: list[str], place: list[str]) -> Sentence:
    """One BIO-tagged sentence from a template with {PER} and {LOC} slots."""
    tokens, tags = [], []
    for word in template:
        entity = {"{PER}": ("PER", person), "{LOC}": ("LOC", place)}.get(word)
        if entity is None:
            tokens.append(word)
            tags.append("O")
        else:
            kind, words = entity
            tokens += words
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
    return Sentence(tokens, tags)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and the machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    """27 short BIO sentences with one- and two-token PER and LOC entities."""
    return Corpus([fill(t, p, l) for t, p, l in itertools.product(TEMPLATES, PEOPLE, PLACES)], "BIO")


@pytest.fixture(scope="module")
def trained(corpus):
    """A small CRF tagger trained until it fits the tiny corpus."""
    tagger, history = train_tagger(corpus, corpus, config=TaggerConfig(**SMALL), epochs=25,
                                   batch_size=4, lr=0.02, seed=0, verbose=False)
    return tagger, history


def write_conll(path, sentences) -> None:
    """A CoNLL-style file: "token POS tag" lines, blank lines between sentences."""
    lines = []
    for sentence in sentences:
        lines += [f"{token} NN {tag}" for token, tag in zip(sentence.tokens, sentence.tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


# --- token features and batches --------------------------------------------------------------

@pytest.mark.parametrize("token, expected", [
    ("the", "lower"), ("EU", "upper"), ("Paris", "title"), ("1996", "digits"), ("12.5%", "mostly_digits"),
    ("A4s", "has_digit"), ("iPhone", "other"), (",", "other"), ("I", "upper"),
])
def test_casing(token, expected):
    assert casing(token) == expected


def test_normalise_word():
    assert normalise_word("Paris-1996") == "paris-0000"
    assert normalise_word("Paris-1996", lowercase=False) == "Paris-0000"


def test_collate_pads_words_chars_and_tags(corpus):
    vocabularies = Vocabularies.from_sentences(corpus.sentences)
    short, long = Sentence(["Mary", "smiled"], ["B-PER", "O"]), corpus[1]
    batch = collate([vocabularies.encode(s.tokens, s.tags) for s in (short, long)])
    length, longest = len(long), max(len(t) for t in short.tokens + long.tokens)
    assert batch.words.shape == batch.casings.shape == batch.tags.shape == batch.mask.shape == (2, length)
    assert batch.chars.shape == (2, length, longest)
    assert batch.mask.sum(1).tolist() == [2, length]
    assert (batch.words[0, 2:] == 0).all() and (batch.chars[0, 2:] == 0).all()
    assert (batch.chars[0, 0, len("Mary"):] == 0).all() and (batch.chars[0, 0, :len("Mary")] > 1).all()
    assert vocabularies.tags.decode(batch.tags[0, :2]) == ["B-PER", "O"]
    # Unknown words and characters map to <unk>; their casing is still known.
    encoded = vocabularies.encode(["Zürich"])
    assert encoded["words"].tolist() == [vocabularies.words.unk_index]
    assert vocabularies.chars.unk_index in encoded["chars"][0].tolist()


def test_char_cnn_ignores_padding():
    torch.manual_seed(0)
    cnn = CharCNN(num_chars=10, char_dim=4, filters=6, kernel_size=3, dropout=0.0)
    chars = torch.tensor([[[2, 3, 4, 0, 0], [5, 0, 0, 0, 0]]])         # (1, 2, 5)
    mask = torch.tensor([[True, False]])                             # the second token is padding
    out = cnn(chars, mask)
    assert out.shape == (1, 2, 6)
    assert (out[0, 1] == 0).all()
    alone = cnn(chars[:, :1, :3], mask[:, :1])                        # no character padding at all
    torch.testing.assert_close(out[0, 0], alone[0, 0])


@pytest.mark.parametrize("use_crf, use_chars", [(True, True), (False, True), (True, False)])
def test_emissions_do_not_depend_on_padding(corpus, use_crf, use_chars):
    vocabularies = Vocabularies.from_sentences(corpus.sentences)
    torch.manual_seed(0)
    config = TaggerConfig(**SMALL, use_crf=use_crf, use_chars=use_chars, scheme="BIO")
    model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars),
                         vocabularies.tags.itos).eval()
    encoded = [vocabularies.encode(s.tokens) for s in corpus[:4]]
    together = model.emissions(collate(encoded))
    assert together.shape == (4, max(len(s) for s in corpus[:4]), len(vocabularies.tags))
    for i, sentence in enumerate(encoded):
        alone = model.emissions(collate([sentence]))
        torch.testing.assert_close(together[i, :alone.size(1)], alone[0])
    decoded = model.decode(collate(encoded))
    assert [len(tags) for tags in decoded] == [len(s) for s in corpus[:4]]


def test_a_few_steps_lower_the_loss(corpus):
    vocabularies = Vocabularies.from_sentences(corpus.sentences)
    torch.manual_seed(0)
    model = BiLSTMTagger(TaggerConfig(**SMALL, scheme="BIO"), len(vocabularies.words),
                         len(vocabularies.chars), vocabularies.tags.itos)
    batch = collate([vocabularies.encode(s.tokens, s.tags) for s in corpus])
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_loss_needs_tags(corpus):
    vocabularies = Vocabularies.from_sentences(corpus.sentences)
    model = BiLSTMTagger(TaggerConfig(**SMALL, scheme="BIO"), len(vocabularies.words),
                         len(vocabularies.chars), vocabularies.tags.itos)
    with pytest.raises(ValueError, match="no tags"):
        model.loss(collate([vocabularies.encode(corpus[0].tokens)]))


# --- training, evaluation, saving -------------------------------------------------------------

def test_training_fits_a_tiny_corpus(trained, corpus):
    tagger, history = trained
    assert tagger.scheme == "BIOES"
    assert list(history.columns) == ["epoch", "step", "seconds", "lr", "train_loss", "dev_f1"]
    assert len(history) == 25 and history["step"].iloc[-1] == 25 * 7
    assert history["train_loss"].iloc[-1] < 0.1 * history["train_loss"].iloc[0]
    scores = tagger.evaluate(corpus)
    assert scores["f1"] == 1.0 and scores["invalid"] == 0
    assert history["dev_f1"].max() == 1.0


def test_training_returns_the_weights_of_the_best_dev_epoch(corpus, monkeypatch):
    """Dev F1 peaks at the second of four epochs: the tagger returned holds that epoch's weights."""
    scripted, snapshots = iter([0.2, 0.9, 0.5, 0.4]), []

    def evaluate(self, data):
        snapshots.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return {"f1": next(scripted)}

    monkeypatch.setattr(ner.Tagger, "evaluate", evaluate)
    tagger, history = train_tagger(corpus, corpus, config=TaggerConfig(**SMALL), epochs=4,
                                   batch_size=4, lr=0.02, seed=0, verbose=False)
    assert history["dev_f1"].tolist() == [0.2, 0.9, 0.5, 0.4]
    state = tagger.model.state_dict()
    assert all(torch.equal(state[k], snapshots[1][k]) for k in state)
    assert not all(torch.equal(state[k], snapshots[3][k]) for k in state)


def test_tag_new_text(trained):
    tagger, _ = trained
    [pairs] = tagger.tag(["Mary lives in New York ."], scheme="BIO")
    assert pairs == [("Mary", "B-PER"), ("lives", "O"), ("in", "O"), ("New", "B-LOC"),
                     ("York", "I-LOC"), (".", "O")]
    as_tokens = tagger.tag([["Mary", "lives", "in", "New", "York", "."]])
    assert [tag for _, tag in as_tokens[0]] == ["S-PER", "O", "O", "B-LOC", "E-LOC", "O"]


def test_crf_decoding_obeys_the_scheme_softmax_may_not(corpus):
    torch.manual_seed(0)
    sentences = [s.tokens for s in corpus] * 2
    counts = {}
    for use_crf in (True, False):
        config = TaggerConfig(**SMALL, use_crf=use_crf)
        vocabularies = Vocabularies.from_sentences(corpus.convert("BIOES").sentences)
        model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars),
                             vocabularies.tags.itos)
        with torch.no_grad():  # large random scores, so that untrained tags are all over the place
            model.output.weight.normal_(0, 3.0)
        counts[use_crf] = invalid_sequences(Tagger(model, vocabularies).predict(sentences), "BIOES")
    assert counts[True] == 0
    assert counts[False] > 0


def test_save_and_load_give_identical_predictions(trained, corpus, tmp_path):
    tagger, _ = trained
    tagger.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == [
        "config.json", "manifest.json", "vocabularies.json", "weights.pt"]
    assert json.loads((tmp_path / "model" / "config.json").read_text())["scheme"] == "BIOES"
    loaded = Tagger.load(tmp_path / "model")
    sentences = [s.tokens for s in corpus] + [["Zürich", "is", "nice"]]
    assert loaded.predict(sentences) == tagger.predict(sentences)
    batch = collate([tagger.vocabularies.encode(s) for s in sentences])
    torch.testing.assert_close(loaded.model.emissions(batch), tagger.model.emissions(batch), rtol=0, atol=0)


def test_entity_scores_and_report():
    gold = [["I-PER", "I-PER", "O", "I-LOC"]]                       # IOB1, as CoNLL-2003
    predicted = [["B-PER", "E-PER", "O", "B-ORG"]]                    # BIOES
    scores = entity_scores(gold, predicted, "IOB1", "BIOES")
    assert scores == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})
    report = entity_report(gold, predicted, "IOB1", "BIOES")
    assert report.loc["PER", "f1"] == 1.0 and report.loc["LOC", "recall"] == 0.0
    assert report.loc["LOC", "support"] == 1
    with pytest.raises(ValueError, match="2 gold tags but 1"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="as many predicted"):
        entity_scores([["O"]], [])
    with pytest.raises(ValueError, match="no sentences to score: expected at least one gold sentence"):
        entity_scores([], [])


def test_invalid_sequences_counts_sentences():
    assert invalid_sequences([["O", "I-PER"], ["B-PER", "I-PER"], ["I-LOC", "I-PER"]], "BIO") == 2
    assert all(tag_violations(t, "BIO") for t in [["O", "I-PER"]])


# --- bad input ------------------------------------------------------------------------------

def test_bad_config():
    with pytest.raises(ValueError, match="scheme"):
        TaggerConfig(scheme="IOB1")
    with pytest.raises(ValueError, match="hidden_size"):
        TaggerConfig(hidden_size=0)
    with pytest.raises(TypeError, match="use_crf"):
        TaggerConfig(use_crf="yes")
    with pytest.raises(ValueError, match="dropout"):
        TaggerConfig(dropout=1.0)
    with pytest.raises(ValueError, match="odd"):
        CharCNN(10, 4, 4, kernel_size=2, dropout=0.0)


def test_bad_training_arguments(corpus):
    with pytest.raises(ValueError, match="minutes"):
        train_tagger(corpus, corpus)
    with pytest.raises(TypeError, match="Corpus"):
        train_tagger(corpus.sentences, corpus, epochs=1)
    with pytest.raises(ValueError, match="no sentences"):
        train_tagger(Corpus([], "BIO"), corpus, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_tagger(corpus, corpus, epochs=0)
    with pytest.raises(ValueError, match="unk_replace"):
        train_tagger(corpus, corpus, epochs=1, unk_replace=2.0)
    with pytest.raises(ValueError, match="batch_size"):
        train_tagger(corpus, corpus, epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="lr"):
        train_tagger(corpus, corpus, epochs=1, lr=-1.0)


def test_bad_text_to_tag(trained, tmp_path):
    tagger, _ = trained
    with pytest.raises(TypeError, match="list of sentences"):
        tagger.tag("Mary lives in Paris")
    with pytest.raises(ValueError, match="no tokens"):
        tagger.tag(["   "])
    with pytest.raises(TypeError, match="sentence 1"):
        tagger.tag(["Mary", ["lives", 3]])
    with pytest.raises(ValueError, match="whitespace"):
        tagger.tag([["New York"]])
    with pytest.raises(TypeError, match="Corpus"):
        tagger.evaluate([["Mary"]])
    with pytest.raises(FileNotFoundError, match="missing"):
        Tagger.load(tmp_path)


# --- command line ----------------------------------------------------------------------------

def test_cli_trains_saves_and_tags(corpus, tmp_path, capsys):
    for name in ("train", "dev"):
        write_conll(tmp_path / f"{name}.txt", corpus.sentences)
    out = tmp_path / "model"
    status = run_ner(["train", "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt"),
                       "--test", str(tmp_path / "dev.txt"), "--epochs", "2", "--minutes", "0.5",
                       "--out", str(out), "--threads", "1"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "dev entity F1" in printed and "test entity F1" in printed
    assert (out / "weights.pt").is_file()
    assert run_ner(["tag", "--model", str(out), "--scheme", "BIO", "Mary lives in Paris ."]) == 0
    tokens = capsys.readouterr().out.split()
    assert [t.rsplit("/", 1)[0] for t in tokens] == ["Mary", "lives", "in", "Paris", "."]
    assert all(t.rsplit("/", 1)[1] in {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"} for t in tokens)


def test_cli_errors(corpus, tmp_path, capsys):
    write_conll(tmp_path / "train.txt", corpus.sentences)
    train = ["train", "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "train.txt"),
             "--out", str(tmp_path / "m")]
    assert run_ner(train) == 1
    assert "--minutes or --epochs" in capsys.readouterr().err
    missing = ["train", "--train", str(tmp_path / "nope.txt"), "--dev", str(tmp_path / "train.txt"),
               "--epochs", "1", "--out", str(tmp_path / "m")]
    assert run_ner(missing) == 1
    assert "nope.txt" in capsys.readouterr().err
    (tmp_path / "bad.txt").write_text("word B-XYZ\nonlyonecolumn\n", encoding="utf-8")
    assert run_ner(["train", "--train", str(tmp_path / "bad.txt"), "--dev", str(tmp_path / "train.txt"),
                     "--epochs", "1", "--out", str(tmp_path / "m")]) == 1
    assert "line 2" in capsys.readouterr().err
    assert run_ner(["tag", "--model", str(tmp_path), "hello"]) == 1
    assert "not a saved tagger" in capsys.readouterr().err
    assert run_ner(["frobnicate"]) == 2
    assert run_ner(["train", "--scheme"]) == 2


def test_cli_tags_stdin(trained, tmp_path, capsys, monkeypatch):
    tagger, _ = trained
    tagger.save(tmp_path / "model")
    monkeypatch.setattr("sys.stdin", io.StringIO("Mary lives in Paris .\n\nAnn Lee smiled .\n"))
    assert run_ner(["tag", "--model", str(tmp_path / "model")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [" ".join(f"{t}/{tag}" for t, tag in pairs)
                     for pairs in tagger.tag(["Mary lives in Paris .", "Ann Lee smiled ."])]
    monkeypatch.setattr("sys.stdin", io.StringIO("Mary lives\u2028in Paris .\r\nAnn Lee smiled .\r"))
    assert run_ner(["tag", "--model", str(tmp_path / "model")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2  # U+2028 does not end a sentence; CRLF and CR do
    monkeypatch.setattr("sys.stdin", io.StringIO("  \n"))
    assert run_ner(["tag", "--model", str(tmp_path / "model")]) == 1
    assert "no text" in capsys.readouterr().err


def test_load_refuses_foreign_weights(trained, tmp_path):
    tagger, _ = trained
    model = tmp_path / "model"
    tagger.save(model)
    torch.save({"something": torch.zeros(2)}, model / "weights.pt")
    with pytest.raises(ValueError, match=r"weights\.pt does not match manifest\.json"):
        Tagger.load(model)
    files = {name: (model / name).read_bytes() for name in tagger_files.SAVED_FILES if name != tagger_files.MANIFEST}
    (model / tagger_files.MANIFEST).write_text(tagger_files.manifest_text(files))  # a manifest that vouches for them
    with pytest.raises(ValueError, match="does not hold this tagger's weights"):
        Tagger.load(model)


def test_a_saved_tagger_with_any_flipped_byte_is_refused(trained, tmp_path):
    """Probes L01, L02, L14, L15: a flipped byte in the weights or the vocabularies, or two
    swapped tag names, loaded silently and tagged wrongly."""
    tagger, _ = trained
    model = tmp_path / "model"
    tagger.save(model)
    for name in tagger_files.SAVED_FILES:
        data = (model / name).read_bytes()
        for offset in sorted({0, len(data) // 2, len(data) - 1, *range(7, len(data), max(1, len(data) // 25))}):
            flipped = bytearray(data)
            flipped[offset] ^= 0x01 if offset % 2 else 0x40
            (model / name).write_bytes(bytes(flipped))
            with pytest.raises(ValueError, match=rf"{name if name != tagger_files.MANIFEST else '.*'} does not match"):
                Tagger.load(model)
        (model / name).write_bytes(data)
    vocabularies = json.loads((model / "vocabularies.json").read_text())
    vocabularies["tags"][1], vocabularies["tags"][2] = vocabularies["tags"][2], vocabularies["tags"][1]
    (model / "vocabularies.json").write_text(json.dumps(vocabularies, ensure_ascii=False))
    with pytest.raises(ValueError, match=r"vocabularies\.json does not match manifest\.json"):
        Tagger.load(model)


def test_evaluate_on_an_empty_corpus_says_so(trained):
    """Probe A08: seqeval's 'Found input variables without list of list'."""
    with pytest.raises(ValueError, match="no sentences"):
        trained[0].evaluate(Corpus([], "BIO"))


def test_read_conll_corpus_works_with_the_tagger(trained, corpus, tmp_path):
    tagger, _ = trained
    write_conll(tmp_path / "dev.txt", corpus.sentences)
    assert tagger.evaluate(read_conll(tmp_path / "dev.txt"))["f1"] == 1.0


def test_batch_to_keeps_missing_tags():
    batch = Batch(*(torch.zeros(1, 2, dtype=torch.long) for _ in range(2)),
                  torch.zeros(1, 2, 3, dtype=torch.long), torch.ones(1, 2, dtype=torch.bool))
    moved = batch.to("cpu")
    assert moved.tags is None and moved.chars.shape == (1, 2, 3)


# --- failures that lose nothing --------------------------------------------------------------

def _train_args(tmp_path, out) -> list[str]:
    return ["train", "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "train.txt"),
            "--epochs", "1", "--out", str(out)]


@pytest.mark.parametrize("where", ["a file", "under a file", "a folder of other files"])
def test_cli_checks_out_before_training(corpus, tmp_path, capsys, monkeypatch, where):
    write_conll(tmp_path / "train.txt", corpus.sentences)
    (tmp_path / "notes.txt").write_text("mine")
    out = {"a file": tmp_path / "notes.txt", "under a file": tmp_path / "notes.txt" / "model",
           "a folder of other files": tmp_path}[where]
    trained = []
    monkeypatch.setattr(ner_cli, "train_tagger", lambda *a, **k: trained.append(1))
    assert run_ner(_train_args(tmp_path, out)) == 1
    err = capsys.readouterr().err
    assert f"cannot save a tagger to {out}" in err and "Traceback" not in err
    assert trained == [], "the --out check must come before training"
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_cli_refuses_non_positive_threads(corpus, tmp_path, capsys, threads):
    write_conll(tmp_path / "train.txt", corpus.sentences)
    assert run_ner(_train_args(tmp_path, tmp_path / "m") + ["--threads", threads]) == 2
    assert f"argument --threads: expected a positive int, got '{threads}'" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("lr", ["inf", "nan", "0", "-1e-3"])
def test_cli_refuses_a_learning_rate_that_is_not_positive_and_finite(corpus, tmp_path, capsys, lr):
    """--lr inf made the first step diverge: an error about the log partition function, no tagger."""
    write_conll(tmp_path / "train.txt", corpus.sentences)
    assert run_ner(_train_args(tmp_path, tmp_path / "m") + [f"--lr={lr}"]) == 2
    assert f"argument --lr: expected a positive, finite float, got '{lr}'" in capsys.readouterr().err


def test_save_over_a_saved_tagger_is_atomic(trained, corpus, tmp_path, monkeypatch):
    tagger, _ = trained
    model = tmp_path / "model"
    tagger.save(model)
    sentences = [s.tokens for s in corpus]
    before = Tagger.load(model).predict(sentences)
    other = Tagger(BiLSTMTagger(TaggerConfig(**SMALL), len(tagger.vocabularies.words),
                                len(tagger.vocabularies.chars), tagger.vocabularies.tags.itos),
                   tagger.vocabularies)

    real_write = Path.write_bytes

    def half_written(self, data):  # the disk fills up half-way through the weights
        if self.name == "weights.pt":
            real_write(self, data[: len(data) // 2])
            raise OSError(28, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", half_written)
    with pytest.raises(OSError, match=r"could not save the tagger to .*model \(the disk is full\); a tagger "
                                      "saved there before is unchanged"):
        other.save(model)
    monkeypatch.undo()
    assert Tagger.load(model).predict(sentences) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "no staging folder may be left"
    other.save(model)  # a save that succeeds replaces the old tagger
    assert Tagger.load(model).predict(sentences) == other.predict(sentences)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_save_refuses_to_delete_other_files(trained, tmp_path):
    tagger, _ = trained
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="other files than a saved tagger"):
        tagger.save(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


# --- ner train loses nothing (probes N04, N05, N29-N34, L22) ---------------------------------

def _files(tmp_path, corpus) -> None:
    write_conll(tmp_path / "train.txt", corpus.sentences)
    (tmp_path / "empty.txt").write_text("\n\n")


@pytest.mark.parametrize("option, value, message", [
    ("--test", "empty.txt", r"empty\.txt: no sentences"),
    ("--dev", "adir", r"--dev .*adir: cannot read it \(Is a directory\)"),
    ("--train", "nope.txt", r"--train .*nope\.txt: cannot read it \(No such file or directory\)"),
    ("--embeddings", "nope.vec", r"--embeddings .*nope\.vec: no such file"),
])
def test_cli_checks_every_path_before_training(corpus, tmp_path, capsys, monkeypatch, option, value, message):
    """Probes N04 (a folder as --train: traceback) and N29 (an empty --test: the trained model lost)."""
    _files(tmp_path, corpus)
    (tmp_path / "adir").mkdir()
    trained = []
    monkeypatch.setattr(ner_cli, "train_tagger", lambda *a, **k: trained.append(1))
    args = _train_args(tmp_path, tmp_path / "m")
    if option in args:
        args[args.index(option) + 1] = str(tmp_path / value)
    else:
        args += [option, str(tmp_path / value)]
    assert run_ner(args) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err and len(err.splitlines()) == 1
    assert trained == [] and not (tmp_path / "m").exists()


def test_cli_checks_that_out_is_writable_before_training(corpus, tmp_path, capsys, monkeypatch):
    """Probe N30: a read-only parent of --out was found only after training."""
    _files(tmp_path, corpus)

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tagger_files.tempfile, "TemporaryDirectory", read_only)
    monkeypatch.setattr(ner_cli, "train_tagger", lambda *a, **k: pytest.fail("trained"))
    assert run_ner(_train_args(tmp_path, tmp_path / "ro" / "model")) == 1
    assert "cannot write in" in capsys.readouterr().err


def test_an_error_during_training_saves_the_best_tagger_so_far(corpus, tmp_path, capsys, monkeypatch):
    _files(tmp_path, corpus)
    evaluate, calls = Tagger.evaluate, []

    def evaluate_then_fail(self, corpus_):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("out of memory")
        return evaluate(self, corpus_)

    monkeypatch.setattr(Tagger, "evaluate", evaluate_then_fail)
    out = tmp_path / "model"
    args = _train_args(tmp_path, out)
    args[args.index("--epochs") + 1] = "5"
    assert run_ner(args) == 1
    err = capsys.readouterr().err
    assert "stopped by MemoryError: out of memory: saved the best tagger so far (dev F1 " in err and str(out) in err
    assert Tagger.load(out).tag(["Mary lives in Paris ."])


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_during_training_saves_the_best_tagger_so_far(corpus, tmp_path, capsys, monkeypatch,
                                                               signal_number):
    """Probes N31, N32 and re-probe row 2: Ctrl-C, SIGTERM or SIGHUP lost the model (and Ctrl-C
    printed a traceback)."""
    _files(tmp_path, corpus)
    evaluate, calls = Tagger.evaluate, []

    def evaluate_then_signal(self, corpus_):
        calls.append(1)
        if len(calls) == 2:  # during the second epoch's scoring
            os.kill(os.getpid(), signal_number)
        return evaluate(self, corpus_)

    monkeypatch.setattr(Tagger, "evaluate", evaluate_then_signal)
    out = tmp_path / "model"
    args = _train_args(tmp_path, out)
    args[args.index("--epochs") + 1] = "5"
    assert run_ner(args) == 128 + signal_number
    err = capsys.readouterr().err
    name = signal.Signals(signal_number).name
    assert f"stopped by {name}: saved the best tagger so far (dev F1 " in err and str(out) in err
    assert "Traceback" not in err and len(calls) == 2
    assert Tagger.load(out).tag(["Mary lives in Paris ."])
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, "the handlers are put back"


def test_a_signal_before_the_first_evaluation_says_nothing_was_saved(corpus, tmp_path, capsys, monkeypatch):
    _files(tmp_path, corpus)
    monkeypatch.setattr(Tagger, "evaluate", lambda self, c: os.kill(os.getpid(), signal.SIGTERM))
    assert run_ner(_train_args(tmp_path, tmp_path / "model")) == 143
    assert "before the first evaluation: no tagger to save" in capsys.readouterr().err
    assert not (tmp_path / "model").exists()


def _fail_writes_under(monkeypatch, folder_name: str) -> None:
    """Make every write of weights.pt into a staging folder of ``folder_name`` fail as on a full disk."""
    real_write = Path.write_bytes

    def full(self, data):
        if self.name == "weights.pt" and self.parent.name.startswith(f".{folder_name}."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full)


def test_a_full_disk_keeps_the_previous_tagger_and_saves_the_new_one_elsewhere(trained, corpus, tmp_path,
                                                                              capsys, monkeypatch):
    """Probe L22 (a full disk was an obscure RuntimeError) and re-probe row 1 (the trained
    weights were lost): --out keeps its tagger, the new one goes to a fallback folder."""
    _files(tmp_path, corpus)
    out, rescue = tmp_path / "model", tmp_path / "rescue"
    trained[0].save(out)
    before = (out / "weights.pt").read_bytes()
    monkeypatch.setattr(ner_cli, "fallback_folders", lambda: [tmp_path / "nowhere" / "x", rescue])
    (tmp_path / "nowhere").write_text("a file, so the first fallback fails")
    _fail_writes_under(monkeypatch, "model")
    assert run_ner(_train_args(tmp_path, out)) == 1
    err = capsys.readouterr().err
    assert "could not save the tagger" in err and "the disk is full" in err and "unchanged" in err
    assert f"saved to {rescue} instead" in err and "Traceback" not in err
    monkeypatch.undo()
    assert (out / "weights.pt").read_bytes() == before and Tagger.load(out)
    assert Tagger.load(rescue).tag(["Mary lives in Paris ."])


def test_a_tagger_that_no_folder_takes_is_reported_lost(trained, corpus, tmp_path, capsys, monkeypatch):
    _files(tmp_path, corpus)
    monkeypatch.setattr(ner_cli, "fallback_folders", lambda: [tmp_path / "rescue"])
    _fail_writes_under(monkeypatch, "model")
    _fail_writes_under(monkeypatch, "rescue")
    assert run_ner(_train_args(tmp_path, tmp_path / "model")) == 1
    err = capsys.readouterr().err
    assert f"saving to {tmp_path / 'rescue'} failed too: the trained tagger is lost" in err


@pytest.mark.parametrize("limit", ["disk", "ulimit -f"])
def test_cli_checks_the_room_for_the_tagger_before_training(corpus, tmp_path, capsys, monkeypatch, limit):
    """Re-probe row 1: a full disk or a file size limit was found only at the save."""
    _files(tmp_path, corpus)
    monkeypatch.setattr(ner_cli, "train_tagger", lambda *a, **k: pytest.fail("trained"))
    if limit == "disk":
        monkeypatch.setattr(ner_cli.shutil, "disk_usage", lambda path: SimpleNamespace(free=1000))
        message = r"--out .*model: .* has 0\.0 MiB free, but the tagger needs about \d+\.\d MiB"
    else:
        fake = SimpleNamespace(RLIMIT_FSIZE=1, RLIM_INFINITY=-1, getrlimit=lambda which: (1000, 1000))
        monkeypatch.setattr(ner_cli, "resource", fake)
        message = r"the file size limit \(ulimit -f\) is 1,000 bytes, but the tagger's weights take about"
    assert run_ner(_train_args(tmp_path, tmp_path / "model")) == 1
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.splitlines()) == 1 and not (tmp_path / "model").exists()


def test_the_room_estimate_covers_the_saved_files(trained, corpus, tmp_path):
    tagger, _ = trained
    tagger.save(tmp_path / "model")
    total, largest = ner_cli._saved_size(tagger.model.config, corpus)
    on_disk = [(tmp_path / "model" / name).stat().st_size for name in tagger_files.SAVED_FILES]
    assert sum(on_disk) <= total and max(on_disk) <= largest


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_final_save_waits_for_it_then_stops(corpus, tmp_path, capsys, monkeypatch,
                                                                signal_number):
    """Re-probe row 3: a signal that arrived during the save was discarded."""
    _files(tmp_path, corpus)
    real_write = Path.write_bytes

    def write_then_signal(self, data):
        if self.name == "weights.pt":
            os.kill(os.getpid(), signal_number)
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_then_signal)
    out = tmp_path / "model"
    assert run_ner(_train_args(tmp_path, out)) == 128 + signal_number
    captured = capsys.readouterr()
    assert f"saved the tagger to {out}" in captured.out and "entity F1" not in captured.out
    assert f"stopped by {signal.Signals(signal_number).name} after the tagger was saved" in captured.err
    monkeypatch.undo()
    assert Tagger.load(out).tag(["Mary lives in Paris ."])


def test_save_holds_signals_until_the_files_are_whole(trained, tmp_path, monkeypatch, request):
    tagger, _ = trained
    real_write, seen = Path.write_bytes, []
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever an earlier test left
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def write_then_interrupt(self, data):
        if self.name == "config.json":
            os.kill(os.getpid(), signal.SIGINT)
            seen.append("written after the signal")
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        tagger.save(tmp_path / "model")
    monkeypatch.undo()
    assert seen and Tagger.load(tmp_path / "model").tag(["Mary lives ."])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_leftovers_of_a_killed_save_are_named_at_load_and_removed_at_save(trained, tmp_path):
    """Re-probe row 3: kill -9 during a save left a .part folder for ever."""
    tagger, _ = trained
    model = tmp_path / "model"
    tagger.save(model)
    staging = tmp_path / ".model.ab12cd_9.part"
    staging.mkdir()
    (staging / "weights.pt").write_bytes(b"half")
    with pytest.warns(UserWarning, match=rf"{re.escape(str(staging))} was left by an interrupted save"):
        Tagger.load(model)
    tagger.save(model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    old = tmp_path / ".model.zz99yy88.old"
    model.rename(old)  # killed between the two renames of the swap
    with pytest.raises(FileNotFoundError, match=rf"left the previous tagger in {re.escape(str(old))}: rename it"):
        Tagger.load(model)


def _vouch(model: Path) -> None:
    """Rewrite the manifest so that it matches the files as they are now."""
    files = {name: (model / name).read_bytes() for name in tagger_files.SAVED_FILES if name != tagger_files.MANIFEST}
    (model / tagger_files.MANIFEST).write_text(tagger_files.manifest_text(files))


@pytest.mark.parametrize("name, content, message", [
    ("weights.pt", b"\x80\x04K\x05.", r"weights\.pt is not a file torch\.save writes \(expected a zip archive"),
    ("weights.pt", b"PK\x03\x04" + bytes(4 * 2**20), r"weights\.pt is 4,194,308 bytes, more than the [\d,]+ this file"),
    ("config.json", b"[" * 100_000 + b"]" * 100_000, r"config\.json is not the config Tagger\.save writes \(RecursionError"),
    ("vocabularies.json", b'{"words": 1, "chars": 2, "tags": 3, "lowercase": true}',
     r"vocabularies\.json is not the vocabularies Tagger\.save writes \(TypeError"),
    ("vocabularies.json", b'"words"', r"vocabularies\.json is not the vocabularies Tagger\.save writes"),
    ("config.json", b'{"scheme": ["BIO"]}', r"config\.json is not the config Tagger\.save writes \(ValueError"),
])
def test_hostile_files_that_match_their_manifest_are_clear_errors(trained, tmp_path, name, content, message):
    """Re-probe rows 4 and 5 (NK05, NK06, NM07): a huge or non-torch weights.pt, deeply nested or
    mistyped JSON gave MemoryError, pickle, AttributeError or RecursionError tracebacks."""
    model = tmp_path / "model"
    trained[0].save(model)
    (model / name).write_bytes(content)
    _vouch(model)
    with pytest.raises(ValueError, match=message):
        Tagger.load(model)


@pytest.mark.parametrize("manifest", ["{not json", '{"sha256": {}}', "[1]", '{"sha256": {"config.json": 5}}'])
def test_a_corrupt_manifest_is_named_not_config_json(trained, tmp_path, manifest):
    """Re-probe NL02: a corrupt manifest was blamed on config.json."""
    model = tmp_path / "model"
    trained[0].save(model)
    (model / tagger_files.MANIFEST).write_text(manifest)
    with pytest.raises(ValueError, match=r"manifest\.json does not match the manifest Tagger\.save writes") as error:
        Tagger.load(model)
    assert "config.json" not in str(error.value).split("expected")[0]


def test_a_changed_file_shows_both_full_hashes(trained, tmp_path):
    """Re-probe NK03: two hashes that looked identical in the message."""
    model = tmp_path / "model"
    trained[0].save(model)
    recorded = json.loads((model / tagger_files.MANIFEST).read_text())["sha256"]["config.json"]
    (model / "config.json").write_bytes((model / "config.json").read_bytes() + b" ")
    actual = hashlib.sha256((model / "config.json").read_bytes()).hexdigest()
    with pytest.raises(ValueError, match=rf"config\.json does not match manifest\.json .* the file has {actual}, "
                                         rf"the manifest records {recorded} \(from digit \d+ on\)"):
        Tagger.load(model)


@pytest.mark.parametrize("call, error, message", [
    (lambda t: entity_scores("B-PER", "B-PER"), TypeError, r"gold: expected a list of sentences"),
    (lambda t: entity_scores([["B-PER"]], ["B-PER"]), TypeError, r"predicted, sentence 0: expected a list of tags"),
    (lambda t: entity_scores([["B-PER"]], [[float("nan")]]), TypeError, r"predicted, sentence 0: .* got list \[nan\]"),
    (lambda t: entity_report([[None]], [["O"]]), TypeError, r"gold, sentence 0"),
    (lambda t: invalid_sequences("O O", "BIO"), TypeError, r"tag_lists: expected a list of sentences"),
    (lambda t: t.predict([["Mary"]], batch_size=float("nan")), ValueError, r"batch_size must be a positive int"),
    (lambda t: t.vocabularies.encode(["Mary", float("nan")]), TypeError, r"sentence 0: expected a string or a list"),
    (lambda t: t.vocabularies.encode(["Mary"], ["B-PER", "O"]), TypeError, r"expected 1 tags"),
    (lambda t: collate([]), ValueError, r"expected at least one encoded sentence"),
])
def test_bad_arguments_to_the_public_functions_are_clear_errors(trained, call, error, message):
    """Re-probe row 7: string arguments and NaN went through to cryptic errors or wrong scores."""
    with pytest.raises(error, match=message):
        call(trained[0])


def test_epochs_make_training_reproducible(corpus):
    runs = [train_tagger(corpus, corpus, config=TaggerConfig(**SMALL), epochs=2, batch_size=8, seed=3,
                         verbose=False) for _ in range(2)]
    assert runs[0][1].drop(columns="seconds").equals(runs[1][1].drop(columns="seconds"))
    for a, b in zip(runs[0][0].model.state_dict().values(), runs[1][0].model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_run_that_diverges_hands_over_the_best_tagger_so_far(corpus, monkeypatch):
    """Probe: a NaN in the weights after the first epoch used to lose the trained tagger."""
    real_step, steps = torch.optim.Adam.step, []

    def step_then_diverge(self, *args, **kwargs):
        result = real_step(self, *args, **kwargs)
        steps.append(1)
        if len(steps) > 4:  # 27 sentences in batches of 8: the second epoch
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", step_then_diverge)
    with pytest.raises(TrainingInterrupted, match="training stopped by ValueError: .*NaN.*holds the best") as stop:
        train_tagger(corpus, corpus, config=TaggerConfig(**SMALL), epochs=3, batch_size=8, verbose=False)
    assert isinstance(stop.value.error, ValueError) and stop.value.__cause__ is stop.value.error
    assert list(stop.value.history["epoch"]) == [1.0]
    assert all(torch.isfinite(p).all() for p in stop.value.tagger.model.parameters())
    assert not stop.value.tagger.model.training


# --- pre-trained embeddings -------------------------------------------------------------------

def test_embeddings_start_the_words_of_the_vocabulary(corpus, tmp_path, capsys):
    lines = ["paris " + " ".join(["0.5"] * 16), "John " + " ".join(["-1"] * 16),
             "paris " + " ".join(["9"] * 16), "unseen " + " ".join(["2"] * 16), ""]
    (tmp_path / "vectors.txt").write_text("\n".join(lines), encoding="utf-8")
    tagger, _ = train_tagger(corpus, corpus, config=TaggerConfig(**SMALL), epochs=1, lr=1e-9,
                             embeddings=tmp_path / "vectors.txt", verbose=True)
    assert "2 of " in capsys.readouterr().out
    words, weight = tagger.vocabularies.words, tagger.model.word_embedding.weight
    torch.testing.assert_close(weight[words.stoi["paris"]], torch.full((16,), 0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(weight[words.stoi["john"]], torch.full((16,), -1.0), atol=1e-5, rtol=0)


@pytest.mark.parametrize("text, message", [
    ("", r"holds no vectors: expected lines of a word and 16 numbers"),
    ("\n\n", r"holds no vectors"),
    ("paris 1 2 3\n", r"line 1: expected a word and 16 numbers .*got 3 values"),
    ("paris " + " ".join(["1"] * 16) + "\nlyon " + " ".join(["1"] * 15) + " x\n", r"line 2: expected 16 numbers"),
    ("paris " + " ".join(["nan"] * 16) + "\n", r"line 1: expected finite numbers"),
])
def test_malformed_embeddings_are_clear_errors(corpus, tmp_path, text, message):
    (tmp_path / "vectors.txt").write_text(text, encoding="utf-8")
    vocabularies = ner.Vocabularies.from_sentences(corpus.sentences)
    with pytest.raises(ValueError, match=r"vectors\.txt:? " + message if "line" not in message
                       else r"vectors\.txt " + message):
        ner.read_embeddings(tmp_path / "vectors.txt", vocabularies, 16)


def test_ner_cli_registers_one_subcommand_that_runs():
    import argparse

    parser = argparse.ArgumentParser()
    ner_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["ner", "tag", "--model", "m", "x"])
    assert callable(args.run) and args.model == "m"
    assert parser.parse_args(["ner", "train", "--train", "a", "--dev", "b", "--out", "c", "--epochs", "3"]).epochs == 3
