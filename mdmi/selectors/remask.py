"""ReMDM-style remasking (Wang, Schiff, Sahoo, Kuleshov 2025, "Remasking Discrete Diffusion
Models with Inference-Time Scaling", arXiv 2503.00307; code: kuleshov-group/remdm, the
``remdm-conf`` strategy).

Rule: fill the ``k`` most confident masked positions each step (``k = 1`` is sequential);
then re-mask up to ``r`` positions filled at earlier steps whose probability *when they
were filled* is below ``tau``, least confident first, as long as the sequence's budget of
``budget`` re-maskings lasts. A re-masked position is filled again later, from the
marginal of a pass that now sees more of the sequence: extra passes buy a chance to undo
early, uncertain commitments (inference-time scaling).

Differences, stated: ReMDM re-masks stochastically with a schedule sigma_t proportional to
softmax(-confidence) over a time window; here the choice is the deterministic
least-confident-first version of remdm-conf with an explicit per-sequence budget, so the
loop provably ends: each step fills >= 1 position and re-masks at most ``r`` until the
budget is spent, so at most L + ``budget`` steps (``extra_steps``). Observed and special
positions are never touched (the loop enforces it too).
"""

from __future__ import annotations

import math

import torch

from .base import Selector, Step, StepState
from .spec import Knob


class Remask(Selector):
    name = "remask"
    summary = "fill the k most confident, re-mask up to r earlier fills below tau (a budget per sequence)"
    source = "ReMDM, arXiv 2503.00307 (code: kuleshov-group/remdm, remdm-conf)"
    knobs = (
        Knob("k", int, 1, "positions filled per step", lo=1),
        Knob("r", int, 1, "positions re-masked per step at most", lo=1),
        Knob("tau", float, 0.9, "a fill below this probability may be re-masked", lo=0.0, hi=1.0, lo_open=True),
        Knob("budget", int, 8, "re-maskings per sequence", lo=0),
    )

    def __init__(self, k: int = 1, r: int = 1, tau: float = 0.9, budget: int = 8):
        for name, v, lo in (("k", k, 1), ("r", r, 1), ("budget", budget, 0)):
            if int(v) != v or v < lo:
                raise ValueError(f"{name} must be an integer >= {lo}, got {v}")
        if not 0 < tau <= 1:
            raise ValueError(f"tau must lie in (0, 1], got {tau}")
        self.k, self.r, self.tau, self.budget = int(k), int(r), float(tau), int(budget)
        self.extra_steps = self.budget  # each re-masked position costs at most one more step

    def select(self, state: StepState) -> Step:
        best = state.ranked("confidence")[:, : self.k]
        fill = torch.zeros_like(state.masked).scatter(1, best, True) & state.masked
        left = state.memory.setdefault("remask_left", {})
        filled_before = state.start_masked & ~state.masked  # decoder-filled, visible to this pass
        low = filled_before & (state.fill_logp < math.log(self.tau))
        # least confident first; the loop keeps fill and remask apart (remask only hits filled positions)
        order = state.fill_logp.masked_fill(~low, float("inf")).argsort(dim=-1, stable=True)
        remask = torch.zeros_like(state.masked)
        for b, row in enumerate(state.rows.tolist()):
            n = min(self.r, left.get(row, self.budget), int(low[b].sum()))
            if n > 0:
                remask[b, order[b, :n]] = True
                left[row] = left.get(row, self.budget) - n
        return Step(fill=fill, remask=remask)

    def __repr__(self):
        return f"Remask(k={self.k}, r={self.r}, tau={self.tau}, budget={self.budget})"
