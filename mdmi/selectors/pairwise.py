"""Pairwise dependence sources: where the MI-guided selectors get their (B, L, L) matrix.

A source is called with the step's :class:`~mdmi.selectors.base.StepState` and returns
``(matrix, extra_passes)``: the (B, L, L) float64 matrix over the state's masked positions
and the model passes it spent per row beyond the loop's own ((B,) long, or None).

- :class:`EstimatorPairwise` (``pairwise="head"``): a neural head on the hidden states of
  the *same* pass, no extra model pass; any callable ``estimator(hidden, masked)``.
- :class:`ExactPairwise` (``pairwise="exact"``): the oracle, :func:`~mdmi.mi.exact_mi` on
  the current state, probing only the positions the selector may fill (the current
  block's); its passes are reported in ``Step.extra_passes``, never in the loop's NFE.

``kind`` picks the statistic: ``"mi"`` (symmetric MI, nats) or ``"tv"`` (DEMASK's directed
influence ``D[j->i]``).
"""

from __future__ import annotations

import torch

from ..mi import DEFAULT_DELTA, PROBE_BATCH, exact_mi
from .base import StepState

KINDS = ("mi", "tv")
SOURCES = ("head", "exact")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind


class EstimatorPairwise:
    """The neural head's prediction from the same pass (``pairwise="head"``)."""

    def __init__(self, estimator, kind: str = "mi"):
        if not callable(estimator):
            raise TypeError(f"estimator must be callable (hidden, masked) -> (B, L, L), got {type(estimator).__name__}")
        self.estimator, self.kind = estimator, check_kind(kind)

    def __call__(self, state: StepState) -> tuple[torch.Tensor, None]:
        if state.hidden is None:
            raise ValueError("this selector needs the model's hidden states (ModelOutput.hidden is None)")
        if hasattr(self.estimator, "predict"):  # an mdmi.Estimator: compute only this output
            return self.estimator.predict(state.hidden, state.masked, self.kind, log_probs=state.log_probs).double(), None
        out = self.estimator(state.hidden, state.masked)
        if not torch.is_tensor(out):  # several outputs (an EstimatorOutput): the one this source reads
            out = getattr(out, self.kind)
        return out.double(), None

    def __repr__(self):
        return f"EstimatorPairwise({self.kind!r})"


class ExactPairwise:
    """Exact MI of ``model`` on the current state (``pairwise="exact"``); ``delta`` the
    probe truncation of :func:`~mdmi.mi.exact_mi`."""

    def __init__(self, model, kind: str = "mi", delta: float = DEFAULT_DELTA, batch_size: int = PROBE_BATCH):
        if not 0 <= delta <= 0.5:
            raise ValueError(f"delta must lie in [0, 0.5], got {delta}")
        self.model, self.kind, self.delta, self.batch_size = model, check_kind(kind), float(delta), int(batch_size)

    def __call__(self, state: StepState) -> tuple[torch.Tensor, torch.Tensor]:
        r = exact_mi(self.model, state.x, delta=self.delta, batch_size=self.batch_size, probe=state.masked,
                     attention_mask=state.attention_mask)
        return (r.mi if self.kind == "mi" else r.tv_influence), r.passes

    def __repr__(self):
        return f"ExactPairwise({self.kind!r}, delta={self.delta})"


def make_pairwise(source, kind: str, estimator=None, model=None, delta: float = DEFAULT_DELTA):
    """A pairwise source by name: ``"head"`` needs ``estimator``, ``"exact"`` needs ``model``.
    An object that is already a source (any callable returning ``(matrix, passes)``) is
    returned as is."""
    if source == "head":
        if estimator is None:
            raise ValueError("pairwise='head' needs an estimator (a trained MI head: mdmi.load_estimator(...))")
        return EstimatorPairwise(estimator, kind)
    if source == "exact":
        if model is None:
            raise ValueError("pairwise='exact' needs the model (exact MI costs extra passes every step)")
        return ExactPairwise(model, kind, delta)
    if isinstance(source, str) or not callable(source):
        raise ValueError(f"pairwise must be one of {SOURCES} or a source object, got {source!r}")
    return source
