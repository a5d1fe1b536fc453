"""Selectors: which masked positions to fill at each decoding step.

Adding one is one file with a callable class and one line in ``SELECTORS``.
"""

from __future__ import annotations

from .base import ORDERS, StepState
from .sequential import Sequential
from .topk import TopK

SELECTORS = {
    "sequential": Sequential,
    "topk": TopK,
}


def make_selector(name: str, **params):
    """Build a selector by registry name, e.g. ``make_selector("sequential", order="entropy")``."""
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose from {sorted(SELECTORS)}")
    return SELECTORS[name](**params)


__all__ = ["SELECTORS", "ORDERS", "StepState", "Sequential", "TopK", "make_selector"]
