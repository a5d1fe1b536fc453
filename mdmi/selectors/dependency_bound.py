"""Dependency bound (DEMASK): candidates in confidence order; keep adding while the
cumulative predicted dependency within S, sum over pairs of D[j->i] + D[i->j], stays
<= tau; stop at the first candidate that would break it. The first candidate is always
taken. D comes from the estimator's influence head or from exact_mi (oracle)."""

from __future__ import annotations

import torch

from .base import StepState, check_order
from .pairwise import EstimatorPairwise, ExactPairwise


class DependencyBound:
    def __init__(self, pairwise, tau: float = 0.1, order: str = "confidence"):
        if tau < 0:
            raise ValueError(f"tau must be >= 0, got {tau}")
        self.pairwise, self.tau = pairwise, float(tau)
        self.order = check_order(order)
        self.last = None

    def __call__(self, state: StepState) -> torch.Tensor:
        D = self.pairwise(state)  # (B, L, L) directed influence [j, i] = D[j->i]
        self.last = D
        D = D + D.transpose(1, 2)
        B, L = state.masked.shape
        rows = torch.arange(B)
        order = state.ranked(self.order)
        total = torch.zeros(B, dtype=torch.float64)
        acc = torch.zeros(B, L, dtype=torch.float64)  # dependency of i on the chosen set
        open_ = torch.ones(B, dtype=torch.bool)
        sel = torch.zeros_like(state.masked)
        for r in range(L):
            i = order[:, r]
            valid = state.masked[rows, i] & open_
            if not valid.any():
                break
            new_total = total + acc[rows, i]
            take = valid & ((new_total <= self.tau) | (r == 0))
            open_ = open_ & (take | ~state.masked[rows, i])
            total = torch.where(take, new_total, total)
            acc = acc + take[:, None] * D[rows, i]
            sel[rows, i] |= take
        return sel

    def __repr__(self):
        return f"DependencyBound(tau={self.tau}, order={self.order!r}, pairwise={type(self.pairwise).__name__})"


def dependency_bound(estimator, tau: float = 0.1, order: str = "confidence") -> DependencyBound:
    return DependencyBound(EstimatorPairwise(estimator, "tv"), tau, order)


def dependency_bound_oracle(model, tau: float = 0.1, order: str = "confidence", delta: float = 5e-5) -> DependencyBound:
    return DependencyBound(ExactPairwise(model, "tv", delta), tau, order)
