"""Tests for course_utils.ner_data: the corpus reader, tag schemes and vocabularies."""

import itertools

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from course_utils.data import fetch
from course_utils.ner_data import (
    Corpus,
    Sentence,
    Vocab,
    build_char_vocab,
    build_tag_vocab,
    build_vocab,
    convert_tags,
    detect_scheme,
    read_conll,
    spans_to_tags,
    tag_violations,
    tags_to_spans,
)

# --- the real corpora ---------------------------------------------------------------------
# Expected numbers from /work/shared/data/{conll2003,resume_ner}/PROVENANCE.md.
EXPECTED = {
    ("conll2003", "eng.train"): (14041, 203621, {"I-PER": 11128, "B-MISC": 37, "O": 169578}),
    ("conll2003", "eng.testa"): (3250, 51362, {"I-ORG": 2092, "B-MISC": 4, "B-LOC": 0}),
    ("conll2003", "eng.testb"): (3453, 46435, {"I-LOC": 1919, "B-ORG": 5, "O": 38323}),
    ("resume_ner", "train.char.bmes"): (3821, 124099, {"M-ORG": 33808, "S-ORG": 1, "M-RACE": 6}),
    ("resume_ner", "dev.char.bmes"): (463, 13890, {"B-TITLE": 690, "S-RACE": 1, "O": 5446}),
    ("resume_ner", "test.char.bmes"): (477, 15100, {"E-EDU": 112, "M-LOC": 21, "S-NAME": 0}),
}


@pytest.fixture(scope="module")
def corpora() -> dict[tuple[str, str], Corpus]:
    """Every real file, read once for the whole module."""
    paths = {name: fetch(name) for name in ("conll2003", "resume_ner")}
    return {(name, file): read_conll(paths[name][file]) for name, file in EXPECTED}


@pytest.mark.parametrize("key", list(EXPECTED), ids=[file for _, file in EXPECTED])
def test_real_corpus_counts(corpora, key):
    sentences, tokens, tag_counts = EXPECTED[key]
    corpus = corpora[key]
    assert len(corpus) == sentences
    assert corpus.num_tokens == tokens
    counts = corpus.tag_counts()
    for tag, count in tag_counts.items():
        assert counts[tag] == count, tag
    assert not any(token == "-DOCSTART-" for sentence in corpus for token in sentence.tokens)
    # Token i of a sentence is on line `line + i`: the sentences start on increasing lines.
    lines = [sentence.line for sentence in corpus]
    assert lines == sorted(set(lines)) and lines[0] >= 1


@pytest.mark.parametrize("key", list(EXPECTED), ids=[file for _, file in EXPECTED])
def test_real_corpus_scheme(corpora, key):
    expected = "IOB1" if key[0] == "conll2003" else "BMES"
    assert corpora[key].scheme == expected
    assert detect_scheme([sentence.tags for sentence in corpora[key]]) == expected


def test_real_corpus_first_tokens(corpora):
    first = corpora["conll2003", "eng.train"][0]
    assert first.tokens[:3] == ["EU", "rejects", "German"]
    assert first.tags[:3] == ["I-ORG", "O", "I-MISC"]
    assert first.line == 3  # after the -DOCSTART- line and its blank line
    assert corpora["resume_ner", "train.char.bmes"][0].tags[:2] == ["B-NAME", "E-NAME"]


def _lines_with_violations(corpus: Corpus) -> list[int]:
    return [s.line + i for s in corpus for i, _ in tag_violations(s.tags, corpus.scheme)]


def _sentences_holding(corpus: Corpus, lines: tuple[int, ...]) -> list[int]:
    """The first lines of the sentences that hold any of `lines`."""
    return [s.line for s in corpus if any(s.line <= n < s.line + len(s) for n in lines)]


def test_real_corpus_anomalies(corpora):
    assert _lines_with_violations(corpora["conll2003", "eng.train"]) == [152428, 175436]
    assert _lines_with_violations(corpora["resume_ner", "train.char.bmes"]) == [
        62390, 62392, 64412, 64414]
    for key in EXPECTED:
        if key not in {("conll2003", "eng.train"), ("resume_ner", "train.char.bmes")}:
            assert _lines_with_violations(corpora[key]) == []


