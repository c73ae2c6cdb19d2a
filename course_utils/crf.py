"""A linear-chain conditional random field (CRF) for sequence labelling.

Introduced in lesson 05 (BiLSTM-CNN-CRF for named-entity recognition).

A network (for example a BiLSTM over word and character features) gives every
token a score for every tag: the *emissions*, shape (B, L, T) for B sentences
of at most L tokens and T tags. The CRF adds a learnable score for every pair
of consecutive tags, so the score of a whole tag sequence y_1..y_n is

    score(y) = start[y_1] + sum_t emissions[t, y_t]
               + sum_t transitions[y_t, y_{t+1}] + end[y_n]

and its probability is exp(score(y)) / Z, where the partition function Z sums
exp(score) over all T**n tag sequences. Dynamic programming makes every
quantity below cost O(n * T * T) instead of O(T**n):

- forward algorithm (log Z), for the negative log-likelihood used in training;
- Viterbi (the best sequence), for decoding;
- forward-backward (per-token marginal probabilities).

All functions are batched: B sentences of different lengths are processed
together, with a boolean mask (B, L) that is True on real tokens. Loops run
over time steps only, never over sentences.

Tagging schemes such as BIO forbid some tag bigrams (``O`` followed by
``I-PER``). ``CRF(num_tags, constraints=(transitions, start, end))`` takes
three boolean masks of the allowed transitions, first tags and last tags
(``course_utils.ner_data.scheme_constraints`` builds them for a scheme) and
gives every forbidden one a fixed, non-learnable score, so that training
ignores them and decoding never produces them.

Like pytorch-crf, this module depends on nothing but PyTorch (NumPy for the
backtrace): inputs are checked once, where a public method is called, and
half-precision emissions (float16, bfloat16) are computed in float32.
"""

from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

Reduction = Literal["none", "sum", "mean", "token_mean"]

# Score given to forbidden transitions in training and marginals. It is
# finite on purpose: with -inf, a tag that no allowed path can reach would
# make logsumexp's gradient NaN. exp(-10000) is exactly 0 in float32 and
# float64, so these paths carry no probability. Decoding uses -inf instead,
# so that no decoded path can ever contain a forbidden transition.
FORBIDDEN_SCORE = -10000.0

# Allowed transitions (T, T), allowed first tags (T,) and allowed last tags (T,),
# all bool: transitions[i, j] is True if tag j may follow tag i.
Constraints = tuple[Tensor, Tensor, Tensor]

# ---------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------


def _check_emissions(emissions: Tensor, num_tags: int) -> Tensor:
    """Return the (B, L, T) emissions, in float32 if they were float16 or bfloat16."""
    if not isinstance(emissions, Tensor):
        raise TypeError(f"emissions must be a torch.Tensor, got {type(emissions).__name__}")
    if emissions.layout != torch.strided:
        raise ValueError(f"emissions must be a dense tensor, got layout {emissions.layout}: "
                         "call .to_dense() first")
    if emissions.dim() != 3 or emissions.size(2) != num_tags or emissions.size(1) == 0:
        raise ValueError(
            f"emissions must have shape (batch, length >= 1, num_tags={num_tags}), "
            f"got {tuple(emissions.shape)}"
        )
    if not emissions.is_floating_point():
        raise ValueError(f"emissions must be a float tensor, got {emissions.dtype}")
    if emissions.size(0) == 0:
        raise ValueError("emissions hold no sentence (batch size 0): expected at least one")
    if not torch.isfinite(emissions).all():
        bad = (~torch.isfinite(emissions)).any(dim=2).nonzero()[0].tolist()
        raise ValueError(
            f"emissions must be finite, got NaN or inf (first at sentence {bad[0]}, token {bad[1]}); "
            "check the network that computes them (training that diverged, e.g. a too-large learning rate, or "
            "weights that were damaged)"
        )
    # Sums of many half-precision scores overflow (float16 ends at 65504): compute in float32.
    return emissions.float() if emissions.dtype in (torch.float16, torch.bfloat16) else emissions


