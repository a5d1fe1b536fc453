"""Entropy bound (EB-sampler): the longest prefix, in proxy order, with
sum H - max H <= gamma (an upper bound on the prefix's total correlation)."""

from __future__ import annotations

import torch

from .base import Selector, StepState, check_order
from .spec import Knob, order_knob


class EntropyBound(Selector):
    name = "entropy_bound"
    summary = "the longest prefix with sum H - max H <= gamma (bounds its total correlation)"
    source = "EB-sampler, arXiv 2505.24857"
    knobs = (Knob("gamma", float, 0.1, "entropy budget in nats; larger fills more per step", lo=0.0), order_knob("entropy"))

    def __init__(self, gamma: float = 0.1, order: str = "entropy"):
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.order = check_order(order)

    def select(self, state: StepState) -> torch.Tensor:
        order = state.ranked(self.order)  # (B, L)
        h = state.entropy.gather(1, order)
        valid = state.masked.gather(1, order)
        h = h.masked_fill(~valid, 0.0)
        cost = h.cumsum(-1) - h.cummax(-1).values  # (B, L) sum H - max H of each prefix
        take = (cost <= self.gamma) & valid
        take = take.cumprod(-1).bool()  # a prefix: stop at the first violation
        take[:, 0] = valid[:, 0]
        return torch.zeros_like(state.masked).scatter(1, order, take)

    def __repr__(self):
        return f"EntropyBound(gamma={self.gamma}, order={self.order!r})"