@pytest.mark.parametrize("name, file, line", [
    ("conll2003", "eng.train", 152428), ("resume_ner", "train.char.bmes", 62390)])
def test_real_corpus_strict_mode_reports_first_anomaly(name, file, line):
    with pytest.raises(ValueError, match=rf"{file} line {line}: invalid (IOB1|BMES) transition"):
        read_conll(fetch(name)[file], strict=True)


def _seqeval_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """Spans as seqeval (an independent implementation) reads them, end made exclusive."""
    return [(type_, start, end + 1) for type_, start, end in get_entities(tags)]


def test_conll_iob1_to_bio_keeps_the_entities(corpora):
    iob1 = corpora["conll2003", "eng.train"]
    bio = iob1.convert("BIO")
    assert bio.scheme == "BIO"
    assert detect_scheme([s.tags for s in bio]) == "BIO"
    assert _lines_with_violations(bio) == []
    # In IOB1 a token starts an entity if it is B-, or I- not continuing the same type.
    starts = 0
    for sentence in iob1:
        for previous, tag in zip(["O", *sentence.tags], sentence.tags):
            starts += tag.startswith("B-") or (tag.startswith("I-") and previous[2:] != tag[2:])
    assert starts == sum(tag.startswith("B-") for s in bio for tag in s.tags)
    for old, new in zip(iob1, bio):
        assert new.tokens == old.tokens and new.line == old.line
        assert tags_to_spans(new.tags, "BIO") == tags_to_spans(old.tags, "IOB1")
        assert tags_to_spans(new.tags, "BIO") == _seqeval_spans(new.tags)
    # Back to IOB1 changes exactly the two sentences with B-MISC after O (now I-MISC).
    changed = [old.line for old, new in zip(iob1, bio.convert("IOB1")) if new.tags != old.tags]
    assert changed == _sentences_holding(iob1, (152428, 175436)) and len(changed) == 2


@pytest.mark.parametrize("key", [("conll2003", "eng.testb"), ("resume_ner", "train.char.bmes")])
def test_bio_bioes_round_trip_on_real_corpus(corpora, key):
    bio = corpora[key].convert("BIO")
    bioes = bio.convert("BIOES")
    assert _lines_with_violations(bio) == [] and _lines_with_violations(bioes) == []
    assert detect_scheme([s.tags for s in bioes]) == "BIOES"
    assert [s.tags for s in bioes.convert("BIO")] == [s.tags for s in bio]
    for sentence in bioes:
        assert tags_to_spans(sentence.tags, "BIOES") == _seqeval_spans(sentence.tags)


def test_resume_bmes_repairs(corpora):
    bmes = corpora["resume_ner", "train.char.bmes"]
    bioes = bmes.convert("BIOES")
    by_line = {s.line: s for s in bioes}
    for sentence in bmes:
        if sentence.tags[-1] == "M-ORG":  # broken at "。" inside a name: the entity ends there
            assert by_line[sentence.line].tags[-1] == "E-ORG"
        if sentence.tags[0] == "M-ORG":  # and the rest of the name is a new entity
            assert by_line[sentence.line].tags[0] == "B-ORG"
    # Elsewhere BMES -> BIOES only renames M- to I-.
    changed = [s.line for s, t in zip(bmes, bioes)
               if [tag.replace("M-", "I-") for tag in s.tags] != t.tags]
    assert changed == _sentences_holding(bmes, (62390, 62392, 64412, 64414))
    assert len(changed) == 4


