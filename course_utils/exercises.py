"""Self-checking exercises: ``check("01.conv2d_loops", conv2d_loops)`` in a lesson notebook.

Introduced in lesson 01; the "Exercises" section of every lesson uses it.

An *implement* exercise is one notebook cell: the learner's function, whose
body holds the solution between nbgrader's markers, then the check call::

    def conv2d_loops(x, weight, bias):
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

    check("01.conv2d_loops", conv2d_loops)

``check`` calls the function on the exercise's test cases (shapes and values
drawn from a fixed seed, plus edge cases), compares each answer with a
reference implementation and shows one friendly line: passed, not implemented
yet, or the first failing case with what was expected, what came back and a
hint. Nothing the learner's code raises escapes as a traceback. The result is
also shown under the MIME type ``CHECK_MIME``, for notebook front-ends; the
grader never reads it (``python -m course_utils grade`` runs the learner's
function itself, outside the notebook: course_utils.tooling.sandbox).

Each id is "NN.function", the lesson and the name of the function the learner
writes. Ids renamed to follow that rule (RENAMED) keep working for one release,
with a note in the check's answer.

The references are independent ways of computing the answer (a PyTorch op, a
brute-force search, a formula). A learner's own kernel can reach them, which
matters only to a learner who wants to fool themselves; the grader runs the
learner's code where course_utils cannot be imported.
"""

from __future__ import annotations

import itertools
import numbers
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, NamedTuple

import torch
import torch.nn.functional as F
from IPython import get_ipython
from IPython.display import display
from torch import Tensor, nn

from . import distributed
from .cnn import receptive_field
from .ner_data import spans_to_tags, tags_to_spans

