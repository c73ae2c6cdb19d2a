"""Tests for course_utils.ner (the BiLSTM-CNN-CRF tagger and its saving) and course_utils.ner_train
(its training and CLI)."""

import io
import itertools
import json

import pytest
import torch

from course_utils import ner, ner_train
from course_utils.ner import (
    Batch, BiLSTMTagger, CharCNN, Tagger, TaggerConfig, Vocabularies, casing, collate,
    entity_report, entity_scores, invalid_sequences, normalise_word,
)
from course_utils.ner_train import train_tagger
from course_utils.ner_data import Corpus, Sentence, read_conll, tag_violations

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
        "config.json", "vocabularies.json", "weights.pt"]
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
    status = ner_train.main(["train", "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "dev.txt"),
                       "--test", str(tmp_path / "dev.txt"), "--epochs", "2", "--minutes", "0.5",
                       "--out", str(out), "--threads", "1"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "dev entity F1" in printed and "test entity F1" in printed
    assert (out / "weights.pt").is_file()
    assert ner_train.main(["tag", "--model", str(out), "--scheme", "BIO", "Mary lives in Paris ."]) == 0
    tokens = capsys.readouterr().out.split()
    assert [t.rsplit("/", 1)[0] for t in tokens] == ["Mary", "lives", "in", "Paris", "."]
    assert all(t.rsplit("/", 1)[1] in {"O", "B-PER", "I-PER", "B-LOC", "I-LOC"} for t in tokens)


def test_cli_errors(corpus, tmp_path, capsys):
    write_conll(tmp_path / "train.txt", corpus.sentences)
    train = ["train", "--train", str(tmp_path / "train.txt"), "--dev", str(tmp_path / "train.txt"),
             "--out", str(tmp_path / "m")]
    assert ner_train.main(train) == 1
    assert "--minutes or --epochs" in capsys.readouterr().err
    missing = ["train", "--train", str(tmp_path / "nope.txt"), "--dev", str(tmp_path / "train.txt"),
               "--epochs", "1", "--out", str(tmp_path / "m")]
    assert ner_train.main(missing) == 1
    assert "nope.txt" in capsys.readouterr().err
    (tmp_path / "bad.txt").write_text("word B-XYZ\nonlyonecolumn\n", encoding="utf-8")
    assert ner_train.main(["train", "--train", str(tmp_path / "bad.txt"), "--dev", str(tmp_path / "train.txt"),
                     "--epochs", "1", "--out", str(tmp_path / "m")]) == 1
    assert "line 2" in capsys.readouterr().err
    assert ner_train.main(["tag", "--model", str(tmp_path), "hello"]) == 1
    assert "not a saved tagger" in capsys.readouterr().err
    assert ner_train.main(["frobnicate"]) == 2
    assert ner_train.main(["train", "--scheme"]) == 2


def test_cli_tags_stdin(trained, tmp_path, capsys, monkeypatch):
    tagger, _ = trained
    tagger.save(tmp_path / "model")
    monkeypatch.setattr("sys.stdin", io.StringIO("Mary lives in Paris .\n\nAnn Lee smiled .\n"))
    assert ner_train.main(["tag", "--model", str(tmp_path / "model")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [" ".join(f"{t}/{tag}" for t, tag in pairs)
                     for pairs in tagger.tag(["Mary lives in Paris .", "Ann Lee smiled ."])]
    monkeypatch.setattr("sys.stdin", io.StringIO("  \n"))
    assert ner_train.main(["tag", "--model", str(tmp_path / "model")]) == 1
    assert "no text" in capsys.readouterr().err


def test_load_refuses_foreign_weights(trained, tmp_path):
    tagger, _ = trained
    tagger.save(tmp_path / "model")
    torch.save({"something": torch.zeros(2)}, tmp_path / "model" / "weights.pt")
    with pytest.raises(ValueError, match="does not hold this tagger's weights"):
        Tagger.load(tmp_path / "model")


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
    monkeypatch.setattr(ner_train, "train_tagger", lambda *a, **k: trained.append(1))
    assert ner_train.main(_train_args(tmp_path, out)) == 1
    err = capsys.readouterr().err
    assert f"cannot save a tagger to {out}" in err and "Traceback" not in err
    assert trained == [], "the --out check must come before training"
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("threads", ["0", "-2"])
def test_cli_refuses_non_positive_threads(corpus, tmp_path, capsys, threads):
    write_conll(tmp_path / "train.txt", corpus.sentences)
    assert ner_train.main(_train_args(tmp_path, tmp_path / "m") + ["--threads", threads]) == 1
    assert f"--threads must be a positive number of threads, got {threads}" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_save_over_a_saved_tagger_is_atomic(trained, corpus, tmp_path, monkeypatch):
    tagger, _ = trained
    model = tmp_path / "model"
    tagger.save(model)
    sentences = [s.tokens for s in corpus]
    before = Tagger.load(model).predict(sentences)
    other = Tagger(BiLSTMTagger(TaggerConfig(**SMALL), len(tagger.vocabularies.words),
                                len(tagger.vocabularies.chars), tagger.vocabularies.tags.itos),
                   tagger.vocabularies)

    def half_written(obj, path):  # the disk fills up half-way through the weights
        with open(path, "wb") as file:
            file.write(b"\x80\x02partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ner.torch, "save", half_written)
    with pytest.raises(OSError, match="No space left"):
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