# --- small hand-written files -------------------------------------------------------------
def _write(tmp_path, text: str, name: str = "tiny.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_tabs_spaces_and_many_columns(tmp_path):
    text = "EU\tNNP  I-NP\tI-ORG\nrejects VBZ I-VP O\n  German \t JJ I-NP I-MISC \n"
    path = _write(tmp_path, text)
    corpus = read_conll(path)
    assert len(corpus) == 1
    assert corpus[0].tokens == ["EU", "rejects", "German"]
    assert corpus[0].tags == ["I-ORG", "O", "I-MISC"]
    assert corpus[0].line == 1


def test_whitespace_only_and_repeated_blank_lines(tmp_path):
    path = _write(tmp_path, "\n\na B-PER\n\t\nb O\n   \n \t \n\nc S-LOC\r\nd O\r\n\n\n")
    corpus = read_conll(path)
    assert [s.tokens for s in corpus] == [["a"], ["b"], ["c", "d"]]
    assert [s.line for s in corpus] == [3, 5, 9]
    assert corpus[2].tags == ["S-LOC", "O"]  # the \r of CRLF line endings is not part of the tag


def test_docstart_lines_are_skipped(tmp_path):
    text = ("-DOCSTART- -X- O O\n\nPeter NNP I-NP I-PER\n\n"
            "-DOCSTART- -X- -X- O\n\nParis NNP I-NP I-LOC\n-DOCSTART-\nRome NNP I-NP I-LOC\n")
    corpus = read_conll(_write(tmp_path, text))
    assert [s.tokens for s in corpus] == [["Peter"], ["Paris"], ["Rome"]]
    assert corpus.num_tokens == 3


def test_no_final_newline_and_byte_order_mark(tmp_path):
    corpus = read_conll(_write(tmp_path, "\ufeff张 B-NAME\n三 E-NAME\n\n是 O\n人 O"))
    assert [s.tokens for s in corpus] == [["张", "三"], ["是", "人"]]
    assert corpus.scheme == "BIOES"  # only B-, E-, S-: BIOES and BMES read the same
    assert read_conll(_write(tmp_path, "x O"))[0].tokens == ["x"]


def test_token_may_be_non_ascii_whitespace(tmp_path):
    # Only spaces and tabs separate columns: an ideographic space is a token.
    corpus = read_conll(_write(tmp_path, "\u3000 O\nа\u00a0б O\n"))
    assert corpus[0].tokens == ["\u3000", "а\u00a0б"]


def test_one_column_line_is_an_error(tmp_path):
    path = _write(tmp_path, "EU B-ORG\nrejects O\n\nGerman\ncall O\n", name="bad.txt")
    with pytest.raises(ValueError, match=r"bad\.txt line 4: expected at least 2 columns "
                                         r"\(token and tag\), got 1: 'German'"):
        read_conll(path)


@pytest.mark.parametrize("tag, scheme", [("B_PER", "auto"), ("X-PER", "auto"), ("B-", "auto"),
                                         ("E-PER", "BIO"), ("M-PER", "BIOES"), ("I-PER", "BMES")])
def test_unknown_tag_is_an_error(tmp_path, tag, scheme):
    path = _write(tmp_path, f"a O\n\nb B-PER\nc {tag}\n", name="tags.txt")
    with pytest.raises(ValueError, match=rf"tags\.txt line 4: unknown tag '{tag}'"):
        read_conll(path, scheme=scheme)


def test_mixed_schemes_cannot_be_detected(tmp_path):
    path = _write(tmp_path, "a B-PER\nb I-PER\n\nc B-ORG\nd M-ORG\ne E-ORG\n", name="mixed.txt")
    with pytest.raises(ValueError, match=r"mixed\.txt: cannot detect the tag scheme: .*I- .*M-"):
        read_conll(path)


def test_invalid_utf8_is_an_error(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("a O\nb O\n\ncaf\u00e9 B-LOC\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt line 4: not valid UTF-8"):
        read_conll(path)


def test_strict_mode_rejects_i_after_o(tmp_path):
    path = _write(tmp_path, "The O\nEU B-ORG\n\nsaid O\nGerman I-MISC\nbeef O\n", name="s.txt")
    with pytest.raises(ValueError, match=r"s\.txt line 5: invalid BIO transition: 'I-MISC' "
                                         r"after 'O'"):
        read_conll(path, scheme="IOB2", strict=True)


def test_non_strict_mode_keeps_or_repairs(tmp_path):
    path = _write(tmp_path, "The O\nEU B-ORG\n\nsaid O\nGerman I-MISC\nbeef O\n")
    kept = read_conll(path, scheme="BIO")
    assert kept.scheme == "BIO" and kept[1].tags == ["O", "I-MISC", "O"]
    repaired = read_conll(path, scheme="BIO", target_scheme="BIO")
    assert repaired[1].tags == ["O", "B-MISC", "O"]
    assert read_conll(path, scheme="BIO", target_scheme="BIOES")[1].tags == ["O", "S-MISC", "O"]


def test_unknown_scheme_name(tmp_path):
    path = _write(tmp_path, "a O\n")
    with pytest.raises(ValueError, match="unknown tag scheme 'BILOU'"):
        read_conll(path, scheme="BILOU")
    with pytest.raises(ValueError, match="unknown tag scheme 'IOB3'"):
        read_conll(path, target_scheme="IOB3")


# --- tag schemes --------------------------------------------------------------------------
# "Alex Smith visited New York City . Ann Lee" with two adjacent PER entities at the end.
SPANS = [("PER", 0, 2), ("LOC", 3, 6), ("PER", 7, 8), ("PER", 8, 9)]
TAGS = {
    "IOB1": ["I-PER", "I-PER", "O", "I-LOC", "I-LOC", "I-LOC", "O", "I-PER", "B-PER"],
    "BIO": ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-PER", "B-PER"],
    "BIOES": ["B-PER", "E-PER", "O", "B-LOC", "I-LOC", "E-LOC", "O", "S-PER", "S-PER"],
    "BMES": ["B-PER", "E-PER", "O", "B-LOC", "M-LOC", "E-LOC", "O", "S-PER", "S-PER"],
}


@pytest.mark.parametrize("scheme", list(TAGS))
def test_spans_both_ways(scheme):
    assert tags_to_spans(TAGS[scheme], scheme) == SPANS
    assert spans_to_tags(SPANS, 9, scheme) == TAGS[scheme]
    assert tag_violations(TAGS[scheme], scheme) == []


@pytest.mark.parametrize("source, target", list(itertools.permutations(TAGS, 2)))
def test_convert_between_every_pair(source, target):
    assert convert_tags(TAGS[source], source, target) == TAGS[target]
    assert convert_tags(TAGS[target], target, source) == TAGS[source]


def test_scheme_names_are_case_insensitive_with_iob2_alias():
    assert convert_tags(TAGS["IOB1"], "iob1", "IOB2") == TAGS["BIO"]
    with pytest.raises(ValueError, match="unknown tag scheme 'IOBES2'"):
        convert_tags(TAGS["BIO"], "BIO", "IOBES2")


@pytest.mark.parametrize("tags, scheme, spans", [
    (["O", "I-PER", "I-PER"], "BIO", [("PER", 1, 3)]),                      # I- starts an entity
    (["B-PER", "I-LOC"], "BIO", [("PER", 0, 1), ("LOC", 1, 2)]),            # type change
    (["B-MISC", "I-MISC", "O"], "IOB1", [("MISC", 0, 2)]),                  # B- after O
    (["M-ORG", "E-ORG", "O", "B-ORG", "M-ORG"], "BMES", [("ORG", 0, 2), ("ORG", 3, 5)]),
    (["B-LOC", "O", "E-LOC"], "BIOES", [("LOC", 0, 1), ("LOC", 2, 3)]),      # no E-, lone E-
    (["B-LOC", "B-LOC", "S-PER", "I-PER"], "BIOES",
     [("LOC", 0, 1), ("LOC", 1, 2), ("PER", 2, 3), ("PER", 3, 4)]),
    ([], "BIO", []),
])
def test_lenient_reading_of_invalid_tags(tags, scheme, spans):
    assert tags_to_spans(tags, scheme) == spans
    assert (tag_violations(tags, scheme) == []) == (tags == [])  # all but [] are invalid


@pytest.mark.parametrize("tags, scheme, positions", [
    (["O", "I-PER"], "BIO", [1]),
    (["I-PER", "I-PER"], "BIO", [0]),
    (["I-PER", "B-PER", "O", "B-LOC"], "IOB1", [3]),
    (["B-PER", "O", "S-LOC", "E-LOC"], "BIOES", [1, 3]),
    (["B-ORG", "M-ORG"], "BMES", [1]),
    (["M-ORG", "E-ORG"], "BMES", [0]),
])
def test_tag_violations(tags, scheme, positions):
    assert [position for position, _ in tag_violations(tags, scheme)] == positions


def test_detect_scheme_small_cases():
    assert detect_scheme([["O", "I-PER", "O"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-PER"], ["O"]]) == "BIO"
    assert detect_scheme([["B-PER"], ["I-PER", "O"]]) == "IOB1"  # sentences are separate
    assert detect_scheme([["S-PER", "B-LOC", "I-LOC", "E-LOC"]]) == "BIOES"
    assert detect_scheme([["B-LOC", "M-LOC", "E-LOC"]]) == "BMES"
    assert detect_scheme([["O", "O"]]) == "BIO"
    with pytest.raises(TypeError, match="list of tag sequences"):
        detect_scheme("B-PER")
    with pytest.raises(TypeError, match="list of tag strings"):
        detect_scheme(["B-PER", "O"])
    with pytest.raises(ValueError, match="sentence 1, token 0: unknown tag 'PER'"):
        detect_scheme([["O"], ["PER"]])
    for empty in ([], [[]], [[], []]):  # probe: an empty corpus was reported as "BIO"
        with pytest.raises(ValueError, match="expected at least one tag .*got no tags"):
            detect_scheme(empty)


def test_bad_spans_and_tags_are_errors():
    with pytest.raises(ValueError, match="overlaps"):
        spans_to_tags([("PER", 0, 2), ("LOC", 1, 3)], 4, "BIO")
    with pytest.raises(ValueError, match="invalid span"):
        spans_to_tags([("PER", 2, 5)], 4, "BIO")
    with pytest.raises(ValueError, match="invalid span"):
        spans_to_tags([("PER", 2, 2)], 4, "BIO")
    with pytest.raises(ValueError, match="token 1: unknown tag 'E-PER'"):
        tags_to_spans(["B-PER", "E-PER"], "BIO")
    with pytest.raises(TypeError, match="list of tag strings"):
        tags_to_spans("B-PER", "BIO")
    with pytest.raises(ValueError, match="2 tokens and 1 tags"):
        Sentence(["a", "b"], ["O"])


# --- vocabularies -------------------------------------------------------------------------
def test_build_vocab_order_and_min_count():
    vocab = build_vocab(["b", "a", "c", "a", "b", "a", "d", "<pad>"], min_count=1)
    assert vocab.itos == ["<pad>", "<unk>", "a", "b", "c", "d"]  # ties in order of appearance
    assert vocab.stoi == {item: i for i, item in enumerate(vocab.itos)}
    assert len(vocab) == 6 and "a" in vocab and "z" not in vocab
    assert (vocab.pad_index, vocab.unk_index) == (0, 1)
    rare_dropped = build_vocab(["b", "a", "c", "a", "b", "a"], min_count=2)
    assert rare_dropped.itos == ["<pad>", "<unk>", "a", "b"]
    assert rare_dropped.encode(["a", "c", "b", "zzz"]) == [2, 1, 3, 1]


def test_vocab_encode_decode():
    vocab = build_vocab("the cat sat on the mat".split())
    ids = vocab.encode(["the", "dog", "mat"])
    assert vocab.decode(ids) == ["the", "<unk>", "mat"]
    assert vocab.decode(torch.tensor(ids)) == ["the", "<unk>", "mat"]
    with pytest.raises(ValueError, match="id 99 is out of range for a vocabulary of 7"):
        vocab.decode([0, 99])
    with pytest.raises(TypeError, match="got the string 'the'"):
        vocab.encode("the")


def test_vocab_without_specials():
    vocab = build_vocab(["x", "y", "x"], specials=())
    assert vocab.itos == ["x", "y"]
    assert vocab.encode(["y", "x"]) == [1, 0]
    with pytest.raises(ValueError, match="'z' is not in the vocabulary, which has no '<unk>'"):
        vocab.encode(["z"])
    with pytest.raises(ValueError, match="no '<pad>'"):
        vocab.pad_index
    with pytest.raises(ValueError, match="no '<unk>'"):
        build_vocab(["x"], specials=("<pad>",)).unk_index


def test_vocab_bad_arguments():
    with pytest.raises(ValueError, match="min_count"):
        build_vocab(["a"], min_count=0)
    with pytest.raises(TypeError, match="single string"):
        build_vocab("abc")
    with pytest.raises(ValueError, match="duplicates"):
        build_vocab(["a"], specials=("<pad>", "<pad>"))
    with pytest.raises(ValueError, match="duplicates"):
        Vocab(["a", "b", "a"])


def test_char_vocab(corpora):
    vocab = build_char_vocab(["abc", "cab", "c"])
    assert vocab.itos == ["<pad>", "<unk>", "c", "a", "b"]
    assert vocab.encode(list("cabz")) == [2, 3, 4, 1]
    tokens = [token for sentence in corpora["conll2003", "eng.testa"] for token in sentence.tokens]
    real = build_char_vocab(tokens)
    assert set(real.itos[2:]) == set("".join(tokens))


def test_tag_vocab(corpora):
    vocab = build_tag_vocab([s.tags for s in corpora["conll2003", "eng.train"].convert("BIOES")])
    assert len(vocab) == 1 + 4 * 4
    assert vocab.itos[:5] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    assert vocab.decode(vocab.encode(["O", "S-PER"])) == ["O", "S-PER"]
    with pytest.raises(ValueError, match="'M-PER' is not in the vocabulary"):
        vocab.encode(["M-PER"])
    with pytest.raises(ValueError, match="no '<pad>'"):
        vocab.pad_index
    resume = build_tag_vocab([s.tags for s in corpora["resume_ner", "train.char.bmes"]])
    assert len(resume) == len(corpora["resume_ner", "train.char.bmes"].tag_counts()) == 28


# --- corpora read right or refused (probes R02-R05, R11-R20, S01-S25) ----------------------


LF = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n"


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_every_line_ending_reads_the_same(tmp_path, ending, bom):
    """Probes R02-R04: a CR-only file was read as one token."""
    corpus = read_conll(_write(tmp_path, bom + LF.replace("\n", ending)))
    assert [s.tokens for s in corpus] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert [s.tags for s in corpus][1] == ["B-PER", "I-PER"] and corpus.scheme == "BIO"
    assert [s.line for s in corpus] == [1, 6]


def test_a_stray_cr_ends_a_line_and_is_never_a_token(tmp_path):
    """Probe R05: one stray CR dropped the token German and gave its tag to 'rejects'."""
    corpus = read_conll(_write(tmp_path, "EU B-ORG\nrejects O\rGerman B-MISC\ncall O\n"))
    assert corpus[0].tokens == ["EU", "rejects", "German", "call"]
    assert corpus[0].tags == ["B-ORG", "O", "B-MISC", "O"]
    assert not any("\r" in token for sentence in corpus for token in sentence.tokens)


@pytest.mark.parametrize("text", ["", "\n\n   \n\t\n\n", "-DOCSTART- -X- O O\n\n", "-DOCSTART- O\r\rEU B-ORG"[:13]])
def test_a_file_without_sentences_is_an_error(tmp_path, text):
    """Probes R11, R12 and R03 (a CR-only file behind -DOCSTART- was 0 sentences, silently)."""
    with pytest.raises(ValueError, match=r"empty\.txt: no sentences .*expected lines of a token and its tag"):
        read_conll(_write(tmp_path, text, name="empty.txt"))


def test_a_cr_only_file_behind_docstart_is_read(tmp_path):
    corpus = read_conll(_write(tmp_path, "-DOCSTART- -X- O O\r\rEU NNP B-NP I-ORG\rrejects VBZ B-VP O\r"))
    assert corpus[0].tokens == ["EU", "rejects"] and corpus.scheme == "IOB1"


@pytest.mark.parametrize("tag", ["B-FOO-", "B--", "I-", "B-", "I-PER-", "B-.PER", "B-PER..X", "B-B-PER",
                                 "B-PE R"])
def test_malformed_tags_are_refused_with_file_and_line(tmp_path, tag):
    """Probes R15, R16, R19, S01, S02, S05, S06."""
    path = _write(tmp_path, f"a O\n\nb B-PER\nc {tag}\n", name="tags.txt")
    with pytest.raises(ValueError, match=r"tags\.txt line 4: unknown tag .*expected 'O' or one of"):
        read_conll(path)
    with pytest.raises(ValueError, match="unknown tag"):
        tags_to_spans(["B-PER", tag], "BIO")


@pytest.mark.parametrize("tag", ["B-ORG-CORP", "B-NORP.X", "B-WORK_OF_ART", "B-A1", "B-人名"])
def test_types_with_inner_hyphens_dots_and_underscores_are_read(tmp_path, tag):
    corpus = read_conll(_write(tmp_path, f"a {tag}\nb I-{tag[2:]}\nc O\n"), target_scheme="BIOES")
    assert corpus.scheme == "BIOES" and corpus[0].tags == [f"B-{tag[2:]}", f"E-{tag[2:]}", "O"]


BIO_TEXT = "".join(f"w{k} B-PER\nx{k} I-PER\ny{k} O\nz{k} B-LOC\n\n" for k in range(5))


@pytest.mark.parametrize("typo, message", [
    ("S-LOC", "line 9: the tag 'S-LOC' points to BIOES.*a typo\\?"),
    ("E-PER", "line 9: the tag 'E-PER' points to BIOES.*a typo\\?"),
    ("M-PER", "the tags mix I- .* and M- .*first M- tag in line 9"),
])
def test_one_typo_never_decides_the_scheme(tmp_path, typo, message):
    """Probes R19, R20, S16: one typo switched a BIO corpus to another scheme (and strict mode
    then blamed a valid line)."""
    lines = BIO_TEXT.split("\n")
    lines[8] = f"z1 {typo}"  # line 9
    path = _write(tmp_path, "\n".join(lines), name="typo.txt")
    with pytest.raises(ValueError, match=rf"typo\.txt: cannot detect the tag scheme: {message}"):
        read_conll(path, strict=True)
    assert read_conll(_write(tmp_path, BIO_TEXT)).scheme == "BIO"


def test_one_i_typo_in_a_bio_corpus_is_not_iob1(tmp_path):
    lines = BIO_TEXT.split("\n")
    lines[12] = "y2 I-ORG"  # line 13, an entity starting with I-
    with pytest.raises(ValueError, match=r"line 13: the tag 'I-ORG' points to IOB1"):
        read_conll(_write(tmp_path, "\n".join(lines)))
    with pytest.raises(ValueError, match=r"sentence 0, token 0: the tag 'I-X' points to IOB1"):
        detect_scheme([["I-X", "O", "B-Y"], ["B-Z"]])


@pytest.mark.parametrize("span", [("PER", 0.5, 1), ("PER", 0, 2.0), ("PER", True, 2), ("PER LOC", 0, 1),
                                  ("FOO-", 0, 1), ("", 0, 1)])
def test_bad_spans_are_refused(span):
    """Probes S23, S24, S25."""
    with pytest.raises(ValueError, match="invalid span"):
        spans_to_tags([span], 3, "BIO")


def write_conll(sentences, path):
    """The column file ``read_conll`` reads: "token tag" lines, a blank line after each sentence.

    read_conll drops one byte-order mark at the start of a file, so a first token that begins with one
    gets a second in front."""
    text = "".join("".join(f"{t} {g}\n" for t, g in zip(s.tokens, s.tags)) + "\n" for s in sentences)
    path.write_text("\ufeff" + text if text.startswith("\ufeff") else text, encoding="utf-8", newline="")
    return path


def test_a_first_token_that_begins_with_a_byte_order_mark_survives_the_round_trip(tmp_path):
    """Found by the property below: the reader drops one BOM at the start of a file."""
    corpus = Corpus([Sentence(["\ufeff", "x"], ["O", "O"])], "BIO")
    assert read_conll(write_conll(corpus, tmp_path / "bom.txt"))[0].tokens == ["\ufeff", "x"]


_PIECES = st.sampled_from(["EU", "O", "B-PER", "I-PER", "E-PER", "S-LOC", "M-ORG", "B-FOO-", "-DOCSTART-",
                           "x", "\u3000", "é", "B-", "I-ORG-X"])
_SEPARATORS = st.sampled_from([" ", "\t", "  ", "\n", "\r\n", "\r", "\n\n", "\ufeff"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=60), st.lists(st.one_of(_PIECES, _SEPARATORS), max_size=40).map("".join)))
def test_property_any_text_reads_to_sentences_that_round_trip_or_a_clear_error(tmp_path, text):
    path = tmp_path / "any.txt"
    path.write_text(text, encoding="utf-8", newline="")
    try:
        corpus = read_conll(path)
    except ValueError as error:
        assert str(path) in str(error) and ("expected" in str(error) or "cannot detect" in str(error))
        return
    assert len(corpus) > 0 and all(len(sentence) for sentence in corpus)
    assert not any(c in token for s in corpus for token in s.tokens for c in "\r\n \t")
    again = read_conll(write_conll(corpus, tmp_path / "again.txt"))
    assert [(s.tokens, s.tags) for s in again] == [(s.tokens, s.tags) for s in corpus]
    assert again.scheme == corpus.scheme


# --- re-probe rows deferred from issue 21 ------------------------------------------------------

@pytest.mark.parametrize("invisible", ["\u200b", "\u00ad", "\u202e", "\ufeff"])
def test_invisible_characters_in_a_tag_are_refused(tmp_path, invisible):
    with pytest.raises(ValueError, match=r"line 1: unknown tag .* without invisible"):
        read_conll(_write(tmp_path, f"EU B-PER{invisible}\n"))


def test_cr_cr_lf_is_one_line_end(tmp_path):
    corpus = read_conll(_write(tmp_path, "EU B-ORG\r\r\nrejects O\r\r\n\r\r\nPeter B-PER\r\r\n"))
    assert [s.tokens for s in corpus] == [["EU", "rejects"], ["Peter"]]


@pytest.mark.parametrize("odd", ["\v", "\f", "\u0085", "\u2028", "\u2029", "\x1c", "\x07"])
@pytest.mark.parametrize("where", ["inside a token", "between the columns", "after the tag", "alone on a line"])
def test_control_characters_and_line_separators_are_refused_with_their_line(tmp_path, odd, where):
    """Some tools split there and some do not: read either way, a token would silently change."""
    line = {"inside a token": f"Ger{odd}man B-MISC", "between the columns": f"German{odd}B-MISC",
            "after the tag": f"German B-MISC{odd}", "alone on a line": odd}[where]  # B-MISC\f: probe S05
    with pytest.raises(ValueError, match=rf"line 2: U\+{ord(odd):04X} \(.*\) in the line; expected tokens "
                                         "and tags separated by spaces or tabs, with no control character"):
        read_conll(_write(tmp_path, f"EU B-ORG\n{line}\ncall O\n"))


def test_a_byte_order_mark_inside_the_file_is_refused_with_its_line(tmp_path):
    with pytest.raises(ValueError, match=r"line 3: a byte-order mark \(U\+FEFF\) inside the text"):
        read_conll(_write(tmp_path, "EU O\n\n\ufeff-DOCSTART- -X- O\n"))


def test_invalid_utf8_in_a_cr_file_names_the_right_line(tmp_path):
    path = tmp_path / "cr.txt"
    path.write_bytes(b"a O\rb O\rM\xfcller O\r")
    with pytest.raises(ValueError, match=r"cr\.txt line 3: not valid UTF-8"):
        read_conll(path)


@pytest.mark.parametrize("tokens, tags", [("ab", ["O", "O"]), (["a", "b"], "OO"), (["a", 1], ["O", "O"])])
def test_a_sentence_needs_lists_of_strings(tokens, tags):
    with pytest.raises(TypeError, match="expected (tokens|tags) as a list of strings"):
        Sentence(tokens, tags)
