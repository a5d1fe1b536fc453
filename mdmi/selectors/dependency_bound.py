"""Dependency bound (DEMASK): candidates in confidence order; keep adding while the
cumulative predicted dependency within S, sum over pairs of D[j->i] + D[i->j], stays
<= tau; stop at the first candidate that would break it. The first candidate is always
taken. D comes from the estimator's influence head or from exact_mi (oracle)."""

from __future__ import annotations

import torch

from .base import Selector, Step, StepState, check_order
from .scan import greedy_scan
from .spec import Knob, order_knob


class DependencyBound(Selector):
    name = "dependency_bound"
    summary = "in confidence order, add while the summed influence within S stays <= tau"
    source = "DEMASK, arXiv 2604.02560"
    needs = "pairwise"
    pairwise_kind = "tv"
    knobs = (Knob("tau", float, 0.1, "bound on the summed pairwise influence within S", lo=0.0), order_knob("confidence"))

    def __init__(self, pairwise, tau: float = 0.1, order: str = "confidence"):
        if tau < 0:
            raise ValueError(f"tau must be >= 0, got {tau}")
        self.pairwise, self.tau = pairwise, float(tau)
        self.order = check_order(order)

    def select(self, state: StepState) -> Step:
        D, passes = self.pairwise(state)  # (B, L, L) directed influence [j, i] = D[j->i]
        B = state.masked.shape[0]
        rows = torch.arange(B, device=state.masked.device)
        total = torch.zeros(B, dtype=torch.float64, device=D.device)
        open_ = torch.ones(B, dtype=torch.bool, device=D.device)

        def rule(r, i, dep):
            nonlocal total, open_
            valid = state.masked[rows, i] & open_
            new_total = total + dep
            take = valid & ((new_total <= self.tau) | (r == 0))
            open_ = open_ & (take | ~state.masked[rows, i])
            total = torch.where(take, new_total, total)
            return take, valid

        sel = greedy_scan(state, self.order, D + D.transpose(1, 2), rule)
        return Step(fill=sel, extra_passes=passes, pairwise=D)

    def __repr__(self):
        return f"DependencyBound(tau={self.tau}, order={self.order!r}, pairwise={self.pairwise!r})"
