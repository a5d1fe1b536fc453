"""Fast-dLLM's factor rule: the largest n with (n + 1) * (1 - c_(n)) < f, where c_(n) is the
n-th largest confidence; fill the n most confident positions (at least one)."""

from __future__ import annotations

import torch

from .base import Selector, StepState
from .spec import Knob


class Factor(Selector):
    name = "factor"
    summary = "the n most confident, n the largest with (n + 1)(1 - c_(n)) < f"
    source = "Fast-dLLM, arXiv 2505.22618 (factor rule)"
    knobs = (Knob("f", float, 1.0, "factor bound; larger fills more per step", lo=0.0, lo_open=True),)

    def __init__(self, f: float = 1.0):
        if f <= 0:
            raise ValueError(f"f must be positive, got {f}")
        self.f = float(f)

    def select(self, state: StepState) -> torch.Tensor:
        conf, order = state.score("confidence").sort(-1, descending=True)  # (B, L), -inf last
        n = torch.arange(1, conf.shape[1] + 1, dtype=conf.dtype, device=conf.device)
        ok = ((n + 1) * (1 - conf) < self.f) & torch.isfinite(conf)  # (B, L)
        # largest n satisfying the rule (the rule need not be monotone in n)
        count = torch.where(ok, n, torch.zeros_like(n)).amax(-1).clamp_min(1).long()  # (B,)
        take = torch.arange(conf.shape[1], device=conf.device) < count[:, None]
        return torch.zeros_like(state.masked).scatter(1, order, take) & state.masked

    def __repr__(self):
        return f"Factor(f={self.f})"
