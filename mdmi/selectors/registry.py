"""The selector registry: one entry per selector, declaring its knobs and what it needs.

Each selector class carries its own declaration (``name``, ``summary``, ``source``,
``knobs``, ``needs``, ``pairwise_kind``); :data:`SELECTORS` lists the classes, one line
each. :func:`make_selector` builds any of them from a name and knobs, checking every knob
against its :class:`Knob` first (ValueError naming the knob), and wires a pairwise
dependence source into the MI-guided ones (``pairwise="head"`` or ``"exact"``).

The selector spec of the command line is parsed here too, once for every command:
``name:knob=v,knob2=v2`` (a sweep: ``gamma=0.1/0.3``; ``+`` also separates knobs).
"""

from __future__ import annotations

from itertools import product

from ..mi import DEFAULT_DELTA
from .base import Selector
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
from .pairwise import SOURCES, make_pairwise
from .signals import SIGNALS, make_signal
from .pc_sampler import PCSampler
from .remask import Remask
from .sched import SchED
from .sequential import Sequential
from .spec import DELTA, Knob
from .threshold import Threshold
from .topk import TopK


# one line per selector; adding one is one file and one line here
SELECTORS: dict[str, type[Selector]] = {cls.name: cls for cls in (
    Sequential,
    TopK,
    Threshold,
    Factor,
    EntropyBound,
    MIBudget,
    DependencyBound,
    KLASS,
    Dilated,
    PCSampler,
    InfoGain,
    Remask,
    MIGate,
    DAWN,
    MeanField,
    SchED,
)}
# the exact-MI variants of the MI-guided selectors, by their historical names
ORACLES = {f"{name}_oracle": name for name, cls in SELECTORS.items() if cls.needs == "pairwise"}
NAMES = tuple(SELECTORS) + tuple(ORACLES)


def lookup(name: str) -> tuple[type[Selector], str | None]:
    """``(class, forced pairwise source)`` of a registry name (``X_oracle`` is ``X`` on exact MI)."""
    if name in SELECTORS:
        return SELECTORS[name], None
    if name in ORACLES:
        return SELECTORS[ORACLES[name]], "exact"
    raise ValueError(f"unknown selector {name!r}; choose from {', '.join(NAMES)}")


# the dependence source of an MI-guided rule, as a knob: mi_budget:pairwise=js,gamma=0.5
PAIRWISE = Knob("pairwise", str, "head", "dependence source: the MI head, exact MI (extra passes) or a free signal "
                "(attention, js, similarity)", choices=SOURCES + SIGNALS)


def knob_specs(name: str) -> dict[str, Knob]:
    """The knobs of ``name`` by knob name: an MI-guided rule also takes ``pairwise`` (its
    source) and ``delta`` (exact MI's truncation); an oracle name takes ``delta``."""
    cls, forced = lookup(name)
    specs = {k.name: k for k in cls.knobs}
    if cls.needs == "pairwise" and not forced:
        specs["pairwise"] = PAIRWISE
    if cls.needs == "pairwise":
        specs["delta"] = DELTA
    return specs


def knobs(name: str) -> dict:
    """The knobs of selector ``name`` and their defaults, e.g. ``{"k": 2, "order": "confidence"}``."""
    return {k: spec.default for k, spec in knob_specs(name).items()}


def needs(name: str, params: dict | None = None) -> str:
    """What selector ``name`` with knobs ``params`` needs beside the pass: ``"pairwise"`` (a
    trained MI head), ``"exact"`` (the model, for exact MI: ``*_oracle`` or
    ``pairwise=exact``) or ``"nothing"`` (every other rule, and the MI-guided ones on a free
    signal: ``pairwise=attention|js|similarity``)."""
    cls, forced = lookup(name)
    if forced:
        return "exact"
    if cls.needs != "pairwise":
        return "nothing"
    source = (params or {}).get("pairwise", "head")
    return "pairwise" if source == "head" else "exact" if source == "exact" else "nothing"


def unknown_knob(name: str, specs: dict, got: str) -> ValueError:
    """The error for knobs ``got`` that selector ``name`` does not take (it lists the ones it does)."""
    takes = f"takes only {', '.join(specs)}" if specs else "takes no parameters"
    return ValueError(f"selector {name!r} {takes}; got {got}")


def check_params(name: str, params: dict) -> dict:
    """Every knob checked against its spec (ValueError naming it); returns the knobs."""
    specs = knob_specs(name)
    unknown = sorted(set(params) - set(specs))
    if unknown:
        raise unknown_knob(name, specs, ", ".join(unknown))
    return {k: specs[k].check(name, v) for k, v in params.items()}


