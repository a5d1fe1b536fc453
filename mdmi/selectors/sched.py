"""SchED (Mohamed, Zhang, Vazirgiannis, Shang, arXiv 2512.02892): early exit from denoising
once the model is confident enough, against a threshold that falls as decoding progresses.

Each step, over the masked positions of the current block:

1. the mean top-2 logit gap ``g = mean_i (log p_i(top 1) - log p_i(top 2))``;
2. progress ``p`` in [0, 1]; the threshold ``tau(p)`` falls from ``tau_high`` to
   ``tau_low`` by ``schedule``: ``linear`` tau_high - d p, ``cosine``
   tau_low + d (1 + cos(pi p)) / 2, ``exp`` tau_low + d exp(-rate p), d = tau_high - tau_low;
3. ``g >= tau(p)``: exit, filling every masked position of the block now (argmax, or a
   sample when sampling); otherwise the base schedule, the ``k`` most confident.

Only the paper's abstract and summaries were at hand (no public code): the three schedule
shapes above are the natural reading of its linear / cosine / exponential families; the
defaults are its best quality-for-speed setting (exponential, rate 16, tau_high 7.5,
tau_low 2.5). Where mdmi departs: the paper aggregates the whole answer span and measures
progress in steps out of a fixed budget T; mdmi decodes without a fixed T, so progress is
the fraction of the block already filled and the gap is read at the block's masked
positions, which makes the exit per block (a block is one answer span without blocks).
"""

from __future__ import annotations

import math

import torch

from .base import Selector, Step, StepState
from .spec import Knob, check_knobs
from .topk import TopK

SCHEDULES = ("linear", "cosine", "exp")


class SchED(Selector):
    name = "sched"
    summary = "the k most confident, until the block's mean logit gap clears a falling threshold: then all"
    source = "SchED, arXiv 2512.02892"
    knobs = (
        Knob("tau_high", float, 7.5, "threshold on the mean logit gap at the block's start (nats)", lo=0.0),
        Knob("tau_low", float, 2.5, "threshold at its end (nats); lower exits sooner", lo=0.0),
        Knob("schedule", str, "exp", "how the threshold falls: linear, cosine or exp", choices=SCHEDULES),
        Knob("rate", float, 16.0, "decay rate of the exp schedule", lo=0.0),
        Knob("k", int, 1, "positions per step before the exit", lo=1),
    )

    def __init__(self, tau_high: float = 7.5, tau_low: float = 2.5, schedule: str = "exp", rate: float = 16.0,
                 k: int = 1):
        v = check_knobs(self, tau_high=tau_high, tau_low=tau_low, schedule=schedule, rate=rate, k=k)
        if v["tau_low"] > v["tau_high"]:
            raise ValueError(f"tau_low must be <= tau_high, got tau_low={tau_low}, tau_high={tau_high}")
        self.tau_high, self.tau_low, self.rate = float(v["tau_high"]), float(v["tau_low"]), float(v["rate"])
        self.schedule, self.k = schedule, int(v["k"])
        self._base = TopK(self.k)  # the base schedule before the exit

    def threshold(self, p: torch.Tensor) -> torch.Tensor:
        """tau(p) for progress p in [0, 1] (any shape)."""
        d = self.tau_high - self.tau_low
        if self.schedule == "linear":
            return self.tau_high - d * p
        if self.schedule == "cosine":
            return self.tau_low + d * (1 + torch.cos(math.pi * p)) / 2
        return self.tau_low + d * torch.exp(-self.rate * p)

    def select(self, state: StepState) -> Step:
        M = state.masked  # (B, L)
        # a position with one allowed token is certain; it counts as tau_high, not as infinity
        gap = state.logit_gap.nan_to_num(posinf=self.tau_high).masked_fill(~M, 0.0)
        g = gap.sum(1) / M.sum(1).clamp_min(1)  # (B,) mean over the block's masked positions
        progress = 1 - M.sum(1) / state.start_masked.sum(1).clamp_min(1)  # (B,) share of the block filled
        leave = g >= self.threshold(progress.double())  # (B,)
        base = self._base.select(state)
        return Step(fill=torch.where(leave[:, None], M, base))

    def __repr__(self):
        return (f"SchED(tau_high={self.tau_high}, tau_low={self.tau_low}, schedule={self.schedule!r}, "
                f"rate={self.rate}, k={self.k})")
