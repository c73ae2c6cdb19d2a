"""Tests for course_utils.crf: every quantity is checked against brute-force
enumeration of all tag sequences, and the NLL/decoding against pytorch-crf."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from course_utils.crf import CRF
from course_utils.ner_data import SCHEMES, TransitionConstraints, read_conll, scheme_constraints, tag_violations

# Batches of sentence lengths: single token, one length, and mixed lengths.
LENGTH_CASES = [[1], [1, 1], [3], [4, 1, 2, 3], [2, 4]]
BIO_TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES_TAGS = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
BMES_TAGS = ["B-W", "M-W", "E-W", "S-W"]


def make_crf(num_tags: int, seed: int, constraints: TransitionConstraints | None = None) -> CRF:
    """A float64 CRF with parameters large enough for transitions to matter."""
    torch.manual_seed(seed)
    crf = CRF(num_tags, constraints=constraints).double()
    for parameter in crf.parameters():
        torch.nn.init.normal_(parameter)
    return crf


def make_batch(lengths: list[int], num_tags: int, seed: int):
    """Random emissions (B, L, T) float64, tags (B, L) long and a prefix mask (B, L)."""
    generator = torch.Generator().manual_seed(seed)
    batch, max_len = len(lengths), max(lengths)
    emissions = torch.randn(batch, max_len, num_tags, generator=generator, dtype=torch.float64)
    tags = torch.randint(num_tags, (batch, max_len), generator=generator)
    mask = torch.arange(max_len) < torch.tensor(lengths).unsqueeze(1)
    return emissions, tags, mask


def path_score(crf: CRF, emissions_row: torch.Tensor, path: tuple[int, ...]) -> float:
    """Score of one tag sequence, straight from the definition (no masking, no constraints)."""
    start, transitions, end = (p.detach().tolist() for p in
                               (crf.start_transitions, crf.transitions, crf.end_transitions))
    total = start[path[0]] + end[path[-1]]
    total += sum(float(emissions_row[t, tag]) for t, tag in enumerate(path))
    total += sum(transitions[a][b] for a, b in zip(path, path[1:]))
    return total


def all_paths(crf: CRF, emissions_row: torch.Tensor, length: int, valid=lambda path: True):
    """All (score, path) pairs of one sentence, best first, keeping paths where ``valid``."""
    pairs = [
        (path_score(crf, emissions_row, path), list(path))
        for path in itertools.product(range(crf.num_tags), repeat=length)
        if valid(path)
    ]
    return sorted(pairs, key=lambda pair: -pair[0])


def brute_log_partition(scored) -> float:
    return float(torch.logsumexp(torch.tensor([score for score, _ in scored], dtype=torch.float64), dim=0))


def is_valid(names: list[str], scheme: str) -> bool:
    """The rules' one home, course_utils.ner_data, as the oracle of valid sequences."""
    return tag_violations(names, scheme) == []


# --- forward algorithm, gold score, NLL ------------------------------------


@pytest.mark.parametrize("lengths", LENGTH_CASES)
@pytest.mark.parametrize("num_tags", [1, 3, 4])
def test_log_partition_score_and_nll_match_brute_force(lengths, num_tags):
    crf = make_crf(num_tags, seed=len(lengths) + num_tags)
    emissions, tags, mask = make_batch(lengths, num_tags, seed=sum(lengths))
    expected_z = [brute_log_partition(all_paths(crf, emissions[b], n)) for b, n in enumerate(lengths)]
    expected_score = [path_score(crf, emissions[b], tuple(tags[b, :n].tolist()))
                      for b, n in enumerate(lengths)]
    expected_nll = torch.tensor(expected_z) - torch.tensor(expected_score)

    torch.testing.assert_close(crf.log_partition(emissions, mask), torch.tensor(expected_z, dtype=torch.float64))
    torch.testing.assert_close(crf.score(emissions, tags, mask), torch.tensor(expected_score, dtype=torch.float64))
    torch.testing.assert_close(crf(emissions, tags, mask, reduction="none"), expected_nll.double())
    torch.testing.assert_close(crf(emissions, tags, mask, reduction="sum"), expected_nll.sum().double())
    torch.testing.assert_close(crf(emissions, tags, mask, reduction="mean"), expected_nll.mean().double())
    torch.testing.assert_close(crf(emissions, tags, mask, reduction="token_mean"),
                               (expected_nll.sum() / sum(lengths)).double())


