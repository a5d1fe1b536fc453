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
"""

from __future__ import annotations

import math

import torch

from .base import StepState
from .factor import Factor
from .pairwise import EstimatorPairwise, ExactPairwise


class MIGate:
    def __init__(self, pairwise, f: float = 1.0, eps: float = 0.05):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.gate = Factor(f)
        self.pairwise, self.f, self.eps = pairwise, float(f), float(eps)
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
        for r in range(L):
            i = order[:, r]
            ok = eligible[rows, i]
            if not ok.any():
                break
            take = ok & ((worst[rows, i] <= self.eps) | (r == 0))
            sel[rows, i] |= take
            worst = torch.where(take[:, None], torch.maximum(worst, I[rows, i]), worst)
        return sel

    def __repr__(self):
        return f"MIGate(f={self.f}, eps={self.eps}, pairwise={type(self.pairwise).__name__})"


def mi_gate(estimator, f: float = 1.0, eps: float = 0.05) -> MIGate:
    return MIGate(EstimatorPairwise(estimator, "mi"), f, eps)


def mi_gate_oracle(model, f: float = 1.0, eps: float = 0.05, delta: float = 5e-5) -> MIGate:
    return MIGate(ExactPairwise(model, "mi", delta), f, eps)
