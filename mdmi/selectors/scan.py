"""The greedy scan that the MI-guided rules share: walk the masked candidates best first and
let a rule decide, for each, whether it joins the set S given its dependence on S so far.

``rule(r, i, dep) -> (take, go)``, all (B,): ``r`` the rank, ``i`` the candidate position
of each row, ``dep`` its accumulated dependence on S (``combine`` "sum":
``sum_{j in S} pair[j, i]``, "max": ``max_{j in S} pair[j, i]``); ``take`` whether it joins,
``go`` whether the row is still scanning at this rank. The scan stops at the first rank at
which no row goes on. A rule keeps its own running state (a budget) in a closure.
"""

from __future__ import annotations

import torch

from .base import StepState


def greedy_scan(state: StepState, order: str, pair: torch.Tensor, rule, combine: str = "sum") -> torch.Tensor:
    """(B, L) the positions taken; ``pair`` (B, L, L) float64 (see the module docstring)."""
    if combine not in ("sum", "max"):
        raise ValueError(f"combine must be 'sum' or 'max', got {combine!r}")
    B, L = state.masked.shape
    rows = torch.arange(B, device=state.masked.device)
    ranked = state.ranked(order)  # (B, L)
    dep = torch.zeros(B, L, dtype=torch.float64, device=state.masked.device)  # S's dependence on every i
    sel = torch.zeros_like(state.masked)
    for r in range(L):
        i = ranked[:, r]
        take, go = rule(r, i, dep[rows, i])
        if not go.any():
            break
        sel[rows, i] |= take
        if combine == "sum":
            dep = dep + torch.where(take[:, None], pair[rows, i], 0.0)  # not take * pair: 0 * inf is nan
        else:
            dep = torch.where(take[:, None], torch.maximum(dep, pair[rows, i]), dep)
    return sel
