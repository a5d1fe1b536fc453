"""MI budget (the core paper): candidates in entropy order; budget B = gamma; candidate i
costs c_i = h_i + lambda * sum_{j in S} I_ij; take it if c_i <= B, then B -= c_i. The
first candidate is always taken. The scan stops at the first candidate over budget (as the
EB-sampler takes a prefix): then a larger gamma never takes fewer positions, which
skipping over-budget candidates and scanning on would not guarantee. The pairwise I comes from the neural estimator on the
same pass (``mi_budget``) or from exact_mi (``mi_budget_oracle``, extra passes counted).

``eta`` weighs the entropy term: c_i = eta * h_i + lambda * sum_{j in S} I_ij. The design's
rule is eta = 1, right for greedy decoding, where a position's own uncertainty is an error
risk. When sampling at temperature 1, filling S from the product of marginals costs
exactly TC(S), which the pairwise MI sum bounds under sub-additivity; a position's own
entropy is then no error, and eta = 0 charges dependence alone."""

from __future__ import annotations

import torch

from .base import StepState, check_order
from .pairwise import EstimatorPairwise, ExactPairwise


class MIBudget:
    def __init__(self, pairwise, gamma: float = 1.0, lam: float = 1.0, order: str = "entropy", eta: float = 1.0):
        if gamma < 0 or lam < 0 or eta < 0:
            raise ValueError(f"gamma, lam and eta must be >= 0, got gamma={gamma}, lam={lam}, eta={eta}")
        self.pairwise, self.gamma, self.lam, self.eta = pairwise, float(gamma), float(lam), float(eta)
        self.order = check_order(order)
        self.last = None  # the pairwise matrix of the last step, for traces

    def __call__(self, state: StepState) -> torch.Tensor:
        I = self.pairwise(state)  # (B, L, L)
        self.last = I
        B, L = state.masked.shape
        rows = torch.arange(B)
        order = state.ranked(self.order)
        h = state.entropy.double()
        budget = torch.full((B,), self.gamma, dtype=torch.float64)
        acc = torch.zeros(B, L, dtype=torch.float64)  # sum_{j in S} I_ij for every i
        sel = torch.zeros_like(state.masked)
        open_ = torch.ones(B, dtype=torch.bool)
        for r in range(L):
            i = order[:, r]
            valid = state.masked[rows, i] & open_
            if not valid.any():
                break
            c = self.eta * h[rows, i] + self.lam * acc[rows, i]
            take = valid & ((c <= budget) | (r == 0))
            open_ = take
            budget = budget - torch.where(take, c, torch.zeros_like(c))
            acc = acc + take[:, None] * I[rows, i]
            sel[rows, i] |= take
        return sel

    def __repr__(self):
        return (f"MIBudget(gamma={self.gamma}, lam={self.lam}, eta={self.eta}, order={self.order!r}, "
                f"pairwise={type(self.pairwise).__name__})")


def mi_budget(estimator, gamma: float = 1.0, lam: float = 1.0, order: str = "entropy", eta: float = 1.0) -> MIBudget:
    return MIBudget(EstimatorPairwise(estimator, "mi"), gamma, lam, order, eta)


def mi_budget_oracle(model, gamma: float = 1.0, lam: float = 1.0, order: str = "entropy", delta: float = 5e-5,
                     eta: float = 1.0) -> MIBudget:
    return MIBudget(ExactPairwise(model, "mi", delta), gamma, lam, order, eta)
