"""MI gate: a confidence rule decides which positions are *eligible*, the MI matrix decides
which of them may go *together* (a variant of the core paper's MI budget).

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

from .base import Selector, Step, StepState
from .factor import Factor
from .scan import greedy_scan
from .spec import Knob


class MIGate(Selector):
    name = "mi_gate"
    summary = "the factor rule's confident set, minus positions whose MI with one already taken exceeds eps"
    source = "mdmi: Fast-dLLM's factor rule (arXiv 2505.22618) gated by pairwise MI"
    needs = "pairwise"
    pairwise_kind = "mi"
    knobs = (
        Knob("f", float, 1.0, "factor bound of the eligible set", lo=0.0, lo_open=True),
        Knob("eps", float, 0.05, "MI in nats above which two positions may not go together", lo=0.0),
        Knob("refill", int, 0, "1: replace a dropped position by the next independent one", choices=(0, 1)),
    )

    def __init__(self, pairwise, f: float = 1.0, eps: float = 0.05, refill: int = 0):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        if refill not in (0, 1):
            raise ValueError(f"refill must be 0 or 1, got {refill!r}")
        self.gate = Factor(f)
        self.pairwise, self.f, self.eps, self.refill = pairwise, float(f), float(eps), int(refill)

    def select(self, state: StepState) -> Step:
        eligible = self.gate(state).fill  # (B, L)
        if math.isinf(self.eps):
            return Step(fill=eligible)
        I, passes = self.pairwise(state)  # (B, L, L)
        B = eligible.shape[0]
        rows = torch.arange(B, device=eligible.device)
        taken = torch.zeros(B, dtype=torch.long, device=eligible.device)
        open_ = torch.ones(B, dtype=torch.bool, device=eligible.device)  # refill: the factor count goes on

        def rule(r, i, worst):
            nonlocal taken, open_
            free = (worst <= self.eps) | (r == 0)
            if self.refill:  # the factor rule over the conflict-free positions, counted as taken
                c = state.confidence[rows, i].double()
                fits = ((taken + 2) * (1 - c) < self.f) | (taken == 0)
                ok = state.masked[rows, i] & open_ & (fits | ~free)
                open_ = ok
            else:
                ok = eligible[rows, i]
            take = ok & free
            taken = taken + take.long()
            return take, ok

        sel = greedy_scan(state, "confidence", I, rule, combine="max")
        return Step(fill=sel, extra_passes=passes, pairwise=I)

    def __repr__(self):
        return f"MIGate(f={self.f}, eps={self.eps}, refill={self.refill}, pairwise={self.pairwise!r})"
