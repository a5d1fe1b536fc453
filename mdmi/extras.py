"""Optional dependencies, checked where a command or a load starts, before any work.

Each extra is one importable module and the line that installs it. :func:`require`
finds modules with :func:`importlib.util.find_spec` (nothing is imported: Sapiens' own code
would pull in fairseq) and raises :class:`MissingExtra`, an ImportError whose one-line
message says what needs the module and how to install it, e.g.
``mdmi mi --model sapiens:vh needs transformers: pip install 'mdmi[hf]'``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Extra:
    module: str  # the module that must be importable
    install: str  # the command that installs it


EXTRAS = {
    "hf": Extra("transformers", "pip install 'mdmi[hf]'"),
    "plot": Extra("matplotlib", "pip install 'mdmi[plot]'"),
    # the only release whose wheel carries the weights
    "antiberty": Extra("antiberty", "pip install antiberty==0.1.3"),
    # without its dependencies: they pull fairseq and torch<2.5; mdmi reads only its weights
    "sapiens": Extra("sapiens", "pip install --no-deps sapiens==1.0.5"),
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message is one line, ready to print."""


def missing(*names: str) -> list[str]:
    """The extras among ``names`` whose module cannot be found (ValueError for an unknown name)."""
    out = []
    for name in names:
        if name not in EXTRAS:
            raise ValueError(f"unknown extra {name!r}; choose from {sorted(EXTRAS)}")
        try:
            found = importlib.util.find_spec(EXTRAS[name].module) is not None
        except (ImportError, ValueError):  # a broken install or a module set to None in sys.modules
            found = False
        if not found and name not in out:
            out.append(name)
    return out


def require(*names: str, who: str) -> None:
    """Raise :class:`MissingExtra` naming ``who`` (what needs them) when any extra of
    ``names`` is not installed: ``"<who> needs transformers: pip install 'mdmi[hf]'"``,
    several joined with ``"; "``."""
    gone = missing(*names)
    if gone:
        raise MissingExtra(f"{who} needs " + "; ".join(f"{EXTRAS[n].module}: {EXTRAS[n].install}" for n in gone))
