"""The one decoding loop (DESIGN.md section 4).

Each step: one model pass over the unfinished sequences -> marginals over the allowed
tokens (+ hidden states) -> the selector picks a set S of masked positions -> every
position in S is filled independently from its own marginal (greedy = argmax). A selector
may also re-mask positions it filled earlier (a :class:`~mdmi.selectors.base.Step`); they
are filled again at a later step. A sequence leaves the batch once nothing in it is
masked, so it costs no further passes. NFE = the number of model passes a sequence took
part in, re-masking included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .interface import allowed_tokens, free_positions, masked_log_probs
from .selectors.base import Step, StepState


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
    their entropies (nats), tokens, the positions re-masked (``remasked``, when any), and
    for MI-guided selectors the predicted pairwise matrix among them (``pairwise``). The
    loop runs at most L + 1 + ``selector.extra_steps`` steps (re-masking selectors declare
    their bound). Cost: ``result.nfe.sum()`` model passes.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if x.dim() != 2:
        raise ValueError(f"x must be (B, L), got shape {tuple(x.shape)}")
    x = x.clone()
    allow = allowed_tokens(model, allowed)
    masked = free_positions(model, x)  # (B, L)
    start_masked = masked.clone()
    fill_logp = torch.zeros(x.shape, dtype=torch.float32)  # log p of each token when it was filled
    prev: torch.Tensor | None = None  # (B, L, V) last step's log-marginals, by original row
    keep_prev = bool(getattr(selector, "uses_history", False))  # (B, L, V) memory only when asked
    memory: dict = {}
    nfe = torch.zeros(x.shape[0], dtype=torch.long)
    steps: list[dict] = []
    limit = max_steps if max_steps is not None else x.shape[1] + 1 + int(getattr(selector, "extra_steps", 0))
    for t in range(limit):
        rows = masked.any(1).nonzero().squeeze(1)  # unfinished sequences
        if len(rows) == 0:
            break
        xb, mb = x[rows], masked[rows]
        out = model(xb)
        nfe[rows] += 1
        a = allow[rows] if allow.dim() == 3 else allow
        lp = masked_log_probs(out.logits, a)
        state = StepState(x=xb, log_probs=lp, masked=mb, hidden=out.hidden, step=t, rows=rows,
                          prev_log_probs=None if prev is None else prev[rows], start_masked=start_masked[rows],
                          fill_logp=fill_logp[rows], memory=memory)
        choice = selector(state)
        sel, remask = (choice.fill, choice.remask) if isinstance(choice, Step) else (choice, None)
        sel = sel & mb  # (b, L)
        empty = ~sel.any(1)
        if empty.any():  # guarantee progress: the most confident masked position
            best = state.score("confidence").argmax(-1)
            sel[empty, best[empty]] = True
        new = fill(lp, temperature, generator)
        xb_new = torch.where(sel, new, xb)
        fill_logp[rows] = torch.where(sel, lp.gather(-1, new[..., None])[..., 0].float(), fill_logp[rows])
        if remask is not None:  # only positions the decoder filled before this step
            remask = remask & start_masked[rows] & ~mb
            xb_new = torch.where(remask, torch.full_like(xb_new, model.mask_id), xb_new)
            fill_logp[rows] = fill_logp[rows].masked_fill(remask, 0.0)
        x[rows] = xb_new
        masked[rows] = (mb & ~sel) | (remask if remask is not None else False)
        if keep_prev:
            if prev is None:
                prev = torch.zeros(x.shape + lp.shape[-1:], dtype=lp.dtype)
            prev[rows] = lp
        if trace:
            step = {
                "rows": rows.tolist(),
                "filled": [s.nonzero().squeeze(1).tolist() for s in sel],
                "entropy": [state.entropy[i][s].tolist() for i, s in enumerate(sel)],
                "tokens": [new[i][s].tolist() for i, s in enumerate(sel)],
            }
            if remask is not None and remask.any():
                step["remasked"] = [r.nonzero().squeeze(1).tolist() for r in remask]
            pairwise = getattr(selector, "last", None)  # MI selectors keep this step's matrix
            if pairwise is not None:
                step["pairwise"] = [pairwise[i][s][:, s].tolist() for i, s in enumerate(sel)]
            steps.append(step)
    return DecodeResult(tokens=x, nfe=nfe, trace=steps)


def replay(x: torch.Tensor, result: DecodeResult, mask_id: int | None = None):
    """Walk a traced decode of ``x`` (B, L): yields ``(row, state, filled)`` for every
    row of every step, ``state`` a copy of that row's (L,) tokens just before the step.
    A trace with re-masking needs ``mask_id``."""
    states = x.clone()
    for step in result.trace:
        remasked = step.get("remasked", [[]] * len(step["rows"]))
        for r, filled, tokens, hide in zip(step["rows"], step["filled"], step["tokens"], remasked):
            yield r, states[r].clone(), filled
            states[r, filled] = torch.tensor(tokens, dtype=states.dtype)
            if hide:
                if mask_id is None:
                    raise ValueError("this trace re-masks positions: pass mask_id to replay it")
                states[r, hide] = mask_id