CHECK_MIME = "application/vnd.course-utils.check+json"
NOT_IMPLEMENTED = "not implemented yet: replace `raise NotImplementedError()` with your code"


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. Introduced in lesson 01.

    Attributes:
        exercise: the exercise id, e.g. "01.conv2d_loops".
        passed: True if every test case gave the expected answer.
        message: one friendly sentence (or two) for the learner.
    """

    exercise: str
    passed: bool
    message: str


class Case(NamedTuple):
    """One test case: a short description for messages, and the arguments."""

    description: str
    args: tuple


@dataclass(frozen=True)
class Exercise:
    """An exercise whose answer is a function, checked against a reference.

    Introduced in lesson 01.

    Attributes:
        id: "NN.name", NN being the lesson number.
        signature: how the learner's function is called, for messages.
        hint: shown with any wrong answer.
        cases: generator -> the test cases (edge cases first, then random ones).
        reference: the correct function; called with the same arguments.
        compare: (answer, expected, args) -> None if they match, else what is wrong.
        diagnose: (answer, args) -> a hint for a known mistake, or None.
        run: (answer, args) -> the answer's result, for an answer that cannot simply be
            called here (lesson 06's runs on several processes); None calls answer(*args).
    """

    id: str
    signature: str
    hint: str
    cases: Callable[[torch.Generator], list[Case]]
    reference: Callable[..., Any]
    compare: Callable[[Any, Any, tuple], str | None]
    diagnose: Callable[[Any, tuple], str | None] = lambda answer, args: None
    run: Callable[[Callable, tuple], Any] | None = None

    @property
    def lesson(self) -> str:
        return self.id[:2]

    @property
    def function(self) -> str:
        """The name of the function the learner writes: the id without its lesson, "conv2d_loops"."""
        return self.id[3:]


# ---------------------------------------------------------------------------
# Comparing answers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Unreadable:
    """An answer the grader could not read back from the sandbox (e.g. a NumPy array).

    Attributes:
        type_name: the answer's type, "ndarray".
        text: the start of its repr.
    """

    type_name: str
    text: str


def _describe(value: Any) -> str:
    """A short description of a value: "a float32 tensor of shape (2, 3)", "float 14.0"."""
    if isinstance(value, Unreadable):
        return f"{value.type_name} {value.text}"
    if isinstance(value, Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _compare_tensor(got: Any, expected: Tensor, name: str = "the result") -> str | None:
    """None if `got` is a tensor of `expected`'s shape and dtype with close values."""
    if not isinstance(got, Tensor):
        return f"expected {name} to be a tensor of shape {tuple(expected.shape)}, got {_describe(got)}"
    if got.shape != expected.shape:
        return f"expected {name} to have shape {tuple(expected.shape)}, got shape {tuple(got.shape)}"
    if got.dtype != expected.dtype:
        return f"expected {name} to have dtype {expected.dtype}, got {got.dtype}"
    got = got.detach().cpu()
    close = torch.isclose(got, expected, rtol=1e-4, atol=1e-4)
    if close.all():
        return None
    where = tuple(close.logical_not().nonzero()[0].tolist())
    largest = (got - expected).abs().nan_to_num(float("inf")).max().item()
    return (f"{name} has wrong values: at index {where} expected {expected[where].item():.4g}, "
            f"got {got[where].item():.4g} (largest difference {largest:.3g})")


def _compare_int(got: Any, expected: int, args: tuple) -> str | None:
    if isinstance(got, numbers.Integral) and not isinstance(got, bool) and got == expected:
        return None
    return f"expected the int {expected}, got {_describe(got)}"


def _matches(got: Any, expected: Tensor) -> bool:
    return isinstance(got, Tensor) and _compare_tensor(got, expected) is None


# ---------------------------------------------------------------------------
# Lesson 01: convolutions
# ---------------------------------------------------------------------------


def _conv_cases(gen: torch.Generator) -> list[Case]:
    # (B, C_in, C_out, H, W, k): edge cases, then random shapes.
    shapes = [(1, 1, 1, 3, 3, 3), (2, 3, 4, 5, 5, 1), (1, 2, 3, 4, 7, 3), (1, 1, 2, 5, 5, 2)]
    for _ in range(4):
        b, c_in, c_out, k = (int(torch.randint(1, n + 1, (), generator=gen)) for n in (3, 3, 4, 4))
        h, w = (k + int(torch.randint(0, 5, (), generator=gen)) for _ in range(2))
        shapes.append((b, c_in, c_out, h, w, k))
    cases = []
    for b, c_in, c_out, h, w, k in shapes:
        x = torch.randn(b, c_in, h, w, generator=gen)
        weight = torch.randn(c_out, c_in, k, k, generator=gen)
        bias = torch.randn(c_out, generator=gen)
        cases.append(Case(f"x {tuple(x.shape)}, weight {tuple(weight.shape)}", (x, weight, bias)))
    return cases


def _diagnose_conv(got: Any, args: tuple) -> str | None:
    x, weight, bias = args
    if _matches(got, F.conv2d(x, weight.flip(-2, -1), bias)):
        return ("your kernel is flipped. Deep-learning 'convolutions' do not flip the filter: "
                "out[i, j] uses weight[u, v] * x[i + u, j + v].")
    if _matches(got, F.conv2d(x, weight)):
        return "you forgot the bias: add bias[c] to every value of output channel c."
    return None


def _output_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _output_size_cases(gen: torch.Generator) -> list[Case]:
    cases = [(28, 3, 1, 0), (28, 3, 1, 1), (28, 3, 2, 1), (7, 7, 1, 0), (5, 2, 2, 0), (1, 3, 1, 1)]
    for _ in range(6):
        k, s, p = (int(torch.randint(lo, hi, (), generator=gen)) for lo, hi in ((1, 8), (1, 4), (0, 4)))
        n = max(1, k - 2 * p) + int(torch.randint(0, 30, (), generator=gen))
        cases.append((n, k, s, p))
    return [Case(f"n={n}, k={k}, s={s}, p={p}", (n, k, s, p)) for n, k, s, p in cases]


def _diagnose_output_size(got: Any, args: tuple) -> str | None:
    if isinstance(got, float) and got.is_integer() and int(got) == _output_size(*args):
        return "return an int, not a float: use integer division //."
    n, k, s, p = args
    if got == _output_size(n, k, s, p / 2):
        return "padding adds p cells on *both* sides of the input."
    return None


# ---------------------------------------------------------------------------
# Lesson 02: LSTM
# ---------------------------------------------------------------------------


def _lstm_cases(gen: torch.Generator) -> list[Case]:
    # (B, input_size, hidden_size)
    shapes = [(1, 1, 1), (1, 3, 2), (4, 5, 1)]
    shapes += [tuple(int(torch.randint(1, 7, (), generator=gen)) for _ in range(3)) for _ in range(4)]
    cases = []
    for b, i, h in shapes:
        args = (torch.randn(b, i, generator=gen), torch.randn(b, h, generator=gen),
                torch.randn(b, h, generator=gen), 0.5 * torch.randn(4 * h, i, generator=gen),
                0.5 * torch.randn(4 * h, h, generator=gen), 0.5 * torch.randn(4 * h, generator=gen))
        cases.append(Case(f"B={b}, input_size={i}, hidden_size={h}", args))
    return cases


@torch.no_grad()
def _lstm_step_reference(x: Tensor, h: Tensor, c: Tensor, weight_ih: Tensor, weight_hh: Tensor,
                         bias: Tensor) -> tuple[Tensor, Tensor]:
    """torch.nn.LSTMCell with the given weights (bias_ih = bias, bias_hh = 0)."""
    cell = nn.LSTMCell(x.shape[1], h.shape[1])
    cell.weight_ih.copy_(weight_ih)
    cell.weight_hh.copy_(weight_hh)
    cell.bias_ih.copy_(bias)
    cell.bias_hh.zero_()
    return cell(x, (h, c))


def _compare_lstm(got: Any, expected: tuple[Tensor, Tensor], args: tuple) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a tuple (h_new, c_new), got {_describe(got)}"
    return _compare_tensor(got[0], expected[0], "h_new") or _compare_tensor(got[1], expected[1], "c_new")


def _diagnose_lstm(got: Any, args: tuple) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return None
    h_new, c_new = _lstm_step_reference(*args)
    if _matches(got[0], c_new) and _matches(got[1], h_new):
        return "you returned (c_new, h_new); return (h_new, c_new)."
    x, h, c, weight_ih, weight_hh, bias = args
    for order in itertools.permutations(range(4)):
        # The gates of an answer that reads the four row blocks in this order.
        blocks = [torch.cat([t.chunk(4)[k] for k in order]) for t in (weight_ih, weight_hh, bias)]
        wrong = _lstm_step_reference(x, h, c, *blocks)
        if order != (0, 1, 2, 3) and _matches(got[0], wrong[0]) and _matches(got[1], wrong[1]):
            names = ", ".join("ifgo"[k] for k in order)
            return (f"your gates read the four row blocks of the weights as ({names}); "
                    "torch.nn.LSTM's order is (i, f, g, o): input, forget, cell candidate, output.")
    return None


def _temperature_cases(gen: torch.Generator) -> list[Case]:
    cases = [(torch.tensor([3.0]), 1.0), (torch.tensor([1000.0, 999.0, 0.0]), 1.0),
             (torch.tensor([2.0, 2.0, 2.0, 2.0]), 0.5), (torch.tensor([1.0, 2.0, 3.0]), 0.05),
             (torch.tensor([1.0, 2.0, 3.0]), 10.0)]
    for _ in range(5):
        v = int(torch.randint(2, 21, (), generator=gen))
        temperature = [0.3, 0.7, 1.0, 1.5, 3.0][int(torch.randint(0, 5, (), generator=gen))]
        cases.append((3 * torch.randn(v, generator=gen), temperature))
    return [Case(f"{len(logits)} logits up to {logits.max().item():.3g}, temperature {t}", (logits, t))
            for logits, t in cases]


def _diagnose_temperature(got: Any, args: tuple) -> str | None:
    logits, temperature = args
    if isinstance(got, Tensor) and got.is_floating_point() and got.isnan().any():
        return ("exp overflowed to inf (and inf / inf is nan): subtract the largest logit before "
                "exp, which does not change the softmax, or use torch.softmax.")
    if temperature != 1 and _matches(got, torch.softmax(logits * temperature, dim=-1)):
        return "divide the logits by the temperature; you multiplied."
    if temperature != 1 and _matches(got, torch.softmax(logits, dim=-1)):
        return "your probabilities do not depend on the temperature: divide the logits by it."
    return None


# ---------------------------------------------------------------------------
# Lesson 03: receptive fields and masked pooling
# ---------------------------------------------------------------------------


def _tcn_field_cases(gen: torch.Generator) -> list[Case]:
    cases = [(2, 1), (2, 8), (3, 1), (1, 5), (3, 4)]
    cases += [(int(torch.randint(2, 8, (), generator=gen)), int(torch.randint(1, 11, (), generator=gen)))
              for _ in range(5)]
    return [Case(f"kernel_size={k}, layers={n}", (k, n)) for k, n in cases]


def _tcn_field_reference(kernel_size: int, layers: int) -> int:
    """The field by composing the layers one at a time (course_utils.cnn.receptive_field)."""
    return receptive_field([(kernel_size, 1, 2 ** i) for i in range(layers)])


def _diagnose_tcn_field(got: Any, args: tuple) -> str | None:
    k, n = args
    if isinstance(got, float) and got.is_integer() and int(got) == _tcn_field_reference(k, n):
        return "return an int, not a float: 2 ** layers is an int already."
    if got == 1 + (k - 1) * n:
        return "you left out the dilations: layer i adds (kernel_size - 1) * 2**i steps, not kernel_size - 1."
    if got == 1 + (k - 1) * 2 ** n:
        return "the dilations are 1, 2, ..., 2**(layers - 1); their sum is 2**layers - 1."
    if got == (k - 1) * (2 ** n - 1):
        return "start from 1, the current step: one layer of kernel k sees k steps, not k - 1."
    return None


def _masked_mean_cases(gen: torch.Generator) -> list[Case]:
    # (B, T, H) and the lengths: edge cases first (full length, length 1), then random ones.
    cases = [((1, 1, 1), [1]), ((2, 4, 3), [4, 4]), ((3, 5, 2), [1, 5, 2]), ((1, 6, 4), [3])]
    for _ in range(4):
        b, t, h = (int(torch.randint(1, n + 1, (), generator=gen)) for n in (4, 9, 5))
        cases.append(((b, t, h), torch.randint(1, t + 1, (b,), generator=gen).tolist()))
    result = []
    for (b, t, h), lengths in cases:
        features = torch.randn(b, t, h, generator=gen)
        result.append(Case(f"h {(b, t, h)}, lengths {lengths}", (features, torch.tensor(lengths))))
    return result


def _masked_mean_reference(h: Tensor, lengths: Tensor) -> Tensor:
    """One sequence at a time: the mean of its first lengths[b] steps."""
    return torch.stack([h[b, :length].mean(dim=0) for b, length in enumerate(lengths.tolist())])


def _diagnose_masked_mean(got: Any, args: tuple) -> str | None:
    h, lengths = args
    if _matches(got, h.mean(dim=1)):
        return "you averaged over all T steps, padding included: keep only the first lengths[b] steps."
    masked_sum = _masked_mean_reference(h, lengths) * lengths[:, None]
    if _matches(got, masked_sum / h.shape[1]):
        return "divide the masked sum by lengths[b], the number of real steps, not by T."
    if _matches(got, masked_sum):
        return "that is the masked sum; divide it by lengths[b] to get the mean."
    return None


# ---------------------------------------------------------------------------
# Lesson 04: CNN-LSTM (the TimeDistributed trick)
# ---------------------------------------------------------------------------


def _fold_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    # (B, T, C, H, W)
    shapes = [(2, 3, 1, 4, 4), (1, 1, 1, 2, 2), (3, 1, 2, 3, 5), (1, 4, 3, 2, 2), (4, 2, 1, 3, 3)]
    for b, t, c, h, w in shapes:
        clips = torch.randn(b, t, c, h, w, generator=gen)
        cases.append(Case(f"clips {tuple(clips.shape)}", (clips,)))
    # Time-major memory, as after a transpose: .view cannot fold it, .reshape can.
    clips = torch.randn(3, 2, 1, 4, 4, generator=gen).transpose(0, 1)
    cases.append(Case(f"clips {tuple(clips.shape)}, not contiguous in memory", (clips,)))
    return cases


def _fold_reference(clips: Tensor) -> Tensor:
    b, t = clips.shape[:2]
    return clips.reshape(b * t, *clips.shape[2:])


def _diagnose_fold(got: Any, args: tuple) -> str | None:
    (clips,) = args
    if _matches(got, _fold_reference(clips.transpose(0, 1))):
        return ("the frames of one clip must stay together: row b*T + t holds clip b, frame t. "
                "Moving time first (transpose or permute) interleaves the clips.")
    return None


def _unfold_cases(gen: torch.Generator) -> list[Case]:
    cases = []
    for b, t, f in [(2, 3, 4), (1, 1, 1), (3, 1, 5), (1, 5, 2), (4, 2, 3)]:
        features = torch.randn(b * t, f, generator=gen)
        cases.append(Case(f"features {tuple(features.shape)}, batch_size={b}", (features, b)))
    return cases


def _unfold_reference(features: Tensor, batch_size: int) -> Tensor:
    return features.reshape(batch_size, -1, features.shape[1])


def _diagnose_unfold(got: Any, args: tuple) -> str | None:
    features, b = args
    if _matches(got, features.reshape(-1, b, features.shape[1]).transpose(0, 1)):
        return "you split the rows as (T, B); row b*T + t is clip b, frame t, so the batch comes first."
    return None


# ---------------------------------------------------------------------------
# Lesson 05: CRF decoding and entity spans
# ---------------------------------------------------------------------------


def _viterbi_cases(gen: torch.Generator) -> list[Case]:
    # A case where the best tag of every token on its own is not the best path:
    # token 0 slightly prefers tag 0, but moving from tag 0 to tag 1 costs 5.
    trap = (torch.tensor([[0.6, 0.5], [0.0, 2.0], [0.0, 2.0]]),
            torch.tensor([[0.0, -5.0], [0.0, 0.0]]), torch.zeros(2), torch.zeros(2))
    cases = [Case("3 tokens, 2 tags, a costly transition", trap)]
    sizes = [(1, 3), (4, 1), (2, 2)]
    sizes += [(int(torch.randint(1, 8, (), generator=gen)), int(torch.randint(2, 5, (), generator=gen)))
              for _ in range(5)]
    for length, tags in sizes:
        args = (2 * torch.randn(length, tags, generator=gen), 2 * torch.randn(tags, tags, generator=gen),
                torch.randn(tags, generator=gen), torch.randn(tags, generator=gen))
        cases.append(Case(f"{length} token{'s' * (length != 1)}, {tags} tag{'s' * (tags != 1)}", args))
    return cases


def _path_scores(paths: Tensor, emissions: Tensor, transitions: Tensor, start: Tensor,
                 end: Tensor) -> Tensor:
    """Scores (N,) of N tag paths (N, L) under a linear-chain CRF (see course_utils.crf)."""
    positions = torch.arange(emissions.shape[0])
    return (start[paths[:, 0]] + emissions[positions, paths].sum(1)
            + transitions[paths[:, :-1], paths[:, 1:]].sum(1) + end[paths[:, -1]])


def _viterbi_reference(emissions: Tensor, transitions: Tensor, start: Tensor,
                       end: Tensor) -> tuple[float, list[int]]:
    """The best path by brute force over all T**L paths (the test cases are small)."""
    length, num_tags = emissions.shape
    paths = torch.tensor(list(itertools.product(range(num_tags), repeat=length)))  # (T**L, L)
    scores = _path_scores(paths, emissions, transitions, start, end)
    best = scores.argmax()
    return scores[best].item(), paths[best].tolist()


def _as_number(value: Any) -> float | None:
    """A Python number, a NumPy scalar or a one-element tensor as a float; None for anything else."""
    if isinstance(value, Tensor) and value.numel() == 1:
        value = value.item()
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else None


def _as_path(path: Any, length: int, num_tags: int) -> list[int] | None:
    """`path` (a list, tuple or 1-D tensor of integers) as a list of `length` tag ids
    in [0, num_tags); None if it is not one."""
    if isinstance(path, Tensor):
        path = path.tolist() if path.dim() == 1 else None
    if not isinstance(path, (list, tuple)) or len(path) != length:
        return None
    path = [t.item() if isinstance(t, Tensor) and t.numel() == 1 else t for t in path]
    if all(isinstance(t, numbers.Integral) and not isinstance(t, bool) and 0 <= t < num_tags for t in path):
        return [int(t) for t in path]
    return None


def _compare_viterbi(got: Any, expected: tuple[float, list[int]], args: tuple) -> str | None:
    """Any best path passes (ties are fine), with its score."""
    best_score, best_path = expected
    length, num_tags = args[0].shape
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return f"expected a tuple (best_score, best_path), got {_describe(got)}"
    path = _as_path(got[1], length, num_tags)
    if path is None:
        return (f"expected best_path to be a list of {length} tag ids in [0, {num_tags - 1}], "
                f"got {_describe(got[1])}")
    score = _path_scores(torch.tensor([path]), *args).item()
    if abs(score - best_score) > 1e-4:
        return f"your path {path} scores {score:.4f}, but the best path {best_path} scores {best_score:.4f}"
    reported = _as_number(got[0])
    if reported is None:
        return f"expected best_score to be a number, got {_describe(got[0])}"
    if abs(reported - best_score) > 1e-4:
        return f"your path is a best one, but expected best_score {best_score:.4f}, got {reported:.4f}"
    return None


def _same_answer(score: float | None, path: list[int] | None, expected: tuple[float, list[int]]) -> bool:
    return path == expected[1] and score is not None and abs(score - expected[0]) < 1e-4


def _diagnose_viterbi(got: Any, args: tuple) -> str | None:
    emissions, transitions, start, end = args
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return None
    score, path = _as_number(got[0]), _as_path(got[1], *emissions.shape)
    zeros = torch.zeros_like(start)
    if _same_answer(score, path, _viterbi_reference(emissions, transitions, zeros, end)):
        return "add start[tag] to the scores of the first token."
    if _same_answer(score, path, _viterbi_reference(emissions, transitions, start, zeros)):
        return "add end[tag] to the scores of the last token before picking the best one."
    if path == emissions.argmax(1).tolist():  # the best tag of each token on its own
        best_score, _ = _viterbi_reference(*args)
        if _path_scores(torch.tensor([path]), *args).item() < best_score - 1e-4:
            return ("picking each token's best tag on its own ignores the transitions: keep, for every "
                    "tag, the best score of a path that ends in it, and a back-pointer to its previous tag.")
    return None


_ENTITY_TYPES = ("PER", "LOC", "ORG", "MISC")


def _random_bio(gen: torch.Generator) -> list[str]:
    """A random, valid BIO tag sequence of 1 to 12 tokens."""
    length = int(torch.randint(1, 13, (), generator=gen))
    spans, i = [], 0
    while i < length:
        if torch.rand((), generator=gen) < 0.4:
            end = min(length, i + int(torch.randint(1, 4, (), generator=gen)))
            spans.append((_ENTITY_TYPES[int(torch.randint(0, 4, (), generator=gen))], i, end))
            i = end
        else:
            i += 1
    return spans_to_tags(spans, length, "BIO")


def _bio_cases(gen: torch.Generator) -> list[Case]:
    sentences = [[], ["O", "O"], ["B-PER"], ["B-PER", "I-PER", "O"], ["O", "B-LOC", "I-LOC"],
                 ["B-PER", "B-PER"], ["B-PER", "I-PER", "B-LOC", "O", "B-ORG"],
                 ["B-MISC", "I-MISC", "I-MISC", "I-MISC"]]
    sentences += [_random_bio(gen) for _ in range(5)]
    return [Case(f"tags {tags}", (tags,)) for tags in sentences]


def _as_spans(spans: Any) -> list[tuple] | None:
    """`spans` as a list of 3-tuples, or None if it is not a list (or tuple) of 3-element sequences."""
    if isinstance(spans, (list, tuple)) and all(isinstance(s, (list, tuple)) and len(s) == 3 for s in spans):
        return [tuple(s) for s in spans]
    return None


def _compare_spans(got: Any, expected: list[tuple[str, int, int]], args: tuple) -> str | None:
    spans = _as_spans(got)
    if spans is None:
        return f"expected a list of (type, start, end) tuples such as {expected}, got {_describe(got)}"
    return None if spans == expected else f"expected {expected}, got {spans}"


def _diagnose_spans(got: Any, args: tuple) -> str | None:
    expected, got = tags_to_spans(args[0], "BIO"), _as_spans(got)
    if got is None:
        return None
    if got and all(isinstance(s[0], str) and s[0][:2] in ("B-", "I-") for s in got):
        return "the type is the tag without its prefix: 'B-PER' -> 'PER'."
    if got == [(t, s, e - 1) for t, s, e in expected]:
        return ("end is exclusive: tokens[start:end] is the entity, so a one-token entity at i "
                "is (type, i, i + 1).")
    if got == expected[:-1]:
        return "an entity that is still open at the end of the sentence ends there: add it too."
    return None


# ---------------------------------------------------------------------------
# The registry and the check
# ---------------------------------------------------------------------------


def _same_tensor(got: Any, expected: Tensor, args: tuple) -> str | None:
    return _compare_tensor(got, expected)


EXERCISES: dict[str, Exercise] = {exercise.id: exercise for exercise in [
    Exercise("01.conv2d_loops", "conv2d_loops(x, weight, bias) -> (B, C_out, H-k+1, W-k+1)",
             "out[b, o, i, j] = bias[o] + the sum over c, u, v of weight[o, c, u, v] * x[b, c, i+u, j+v] "
             "(stride 1, no padding, the kernel is not flipped).",
             _conv_cases, lambda x, weight, bias: F.conv2d(x, weight, bias), _same_tensor, _diagnose_conv),
    Exercise("01.output_size", "output_size(n, k, s, p) -> int",
             "count the positions where the kernel fits: the padded input has n + 2p cells and the kernel "
             "moves s cells at a time. Return an int (use //).",
             _output_size_cases, _output_size, _compare_int, _diagnose_output_size),
    Exercise("02.lstm_step", "lstm_step(x, h, c, weight_ih, weight_hh, bias) -> (h_new, c_new)",
             "gates = x @ weight_ih.T + h @ weight_hh.T + bias, split into 4 blocks (i, f, g, o); sigmoid "
             "for i, f, o and tanh for g; c_new = f * c + i * g; h_new = o * tanh(c_new).",
             _lstm_cases, _lstm_step_reference, _compare_lstm, _diagnose_lstm),
    Exercise("02.temperature_probs", "temperature_probs(logits, temperature) -> probs",
             "probs = softmax(logits / temperature); compute the softmax stably (torch.softmax does).",
             _temperature_cases, lambda logits, t: torch.softmax(logits / t, dim=-1), _same_tensor,
             _diagnose_temperature),
    Exercise("03.tcn_receptive_field", "tcn_receptive_field(kernel_size, layers) -> int",
             "each layer adds (kernel_size - 1) * dilation steps to the field of one step; add up the "
             "dilations 1 + 2 + ... + 2**(layers - 1) with the formula for a geometric series.",
             _tcn_field_cases, _tcn_field_reference, _compare_int, _diagnose_tcn_field),
    Exercise("03.masked_mean", "masked_mean(h, lengths) -> (B, H)",
             "build a (B, T) mask with torch.arange(T) < lengths[:, None], zero the padded steps, sum "
             "over time and divide by lengths[:, None] (as a float).",
             _masked_mean_cases, _masked_mean_reference, _same_tensor, _diagnose_masked_mean),
    Exercise("04.fold_time", "fold_time(clips) -> (B*T, C, H, W)",
             "merge the first two axes with reshape (view fails on tensors that are not contiguous); "
             "do not reorder the axes, so that row b*T + t holds clip b, frame t.",
             _fold_cases, _fold_reference, _same_tensor, _diagnose_fold),
    Exercise("04.unfold_time", "unfold_time(features, batch_size) -> (B, T, F)",
             "the inverse of fold_time: row b*T + t of features belongs to clip b, frame t; "
             "T = features.shape[0] // batch_size.",
             _unfold_cases, _unfold_reference, _same_tensor, _diagnose_unfold),
    Exercise("05.viterbi", "viterbi(emissions, transitions, start, end) -> (best_score, best_path)",
             "score[t, j] = max over i of (score[t-1, i] + transitions[i, j]) + emissions[t, j], starting "
             "from start + emissions[0]; keep the argmax as a back-pointer, add end at the last token, "
             "then follow the back-pointers from the best last tag.",
             _viterbi_cases, _viterbi_reference, _compare_viterbi, _diagnose_viterbi),
    Exercise("05.bio_spans", "bio_spans(tags) -> [(type, start, end), ...]",
             "an entity starts at B-X and goes on over the I-X tags that follow; it ends (end exclusive) "
             "at an O, at the next B-, or at the end of the sentence.",
             _bio_cases, lambda tags: tags_to_spans(tags, "BIO"), _compare_spans, _diagnose_spans),
    Exercise("06.average_gradients", "average_gradients(model) -> None, run on every process",
             "after backward, for every parameter with a gradient: dist.all_reduce(p.grad) (a sum over "
             "the processes, in place), then divide by dist.get_world_size().",
             distributed.gradient_average_cases, distributed.average_of_local_gradients,
             distributed.compare_gradient_average, distributed.diagnose_gradient_average,
             run=distributed.run_gradient_average),
]}


# Ids renamed so that each id ends with the function the learner writes; the old
# ids keep working for one release (course 0.2 drops them).
RENAMED = {"01.conv_output_size": "01.output_size", "02.sample_with_temperature": "02.temperature_probs",
           "05.bio_to_spans": "05.bio_spans"}


def lesson_exercises(lesson: str) -> list[str]:
    """The ids of the exercises of one lesson ("01"), in registry order. Introduced in lesson 01."""
    return [id for id, exercise in EXERCISES.items() if exercise.lesson == lesson]


def canonical_id(exercise: str) -> str:
    """The current id of `exercise`: itself, or the new name of a renamed id.

    Raises:
        ValueError: for an unknown exercise id (a mistake in the notebook, not the learner's).
    """
    current = RENAMED.get(exercise, exercise)
    if current not in EXERCISES:
        raise ValueError(f"unknown exercise {exercise!r}; the known ones are: {', '.join(EXERCISES)}")
    return current


def _copy(args: tuple) -> tuple:
    """Fresh copies of the arguments, so that the learner's code cannot change the test case."""
    return tuple(a.clone() if isinstance(a, Tensor) else list(a) if isinstance(a, list) else a for a in args)


@dataclass(frozen=True)
class Raised:
    """What the learner's function raised on a test case.

    Attributes:
        kind: the exception's type name, "RuntimeError".
        text: the first line of its message.
        where: where in the learner's code, e.g. " (line 4: `out = x @ w`)"; "" if unknown.
    """

    kind: str
    text: str
    where: str = ""


def raised(error: BaseException, filename: str | None) -> Raised:
    """`error` as a Raised; `where` names its last frame in the file `filename` (the learner's code)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == filename]
    where = ""
    if frames:
        frame = frames[-1]
        where = f" (line {frame.lineno}: `{frame.line}`)" if frame.line else f" (line {frame.lineno})"
    kind = "NotImplementedError" if isinstance(error, NotImplementedError) else type(error).__name__
    return Raised(kind, (str(error).strip().splitlines() or [""])[0][:200], where)


def verdict(exercise: str, cases: list[Case], answers: Iterable[Any]) -> CheckResult:
    """Judge the learner's answers to `cases`, one per case and in order, against the reference.

    Args:
        exercise: a current id from EXERCISES.
        cases: the test cases, as ``EXERCISES[exercise].cases`` made them.
        answers: what the learner's function returned for each case, or a Raised; it
            is consumed only up to the first wrong answer.
    """
    ex = EXERCISES[exercise]
    for n, ((description, args), got) in enumerate(zip(cases, answers), 1):
        if isinstance(got, Raised):
            if got.kind == "NotImplementedError":
                return CheckResult(exercise, False, NOT_IMPLEMENTED)
            problem, hint = f"your function raised {got.kind}: {got.text}{got.where}", ex.hint
        else:
            problem = ex.compare(got, ex.reference(*args), args)
            if problem is None:
                continue
            hint = ex.diagnose(got, args) or ex.hint
        return CheckResult(exercise, False, f"test case {n} of {len(cases)} ({description}): "
                                            f"{problem}. Hint: {hint}")
    return CheckResult(exercise, True, f"passed all {len(cases)} test cases")


def _answers(answer: Callable, cases: list[Case],
             run: Callable[[Callable, tuple], Any] | None = None) -> Iterator[Any]:
    """The learner's answer to each case (on copies of its arguments), or a Raised;
    `run(answer, args)` calls the answer where it cannot simply be called here (lesson 06)."""
    filename = getattr(getattr(answer, "__code__", None), "co_filename", None)
    for case in cases:
        try:
            yield answer(*_copy(case.args)) if run is None else run(answer, _copy(case.args))
        except Exception as error:
            yield raised(error, filename)


def run_check(exercise: str, answer: Any, seed: int = 0) -> CheckResult:
    """Check `answer` against exercise `exercise` and return the result; shows nothing.

    Introduced in lesson 01. Whatever `answer` raises or returns becomes a
    friendly message; the global random state is left as it was. An id from
    before a rename still works, with a note at the end of the message.

    Args:
        exercise: an id from EXERCISES, e.g. "01.conv2d_loops".
        answer: the learner's function.
        seed: seeds the random test cases (the edge cases do not change).

    Raises:
        ValueError: for an unknown exercise id (a mistake in the notebook, not the learner's).
    """
    current = canonical_id(exercise)
    ex = EXERCISES[current]
    if not callable(answer):
        result = CheckResult(current, False, f"expected a function {ex.signature}, got {_describe(answer)}")
    else:
        with torch.random.fork_rng(devices=[]):
            cases = ex.cases(torch.Generator().manual_seed(seed))
            result = verdict(current, cases, _answers(answer, cases, ex.run))
    if current == exercise:
        return result
    note = (f" (note: the id {exercise!r} is now {current!r}; the old one works until the next "
            f"release: write check({current!r}, ...))")
    return CheckResult(current, result.passed, result.message + note)


def check(exercise: str, answer: Any) -> None:
    """Check the learner's answer to an exercise and show the result. Introduced in lesson 01.

    In a notebook the result is displayed with the MIME type CHECK_MIME
    ({"exercise", "passed", "message"}, plus a text/plain line), which the
    grader reads back; in plain Python it is printed.

    Args:
        exercise: an id from EXERCISES, e.g. "01.conv2d_loops".
        answer: the learner's function.
    """
    result = run_check(exercise, answer)
    text = f"{'✅' if result.passed else '❌'} {result.exercise}: {result.message}"
    if get_ipython() is None:
        print(text)
    else:
        display({CHECK_MIME: {"exercise": result.exercise, "passed": result.passed,
                              "message": result.message}, "text/plain": text}, raw=True)
