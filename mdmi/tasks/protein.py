"""Protein sequences: FASTA reading and writing with clear errors."""

from __future__ import annotations

from pathlib import Path

from ..models.hf import AMINO_ACIDS

EXTRA = "XBZUO"  # ambiguous / rare codes a tokenizer may know; accepted only when asked


def read_fasta(path: str | Path, alphabet: str = AMINO_ACIDS, max_length: int | None = None) -> list[tuple[str, str]]:
    """Records (name, sequence) of a FASTA file. Raises ValueError naming the record for an
    unknown letter, an empty record, a sequence before any header, or a sequence longer
    than ``max_length`` residues."""
    records: list[tuple[str, list[str]]] = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            records.append((line[1:].strip() or f"record{len(records) + 1}", []))
        elif not records:
            raise ValueError(f"{path}:{n}: sequence before the first '>' header")
        else:
            records[-1][1].append(line.replace(" ", "").upper())
    if not records:
        raise ValueError(f"{path}: no FASTA records")
    out = []
    for name, parts in records:
        seq = "".join(parts)
        if not seq:
            raise ValueError(f"{path}: record {name!r} is empty")
        bad = sorted(set(seq) - set(alphabet))
        if bad:
            raise ValueError(f"{path}: record {name!r} has letters outside {alphabet!r}: {bad}")
        if max_length is not None and len(seq) > max_length:
            raise ValueError(f"{path}: record {name!r} has {len(seq)} residues; the model takes at most {max_length}")
        out.append((name, seq))
    return out


def write_fasta(path: str | Path, records: list[tuple[str, str]], width: int = 60) -> None:
    lines = []
    for name, seq in records:
        lines.append(f">{name}")
        lines += [seq[i: i + width] for i in range(0, len(seq), width)]
    Path(path).write_text("\n".join(lines) + "\n")
