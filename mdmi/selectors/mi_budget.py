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
entropy is then no error, and eta = 0 charges dependence alone.

``distinct`` (nats, 0 = off) prices the risk greedy decoding adds: filled together, i and j
each take their own argmax, and when the two argmaxes are the same token and the two
positions depend on each other (I_ij > distinct), that pair of values is the one an
exclusion constraint forbids (two copies of a letter in a permutation, of a digit in a
Sudoku unit). The MI, an average over the values, does not see it: for two positions of a
permutation with k letters left it is about 1/k nats however alike their marginals are.
Such a candidate is skipped, and the scan goes on; independent positions with the same
argmax (the EOS padding of an answer) are still filled together. A skip depends on S alone,
not on gamma, so a larger gamma still never takes fewer positions. Meant for greedy
decoding: when sampling, the two values are drawn, and the argmax says little."""

from __future__ import annotations

import torch

from .base import Selector, Step, StepState, check_order
from .scan import greedy_scan
from .spec import Knob, order_knob


class MIBudget(Selector):
    name = "mi_budget"
    summary = "in entropy order, take i while eta h_i + lam sum_S I_ij fits the budget gamma"
    source = "Neural Estimation of Pairwise MI in Masked Discrete Sequence Models, arXiv 2605.20187"
    needs = "pairwise"
    pairwise_kind = "mi"
    knobs = (
        Knob("gamma", float, 1.0, "budget in nats; larger fills more per step", lo=0.0),
        Knob("lam", float, 1.0, "weight of the pairwise MI charge", lo=0.0),
        order_knob("entropy"),
        Knob("eta", float, 1.0, "weight of each position's own entropy (0 when sampling)", lo=0.0),
        Knob("distinct", float, 0.0, "greedy: skip a candidate with the argmax of a taken position it shares "
             "more than this many nats of MI with (0 = off)", lo=0.0),
    )

    def __init__(self, pairwise, gamma: float = 1.0, lam: float = 1.0, order: str = "entropy", eta: float = 1.0,
                 distinct: float = 0.0):
        if gamma < 0 or lam < 0 or eta < 0 or distinct < 0:
            raise ValueError(f"gamma, lam, eta and distinct must be >= 0, got gamma={gamma}, lam={lam}, eta={eta}, "
                             f"distinct={distinct}")
        self.pairwise, self.gamma, self.lam, self.eta = pairwise, float(gamma), float(lam), float(eta)
        self.distinct = float(distinct)
        self.order = check_order(order)

    def select(self, state: StepState) -> Step:
        I, passes = self.pairwise(state)  # (B, L, L)
        B = state.masked.shape[0]
        rows = torch.arange(B, device=state.masked.device)
        h = state.entropy.double()
        budget = torch.full((B,), self.gamma, dtype=torch.float64, device=h.device)
        open_ = torch.ones(B, dtype=torch.bool, device=h.device)
        pair = I
        if self.distinct > 0:
            # a taken j adds inf to the dependence of every i that shares its argmax and more than
            # `distinct` nats with it: such an i is skipped, whatever the budget
            top = state.log_probs.argmax(-1)  # (B, L)
            pair = I.masked_fill((top[:, :, None] == top[:, None, :]) & (I > self.distinct), float("inf"))

        def rule(r, i, dep):
            nonlocal budget, open_
            valid = state.masked[rows, i] & open_
            clash = torch.isinf(dep)
            c = self.eta * h[rows, i] + self.lam * torch.where(clash, torch.zeros_like(dep), dep)
            take = valid & ~clash & ((c <= budget) | (r == 0))
            open_ = take | (valid & clash)  # a prefix: stop at the first candidate over budget; skip a clash
            budget = budget - torch.where(take, c, torch.zeros_like(c))
            return take, valid

        sel = greedy_scan(state, self.order, pair, rule)
        return Step(fill=sel, extra_passes=passes, pairwise=I)

    def __repr__(self):
        distinct = f", distinct={self.distinct}" if self.distinct else ""
        return (f"MIBudget(gamma={self.gamma}, lam={self.lam}, eta={self.eta}{distinct}, order={self.order!r}, "
                f"pairwise={self.pairwise!r})")
