"""Likelihood estimates for masked models: I-MDCE time-free, time-integral, coupled ratios.

DESIGN.md section 5. For a sequence x of length L (or a response of length L given a
prompt), one sample = one model pass:

time_free (I-MDCE):  k ~ Uniform{0..L-1}, I a uniform subset of size k left observed,
                     estimate = L / (L - k) * sum_{i not in I} -log p_i(x_i | x_I)
time_integral (MDLM): t ~ U(0, 1), each position masked with probability t,
                     estimate = (1 / t) * sum_{masked i} -log p_i(x_i | x_unmasked)

Both have expectation -log p(x) for exact conditionals (both equal the average over all
orders of the chain rule). ``stratified=True`` spreads k (or t) evenly over the samples of
one sequence (one uniform offset, S strata) instead of drawing them independently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .interface import allowed_tokens, masked_log_probs, scorable

METHODS = ("time_free", "time_integral")


@dataclass
class NLLResult:
    """nll: (B,) mean estimate of -log p(x) (or of the response given the prompt), nats;
    stderr: (B,) its standard error; samples: (B, S) the per-sample estimates;
    tokens: (B,) tokens scored (L, or the response length)."""

    nll: torch.Tensor
    stderr: torch.Tensor
    samples: torch.Tensor
    tokens: torch.Tensor

    @property
    def per_token(self) -> torch.Tensor:
        return self.nll / self.tokens


def _check(x, samples, method, prompt_mask):
    if x.dim() != 2:
        raise ValueError(f"x must be (B, L), got shape {tuple(x.shape)}")
    if samples < 2:
        raise ValueError(f"samples must be >= 2 (for a standard error), got {samples}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if prompt_mask is not None:
        if prompt_mask.shape != x.shape:
            raise ValueError(f"prompt_mask must have shape {tuple(x.shape)}, got {tuple(prompt_mask.shape)}")
        if bool(prompt_mask.all(1).any()):
            raise ValueError("prompt_mask leaves some sequence with no response to score")


def draw_masks(scored: torch.Tensor, samples: int, method: str, g: torch.Generator | None,
               stratified: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks (B, S, L) over the ``scored`` positions (B, L) and their weights (B, S).

    time_free: k ~ U{0..n-1} observed among the n scored positions, weight n / (n - k).
    time_integral: t ~ U(0, 1), each scored position masked w.p. t, weight 1 / t.
    """
    B, L = scored.shape
    n = scored.sum(1).double()  # (B,) positions scored
    u = torch.rand(B, samples, generator=g, dtype=torch.float64)
    if stratified:
        offset = torch.rand(B, 1, generator=g, dtype=torch.float64)
        u = (offset + torch.arange(samples, dtype=torch.float64) / samples) % 1.0
    rank = torch.rand(B, samples, L, generator=g).masked_fill(~scored[:, None], 2.0).argsort(-1).argsort(-1)
    if method == "time_free":
        k = (u * n[:, None]).floor().clamp(max=n[:, None] - 1)  # (B, S) observed count
        mask = (rank >= k[..., None]) & scored[:, None]  # the first k in random rank stay observed
        weight = n[:, None] / (n[:, None] - k)
    else:
        t = (1.0 - u).clamp_min(1e-12)  # in (0, 1]
        mask = (torch.rand(B, samples, L, generator=g, dtype=torch.float64) < t[..., None]) & scored[:, None]
        weight = 1.0 / t
    return mask, weight


@torch.no_grad()
def _masked_nll(model, x: torch.Tensor, mask: torch.Tensor, batch_size: int, allowed) -> torch.Tensor:
    """For each row of x (N, L) with ``mask`` (N, L): sum_{masked i} -log p_i(x_i | x_rest)."""
    out = []
    for s in range(0, len(x), batch_size):
        xs, ms = x[s: s + batch_size], mask[s: s + batch_size]
        inp = torch.where(ms, torch.full_like(xs, model.mask_id), xs)
        lp = masked_log_probs(model(inp).logits, allowed).double()  # (n, L, V)
        tok = lp.gather(-1, xs.clamp(0, lp.shape[-1] - 1)[..., None])[..., 0]
        # a scored token of probability 0 gives +inf, not a silent 0
        out.append(torch.where(ms, -tok, torch.zeros_like(tok)).sum(1))
    return torch.cat(out)


