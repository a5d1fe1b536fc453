"""Top-k: a fixed number of positions per step, best first by the proxy order."""

from __future__ import annotations

import torch

from .base import Selector, StepState, check_order
from .spec import Knob, order_knob


class TopK(Selector):
    """Fill the ``k`` best masked positions by ``order`` (fewer if fewer remain)."""

    name = "topk"
    summary = "a fixed number k of positions per step, best first"
    source = "LLaDA / MDLM fixed-step schedules"
    knobs = (Knob("k", int, 2, "positions per step", lo=1), order_knob("confidence"))

    def __init__(self, k: int = 2, order: str = "confidence"):
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        self.k = int(k)
        self.order = check_order(order)

    def select(self, state: StepState) -> torch.Tensor:
        ranked = state.ranked(self.order)[:, : self.k]  # (B, k)
        sel = torch.zeros_like(state.masked).scatter(1, ranked, True)
        return sel & state.masked

    def __repr__(self):
        return f"TopK(k={self.k}, order={self.order!r})"
