"""Sequential decoding: exactly one position per step, the quality reference (NFE = |M|)."""

from __future__ import annotations

import torch

from .base import Selector, StepState, check_order
from .spec import order_knob


class Sequential(Selector):
    """Fill the single best masked position by ``order`` (confidence, margin or entropy)."""

    name = "sequential"
    summary = "one position per step, the best by order: the quality reference"
    source = "standard MDM decoding"
    knobs = (order_knob("confidence"),)

    def __init__(self, order: str = "confidence"):
        self.order = check_order(order)

    def select(self, state: StepState) -> torch.Tensor:
        best = state.score(self.order).argmax(-1)  # (B,)
        sel = torch.zeros_like(state.masked)
        sel[torch.arange(len(best), device=best.device), best] = True
        return sel & state.masked

    def __repr__(self):
        return f"Sequential(order={self.order!r})"
