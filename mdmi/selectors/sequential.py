"""Sequential decoding: exactly one position per step, the quality reference (NFE = |M|)."""

from __future__ import annotations

import torch

from .base import StepState, check_order


class Sequential:
    """Fill the single best masked position by ``order`` (confidence, margin or entropy)."""

    def __init__(self, order: str = "confidence"):
        self.order = check_order(order)

    def __call__(self, state: StepState) -> torch.Tensor:
        best = state.score(self.order).argmax(-1)  # (B,)
        sel = torch.zeros_like(state.masked)
        sel[torch.arange(len(best)), best] = True
        return sel & state.masked

    def __repr__(self):
        return f"Sequential(order={self.order!r})"
