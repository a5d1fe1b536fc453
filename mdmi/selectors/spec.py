"""Knob specifications: what a selector's knob is, its type, default, range and meaning.

Each selector class lists its knobs as :class:`Knob` objects; the registry checks and
parses every value against them, and help pages print them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..mi import DEFAULT_DELTA


@dataclass(frozen=True)
class Knob:
    """One knob of a selector: ``type`` int, float or str; ``lo``/``hi`` the allowed range
    (``lo_open``/``hi_open``: the bound itself excluded); ``choices`` for text knobs."""

    name: str
    type: type
    default: object
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple | None = None

    def check(self, selector: str, v):
        """``v`` if it is a valid value of this knob, else ValueError naming the knob."""
        where = f"selector {selector!r}: {self.name}"
        if self.type is str:
            if not isinstance(v, str):
                raise ValueError(f"{where} must be text, got {v!r}")
            if self.choices is not None and v not in self.choices:
                raise ValueError(f"{where} must be one of {self.choices}, got {v!r}")
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{where} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"{where} must be finite, got {v}")
        if self.type is int and not isinstance(v, int):
            raise ValueError(f"{where} must be an integer, got {v!r}")
        if self.choices is not None and v not in self.choices:
            raise ValueError(f"{where} must be one of {self.choices}, got {v!r}")
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            raise ValueError(f"{where} must be {'>' if self.lo_open else '>='} {self.lo}, got {v}")
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            raise ValueError(f"{where} must be {'<' if self.hi_open else '<='} {self.hi}, got {v}")
        return v

    def parse(self, selector: str, text: str):
        """A value from the command line: text for a text knob, else a number of the
        knob's type (``-1`` is an integer, ``1e-3`` a float)."""
        if self.type is str:
            return self.check(selector, text)
        try:
            v = int(text) if self.type is int else float(text)
        except ValueError:
            kind = "an integer" if self.type is int else "a number"
            raise ValueError(f"selector {selector!r}: {self.name} must be {kind}, got {text!r}") from None
        return self.check(selector, v)

    def describe(self) -> str:
        """``gamma (float >= 0, default 1.0): meaning``, for help pages and listings."""
        rng = []
        if self.choices is not None:
            rng.append("one of " + "/".join(map(str, self.choices)))
        if self.lo is not None:
            rng.append(f"{'>' if self.lo_open else '>='} {self.lo}")
        if self.hi is not None:
            rng.append(f"{'<' if self.hi_open else '<='} {self.hi}")
        kind = self.type.__name__ + (" " + ", ".join(rng) if rng else "")
        return f"{self.name} ({kind}, default {self.default!r}): {self.help}"


ORDER_CHOICES = ("confidence", "margin", "entropy")


def order_knob(default: str) -> Knob:
    return Knob("order", str, default, "candidate order: confidence, margin or entropy", choices=ORDER_CHOICES)


DELTA = Knob("delta", float, DEFAULT_DELTA, "exact MI probe truncation (pairwise='exact' only)", lo=0.0, hi=0.5)




def check_knobs(selector, **values) -> dict:
    """Each value checked against the knob of ``selector`` (a Selector class or instance)
    that it names (ValueError naming the knob); returns the values. For constructors, so
    that a rule's ranges are written once, in its ``knobs``."""
    specs = {k.name: k for k in selector.knobs}
    return {k: specs[k].check(selector.name, v) for k, v in values.items()}