def test_padding_tags_are_ignored():
    crf = make_crf(3, seed=0)
    emissions, tags, mask = make_batch([3, 1, 2], 3, seed=1)
    padded = tags.masked_fill(~mask, -100)
    torch.testing.assert_close(crf(emissions, padded, mask), crf(emissions, tags, mask))


def test_no_mask_means_full_length():
    crf = make_crf(3, seed=0)
    emissions, tags, mask = make_batch([3, 3], 3, seed=1)
    torch.testing.assert_close(crf(emissions, tags), crf(emissions, tags, mask))
    assert crf.decode(emissions) == crf.decode(emissions, mask)


@pytest.mark.parametrize("reduction", ["sum", "mean", "token_mean"])
def test_nll_and_gradients_match_pytorch_crf(reduction):
    from torchcrf import CRF as TorchCRF

    ours = make_crf(5, seed=2)
    theirs = TorchCRF(5, batch_first=True).double()
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if "allowed" not in k})
    emissions, tags, mask = make_batch([7, 3, 1, 5, 7, 2], 5, seed=3)

    ours_loss = ours(emissions, tags, mask, reduction=reduction)
    theirs_loss = -theirs(emissions, tags, mask, reduction=reduction)
    torch.testing.assert_close(ours_loss, theirs_loss)
    ours_loss.backward()
    theirs_loss.backward()
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(parameter.grad, getattr(theirs, name).grad)


