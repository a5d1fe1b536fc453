"""The one decoding loop (DESIGN.md section 4).

Each step: one model pass over the unfinished sequences -> marginals over the allowed
tokens (+ hidden states) -> the selector picks a set S of masked positions -> every
position in S is filled independently from its own marginal (greedy = argmax). A sequence
leaves the batch once nothing in it is masked, so it costs no further passes.
NFE = the number of model passes a sequence took part in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .interface import allowed_tokens, free_positions, masked_log_probs
from .selectors.base import StepState


@dataclass
class DecodeResult:
    """tokens: (B, L) filled sequences; nfe: (B,) model passes per sequence;
    trace: per step, a dict (see :func:`decode`) when ``trace=True``."""

    tokens: torch.Tensor
    nfe: torch.Tensor
    trace: list[dict] = field(default_factory=list)


def fill(log_probs: torch.Tensor, temperature: float, generator: torch.Generator | None) -> torch.Tensor:
    """(B, L, V) log-marginals -> (B, L) tokens: argmax at temperature 0, else a sample
    from softmax(log_probs / temperature) by the Gumbel-max trick."""
    if temperature == 0:
        return log_probs.argmax(-1)
    u = torch.rand(log_probs.shape, generator=generator).clamp_(1e-20, 1.0)
    return (log_probs / temperature - torch.log(-torch.log(u))).argmax(-1)


@torch.no_grad()
def decode(
    model,
    x: torch.Tensor,
    selector,
    generator: torch.Generator | None = None,
    temperature: float = 0.0,
    allowed: torch.Tensor | None = None,
    trace: bool = False,
    max_steps: int | None = None,
) -> DecodeResult:
    """Fill every masked position of ``x`` (B, L) with ``model`` and ``selector``.

    ``allowed`` (V,) or (B, L, V) restricts the tokens (default: the model's). Observed
    positions are never changed; each step fills at least one position per unfinished
    sequence, so the loop ends after at most L passes. ``trace=True`` records, per step,
    the batch rows taken (``rows``), the positions filled (``filled``, a list per row),
    their entropies (nats), tokens, and for MI-guided selectors the predicted pairwise
    matrix among them (``pairwise``). Cost: ``result.nfe.sum()`` model passes.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if x.dim() != 2:
        raise ValueError(f"x must be (B, L), got shape {tuple(x.shape)}")
    x = x.clone()
    allow = allowed_tokens(model, allowed)
    masked = free_positions(model, x)  # (B, L)
    nfe = torch.zeros(x.shape[0], dtype=torch.long)
    steps: list[dict] = []
    limit = max_steps if max_steps is not None else x.shape[1] + 1
    for _ in range(limit):
        rows = masked.any(1).nonzero().squeeze(1)  # unfinished sequences
        if len(rows) == 0:
            break
        xb, mb = x[rows], masked[rows]
        out = model(xb)
        nfe[rows] += 1
        a = allow[rows] if allow.dim() == 3 else allow
        state = StepState(x=xb, log_probs=masked_log_probs(out.logits, a), masked=mb, hidden=out.hidden)
        sel = selector(state) & mb  # (b, L)
        empty = ~sel.any(1)
        if empty.any():  # guarantee progress: the most confident masked position
            best = state.score("confidence").argmax(-1)
            sel[empty, best[empty]] = True
        new = fill(state.log_probs, temperature, generator)
        x[rows] = torch.where(sel, new, xb)
        masked[rows] = mb & ~sel
        if trace:
            step = {
                "rows": rows.tolist(),
                "filled": [s.nonzero().squeeze(1).tolist() for s in sel],
                "entropy": [state.entropy[i][s].tolist() for i, s in enumerate(sel)],
                "tokens": [new[i][s].tolist() for i, s in enumerate(sel)],
            }
            pairwise = getattr(selector, "last", None)  # MI selectors keep this step's matrix
            if pairwise is not None:
                step["pairwise"] = [pairwise[i][s][:, s].tolist() for i, s in enumerate(sel)]
            steps.append(step)
    return DecodeResult(tokens=x, nfe=nfe, trace=steps)


def replay(x: torch.Tensor, result: DecodeResult):
    """Walk a traced decode of ``x`` (B, L): yields ``(row, state, filled)`` for every
    row of every step, ``state`` a copy of that row's (L,) tokens just before the step."""
    states = x.clone()
    for step in result.trace:
        for r, filled in zip(step["rows"], step["filled"]):
            yield r, states[r].clone(), filled
            states[r, filled] = result.tokens[r, filled]
