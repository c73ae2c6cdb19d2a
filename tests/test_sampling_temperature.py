"""`text.sample`'s temperature, as a property of the draws rather than a golden string."""

import math
from collections import Counter

import torch
from torch import nn

from course_utils.text import sample
from course_utils.vocab import Vocab

LOGITS = torch.tensor([2.0, 1.0, 0.0, -1.0])  # the stub's next-character scores for "abcd"


class FixedLogits(nn.Module):
    """A language model that always predicts LOGITS: (B, L) ids -> (B, L, 4) logits."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, ids, state=None):
        return LOGITS.expand(*ids.shape, 4), state


def frequencies(temperature: float, length: int = 4000) -> torch.Tensor:
    text = sample(FixedLogits(), Vocab.from_text("abcd"), "a", length, temperature=temperature, seed=1)[1:]
    counts = Counter(text)
    return torch.tensor([counts[c] for c in "abcd"], dtype=torch.float64) / length


def test_draws_follow_softmax_of_logits_over_temperature():
    for temperature in (0.5, 1.0, 3.0):
        expected = torch.softmax(LOGITS.double() / temperature, 0)
        got = frequencies(temperature)
        assert (got - expected).abs().max() < 4 * math.sqrt(0.25 / 4000), (temperature, got, expected)


def test_lower_temperature_means_less_varied_text():
    def entropy(p):
        return -(p[p > 0] * p[p > 0].log()).sum().item()
    entropies = [entropy(frequencies(t)) for t in (0.25, 1.0, 4.0)]
    assert entropies[0] < entropies[1] < entropies[2]
