"""Selectors: which masked positions to fill at each decoding step.

Every selector is a :class:`~mdmi.selectors.base.Selector` returning a
:class:`~mdmi.selectors.base.Step`; the registry (:mod:`mdmi.selectors.registry`) lists
them with their knobs and needs. Build one with :func:`make_selector`::

    make_selector("threshold", tau=0.9)
    make_selector("mi_budget", estimator=head, gamma=0.1)          # the MI head, no extra pass
    make_selector("mi_budget", pairwise="exact", model=m, gamma=0.1)  # exact MI (extra passes)
    make_selector("mi_budget", pairwise="js", gamma=0.5)             # a free signal in place of MI
"""

from __future__ import annotations

from .base import ORDERS, FunctionSelector, Selector, Step, StepState, as_selector
from .dawn import DAWN
from .dependency_bound import DependencyBound
from .dilated import Dilated
from .entropy_bound import EntropyBound
from .factor import Factor
from .info_gain import InfoGain
from .klass import KLASS
from .mean_field import MeanField
from .mi_budget import MIBudget
from .mi_gate import MIGate
from .pairwise import EstimatorPairwise, ExactPairwise, make_pairwise
from .pc_sampler import PCSampler
from .registry import (NAMES, ORACLES, SELECTORS, check_params, describe, knob_specs, knobs, lookup, make_selector,
                       needs, parse_knob_list, parse_spec)
from .remask import Remask
from .sched import SchED
from .signals import SIGNALS, AttentionPairwise, MarginalPairwise, make_signal
from .sequential import Sequential
from .spec import Knob
from .threshold import Threshold
from .topk import TopK

__all__ = ["SELECTORS", "ORACLES", "NAMES", "ORDERS", "Selector", "FunctionSelector", "as_selector", "Step", "StepState",
           "Knob", "Sequential", "TopK", "Threshold", "Factor", "EntropyBound", "MIBudget", "DependencyBound", "KLASS",
           "Dilated", "PCSampler", "InfoGain", "Remask", "MIGate", "DAWN", "MeanField", "SchED", "EstimatorPairwise",
           "ExactPairwise", "make_pairwise", "SIGNALS", "AttentionPairwise", "MarginalPairwise", "make_signal",
           "make_selector", "knobs", "knob_specs", "check_params", "needs", "lookup", "describe", "parse_spec",
           "parse_knob_list"]
