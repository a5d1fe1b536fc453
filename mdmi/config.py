"""One check every config dataclass runs first: each field has its default's kind."""

from __future__ import annotations

import math
from dataclasses import fields


def check_types(cfg) -> None:
    """ValueError naming the field when a value is not of its default's kind: an int field
    takes an int (not a bool), a float field a finite number, a bool field a bool."""
    name = type(cfg).__name__
    for f in fields(cfg):
        v, d = getattr(cfg, f.name), f.default
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif isinstance(d, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        else:
            continue
        if not ok:
            raise ValueError(f"{name}.{f.name} must be {'a finite number' if isinstance(d, float) else type(d).__name__}"
                             f", got {v!r}")
