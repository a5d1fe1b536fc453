"""Selectors: which masked positions to fill at each decoding step.

A selector is a callable ``selector(state: StepState) -> BoolTensor (B, L)``. Adding one
is one file and one line in ``SELECTORS``. MI-guided selectors take ``estimator=`` (a
neural head, no extra pass) or, for the ``*_oracle`` variants, ``model=`` (exact_mi on
every step; extra passes counted in ``selector.pairwise.extra_passes``).
"""

from __future__ import annotations

from .base import ORDERS, StepState
from .dependency_bound import DependencyBound, dependency_bound, dependency_bound_oracle
from .entropy_bound import EntropyBound
from .factor import Factor
from .mi_budget import MIBudget, mi_budget, mi_budget_oracle
from .sequential import Sequential
from .threshold import Threshold
from .topk import TopK

SELECTORS = {
    "sequential": Sequential,
    "topk": TopK,
    "threshold": Threshold,
    "factor": Factor,
    "entropy_bound": EntropyBound,
    "mi_budget": mi_budget,
    "mi_budget_oracle": mi_budget_oracle,
    "dependency_bound": dependency_bound,
    "dependency_bound_oracle": dependency_bound_oracle,
}


def make_selector(name: str, **params):
    """Build a selector by registry name, e.g. ``make_selector("topk", k=4)``."""
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose from {sorted(SELECTORS)}")
    return SELECTORS[name](**params)


__all__ = ["SELECTORS", "ORDERS", "StepState", "Sequential", "TopK", "Threshold", "Factor", "EntropyBound",
           "MIBudget", "DependencyBound", "make_selector"]
