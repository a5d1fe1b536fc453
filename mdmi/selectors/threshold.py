"""Confidence threshold (Fast-dLLM): the top-1 plus every position with max p >= tau."""

from __future__ import annotations

import torch

from .base import Selector, StepState
from .spec import Knob


class Threshold(Selector):
    name = "threshold"
    summary = "the top-1 plus every position with max p >= tau"
    source = "Fast-dLLM, arXiv 2505.22618 (confidence threshold)"
    knobs = (Knob("tau", float, 0.9, "confidence a position needs to go in parallel", lo=0.0, hi=1.0, lo_open=True),)

    def __init__(self, tau: float = 0.9):
        if not 0 < tau <= 1:
            raise ValueError(f"tau must lie in (0, 1], got {tau}")
        self.tau = float(tau)

    def select(self, state: StepState) -> torch.Tensor:
        conf = state.score("confidence")  # (B, L), -inf where not masked
        sel = conf >= self.tau
        sel[torch.arange(len(conf), device=conf.device), conf.argmax(-1)] = True  # top-1 always
        return sel & state.masked

    def __repr__(self):
        return f"Threshold(tau={self.tau})"
