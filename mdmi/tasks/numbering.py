"""AHo numbering of a bare VH or VL sequence: its CDR spans and chain, with no header spans.

The shipped data (AbNatiV's test sets) are AHo-aligned by ANARCI (Dunbar & Deane 2016), so
numbering a sequence with ANARCI's AHo scheme and cutting it at
:data:`mdmi.tasks.antibody.CDR_AHO` gives the spans mdmi uses for those sequences (checked
on 500 VH and 500 VL of them: all spans equal). ANARCI (BSD-3) aligns with HMMER's
``hmmscan``; the ``hmmer`` wheel ships that binary, so ``pip install 'mdmi[numbering]'``
needs nothing else. A ``hmmscan`` on ``PATH`` is used when the wheel is absent. Both are
imported only when a sequence is numbered. Cost: one ``hmmscan`` run, about 10 ms a
sequence on one core.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..models.hf import AMINO_ACIDS
from .antibody import CDR_AHO

INSTALL = "pip install 'mdmi[numbering]'"
CHAIN_OF = {"H": "vh", "K": "vl", "L": "vl"}  # ANARCI chain types: heavy, kappa, lambda


@dataclass(frozen=True)
class Numbering:
    """Where the CDRs of one variable domain lie. Spans and ``domain`` are residue index
    ranges ``(start, end)``, 0-based into the given sequence, end-exclusive (as in
    :class:`mdmi.tasks.antibody.Antibody`)."""

    chain: str  # "vh" (heavy) or "vl" (kappa or lambda)
    spans: dict[str, tuple[int, int]]  # cdr1, cdr2, cdr3
    domain: tuple[int, int]  # the residues ANARCI numbered; the rest (tags, linkers, constant domain) is not


def _hmmscan_dir() -> str:
    """The folder holding ``hmmscan``: the ``hmmer`` wheel's, else the one on PATH."""
    spec = importlib.util.find_spec("hmmer")
    if spec is not None and spec.submodule_search_locations:
        wheel = Path(list(spec.submodule_search_locations)[0]) / "data" / "bin"
        if (wheel / "hmmscan").is_file():  # the binary itself: the console script copies it to /tmp per call
            return str(wheel)
    found = shutil.which("hmmscan")
    if found is None:
        raise ImportError(f"antibody numbering needs HMMER's hmmscan: {INSTALL}")
    return str(Path(found).parent)


def number_antibody(sequence: str, name: str = "sequence") -> Numbering:
    """AHo-number one VH or VL amino-acid ``sequence`` (ANARCI, heavy/kappa/lambda HMMs) and
    return its chain and CDR spans (AbNatiV's AHo ranges, :data:`CDR_AHO`).

    ImportError (naming the pip extra) when ANARCI or hmmscan is missing; ValueError naming
    ``name`` when the sequence has letters outside the 20 amino acids, holds no variable
    domain (or more than one, as an scFv does), or its domain has no residue in a CDR."""
    if importlib.util.find_spec("anarci") is None:
        raise ImportError(f"antibody numbering needs ANARCI: {INSTALL}")
    from anarci import anarci

    bad = sorted(set(sequence) - set(AMINO_ACIDS))
    if not sequence or bad:
        raise ValueError(f"record {name!r}: cannot number {'an empty sequence' if not sequence else bad}")
    try:
        numbered, details, _ = anarci([(name, sequence)], scheme="aho", hmmerpath=_hmmscan_dir(),
                                      allow=set(CHAIN_OF))
    except AssertionError as e:  # ANARCI checks its input with assert
        raise ValueError(f"record {name!r}: ANARCI refused it: {e}") from None
    domains = numbered[0] or []
    if len(domains) != 1:
        what = "no antibody variable domain" if not domains else \
            f"{len(domains)} variable domains ({', '.join(d['chain_type'] for d in details[0])})"
        raise ValueError(f"record {name!r}: ANARCI finds {what}; numbering needs one VH or VL per record")
    states, start, _ = domains[0]
    positions = {}  # residue index -> AHo position (1-based); ANARCI lists gaps as '-'
    i = start
    for (aho, _insertion), aa in states:
        if aa != "-":
            positions[i] = aho
            i += 1
    spans = {}
    for cdr, (lo, hi) in CDR_AHO.items():
        idx = [r for r, aho in positions.items() if lo <= aho <= hi]
        if not idx:
            raise ValueError(f"record {name!r}: its domain has no residue in {cdr} (AHo {lo}-{hi})")
        spans[cdr] = (min(idx), max(idx) + 1)
    return Numbering(CHAIN_OF[details[0][0]["chain_type"]], spans, (start, i))
