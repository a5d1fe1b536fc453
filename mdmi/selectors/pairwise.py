"""Where the MI-guided selectors get their (B, L, L) pairwise matrix from.

- ``EstimatorPairwise``: a neural head on the hidden states of the *same* pass (no extra
  model pass); any callable ``estimator(hidden, masked) -> (B, L, L)``.
- ``ExactPairwise``: the oracle, ``exact_mi`` on the current state; costly, and its extra
  model passes are counted in ``extra_passes`` (never in the decode loop's NFE).
"""

from __future__ import annotations

import torch

from ..mi import DEFAULT_DELTA, PROBE_BATCH, exact_mi
from .base import StepState

KINDS = ("mi", "tv")


class EstimatorPairwise:
    def __init__(self, estimator, kind: str = "mi"):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.estimator, self.kind = estimator, kind

    def __call__(self, state: StepState) -> torch.Tensor:
        if state.hidden is None:
            raise ValueError("this selector needs the model's hidden states (ModelOutput.hidden is None)")
        if hasattr(self.estimator, "predict"):  # an mdmi.Estimator: compute only this output
            return self.estimator.predict(state.hidden, state.masked, self.kind, log_probs=state.log_probs).double()
        out = self.estimator(state.hidden, state.masked)
        if isinstance(out, dict):
            out = out[self.kind]
        return out.double()


class ExactPairwise:
    def __init__(self, model, kind: str = "mi", delta: float = DEFAULT_DELTA, batch_size: int = PROBE_BATCH):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.model, self.kind, self.delta, self.batch_size = model, kind, delta, batch_size
        self.extra_passes = 0

    def __call__(self, state: StepState) -> torch.Tensor:
        r = exact_mi(self.model, state.x, delta=self.delta, batch_size=self.batch_size)
        self.extra_passes += int(r.passes.sum())
        return r.mi if self.kind == "mi" else r.tv_influence