def _check_mask(mask: Tensor | None, emissions: Tensor) -> Tensor:
    """Return a valid (B, L) bool prefix mask; None means every token is real."""
    if mask is None:
        return torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a torch.bool tensor, got {mask.dtype}")
    if mask.shape != emissions.shape[:2]:
        raise ValueError(
            f"mask must have shape (batch, length) = {tuple(emissions.shape[:2])}, "
            f"got {tuple(mask.shape)}"
        )
    if not mask[:, 0].all():
        raise ValueError("mask[:, 0] must be all True: every sentence needs at least one token")
    if (mask[:, 1:] & ~mask[:, :-1]).any():
        raise ValueError("mask must be a prefix mask: in each row, True values then False values")
    return mask


def _check_tags(tags: Tensor, mask: Tensor, num_tags: int) -> None:
    if not isinstance(tags, Tensor):
        raise TypeError(f"tags must be a torch.Tensor, got {type(tags).__name__}")
    if tags.dtype != torch.long:
        raise ValueError(f"tags must be a torch.long tensor, got {tags.dtype}")
    if tags.shape != mask.shape:
        raise ValueError(
            f"tags must have shape (batch, length) = {tuple(mask.shape)}, got {tuple(tags.shape)}"
        )
    real = tags[mask]
    if real.numel() and (real.min() < 0 or real.max() >= num_tags):
        raise ValueError(
            f"tags must lie in [0, {num_tags - 1}] on unmasked positions, "
            f"got values in [{real.min().item()}, {real.max().item()}]"
        )


def _require_representable(values: Tensor, what: str) -> None:
    """Raise ValueError if the per-sentence ``values`` (B,) overflowed: NaN, inf, or so large
    that their rounding step exceeds 1, which hides every score below it (a loss of 0)."""
    step = values.abs() * torch.finfo(values.dtype).eps   # (B,) gap to the next representable value
    if not (step < 1).all():                                # NaN and inf fail this test too
        bad = (~(step < 1)).nonzero().flatten().tolist()
        first = values[bad[0]].item()
        state = "not finite" if not np.isfinite(first) else f"{first:.3g}, too large to resolve a difference of 1"
        which = f"{bad[0]}" + (f" (and {len(bad) - 1} more)" if len(bad) > 1 else "")
        raise ValueError(
            f"the {what} of sentence {which} is {state}: the scores overflow {values.dtype}; expected "
            "emissions and CRF parameters of moderate size (in training: lower the learning rate)"
        )


def _require_reachable(best_scores: Tensor) -> None:
    """Raise ValueError if a sentence's best path score (B,) is -inf: no path obeys the constraints."""
    if torch.isneginf(best_scores).any():
        bad = torch.isneginf(best_scores).nonzero().flatten().tolist()
        raise ValueError(f"no tag sequence satisfies the transition constraints for sentence(s) {bad}")
    _require_representable(best_scores, "best path score")


# ---------------------------------------------------------------------------
# The CRF layer
# ---------------------------------------------------------------------------


