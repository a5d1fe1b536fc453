"""Selectors: which masked positions to fill at each decoding step.

A selector is a callable ``selector(state: StepState) -> BoolTensor (B, L)``. Adding one
is one file and one line in ``SELECTORS``. MI-guided selectors take ``estimator=`` (a
neural head, no extra pass) or, for the ``*_oracle`` variants, ``model=`` (exact_mi on
every step; extra passes counted in ``selector.pairwise.extra_passes``).
"""

from __future__ import annotations

import inspect
import math

from .base import ORDERS, Step, StepState
from .dependency_bound import DependencyBound, dependency_bound, dependency_bound_oracle
from .dilated import Dilated
from .entropy_bound import EntropyBound
from .factor import Factor
from .info_gain import InfoGain, info_gain, info_gain_oracle
from .klass import KLASS
from .mi_budget import MIBudget, mi_budget, mi_budget_oracle
from .mi_gate import MIGate, mi_gate, mi_gate_oracle
from .pc_sampler import PCSampler
from .remask import Remask
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
    "klass": KLASS,
    "dilated": Dilated,
    "pc_sampler": PCSampler,
    "info_gain": info_gain,
    "info_gain_oracle": info_gain_oracle,
    "remask": Remask,
    "mi_gate": mi_gate,
    "mi_gate_oracle": mi_gate_oracle,
}


WIRING = ("estimator", "model", "pairwise", "background")  # what the caller passes in, not a knob


def knobs(name: str) -> dict:
    """The knobs of selector ``name`` and their defaults, e.g. ``{"k": 2, "order": "confidence"}``."""
    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose from {sorted(SELECTORS)}")
    sig = inspect.signature(SELECTORS[name])
    return {k: p.default for k, p in sig.parameters.items() if k not in WIRING}


def check_params(name: str, params: dict) -> None:
    """ValueError naming the knob for an unknown name, or a value of the wrong kind: a
    number knob takes a finite int or float (an int knob an int; never a bool), a text
    knob a string."""
    allowed = knobs(name)
    unknown = sorted(set(params) - set(allowed) - set(WIRING))
    if unknown:
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes no parameters"
        raise ValueError(f"selector {name!r} {takes}; got {', '.join(unknown)}")
    for k, v in params.items():
        if k in WIRING:
            continue
        default = allowed[k]
        if isinstance(default, bool) or not isinstance(default, (int, float, str)):
            continue
        if isinstance(default, str):
            if not isinstance(v, str):
                raise ValueError(f"selector {name!r}: {k} must be text, got {v!r}")
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"selector {name!r}: {k} must be a number, got {v!r}")
        elif not math.isfinite(v):
            raise ValueError(f"selector {name!r}: {k} must be finite, got {v}")
        elif isinstance(default, int) and not isinstance(v, int):
            raise ValueError(f"selector {name!r}: {k} must be an integer, got {v!r}")


def make_selector(name: str, **params):
    """Build a selector by registry name, e.g. ``make_selector("topk", k=4)``. Knobs are
    checked by :func:`check_params` before the selector sees them."""
    check_params(name, params)
    return SELECTORS[name](**params)


__all__ = ["SELECTORS", "ORDERS", "Step", "StepState", "Sequential", "TopK", "Threshold", "Factor", "EntropyBound",
           "MIBudget", "DependencyBound", "KLASS", "Dilated", "PCSampler", "InfoGain", "Remask", "MIGate", "make_selector",
           "knobs", "check_params"]
