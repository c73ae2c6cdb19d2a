"""Lesson 05's control for the CRF's gain: a softmax tagger decoded under its scheme's constraints."""

import pytest
import torch

from course_utils.ner import (BiLSTMTagger, Tagger, TaggerConfig, Vocabularies, constrained_softmax_predict,
                              invalid_sequences)
from course_utils.ner_data import Sentence

SMALL = dict(word_dim=8, char_dim=4, char_filters=6, hidden_size=5, casing_dim=3)
SENTENCES = [Sentence(["Ann", "Lee", "met", "Bob", "in", "New", "York"],
                      ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC", "I-LOC"]),
             Sentence(["Paris", "is", "big"], ["B-LOC", "O", "O"]),
             Sentence(["Tom"], ["B-PER"])]


def _tagger(use_crf: bool, seed: int = 0) -> Tagger:
    vocabularies = Vocabularies.from_sentences(SENTENCES)
    torch.manual_seed(seed)
    config = TaggerConfig(**SMALL, use_crf=use_crf, scheme="BIO")
    model = BiLSTMTagger(config, len(vocabularies.words), len(vocabularies.chars), vocabularies.tags.itos)
    return Tagger(model, vocabularies)


def test_constrained_decoding_of_an_untrained_softmax_tagger_is_never_invalid():
    tokens = [s.tokens for s in SENTENCES] + [["New", "words", "here", "Ann"]]
    for seed in range(5):
        tagger = _tagger(False, seed)
        constrained = constrained_softmax_predict(tagger, tokens, batch_size=2)
        assert [len(t) for t in constrained] == [len(t) for t in tokens]
        assert invalid_sequences(constrained, "BIO") == 0


def test_constrained_decoding_keeps_a_valid_argmax():
    """Where the token-wise argmax is already valid everywhere, the ban changes nothing: with every allowed
    transition scored 0, Viterbi's best path is the argmax path."""
    tagger = _tagger(False)
    tokens = [s.tokens for s in SENTENCES]
    argmax, constrained = tagger.predict(tokens), constrained_softmax_predict(tagger, tokens)
    for free, banned in zip(argmax, constrained):
        if invalid_sequences([free], "BIO") == 0:
            assert free == banned


def test_constrained_decoding_refuses_a_crf_tagger():
    with pytest.raises(ValueError, match="softmax tagger"):
        constrained_softmax_predict(_tagger(True), [["Ann"]])