def test_gradients_flow_and_skip_forbidden_transitions():
    constraints = scheme_constraints(BIO_TAGS, "BIO")
    crf = make_crf(len(BIO_TAGS), seed=4, constraints=constraints)
    emissions, _, mask = make_batch([4, 2, 3], len(BIO_TAGS), seed=5)
    emissions.requires_grad_(True)
    tags = torch.tensor([[1, 2, 0, 3], [0, 1, 0, 0], [3, 4, 4, 0]])  # valid BIO
    crf(emissions, tags, mask).backward()
    for grad in (emissions.grad, crf.start_transitions.grad, crf.transitions.grad, crf.end_transitions.grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert (crf.transitions.grad[~constraints.transitions] == 0).all()
    assert (crf.start_transitions.grad[~constraints.start] == 0).all()


# --- decoding ---------------------------------------------------------------


@pytest.mark.parametrize("lengths", LENGTH_CASES)
@pytest.mark.parametrize("num_tags", [1, 3, 4])
def test_viterbi_matches_brute_force(lengths, num_tags):
    crf = make_crf(num_tags, seed=10 + num_tags)
    emissions, _, mask = make_batch(lengths, num_tags, seed=20 + sum(lengths))
    expected = [all_paths(crf, emissions[b], length)[0] for b, length in enumerate(lengths)]
    assert crf.decode(emissions, mask) == [path for _, path in expected]


def test_decode_matches_pytorch_crf():
    from torchcrf import CRF as TorchCRF

    ours = make_crf(6, seed=6)
    theirs = TorchCRF(6, batch_first=True).double()
    theirs.load_state_dict({k: v for k, v in ours.state_dict().items() if "allowed" not in k})
    lengths = torch.randint(1, 12, (16,), generator=torch.Generator().manual_seed(7)).tolist()
    emissions, _, mask = make_batch(lengths, 6, seed=8)
    assert ours.decode(emissions, mask) == theirs.decode(emissions, mask)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_decode_in_lower_precision_matches_float32(dtype):
    """Half-precision emissions (and parameters) are decoded in float32."""
    crf = make_crf(5, seed=9).float()
    lengths = [7, 3, 1, 5]
    emissions, _, mask = make_batch(lengths, 5, seed=10)
    emissions = emissions.to(dtype)
    assert crf.decode(emissions, mask) == crf.decode(emissions.float(), mask)
    assert [len(path) for path in crf.decode(emissions, mask)] == lengths
    low = crf.to(dtype)  # half-precision parameters are computed in float32 too
    assert [len(path) for path in low.decode(emissions, mask)] == lengths


# --- marginals --------------------------------------------------------------


@pytest.mark.parametrize("lengths", LENGTH_CASES)
def test_marginals_match_brute_force(lengths):
    num_tags = 3
    crf = make_crf(num_tags, seed=30)
    emissions, _, mask = make_batch(lengths, num_tags, seed=31 + sum(lengths))
    expected = torch.zeros(len(lengths), max(lengths), num_tags, dtype=torch.float64)
    for b, length in enumerate(lengths):
        scored = all_paths(crf, emissions[b], length)
        log_z = brute_log_partition(scored)
        for score, path in scored:
            for t, tag in enumerate(path):
                expected[b, t, tag] += torch.tensor(score - log_z).exp()

    marginals = crf.marginals(emissions, mask)
    torch.testing.assert_close(marginals, expected)
    torch.testing.assert_close(marginals.sum(2), mask.double())


# --- constraints ------------------------------------------------------------


def test_bio_constraint_matrix():
    c = scheme_constraints(BIO_TAGS, "bio")
    index = {name: i for i, name in enumerate(BIO_TAGS)}
    allowed = lambda a, b: bool(c.transitions[index[a], index[b]])  # noqa: E731
    assert not allowed("O", "I-PER") and not allowed("B-LOC", "I-PER") and not allowed("I-LOC", "I-PER")
    assert allowed("B-PER", "I-PER") and allowed("I-PER", "I-PER") and allowed("I-PER", "B-LOC")
    assert allowed("O", "B-PER") and allowed("B-PER", "O")
    assert c.start.tolist() == [True, True, False, True, False]
    assert c.end.all()


def test_bioes_and_bmes_constraint_matrices():
    c = scheme_constraints(BIOES_TAGS, "BIOES")
    index = {name: i for i, name in enumerate(BIOES_TAGS)}
    followers = {name: {BIOES_TAGS[j] for j in c.transitions[index[name]].nonzero().flatten().tolist()}
                 for name in BIOES_TAGS}
    assert followers["B-PER"] == {"I-PER", "E-PER"} == followers["I-PER"]
    assert followers["O"] == {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"} == followers["E-LOC"] == followers["S-PER"]
    starts = {name for name, ok in zip(BIOES_TAGS, c.start.tolist()) if ok}
    ends = {name for name, ok in zip(BIOES_TAGS, c.end.tolist()) if ok}
    assert starts == {"O", "B-PER", "S-PER", "B-LOC", "S-LOC"}
    assert ends == {"O", "E-PER", "S-PER", "E-LOC", "S-LOC"}

    bmes = scheme_constraints(BMES_TAGS, "BMES")  # B M E S of one type W
    assert bmes.transitions.tolist() == [
        [False, True, True, False],  # B -> M, E
        [False, True, True, False],  # M -> M, E
        [True, False, False, True],  # E -> B, S
        [True, False, False, True],  # S -> B, S
    ]
    assert bmes.start.tolist() == [True, False, False, True]
    assert bmes.end.tolist() == [False, False, True, True]


@pytest.mark.parametrize("tags, scheme", [(BIO_TAGS, "BIO"), (BIOES_TAGS, "BIOES"), (BMES_TAGS, "BMES")])
def test_constrained_decoding_is_always_valid(tags, scheme):
    crf = make_crf(len(tags), seed=40, constraints=scheme_constraints(tags, scheme))
    lengths = torch.randint(1, 15, (64,), generator=torch.Generator().manual_seed(41)).tolist()
    emissions, _, mask = make_batch(lengths, len(tags), seed=42)
    emissions = emissions * 5  # strong emissions push towards invalid sequences
    decoded = crf.decode(emissions, mask)
    assert [len(path) for path in decoded] == lengths
    for path in decoded:
        assert is_valid([tags[i] for i in path], scheme)


def test_constraints_apply_in_training_and_decoding():
    tags = BIO_TAGS[:3]  # O, B-PER, I-PER
    constraints = scheme_constraints(tags, "BIO")
    crf = make_crf(3, seed=50, constraints=constraints)
    lengths = [1, 3, 4]
    emissions, _, mask = make_batch(lengths, 3, seed=51)
    valid = lambda path: is_valid([tags[i] for i in path], "BIO")  # noqa: E731
    expected = [all_paths(crf, emissions[b], n, valid) for b, n in enumerate(lengths)]

    torch.testing.assert_close(crf.log_partition(emissions, mask),
                               torch.tensor([brute_log_partition(s) for s in expected], dtype=torch.float64))
    assert len(expected[0]) == 2  # only O and B-PER may form a one-token sentence
    assert crf.decode(emissions, mask) == [s[0][1] for s in expected]


def test_gold_tags_breaking_constraints_raise():
    crf = CRF(len(BIO_TAGS), constraints=scheme_constraints(BIO_TAGS, "BIO"))
    emissions = torch.randn(1, 3, len(BIO_TAGS))
    with pytest.raises(ValueError, match="constraints"):
        crf(emissions, torch.tensor([[0, 2, 0]]))  # O -> I-PER


@pytest.mark.parametrize("tags, scheme", [
    (["O", "B-PER"], "IOB3"),
    (["O", "E-PER"], "BIO"),
    (["O", "X-PER"], "BIOES"),
    (["O", "I-PER"], "BMES"),
    (["O", "B-"], "BIO"),
    (["O", "O"], "BIO"),
    ([], "BIO"),
])
def test_bad_scheme_or_tag_names_raise(tags, scheme):
    with pytest.raises(ValueError):
        scheme_constraints(tags, scheme)


TAG_FORMS = ["O", "B-PER", "I-PER", "M-PER", "E-PER", "S-PER", "B", "M", "I-", "X-PER", "o", "B_PER", "B-PER-X"]


@pytest.mark.parametrize("scheme", [*SCHEMES, "IOB2", "bio", "IOB3"])
@pytest.mark.parametrize("tag", TAG_FORMS)
def test_crf_and_corpus_reader_accept_the_same_tags(scheme, tag, tmp_path):
    """Every scheme and tag form that one accepts, the other accepts too."""
    path = tmp_path / "one.txt"
    path.write_text(f"word {tag}\n", encoding="utf-8")

    def accepted(fn) -> bool:
        try:
            fn()
        except ValueError:
            return False
        return True

    reader = accepted(lambda: read_conll(path, scheme=scheme))
    crf = accepted(lambda: scheme_constraints(["O", tag] if tag != "O" else ["O"], scheme))
    assert reader == crf, f"read_conll {'accepts' if reader else 'rejects'} {tag!r} in {scheme}, the CRF does not"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_constraints_are_the_corpus_rules(scheme):
    """Each allowed transition, start and end is one that tag_violations accepts."""
    tags = {"IOB1": BIO_TAGS, "BIO": BIO_TAGS, "BIOES": BIOES_TAGS, "BMES": BMES_TAGS}[scheme]
    c = scheme_constraints(tags, scheme)
    for i, a in enumerate(tags):
        alone = tag_violations([a], scheme)
        assert bool(c.start[i]) == (not [m for _, m in alone if "ends inside" not in m])
        assert bool(c.end[i]) == (not [m for _, m in alone if "ends inside" in m])
        for j, b in enumerate(tags):
            second = [m for pos, m in tag_violations([a, b], scheme) if pos == 1 and "ends inside" not in m]
            assert bool(c.transitions[i, j]) == (not second), (a, b)


def test_constraints_of_wrong_size_raise():
    with pytest.raises(ValueError, match="shape"):
        CRF(4, constraints=scheme_constraints(BIO_TAGS, "BIO"))


# --- input validation ------------------------------------------------------


def _bad_inputs():
    emissions, tags, mask = make_batch([3, 2], 4, seed=0)
    return [
        ("mask not bool", emissions, tags, mask.long()),
        ("mask wrong shape", emissions, tags, mask[:, :2]),
        ("mask not a prefix", emissions, tags, torch.tensor([[True, False, True], [True, True, False]])),
        ("mask first column False", emissions, tags, torch.tensor([[True, True, True], [False, True, True]])),
        ("emissions 2-d", emissions[0], tags, mask),
        ("emissions wrong tag count", emissions[:, :, :3], tags, mask),
        ("emissions not float", emissions.long(), tags, mask),
        ("tags wrong shape", emissions, tags[:, :2], mask),
        ("tags not long", emissions, tags.int(), mask),
        ("tag out of range", emissions, tags.masked_fill(mask, 4), mask),
    ]


@pytest.mark.parametrize("case", _bad_inputs(), ids=lambda case: case[0])
def test_bad_inputs_raise(case):
    _, emissions, tags, mask = case
    crf = CRF(4).double()
    with pytest.raises(ValueError):
        crf(emissions, tags, mask)
    if "tag" not in case[0]:  # decoding and marginals take no tags
        for method in (crf.decode, crf.marginals, crf.log_partition):
            with pytest.raises(ValueError):
                method(emissions, mask)


def test_bad_arguments_raise():
    crf = CRF(3)
    emissions, tags, mask = make_batch([2, 1], 3, seed=0)
    with pytest.raises(ValueError, match="reduction"):
        crf(emissions.float(), tags, mask, reduction="average")
    with pytest.raises(TypeError):
        crf.decode(emissions.tolist(), mask)
    with pytest.raises(TypeError):
        crf.decode(emissions.float(), mask.tolist())
    with pytest.raises(TypeError):
        crf(emissions.float(), tags.tolist(), mask)
    with pytest.raises(ValueError):
        CRF(0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_emissions_are_an_error_not_a_nan_loss(bad):
    crf = make_crf(len(BIO_TAGS), seed=50)
    emissions, tags, mask = make_batch([3, 2], len(BIO_TAGS), seed=51)
    emissions[1, 1, 2] = bad
    for call in (lambda: crf(emissions, tags, mask), lambda: crf.decode(emissions, mask)):
        with pytest.raises(ValueError, match=r"emissions must be finite.*sentence 1, token 1"):
            call()


def test_an_empty_batch_is_an_error_not_a_nan_loss():
    crf = make_crf(len(BIO_TAGS), seed=52)
    with pytest.raises(ValueError, match="no sentence"):
        crf(torch.zeros(0, 3, len(BIO_TAGS)), torch.zeros(0, 3, dtype=torch.long))


def test_benchmark_skips_with_a_message_without_pytorch_crf(monkeypatch, capsys):
    import builtins

    from course_utils import benchmarks as bench

    real_import = builtins.__import__

    def no_torchcrf(name, *args, **kwargs):
        if name == "torchcrf":
            raise ImportError("No module named 'torchcrf'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchcrf)
    table = bench.crf_benchmark()
    assert table.empty and list(table.columns) == ["threads", "tags", "op", "ours_ms", "torchcrf_ms", "speedup"]
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "pip install pytorch-crf" in out[0]


# --- constrained marginals, numbers that cannot go silently wrong ----------


@pytest.mark.parametrize("lengths", LENGTH_CASES)
def test_constrained_marginals_match_brute_force_over_valid_paths(lengths):
    crf = make_crf(len(BIO_TAGS), seed=60, constraints=scheme_constraints(BIO_TAGS, "BIO"))
    emissions, _, mask = make_batch(lengths, len(BIO_TAGS), seed=61 + sum(lengths))
    valid = lambda path: is_valid([BIO_TAGS[i] for i in path], "BIO")  # noqa: E731
    expected = torch.zeros(len(lengths), max(lengths), len(BIO_TAGS), dtype=torch.float64)
    for b, length in enumerate(lengths):
        scored = all_paths(crf, emissions[b], length, valid)
        log_z = brute_log_partition(scored)
        for score, path in scored:
            for t, tag in enumerate(path):
                expected[b, t, tag] += math.exp(score - log_z)
    torch.testing.assert_close(crf.marginals(emissions, mask), expected)


@pytest.mark.parametrize("name", ["transitions", "start_transitions", "end_transitions"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_parameters_are_refused_by_every_method(name, bad):
    """Probe C40: a NaN in the CRF's own parameters (corrupted weights) decoded every token as tag 0."""
    crf = make_crf(4, seed=62)
    getattr(crf, name).data.view(-1)[0] = bad
    emissions, tags, mask = make_batch([3, 2], 4, seed=63)
    for call in (lambda: crf(emissions, tags, mask), lambda: crf.decode(emissions, mask),
                 lambda: crf.marginals(emissions, mask),
                 lambda: crf.log_partition(emissions, mask), lambda: crf.score(emissions, tags, mask)):
        with pytest.raises(ValueError, match=f"parameter {name} holds NaN or inf"):
            call()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_emissions_are_computed_in_float32(dtype):
    """Probe C14: large float16 emissions gave a loss of -inf (the gold score overflowed)."""
    crf = CRF(5)
    emissions = torch.full((1, 100, 5), 1000.0, dtype=dtype)
    tags = torch.zeros(1, 100, dtype=torch.long)
    loss = crf(emissions, tags, reduction="sum")
    assert loss.dtype == torch.float32 and torch.isfinite(loss) and loss >= 0
    torch.testing.assert_close(loss, crf(emissions.float(), tags, reduction="sum"))
    assert crf.marginals(emissions).dtype == torch.float32


def test_finite_emissions_that_overflow_are_an_error_not_a_nan_loss():
    """Probe C15: emissions of 1e38 are finite, but their sums are not."""
    crf = CRF(5)
    emissions, tags = torch.full((1, 4, 5), 1e38), torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="not finite: the scores overflow"):
        crf(emissions, tags)
    with pytest.raises(ValueError, match="not finite: the scores overflow"):
        crf.decode(emissions)
    with pytest.raises(ValueError, match="not finite: the scores overflow"):
        crf.marginals(emissions)


def test_bool_sizes_are_refused_with_a_clear_message():
    """Probe C35: CRF(True) failed inside torch."""
    with pytest.raises(ValueError, match="num_tags must be a positive int"):
        CRF(True)


def test_constraints_must_be_three_masks():
    with pytest.raises(TypeError, match=r"tuple \(transitions, start, end\)"):
        CRF(2, constraints=torch.ones(2, 2, dtype=torch.bool))


def test_crf_module_imports_nothing_from_the_package():
    """Like pytorch-crf, the layer stands alone: no import of course_utils at module level."""
    import ast
    import inspect

    from course_utils import crf as crf_module

    tree = ast.parse(inspect.getsource(crf_module))
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert all(not (isinstance(n, ast.ImportFrom) and (n.level or "course_utils" in (n.module or "")))
               for n in top_level)


# --- property: the CRF against brute force on random small shapes ----------


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    num_tags=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    scheme=st.sampled_from([None, "BIO"]),
)
def test_property_log_partition_viterbi_and_marginals_match_brute_force(lengths, num_tags, seed, scheme):
    tags_names = BIO_TAGS[:3] if scheme else None
    num_tags = 3 if scheme else num_tags
    constraints = scheme_constraints(tags_names, scheme) if scheme else None
    valid = (lambda path: is_valid([tags_names[i] for i in path], scheme)) if scheme else (lambda path: True)
    crf = make_crf(num_tags, seed=seed, constraints=constraints)
    emissions, _, mask = make_batch(lengths, num_tags, seed=seed)
    log_z, paths, marginals = crf.log_partition(emissions, mask), crf.decode(emissions, mask), crf.marginals(emissions, mask)
    for b, length in enumerate(lengths):
        scored = all_paths(crf, emissions[b], length, valid)
        assert log_z[b].item() == pytest.approx(brute_log_partition(scored), abs=1e-9)
        assert path_score(crf, emissions[b], tuple(paths[b])) == pytest.approx(scored[0][0], abs=1e-9)
        expected = torch.zeros(length, num_tags, dtype=torch.float64)
        for score, path in scored:
            expected[torch.arange(length), torch.tensor(path)] += math.exp(score - brute_log_partition(scored))
        torch.testing.assert_close(marginals[b, :length], expected)


# --- error messages print the offending values; the overflow guard ----------


def test_error_messages_print_the_offending_shape_position_and_values():
    crf = CRF(4)
    emissions, tags, mask = make_batch([3, 3], 4, seed=70)
    emissions, tags = emissions.float(), tags.clamp(max=2)
    with pytest.raises(ValueError, match=r"num_tags=4\), got \(2, 3, 3\)$"):
        crf.decode(emissions[:, :, :3])
    with pytest.raises(ValueError, match=r"length >= 1, num_tags=4\), got \(2, 0, 4\)$"):
        crf.decode(emissions[:, :0])
    bad = emissions.clone()
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"first at sentence 1, token 2\)"):
        crf.decode(bad)
    for wrong, values in ((5, r"\[0, 5\]"), (-1, r"\[-1, 2\]")):
        with pytest.raises(ValueError, match=rf"must lie in \[0, 3\] on unmasked positions, got values in {values}$"):
            crf(emissions, tags.index_put((torch.tensor(1), torch.tensor(2)), torch.tensor(wrong)), mask)


def test_error_messages_name_only_the_sentences_at_fault():
    bio = CRF(len(BIO_TAGS), constraints=scheme_constraints(BIO_TAGS, "BIO"))
    emissions = torch.randn(3, 2, len(BIO_TAGS))
    with pytest.raises(ValueError, match=r"tags of sentence\(s\) \[1, 2\] break"):
        bio(emissions, torch.tensor([[0, 1], [0, 2], [2, 2]]))  # O I-PER, I-PER I-PER
    crf = CRF(3)
    emissions = torch.zeros(3, 2, 3)
    emissions[1] = 3e38
    with pytest.raises(ValueError, match=r"log partition function of sentence 1 is not finite") as error:
        crf.log_partition(emissions)
    assert "more)" not in str(error.value) and "lower the learning rate" in str(error.value)
    emissions[2] = 3e38
    with pytest.raises(ValueError, match=r"log partition function of sentence 1 \(and 1 more\) is not finite"):
        crf.log_partition(emissions)


def test_parameters_start_uniform_in_plus_minus_a_tenth():
    torch.manual_seed(71)
    crf = CRF(40)
    for parameter in crf.parameters():
        assert -0.1 <= parameter.min() < -0.05 and 0.05 < parameter.max() <= 0.1


@pytest.mark.parametrize("constraints", [
    [torch.ones(2, 2, dtype=torch.bool), torch.ones(2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)],
    (torch.ones(2, 2, dtype=torch.bool), torch.ones(2, dtype=torch.bool)),
], ids=["a list", "two masks"])
def test_constraints_that_are_not_a_tuple_of_three_raise_type_error(constraints):
    with pytest.raises(TypeError, match=rf"\(transitions, start, end\) of bool tensors, got {type(constraints).__name__}$"):
        CRF(2, constraints=constraints)


@pytest.mark.parametrize("size", [1e38, 1e30])
def test_huge_finite_parameters_are_an_error_not_a_loss_of_zero(size):
    """Probe: CRF parameters of 1e38 gave a loss of 0: float32 rounding swallowed every emission."""
    crf = CRF(5)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.fill_(size)
    emissions, tags = torch.randn(2, 2, 5), torch.zeros(2, 2, dtype=torch.long)
    refused = r"sentence 0 \(and 1 more\) is (not finite|\S+, too large to resolve a difference of 1): the scores overflow"
    for call in (lambda: crf(emissions, tags), lambda: crf.log_partition(emissions), lambda: crf.marginals(emissions),
                 lambda: crf.score(emissions, tags), lambda: crf.decode(emissions)):
        with pytest.raises(ValueError, match=refused):
            call()


def test_scores_are_refused_from_where_float32_rounding_exceeds_1():
    """log Z = start score here (one tag, one token, zero emission and end): the limit is 1 / eps."""
    eps = torch.finfo(torch.float32).eps
    crf = CRF(1)
    torch.nn.init.zeros_(crf.end_transitions)
    emissions = torch.zeros(1, 1, 1)
    with torch.no_grad():
        crf.start_transitions.fill_(0.5 / eps)
    assert crf.log_partition(emissions).item() == 0.5 / eps
    with torch.no_grad():
        crf.start_transitions.fill_(1.5 / eps)
    with pytest.raises(ValueError, match=r"is 1\.26e\+07, too large to resolve a difference of 1"):
        crf.log_partition(emissions)


def test_sparse_emissions_are_refused_with_what_to_do():
    crf = make_crf(3, seed=61)
    emissions = torch.randn(1, 2, 3, dtype=torch.float64).to_sparse()
    with pytest.raises(ValueError, match="dense tensor, got layout torch.sparse_coo: call .to_dense"):
        crf.decode(emissions)