def _summarise(est: torch.Tensor, tokens: torch.Tensor) -> NLLResult:
    S = est.shape[1]
    return NLLResult(nll=est.mean(1), stderr=est.std(1) / math.sqrt(S), samples=est, tokens=tokens)


def nll(model, x: torch.Tensor, samples: int = 64, method: str = "time_free",
        prompt_mask: torch.Tensor | None = None, generator: torch.Generator | None = None,
        stratified: bool = False, batch_size: int = 256, allowed=None) -> NLLResult:
    """Estimate -log p(x) in nats per sequence of x (B, L) with ``samples`` model passes each.

    ``prompt_mask`` (B, L) bool: those positions are always observed and the estimate is
    the conditional -log p(response | prompt). Cost: B * samples passes, batched.
    """
    _check(x, samples, method, prompt_mask)
    B, L = x.shape
    scored = scorable(model, x) if prompt_mask is None else scorable(model, x) & ~prompt_mask
    if not bool(scored.any(1).all()):
        raise ValueError("some sequence has no position to score")
    mask, weight = draw_masks(scored, samples, method, generator, stratified)  # (B, S, L), (B, S)
    allow = allowed_tokens(model, allowed)
    xs = x[:, None].expand(B, samples, L).reshape(-1, L)
    terms = _masked_nll(model, xs, mask.reshape(-1, L), batch_size, allow).view(B, samples)
    return _summarise(weight * terms, scored.sum(1))


def log_ratio(model, x: torch.Tensor, y: torch.Tensor, samples: int = 64, coupled: bool = True,
              method: str = "time_free", generator: torch.Generator | None = None,
              stratified: bool = False, batch_size: int = 256, allowed=None) -> NLLResult:
    """Estimate log p(x) - log p(y) for same-length x, y (B, L); 2 * samples passes each.

    coupled=True draws one set of masks and uses it for both sequences (common random
    numbers), so shared terms cancel; coupled=False draws them independently. The result's
    ``nll`` field holds the estimated log-ratio (nats) and ``stderr`` its standard error.
    """
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    _check(x, samples, method, None)
    B, L = x.shape
    scored = scorable(model, x)
    if not torch.equal(scored, scorable(model, y)):
        raise ValueError("x and y must have their special/padding tokens in the same places")
    allow = allowed_tokens(model, allowed)
    mx, wx = draw_masks(scored, samples, method, generator, stratified)
    my, wy = (mx, wx) if coupled else draw_masks(scored, samples, method, generator, stratified)
    both = torch.cat([x[:, None].expand(B, samples, L), y[:, None].expand(B, samples, L)]).reshape(-1, L)
    masks = torch.cat([mx, my]).reshape(-1, L)
    terms = _masked_nll(model, both, masks, batch_size, allow).view(2, B, samples)
    est = wy * terms[1] - wx * terms[0]  # -log p(y) - (-log p(x))
    return _summarise(est, scored.sum(1))


@torch.no_grad()
def pseudo_log_likelihood(model, x: torch.Tensor, positions: torch.Tensor | None = None, batch_size: int = 128,
                          allowed=None) -> torch.Tensor:
    """log p_i(x_i | x_{-i}) (nats) at each of ``positions`` (B, L) bool (default: every
    scorable position), each masked alone; 0 elsewhere. (B, L) float64. One model pass per
    position scored, in batches of ``batch_size``."""
    if positions is None:
        positions = scorable(model, x)
    allow = allowed_tokens(model, allowed)
    rows, cols = positions.nonzero().unbind(1)
    out = torch.zeros(x.shape, dtype=torch.float64)
    for s in range(0, len(rows), batch_size):
        r, c = rows[s: s + batch_size], cols[s: s + batch_size]
        inp = x[r].clone()
        inp[torch.arange(len(r)), c] = model.mask_id
        a = allow[r] if allow.dim() == 3 else allow
        lp = masked_log_probs(model(inp).logits, a).double()
        out[r, c] = lp[torch.arange(len(r)), c, x[r, c]]
    return out
