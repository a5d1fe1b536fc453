"""Antibody variable domains: real sequences, CDR spans, splits, FASTA with spans, masks.

Sequences come from the AbNatiV 2.0.9 wheel's test sets (Ramon et al. 2024; 50,000 human
VH and 50,000 VL, each with an AHo-aligned copy). They are licensed CC BY-NC-SA 4.0, so
mdmi never ships them: they are read at run time from an installed ``abnativ`` package or
from the wheel itself in the cache directory (``$MDMI_CACHE``, default ``~/.cache/mdmi``;
``make antibody-data`` puts it there). Only the ``vh`` and ``vl`` files are used.

CDR definition: AHo numbering (Honegger & Plueckthun 2001) with AbNatiV's ranges, 1-based
and inclusive: CDR1 = AHo 27-42, CDR2 = 57-69, CDR3 = 108-138. CDR3 so runs from the
second residue after the conserved Cys (AHo 106; in most VH the ``R`` of ``C-A-R``) to the
residue before the ``W``/``F`` of ``WGxG``/``FGxG`` (AHo 139); CDR1 starts after
``C-x-x-S``-like AHo 23-26 and CDR2 after ``E-W-x-G``-like AHo 53-56. A span here is residue indices ``(start, end)``: 0-based into the
ungapped sequence, end-exclusive.

FASTA headers carry spans as ``>NAME cdr1=A-B cdr2=C-D cdr3=E-F``; any subset of them may be
given, and files written by hand this way are read the same. A record whose header has no
span is numbered instead (:mod:`mdmi.tasks.numbering`, AHo by ANARCI: the same spans).
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .protein import read_fasta, write_fasta

CDR_AHO = {"cdr1": (27, 42), "cdr2": (57, 69), "cdr3": (108, 138)}  # AHo, 1-based inclusive
AHO_LENGTH = 149
CHAINS = ("vh", "vl")
ABNATIV = "abnativ==2.0.9"
SPLITS = {"train": (0.0, 0.8), "valid": (0.8, 0.9), "test": (0.9, 1.0)}
_SPAN = re.compile(r"^(cdr[123])=(\d+)-(\d+)$")


@dataclass
class Antibody:
    """One variable domain: ``spans`` maps ``cdr1``/``cdr2``/``cdr3`` (any subset) to
    residue index ranges ``(start, end)``, 0-based, end-exclusive."""

    name: str
    sequence: str
    chain: str = ""
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    unnumbered: str = ""  # why a record read without spans could not be numbered (a CDR mask says it)

    def header(self) -> str:
        return " ".join([self.name] + [f"{k}={a}-{b}" for k, (a, b) in sorted(self.spans.items())])


def cdr_spans(aligned: str) -> dict[str, tuple[int, int]]:
    """CDR spans of a sequence from its AHo-aligned copy (149 columns, '-' for gaps).
    ValueError if the alignment is not 149 columns or a CDR holds no residue."""
    if len(aligned) != AHO_LENGTH:
        raise ValueError(f"an AHo alignment has {AHO_LENGTH} columns, got {len(aligned)}")
    residue = []  # residue index at each column, -1 for a gap
    n = 0
    for c in aligned:
        residue.append(-1 if c == "-" else n)
        n += c != "-"
    spans = {}
    for name, (lo, hi) in CDR_AHO.items():
        idx = [r for r in residue[lo - 1: hi] if r >= 0]
        if not idx:
            raise ValueError(f"the alignment has no residue in {name} (AHo {lo}-{hi})")
        spans[name] = (idx[0], idx[-1] + 1)
    return spans


def parse_header(header: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """``'NAME cdr1=A-B cdr3=E-F more words'`` -> (NAME, spans). Words that are not spans
    are ignored; a word that starts like a span but is malformed raises ValueError."""
    words = header.split()
    spans = {}
    for w in words[1:]:
        if not w.lower().startswith("cdr"):
            continue
        m = _SPAN.match(w.lower())
        if not m:
            raise ValueError(f"malformed CDR span {w!r}; write cdrN=START-END (0-based, end-exclusive)")
        a, b = int(m.group(2)), int(m.group(3))
        if a >= b:
            raise ValueError(f"CDR span {w!r} is empty or reversed")
        spans[m.group(1)] = (a, b)
    return (words[0] if words else ""), spans


def numbered(record: Antibody) -> Antibody:
    """``record`` with the chain and CDR spans of its AHo numbering
    (:func:`mdmi.tasks.numbering.number_antibody`). When it cannot be numbered (not a
    variable domain, or ANARCI not installed) it keeps no spans and ``unnumbered`` says why
    and how to give the spans by hand: the reader also serves any protein under a random
    mask, which needs no CDR, so only a CDR mask turns this into an error."""
    from .numbering import number_antibody

    try:
        n = number_antibody(record.sequence, record.name)
    except (ImportError, ValueError) as e:
        why = str(e).removeprefix(f"record {record.name!r}: ")  # the error that shows this names the record
        return Antibody(record.name, record.sequence, record.chain, {}, unnumbered=(
            f"numbering it failed: {why}; give the spans in its header instead, e.g. '>{record.name} cdr3=95-107' "
            "(residue indices 0-based, end exclusive; antiberty and sapiens put a start token first, so after "
            "encode() residue i is token i+1)"))
    return Antibody(record.name, record.sequence, n.chain, n.spans)


def read_antibody_fasta(path: str | Path, max_length: int | None = None) -> list[Antibody]:
    """Records of a FASTA file whose headers may carry CDR spans; a record with none in its
    header gets them (and its chain) from :func:`numbered` (about 10 ms a record), one
    with any keeps exactly those. ValueError names the record for a malformed span or one
    that runs past the sequence."""
    out = []
    for header, seq in read_fasta(path, max_length=max_length):
        try:
            name, spans = parse_header(header)
        except ValueError as e:
            raise ValueError(f"{path}: record {header!r}: {e}") from None
        for k, (a, b) in spans.items():
            if b > len(seq):
                raise ValueError(f"{path}: record {name!r}: {k}={a}-{b} runs past its {len(seq)} residues")
        record = Antibody(name, seq, spans=spans)
        out.append(record if spans else numbered(record))
    return out


def write_antibody_fasta(path: str | Path, records: list[Antibody]) -> None:
    write_fasta(path, [(r.header(), r.sequence) for r in records])


# ------------------------------------------------------------------ the AbNatiV sequences


def cache_dir() -> Path:
    return Path(os.environ.get("MDMI_CACHE", Path.home() / ".cache" / "mdmi"))


def _abnativ_csv(chain: str) -> str:
    """Text of AbNatiV's test CSV for ``chain``: from an installed package, else from the
    wheel in :func:`cache_dir`. FileNotFoundError says how to get it."""
    import importlib.util

    relative = f"abnativ/model/percentiles/test_{chain}_v2_abnativ_seq_scores.csv"
    spec = importlib.util.find_spec("abnativ")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]).parent / relative
        if path.is_file():
            return path.read_text()
    for wheel in sorted(cache_dir().glob("abnativ-2.0.9-*.whl")):
        with zipfile.ZipFile(wheel) as z:
            return z.read(relative).decode()
    raise FileNotFoundError(
        f"antibody sequences come from the {ABNATIV} wheel (CC BY-NC-SA 4.0, never shipped with mdmi), "
        f"which is not here: run 'make antibody-data' or 'pip download --no-deps {ABNATIV} -d {cache_dir()}'")


def parse_abnativ(text: str, chain: str) -> list[Antibody]:
    """Rows of an AbNatiV CSV (columns ``seq_id``, ``input_seq``, ``aligned_seq``) ->
    records with CDR spans. Rows whose alignment leaves a CDR empty are left out.
    ValueError names the row whose alignment and sequence differ."""
    rows = csv.DictReader(io.StringIO(text))
    missing = {"seq_id", "input_seq", "aligned_seq"} - set(rows.fieldnames or [])
    if missing:
        raise ValueError(f"AbNatiV CSV lacks columns {sorted(missing)}")
    out = []
    for n, r in enumerate(rows, 2):
        seq, aligned = r["input_seq"].strip(), r["aligned_seq"].strip()
        if aligned.replace("-", "") != seq:
            raise ValueError(f"AbNatiV {chain} CSV line {n}: the aligned copy is not the sequence")
        if any(set(aligned[lo - 1: hi]) == {"-"} for lo, hi in CDR_AHO.values()):
            continue  # a deletion leaves a CDR empty (2 VH, 13 VL rows): not a whole domain
        out.append(Antibody(f"{chain}_{r['seq_id']}", seq, chain, cdr_spans(aligned)))
    return out


def load_antibodies(chain: str, split: str = "test", n: int | None = None, seed: int = 0) -> list[Antibody]:
    """The first ``n`` (all if None) records of ``split`` (train 80% / valid 10% / test 10%
    of AbNatiV's 50,000 ``chain`` sequences, by a permutation seeded with ``seed``)."""
    if chain not in CHAINS:
        raise ValueError(f"chain must be one of {CHAINS}, got {chain!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    records = parse_abnativ(_abnativ_csv(chain), chain)
    order = torch.randperm(len(records), generator=torch.Generator().manual_seed(seed)).tolist()
    lo, hi = (round(f * len(records)) for f in SPLITS[split])
    picked = [records[i] for i in order[lo:hi]]
    return picked[:n] if n is not None else picked


# ------------------------------------------------------------------ masks


def parse_mask(spec: str) -> tuple[str, float]:
    """``'cdr3'``, ``'cdrs'``, ``'cdr1'``/``'cdr2'``, ``'after_fr1'`` (every residue from CDR1
    on: the first framework region is the prompt) or ``'random:F'`` -> (kind, fraction)."""
    if spec in ("cdr1", "cdr2", "cdr3", "cdrs", "after_fr1"):
        return spec, 0.0
    if spec.startswith("random:"):
        try:
            frac = float(spec[7:])
        except ValueError:
            frac = -1.0
        if not 0 < frac <= 1:
            raise ValueError(f"--mask random:F needs 0 < F <= 1, got {spec!r}")
        return "random", frac
    raise ValueError(f"--mask must be cdr1, cdr2, cdr3, cdrs, after_fr1 or random:F, got {spec!r}")


def residue_mask(record: Antibody, spec: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bool (len(sequence),): the residues ``spec`` hides (see :func:`parse_mask`).
    ``random:F`` hides each residue with probability F (at least one). ValueError when the
    record lacks a span the mask needs."""
    kind, frac = parse_mask(spec)
    L = len(record.sequence)
    if kind == "random":
        hide = torch.rand(L, generator=generator) < frac
        if not hide.any():
            hide[torch.randint(L, (1,), generator=generator)] = True
        return hide
    names = ["cdr1", "cdr2", "cdr3"] if kind == "cdrs" else ["cdr1"] if kind == "after_fr1" else [kind]
    absent = [k for k in names if k not in record.spans]
    if absent:
        why = f"; {record.unnumbered}" if record.unnumbered else ""
        raise ValueError(f"record {record.name!r} has no {', '.join(absent)} span in its header (mask {spec!r}){why}")
    hide = torch.zeros(L, dtype=torch.bool)
    if kind == "after_fr1":
        hide[record.spans["cdr1"][0]:] = True
        return hide
    for k in names:
        a, b = record.spans[k]
        hide[a:b] = True
    return hide


def region_labels(record: Antibody) -> list[str]:
    """Per residue, the CDR it lies in (``cdr1``/``cdr2``/``cdr3``) or ``fw`` (framework)."""
    out = ["fw"] * len(record.sequence)
    for k, (a, b) in record.spans.items():
        out[a:b] = [k] * (b - a)
    return out


def masked_batch(model, records: list[Antibody], spec: str, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``records`` with ``model`` (an HF adapter: start/end tokens, right padding)
    and hide the residues ``spec`` picks (:func:`residue_mask`) with the mask id.

    Returns ``x`` (B, L) and ``residues`` (B, L) bool, True at the token positions that hold
    residues: the k-th True of a row is residue k of its record."""
    from ..interface import scorable

    x = model.encode([r.sequence for r in records])
    residues = scorable(model, x)
    hide = torch.zeros_like(residues)
    for b, r in enumerate(records):
        pos = residues[b].nonzero().squeeze(1)
        hide[b, pos] = residue_mask(r, spec, generator)
    return torch.where(hide, torch.full_like(x, model.mask_id), x), residues


DISTANCE_BINS = ((1, 1), (2, 2), (3, 4), (5, 8), (9, 16), (17, 32), (33, 10_000))


def pair_category(a: str, b: str) -> str:
    """Region pair of two residues: ``within cdrN``, ``cdr-cdr`` (two different CDRs),
    ``cdr-fw`` or ``fw-fw``."""
    if a == b:
        return "fw-fw" if a == "fw" else f"within {a}"
    return "cdr-fw" if "fw" in (a, b) else "cdr-cdr"


def mi_structure(mi: torch.Tensor, regions: list[str]) -> dict:
    """Where a residue-level MI matrix (R, R) (zero on unmasked residues) puts its mass:
    per region pair (:func:`pair_category`) the summed MI over pairs i < j, and per
    sequence-distance bin the summed MI and pair count (masked pairs only)."""
    R = mi.shape[0]
    masked = mi.abs().sum(1) > 0  # residues with any MI; others contribute nothing
    by_region: dict[str, float] = {}
    by_dist = {f"{lo}-{hi}" if hi < 10_000 else f"{lo}+": [0.0, 0] for lo, hi in DISTANCE_BINS}
    keys = list(by_dist)
    idx = masked.nonzero().squeeze(1).tolist()
    for a_i, i in enumerate(idx):
        for j in idx[a_i + 1:]:
            v = float(mi[i, j])
            cat = pair_category(regions[i], regions[j])
            by_region[cat] = by_region.get(cat, 0.0) + v
            d = j - i
            k = next(n for n, (lo, hi) in enumerate(DISTANCE_BINS) if lo <= d <= hi)
            by_dist[keys[k]][0] += v
            by_dist[keys[k]][1] += 1
    return {"residues": R, "masked": len(idx), "total": sum(by_region.values()), "by_region": by_region,
            "by_distance": {k: {"sum": s, "pairs": n} for k, (s, n) in by_dist.items()}}


# ------------------------------------------------------------------ label contexts

REGION_CODES = {"fw": 0, "cdr1": 1, "cdr2": 2, "cdr3": 3}  # tokens that are not residues: -1


def encode_regions(model, records: list[Antibody]) -> tuple[torch.Tensor, torch.Tensor]:
    """``records`` encoded by ``model`` (padded to the longest) and, per token, its region
    code (:data:`REGION_CODES`; -1 on start/end/padding tokens): both (N, L)."""
    from ..interface import scorable

    x = model.encode([r.sequence for r in records])
    residues = scorable(model, x)
    regions = torch.full(x.shape, -1, dtype=torch.int8)
    for b, r in enumerate(records):
        pos = residues[b].nonzero().squeeze(1)
        regions[b, pos] = torch.tensor([REGION_CODES[c] for c in region_labels(r)], dtype=torch.int8)
    return x, regions


def antibody_sampler(model, records: list[Antibody]):
    """A clean sampler for label jobs (see :func:`mdmi.tasks.clean_sampler`):
    ``(n, generator) -> (tokens (n, L), regions (n, L))``, records drawn with replacement.
    Every draw has the same length L (the longest record), so shards concatenate."""
    if not records:
        raise ValueError("no antibody records to draw label contexts from")
    tokens, regions = encode_regions(model, records)

    def sample(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(tokens), (n,), generator=g)
        return tokens[idx], regions[idx]

    return sample
