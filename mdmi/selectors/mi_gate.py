"""MI gate: a confidence rule decides which positions are *eligible*, the MI matrix decides
which of them may go *together* (an issue-18 variant of the core paper's MI budget).

Rule, per step:
1. eligible = Fast-dLLM's factor rule on confidence: the n most confident masked positions,
   n the largest with (n + 1) * (1 - c_(n)) < f (at least one);
2. in confidence order, take an eligible position unless its pairwise MI with a position
   already taken exceeds ``eps`` nats (a greedy independent set of the conflict graph
   I_ij > eps); the first is always taken.

So the set size adapts to the model's confidence (as factor does) and dependence only ever
removes positions: ``eps = inf`` is exactly the factor rule, and a smaller ``eps`` never
takes more positions. Why: on Sudoku the MI budget's entropy charge (eta = 1) sets its set
size at large gamma and its candidate order (entropy) differs from the confidence order
that works best greedily; this rule keeps the confidence rule's order and size and spends
the MI only on the question it answers, which positions are safe together.

``refill = 1`` instead applies the factor rule to the positions that are still free of
conflict: in confidence order, a position that depends (> ``eps``) on one already taken is
skipped and does not count; the k-th position taken must satisfy (k + 1) * (1 - c) < f
(the first always goes). A dropped partner is then replaced by the next confident
independent position, so the set keeps about the factor rule's size (and passes) while
holding no dependent pair; ``eps = inf`` is again exactly the factor rule.
"""

from __future__ import annotations

import math

import torch

from .base import StepState
from .factor import Factor
from .pairwise import EstimatorPairwise, ExactPairwise


class MIGate:
    def __init__(self, pairwise, f: float = 1.0, eps: float = 0.05, refill: int = 0):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if refill not in (0, 1):
            raise ValueError(f"refill must be 0 or 1, got {refill!r}")
        self.gate = Factor(f)
        self.pairwise, self.f, self.eps, self.refill = pairwise, float(f), float(eps), int(refill)
        self.last = None  # the pairwise matrix of the last step, for traces

    def __call__(self, state: StepState) -> torch.Tensor:
        eligible = self.gate(state)  # (B, L)
        if math.isinf(self.eps):
            return eligible
        I = self.pairwise(state)  # (B, L, L)
        self.last = I
        B, L = eligible.shape
        rows = torch.arange(B)
        order = state.ranked("confidence")
        sel = torch.zeros_like(eligible)
        worst = torch.zeros(B, L, dtype=torch.float64)  # max_{j taken} I_ij, for every i
        taken = torch.zeros(B, dtype=torch.long)
        open_ = torch.ones(B, dtype=torch.bool)  # refill: the factor count has not stopped this row yet
        for r in range(L):
            i = order[:, r]
            free = (worst[rows, i] <= self.eps) | (r == 0)
            if self.refill:  # the factor rule over the conflict-free positions, counted as taken
                c = state.confidence[rows, i].double()
                fits = ((taken + 2) * (1 - c) < self.f) | (taken == 0)
                ok = state.masked[rows, i] & open_ & (fits | ~free)
                open_ = ok
                take = ok & free
            else:
                ok = eligible[rows, i]
                take = ok & free
            if not ok.any():
                break
            sel[rows, i] |= take
            taken += take.long()
            worst = torch.where(take[:, None], torch.maximum(worst, I[rows, i]), worst)
        return sel

    def __repr__(self):
        return f"MIGate(f={self.f}, eps={self.eps}, refill={self.refill}, pairwise={type(self.pairwise).__name__})"


def mi_gate(estimator, f: float = 1.0, eps: float = 0.05, refill: int = 0) -> MIGate:
    return MIGate(EstimatorPairwise(estimator, "mi"), f, eps, refill)


def mi_gate_oracle(model, f: float = 1.0, eps: float = 0.05, delta: float = 5e-5, refill: int = 0) -> MIGate:
    return MIGate(ExactPairwise(model, "mi", delta), f, eps, refill)