class CRF(nn.Module):
    """Linear-chain CRF over T tags, batch-first.

    Introduced in lesson 05.

    Shapes used by every method: emissions (B, L, T) float, tags (B, L) long,
    mask (B, L) bool prefix mask (True on the real tokens, at least one per
    sentence; ``None`` means no padding). Tag values under a False mask are
    ignored, so padding may use any value (for example -100).

    Parameters:
        start_transitions: (T,) score of starting a sentence with each tag.
        end_transitions: (T,) score of ending a sentence with each tag.
        transitions: (T, T); transitions[i, j] is the score of tag j right after tag i.

    Args:
        num_tags: T, the number of tags.
        constraints: optional (transitions (T, T), start (T,), end (T,)) bool
            masks of the allowed transitions, first tags and last tags (see
            ``course_utils.ner_data.scheme_constraints``); forbidden ones get a
            fixed score in training and are never decoded.
    """

    def __init__(self, num_tags: int, constraints: Constraints | None = None) -> None:
        super().__init__()
        if not isinstance(num_tags, int) or isinstance(num_tags, bool) or num_tags < 1:
            raise ValueError(f"num_tags must be a positive int, got {num_tags!r}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end_transitions = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))
        if constraints is None:
            everything = torch.ones(num_tags, num_tags, dtype=torch.bool)
            constraints = (everything, everything[0], everything[0])
        self._register_constraints(constraints)

    def _register_constraints(self, constraints: Constraints) -> None:
        """Store the allowed-transition masks as (non-learnable) buffers."""
        t = self.num_tags
        if not isinstance(constraints, tuple) or len(constraints) != 3:
            raise TypeError("constraints must be a tuple (transitions, start, end) of bool tensors, "
                            f"got {type(constraints).__name__}")
        names = [("transitions", (t, t)), ("start", (t,)), ("end", (t,))]
        for (name, expected), value in zip(names, constraints):
            if not isinstance(value, Tensor) or value.dtype != torch.bool or value.shape != expected:
                got = (value.dtype, tuple(value.shape)) if isinstance(value, Tensor) else type(value)
                raise ValueError(f"constraints.{name} must be a bool tensor of shape {expected}, got {got}")
        transitions, start, end = constraints
        self.register_buffer("allowed_transitions", transitions.clone())
        self.register_buffer("allowed_start", start.clone())
        self.register_buffer("allowed_end", end.clone())

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    def _check_inputs(self, emissions: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Every check of a public method's inputs, once: the parameters and the emissions must
        be finite, the mask a prefix mask. Returns emissions (B, L, T) (float32 if they were
        half precision) and the (B, L) bool mask."""
        for name, parameter in self.named_parameters():
            if not torch.isfinite(parameter).all():
                raise ValueError(f"the CRF parameter {name} holds NaN or inf: expected finite "
                                 "scores (corrupted weights, or a training run that diverged?)")
        emissions = _check_emissions(emissions, self.num_tags)
        return emissions, _check_mask(mask, emissions)

    def _scores(self, forbidden: float) -> tuple[Tensor, Tensor, Tensor]:
        """Start (T,), transition (T, T) and end (T,) scores, forbidden entries set to ``forbidden``.

        masked_fill copies the parameters, so forbidden entries get no gradient.
        Half-precision parameters are computed in float32, like the emissions.
        """
        dtype = torch.promote_types(self.transitions.dtype, torch.float32)
        return (
            self.start_transitions.masked_fill(~self.allowed_start, forbidden).to(dtype),
            self.transitions.masked_fill(~self.allowed_transitions, forbidden).to(dtype),
            self.end_transitions.masked_fill(~self.allowed_end, forbidden).to(dtype),
        )

    # -- training ----------------------------------------------------------

    def forward(
        self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None,
        reduction: Reduction = "mean",
    ) -> Tensor:
        """Negative log-likelihood of the gold tags: log Z - score(tags).

        Args:
            emissions: (B, L, T) float.
            tags: (B, L) long, the gold tags.
            mask: (B, L) bool prefix mask, or None.
            reduction: "none" -> (B,) per sentence; "sum" -> (); "mean" -> ()
                averaged over sentences; "token_mean" -> () divided by the
                number of real tokens.

        Returns:
            The loss, shape (B,) or () depending on ``reduction``.
        """
        if reduction not in ("none", "sum", "mean", "token_mean"):
            raise ValueError(f"reduction must be 'none', 'sum', 'mean' or 'token_mean', got {reduction!r}")
        emissions, mask = self._check_inputs(emissions, mask)
        self._check_gold(tags, mask)
        log_z = self._log_partition(emissions, mask)                                    # (B,)
        _require_representable(log_z, "log partition function")
        nll = log_z - self._score(emissions, tags, mask)                               # (B,)
        _require_representable(nll, "negative log-likelihood")
        if reduction == "none":
            return nll
        if reduction == "sum":
            return nll.sum()
        if reduction == "mean":
            return nll.mean()
        return nll.sum() / mask.sum()

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor | None = None) -> Tensor:
        """Score of the given tag sequences (the numerator of the likelihood, in log space).

        Raises ValueError if a sequence uses a transition the constraints forbid.

        Args:
            emissions: (B, L, T) float.
            tags: (B, L) long.
            mask: (B, L) bool prefix mask, or None.

        Returns:
            (B,) score of each sentence's tag sequence.
        """
        emissions, mask = self._check_inputs(emissions, mask)
        self._check_gold(tags, mask)
        scores = self._score(emissions, tags, mask)
        _require_representable(scores, "score")
        return scores

    def _score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """``score`` on checked inputs: (B,)."""
        tags = tags.masked_fill(~mask, 0)                                    # (B, L), padding -> 0
        last_tags = tags.gather(1, mask.sum(1, keepdim=True) - 1).squeeze(1)  # (B,)
        start, transitions, end = self._scores(FORBIDDEN_SCORE)

        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)         # (B, L)
        moved = transitions[tags[:, :-1], tags[:, 1:]]                       # (B, L - 1)
        return (
            start[tags[:, 0]]
            + torch.where(mask, emitted, 0.0).sum(1)
            + torch.where(mask[:, 1:], moved, 0.0).sum(1)
            + end[last_tags]
        )

    def _check_gold(self, tags: Tensor, mask: Tensor) -> None:
        """Raise ValueError unless the (B, L) tags are valid ids that use no start, transition or
        end the constraints forbid."""
        _check_tags(tags, mask, self.num_tags)
        tags = tags.masked_fill(~mask, 0)
        last_tags = tags.gather(1, mask.sum(1, keepdim=True) - 1).squeeze(1)  # (B,)
        moves_ok = self.allowed_transitions[tags[:, :-1], tags[:, 1:]] | ~mask[:, 1:]  # (B, L - 1)
        ok = moves_ok.all(1) & self.allowed_start[tags[:, 0]] & self.allowed_end[last_tags]  # (B,)
        if not ok.all():
            bad = (~ok).nonzero().flatten().tolist()
            raise ValueError(
                f"tags of sentence(s) {bad} break the transition constraints "
                "(wrong tagging scheme in the data?)"
            )

    def log_partition(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """log Z: the log-sum-exp of the scores of all tag sequences (forward algorithm).

        Args:
            emissions: (B, L, T) float.
            mask: (B, L) bool prefix mask, or None.

        Returns:
            (B,) log partition function of each sentence.
        """
        emissions, mask = self._check_inputs(emissions, mask)
        log_z = self._log_partition(emissions, mask)
        _require_representable(log_z, "log partition function")
        return log_z

    def _log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """``log_partition`` on checked inputs: (B,)."""
        _, _, end = self._scores(FORBIDDEN_SCORE)
        alphas = self._forward_alphas(emissions, mask)  # (B, L, T)
        return torch.logsumexp(alphas[:, -1] + end, dim=1)

    def _forward_alphas(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Forward variables: alphas[b, t, j] = log-sum-exp of the scores of all
        prefixes y_1..y_t with y_t = j (emission at t included).

        Past a sentence's end, alphas repeat the value at its last token, so
        alphas[:, -1] holds each sentence's final forward variables.

        Args:
            emissions: (B, L, T) float.
            mask: (B, L) bool prefix mask.

        Returns:
            (B, L, T) forward variables.
        """
        start, transitions, _ = self._scores(FORBIDDEN_SCORE)
        steps = emissions.unbind(1)   # L tensors (B, T); unbind has a cheap backward
        alpha = start + steps[0]      # (B, T)
        alphas = [alpha]
        for emission, real in zip(steps[1:], mask.unbind(1)[1:]):
            # (B, T, 1) + (T, T) -> (B, T_prev, T_next), summed over the previous tag.
            nxt = torch.logsumexp(alpha.unsqueeze(2) + transitions, dim=1) + emission
            alpha = torch.where(real.unsqueeze(1), nxt, alpha)
            alphas.append(alpha)
        return torch.stack(alphas, dim=1)

    # -- marginals ---------------------------------------------------------

    def marginals(self, emissions: Tensor, mask: Tensor | None = None) -> Tensor:
        """Per-token marginal probabilities P(y_t = j | sentence) (forward-backward).

        Args:
            emissions: (B, L, T) float.
            mask: (B, L) bool prefix mask, or None.

        Returns:
            (B, L, T) probabilities; each real token's row sums to 1, padding rows are 0.
        """
        emissions, mask = self._check_inputs(emissions, mask)
        _, transitions, end = self._scores(FORBIDDEN_SCORE)
        alphas = self._forward_alphas(emissions, mask)                    # (B, L, T)
        log_z = torch.logsumexp(alphas[:, -1] + end, dim=1)               # (B,)
        _require_representable(log_z, "log partition function")

        # Backward variables: betas[b, t, i] = log-sum-exp of the scores of all
        # suffixes after position t given y_t = i (end transition included).
        beta = end.expand_as(alphas[:, 0])                                # (B, T)
        betas = [beta]
        for t in range(emissions.size(1) - 2, -1, -1):
            ahead = (emissions[:, t + 1] + beta).unsqueeze(1)             # (B, 1, T_next)
            nxt = torch.logsumexp(transitions + ahead, dim=2)             # (B, T_prev)
            # If t + 1 is padding, t is the last real token (or padding too).
            beta = torch.where(mask[:, t + 1].unsqueeze(1), nxt, end)
            betas.append(beta)
        betas = torch.stack(betas[::-1], dim=1)                           # (B, L, T)

        probs = torch.exp(alphas + betas - log_z[:, None, None])
        return torch.where(mask.unsqueeze(2), probs, 0.0)

    # -- decoding ----------------------------------------------------------

    def decode(self, emissions: Tensor, mask: Tensor | None = None) -> list[list[int]]:
        """Best tag sequence of each sentence (Viterbi), obeying the constraints.

        Args:
            emissions: (B, L, T) float.
            mask: (B, L) bool prefix mask, or None.

        Returns:
            B lists of tag indices, each as long as its sentence.
        """
        emissions, mask = self._check_inputs(emissions, mask)
        best_scores, paths = self._viterbi(emissions, mask)
        _require_reachable(best_scores)
        return [path[:n] for path, n in zip(paths.tolist(), mask.sum(1).tolist())]

    @torch.no_grad()
    def _viterbi(self, emissions: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Batched Viterbi: a forward pass over the time steps, then a backtrace.

        Args:
            emissions: (B, L, T) float.
            mask: (B, L) bool prefix mask.

        Returns:
            best_scores (B,) and best_paths (B, L) long, on the CPU; past each
            sentence's end the path repeats its last tag.
        """
        start, transitions, end = self._scores(float("-inf"))
        batch_size, length, _ = emissions.shape

        # 1. Forward: scores[t][j, b] is the best score of a prefix of sentence b
        #    that ends in tag j at step t. Every sentence runs to length L; steps
        #    past its end are ignored below. The layout (T, B) makes the max over
        #    the previous tag a reduction over the first dimension of a contiguous
        #    tensor (a choice made in the hope of speed; the course does not time
        #    the alternative, so whether it is faster is untested).
        steps = emissions.permute(1, 2, 0).contiguous()                   # (L, T, B)
        score = start.unsqueeze(1) + steps[0]                             # (T, B)
        scores = [score]
        for emission in steps[1:]:
            # (T_prev, 1, B) + (T_prev, T_next, 1), max over T_prev -> (T_next, B)
            score = (score.unsqueeze(1) + transitions.unsqueeze(2)).amax(dim=0) + emission
            scores.append(score)
        scores = torch.stack(scores).transpose(1, 2)                      # (L, B, T)

        # 2. Each sentence's best last tag, at its own last token.
        last = mask.sum(1) - 1                                            # (B,)
        final = scores[last, torch.arange(batch_size, device=last.device)] + end  # (B, T)
        best_scores, tag = final.max(dim=1)                               # (B,), (B,)

        # 3. Backtrace from step L - 1, all sentences at once. Rather than store a
        #    back-pointer for every step and tag, recompute it for the one tag on
        #    the path: the previous tag i with the best scores[t - 1][b, i] +
        #    transitions[i, tag]. The arrays are tiny (B, T), so this loop runs in
        #    NumPy, in the expectation that its per-call overhead is smaller than
        #    PyTorch's on arrays this small (an expectation: not timed). Past a sentence's
        #    end the tag stays put until the walk reaches its last token.
        scores = scores.cpu().numpy()                                     # (L, B, T)
        into = transitions.T.cpu().numpy()                                # into[j] = transitions[:, j]
        real = mask.T.cpu().numpy()                                       # (L, B)
        tag = tag.cpu().numpy()
        path = np.empty((length, batch_size), dtype=np.int64)             # (L, B)
        path[-1] = tag
        for t in range(length - 1, 0, -1):
            previous = (scores[t - 1] + into[tag]).argmax(axis=1)         # (B,)
            tag = np.where(real[t], previous, tag)
            path[t - 1] = tag
        return best_scores, torch.from_numpy(path.T)
