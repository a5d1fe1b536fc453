"""The one decoding loop (DESIGN.md section 4), with prompts, blocks, EOS and padded batches.

Each step: one model pass over the unfinished sequences -> marginals over the allowed
tokens (+ hidden states) -> the selector picks a set S of masked positions -> every
position in S is filled independently from its own marginal (greedy = argmax). A selector
may also re-mask positions it filled earlier (a :class:`~mdmi.selectors.base.Step`); they
are filled again at a later step. A sequence leaves the batch once nothing in it is
masked, so it costs no further passes. NFE = the number of model passes a sequence took
part in, re-masking included.

Diffusion-LLM decoding is the same loop: a prompt is simply observed (never masked, filled
or scored); ``block_length`` cuts the masked positions, in sequence order, into blocks
filled left to right (semi-autoregressive, as LLaDA does): the selector only sees the
current block's masked positions while later blocks stay masked; ``steps_per_block``
caps the passes per block (the last one fills what is left); ``eos_id`` ends a sequence
once an EOS and everything before it are filled (the rest becomes EOS without a pass,
counted in ``eos_filled``, never in NFE); ``attention_mask`` marks left padding, which is
never filled and is passed to the model.

``prefix_cache=True`` reuses the keys and values of everything before the current block
across the block's steps (Fast-dLLM's prefix cache): the cache is built by the full pass
that starts a block (and whenever the batch's block changes) and the other passes of the
block compute only the current block and what follows it (in a batch, from the earliest
current block on: the cache is rebuilt when that one is done). It is approximate: the cached
prefix attended to the block as it was when the cache was built. The model must offer
``prefix_cache(x, P, attention_mask)`` and ``forward_cached(x[:, P:], cache, mask)``
(:class:`~mdmi.interface.PrefixCacheModel`; mdmi's own transformer does). Each cached
pass still counts as one NFE.

A selector that reads attention maps (``selector.needs_attentions``: DAWN, or an MI rule on
the ``attention`` source) gets them in ``StepState.attentions``: the loop then calls
``model(x, output_attentions=True)``, which a model declares it takes with
``supports_attentions = True`` (see :mod:`mdmi.interface`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .interface import (ModelOutput, PrefixCacheModel, allowed_tokens, free_positions, masked_log_probs, model_device,
                        supports_attentions)
from .selectors.base import StepState, as_selector


@dataclass
class DecodeResult:
    """tokens: (B, L) filled sequences; nfe: (B,) model passes per sequence;
    extra_passes: (B,) passes a selector spent outside the loop (exact-MI oracles; 0 else);
    eos_filled: (B,) positions set to EOS without a pass;
    trace: per step, a dict (see :func:`decode`) when ``trace=True``."""

    tokens: torch.Tensor
    nfe: torch.Tensor
    trace: list[dict] = field(default_factory=list)
    extra_passes: torch.Tensor | None = None
    eos_filled: torch.Tensor | None = None


def fill(log_probs: torch.Tensor, temperature: float, generator=None) -> torch.Tensor:
    """(B, L, V) log-marginals -> (B, L) tokens: argmax at temperature 0, else a sample
    from softmax(log_probs / temperature) by the Gumbel-max trick. ``generator``: one
    ``torch.Generator`` for the batch, or a list of one per row (then each row's draw is
    the same whatever else is in the batch)."""
    if temperature == 0:
        return log_probs.argmax(-1)
    if isinstance(generator, (list, tuple)):
        if len(generator) != log_probs.shape[0]:
            raise ValueError(f"got {len(generator)} generators for {log_probs.shape[0]} rows")
        u = torch.stack([torch.rand(log_probs.shape[1:], generator=g, device=log_probs.device) for g in generator])
    else:
        u = torch.rand(log_probs.shape, generator=generator, device=log_probs.device)
    u = u.clamp_(1e-20, 1.0)
    return (log_probs / temperature - torch.log(-torch.log(u))).argmax(-1)


def block_index(start: torch.Tensor, block_length: int | None) -> torch.Tensor:
    """(B, L) the block of every position masked at the start (its rank among them, in
    sequence order, // ``block_length``; one block when None); -1 elsewhere."""
    if block_length is None:
        return torch.where(start, 0, -1)
    rank = start.long().cumsum(1) - 1
    return torch.where(start, rank // block_length, -1)


def _check_args(model, x, temperature, block_length, steps_per_block, eos_id, attention_mask, generator):
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if x.dim() != 2:
        raise ValueError(f"x must be (B, L), got shape {tuple(x.shape)}")
    for name, v in (("block_length", block_length), ("steps_per_block", steps_per_block)):
        if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
            raise ValueError(f"{name} must be a positive integer or None, got {v!r}")
    if eos_id is not None and eos_id == model.mask_id:
        raise ValueError(f"eos_id must differ from the mask id {model.mask_id}")
    if attention_mask is not None:
        if attention_mask.shape != x.shape:
            raise ValueError(f"attention_mask must be (B, L) = {tuple(x.shape)}, got {tuple(attention_mask.shape)}")
        pads = ~attention_mask.bool()
        if bool((x[pads] == model.mask_id).any()):
            raise ValueError("padding positions hold the mask id: pad with a pad id distinct from the mask id")
    if isinstance(generator, (list, tuple)) and len(generator) != x.shape[0]:
        raise ValueError(f"got {len(generator)} generators for a batch of {x.shape[0]}")


@torch.no_grad()
def decode(
    model,
    x: torch.Tensor,
    selector,
    generator=None,
    temperature: float = 0.0,
    allowed: torch.Tensor | None = None,
    trace: bool = False,
    max_steps: int | None = None,
    block_length: int | None = None,
    steps_per_block: int | None = None,
    eos_id: int | None = None,
    attention_mask: torch.Tensor | None = None,
    prefix_cache: bool = False,
) -> DecodeResult:
    """Fill every masked position of ``x`` (B, L) with ``model`` and ``selector``.

    ``selector``: a :class:`~mdmi.selectors.base.Selector` (a plain callable is wrapped);
    its ``reset()`` is called first. ``allowed`` (V,) or (B, L, V) restricts the tokens
    (default: the model's). Observed positions (a prompt) are never changed; each step
    fills at least one position per unfinished sequence. ``block_length``,
    ``steps_per_block``, ``eos_id`` and ``attention_mask``: see the module docstring
    (``attention_mask`` (B, L), 0 on padding, is passed to the model as
    ``model(x, attention_mask=...)``). Inputs move to the model's device (see
    :func:`~mdmi.interface.model_device`) and everything is allocated there; the result
    stays there. ``generator``: a ``torch.Generator`` on that device, or one per row.

    ``trace=True`` records, per step, the batch rows taken (``rows``), the positions
    filled (``filled``, a list per row), their entropies (nats), tokens, the positions
    re-masked (``remasked``, when any), those set to EOS without a pass (``eos``, when
    any), and for MI-guided selectors the pairwise matrix among the filled positions
    (``pairwise``). The loop runs at most L + 1 + ``selector.extra_steps`` steps unless
    ``max_steps`` is given. Cost: ``result.nfe.sum()`` model passes, plus
    ``result.extra_passes.sum()`` spent by an exact-MI selector.
    """
    _check_args(model, x, temperature, block_length, steps_per_block, eos_id, attention_mask, generator)
    if prefix_cache and not isinstance(model, PrefixCacheModel):
        raise ValueError(f"prefix_cache=True needs a model with prefix_cache() and forward_cached() "
                         f"(mdmi's transformer has them); {type(model).__name__} has not")
    selector = as_selector(selector)
    want_attn = selector.needs_attentions
    if want_attn and not supports_attentions(model):
        raise ValueError(f"{selector!r} reads attention maps; {type(model).__name__} does not declare "
                         f"supports_attentions (mdmi's transformer and the Hugging Face adapter do)")
    if want_attn and prefix_cache:
        raise ValueError(f"{selector!r} reads attention maps over the whole sequence; prefix_cache=True computes "
                         f"only the suffix's: use one or the other")
    selector.reset()
    dev = model_device(model) or x.device
    x = x.to(dev).clone()
    B, L = x.shape
    allow = allowed_tokens(model, allowed).to(dev)
    masked = free_positions(model, x)  # (B, L)
    if attention_mask is not None:
        attention_mask = attention_mask.to(dev)
        masked &= attention_mask.bool()
    start_all = masked.clone()
    blocks = block_index(start_all, block_length)  # (B, L)
    fill_logp = torch.zeros(x.shape, dtype=torch.float32, device=dev)  # log p of each token when it was filled
    prev: torch.Tensor | None = None  # (B, L, V) last step's log-marginals, by original row
    memory: dict = {}
    nfe = torch.zeros(B, dtype=torch.long, device=dev)
    extra = torch.zeros(B, dtype=torch.long, device=dev)
    eos_filled = torch.zeros(B, dtype=torch.long, device=dev)
    cur_block = torch.full((B,), -1, dtype=torch.long, device=dev)
    block_step = torch.zeros(B, dtype=torch.long, device=dev)
    pos = torch.arange(L, device=dev)
    cache = None  # (PrefixCache, the rows it holds, P, prefix logits, prefix hidden)
    steps: list[dict] = []
    limit = max_steps if max_steps is not None else L + 1 + int(selector.extra_steps)
    for t in range(limit):
        rows = masked.any(1).nonzero().squeeze(1)  # unfinished sequences
        if len(rows) == 0:
            break
        # the current block: the first one (left to right) that still has a masked position
        blk = torch.where(masked, blocks, torch.iinfo(torch.long).max).amin(1)  # (B,)
        moved = blk != cur_block
        block_step = torch.where(moved, 0, block_step)
        cur_block = torch.where(masked.any(1), blk, cur_block)
        in_block = blocks == cur_block[:, None]  # (B, L)
        xb, mb, inb = x[rows], masked[rows] & in_block[rows], in_block[rows]
        amb = None if attention_mask is None else attention_mask[rows]
        if prefix_cache:
            out, cache = _cached_pass(model, xb, amb, rows, in_block, cache)
        else:
            kw = {} if amb is None else {"attention_mask": amb}
            out = model(xb, **kw, output_attentions=True) if want_attn else model(xb, **kw)
        nfe[rows] += 1
        a = allow[rows] if allow.dim() == 3 else allow
        lp = masked_log_probs(out.logits, a)
        state = StepState(x=xb, log_probs=lp, masked=mb, hidden=out.hidden, step=t, rows=rows,
                          prev_log_probs=None if prev is None else prev[rows], start_masked=start_all[rows] & inb,
                          fill_logp=fill_logp[rows], memory=memory, block=cur_block[rows], block_step=block_step[rows],
                          attention_mask=None if attention_mask is None else attention_mask[rows],
                          attentions=out.attentions if want_attn else None, pending=masked[rows] & ~inb)
        choice = selector(state)
        sel, remask = choice.fill & mb, choice.remask  # (b, L)
        if choice.extra_passes is not None:
            extra[rows] += choice.extra_passes.to(dev).long()
        empty = ~sel.any(1)
        if empty.any():  # guarantee progress: the most confident masked position
            best = state.score("confidence").argmax(-1)
            sel[empty, best[empty]] = True
        if steps_per_block is not None:  # the block's last allowed pass fills what is left
            last = block_step[rows] >= steps_per_block - 1
            sel = torch.where(last[:, None], mb, sel)
            if remask is not None:
                remask = remask & ~last[:, None]
        new = fill(lp, temperature, [generator[r] for r in rows.tolist()] if isinstance(generator, (list, tuple))
                   else generator)
        xb_new = torch.where(sel, new, xb)
        fill_logp[rows] = torch.where(sel, lp.gather(-1, new[..., None])[..., 0].float(), fill_logp[rows])
        if remask is not None:  # only positions the decoder filled before this step, in this block
            remask = remask & start_all[rows] & inb & ~mb
            xb_new = torch.where(remask, torch.full_like(xb_new, model.mask_id), xb_new)
            fill_logp[rows] = fill_logp[rows].masked_fill(remask, 0.0)
        x[rows] = xb_new
        masked[rows] = (masked[rows] & ~sel) | (remask if remask is not None else False)
        block_step[rows] += 1
        tail = None
        if eos_id is not None:  # an EOS with nothing masked before it ends the sequence
            eos_here = start_all & ~masked & (x == eos_id)
            first = torch.where(eos_here.any(1), eos_here.long().argmax(1), L)  # (B,)
            ready = eos_here.any(1) & ~(masked & (pos < first[:, None])).any(1)
            tail = ready[:, None] & (pos > first[:, None]) & masked
            x[tail] = eos_id
            masked &= ~tail
            eos_filled += tail.sum(1)
        if selector.uses_history:  # (B, L, V) memory only when asked
            if prev is None:
                prev = torch.zeros(x.shape + lp.shape[-1:], dtype=lp.dtype, device=dev)
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
            if tail is not None and tail.any():
                step["eos"] = [tail[r].nonzero().squeeze(1).tolist() for r in rows.tolist()]
                step["eos_id"] = eos_id
            if choice.pairwise is not None:
                step["pairwise"] = [choice.pairwise[i][s][:, s].tolist() for i, s in enumerate(sel)]
            steps.append(step)
    return DecodeResult(tokens=x, nfe=nfe, trace=steps, extra_passes=extra, eos_filled=eos_filled)


def _cached_pass(model, xb, amb, rows, in_block, cache):
    """One pass of the rows ``rows`` with the prefix cache: a full pass that (re)builds the
    cache when it is missing or the earliest current block (P, where it starts) moved on,
    else a pass over the positions from P on. Returns (output over all L positions, the cache)."""
    P = int(in_block[rows].long().argmax(1).min())  # where the earliest current block starts
    if cache is not None:
        c, c_rows, c_P, c_logits, c_hidden = cache
        where = torch.searchsorted(c_rows, rows)  # rows only ever leave the batch
        if c_P == P:  # rows ahead of the earliest block find their own block in the fresh suffix
            suf = model.forward_cached(xb[:, P:], c.select(where), None if amb is None else amb[:, P:])
            logits = torch.cat([c_logits[where], suf.logits], 1)
            hidden = None if suf.hidden is None else torch.cat([c_hidden[where], suf.hidden], 1)
            return ModelOutput(logits=logits, hidden=hidden), cache
    c, out = model.prefix_cache(xb, P, amb)
    hidden = None if out.hidden is None else out.hidden[:, :P]
    return out, (c, rows.clone(), P, out.logits[:, :P], hidden)


def replay(x: torch.Tensor, result: DecodeResult, mask_id: int | None = None):
    """Walk a traced decode of ``x`` (B, L): yields ``(row, state, filled)`` for every
    row of every step, ``state`` a copy of that row's (L,) tokens just before the step.
    A trace with re-masking needs ``mask_id``."""
    states = x.clone()
    for step in result.trace:
        n = len(step["rows"])
        remasked = step.get("remasked", [[]] * n)
        eos = step.get("eos", [[]] * n)
        for r, filled, tokens, hide, tail in zip(step["rows"], step["filled"], step["tokens"], remasked, eos):
            yield r, states[r].clone(), filled
            states[r, filled] = torch.tensor(tokens, dtype=states.dtype, device=states.device)
            if hide:
                if mask_id is None:
                    raise ValueError("this trace re-masks positions: pass mask_id to replay it")
                states[r, hide] = mask_id
            if tail:
                states[r, tail] = step["eos_id"]