def make_selector(name: str, pairwise=None, *, estimator=None, model=None, **params) -> Selector:
    """Build a selector by registry name, e.g. ``make_selector("topk", k=4)``.

    MI-guided selectors (``needs == "pairwise"``) take a dependence source: ``pairwise="head"``
    with ``estimator=`` (a trained MI head; the default when an estimator is given),
    ``pairwise="exact"`` with ``model=`` (exact MI every step; ``delta=`` its truncation), a
    free signal (``"attention"``, ``"js"``, ``"similarity"``: :mod:`mdmi.selectors.signals`),
    or a source object. ``make_selector("mi_budget_oracle", model=m)`` is
    ``make_selector("mi_budget", pairwise="exact", model=m)``. Knobs are checked first.
    """
    cls, forced = lookup(name)
    wiring = {k: params.pop(k) for k in cls.wiring if k in params}  # objects, not knobs
    if isinstance(pairwise, str) and cls.needs == "pairwise" and not forced:
        PAIRWISE.check(name, pairwise)
    # delta is a knob of the exact source, not of the rule; at its default (as knobs(name)
    # lists it) it means nothing for another source
    exact = "exact" in (forced, pairwise)
    delta = params.pop("delta", DEFAULT_DELTA) if cls.needs == "pairwise" else DEFAULT_DELTA
    if not exact and delta != DEFAULT_DELTA:
        raise ValueError(f"selector {name!r}: delta is the truncation of exact MI; it needs pairwise='exact'")
    delta = DELTA.check(name, delta) if exact else DEFAULT_DELTA
    check_params(cls.name, params)
    if cls.needs != "pairwise":
        if pairwise is not None or estimator is not None:
            raise ValueError(f"selector {name!r} uses no pairwise dependence; do not pass pairwise/estimator")
        return cls(**params, **wiring)
    if forced:
        if pairwise not in (None, "exact"):
            raise ValueError(f"selector {name!r} is the exact-MI variant; pairwise={pairwise!r} contradicts it")
        pairwise = "exact"
    if pairwise in SIGNALS:
        if estimator is not None or model is not None:
            raise ValueError(f"selector {name!r} on the free signal {pairwise!r} reads neither an MI head nor the "
                             f"model's exact MI; do not pass estimator= or model=")
        return cls(make_signal(pairwise), **params, **wiring)
    if pairwise is None:
        if estimator is None:
            raise ValueError(f"selector {name!r} needs a pairwise dependence source: pass estimator= (a trained "
                             f"MI head), pairwise='exact' with model=, or a free signal: pairwise='attention', "
                             f"'js' or 'similarity'")
        pairwise = "head"
    source = make_pairwise(pairwise, cls.pairwise_kind, estimator=estimator, model=model, delta=delta)
    return cls(source, **params, **wiring)


def parse_spec(spec: str) -> list[tuple[str, dict]]:
    """A command-line selector spec -> ``[(name, knobs), ...]``, one per setting.

    ``mi_budget`` (defaults), ``mi_budget:gamma=0.1,eta=0`` (one setting),
    ``mi_budget:gamma=0.1/0.3,eta=0`` (a sweep: the product of every ``/`` list).
    ``+`` separates knobs too (the older ``name:knob=a/b+other=v`` form). Values are parsed
    by each knob's type; a bad name, knob or value is a ValueError that shows the syntax.
    """
    name, _, rest = spec.strip().partition(":")
    try:
        specs = knob_specs(name)
    except ValueError as e:
        raise ValueError(f"{e} (spec {spec!r})") from None
    grid: dict[str, list] = {}
    for part in filter(None, rest.replace("+", ",").split(",")):
        k, eq, v = part.partition("=")
        k = k.strip()
        if not eq or not v.strip():
            raise ValueError(f"selector spec must read name:knob=value,knob2=v1/v2, got {spec!r}")
        if k not in specs:
            raise unknown_knob(name, specs, f"{k!r} in {spec!r}")
        grid[k] = [specs[k].parse(name, x.strip()) for x in v.split("/")]
    keys = list(grid)
    return [(name, dict(zip(keys, values))) for values in product(*(grid[k] for k in keys))]


def parse_knob_list(name: str, items: list[str]) -> dict:
    """``["k=v", ...]`` (the ``--param`` form) -> knobs, parsed by type; ValueError names a
    malformed, unknown or repeated item."""
    out = {}
    specs = knob_specs(name)
    for item in items:
        k, eq, v = item.partition("=")
        k = k.strip().replace("-", "_")
        if not eq or not k.isidentifier() or not v.strip():
            raise ValueError(f"--param must look like key=value, got {item!r}")
        if k in out:
            raise ValueError(f"--param {k} is given twice")
        if k not in specs:
            raise unknown_knob(name, specs, k)
        out[k] = specs[k].parse(name, v.strip())
    return out


def describe(name: str) -> str:
    """A few lines on ``name``: what it does, its source, what it needs, its knobs."""
    cls, forced = lookup(name)
    need = {"nothing": "nothing beyond the pass", "pairwise": f"a pairwise {cls.pairwise_kind} source "
            "(a trained MI head, pairwise='exact', or a free signal: attention, js, similarity)"}[cls.needs]
    if cls.needs_attentions is True:  # a class that reads attention maps itself (not via a source)
        need = "the pass's attention maps (a model with supports_attentions)"
    if forced:
        need = "the model itself: exact MI every step (extra passes, reported apart from NFE)"
    lines = [f"{name}: {cls.summary}", f"  source: {cls.source}", f"  needs: {need}"]
    lines += ["  " + k.describe() for k in knob_specs(name).values()] or ["  (no knobs)"]
    return "\n".join(lines)


def markdown_table() -> str:
    """The registry as a Markdown table (name, rule, needs, knobs with defaults, source), for
    the README and the docs; generated, so it cannot drift from the code."""
    rows = ["| selector | rule | needs | knobs (default) | source |", "|---|---|---|---|---|"]
    for name, cls in SELECTORS.items():
        knobs_ = ", ".join(f"`{k.name}={k.default!r}`" for k in cls.knobs) or "none"
        need = ("MI head, exact MI or a free signal" if cls.needs == "pairwise" else
                "attention maps" if cls.needs_attentions is True else "-")
        rows.append(f"| `{name}` | {cls.summary} | {need} | {knobs_} | {cls.source} |")
    return "\n".join(rows) + "\n"
