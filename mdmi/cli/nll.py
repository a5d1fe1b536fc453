"""``mdmi nll``: -log p(x) per sequence (I-MDCE)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .common import SHIPPED, check_positive, provenance, require_protein, resolve_model

if TYPE_CHECKING:
    import torch


def read_sequences(path, model, task: str | None = None) -> torch.Tensor:
    """FASTA records for a protein model; else one sequence per line: a Sudoku grid (81
    characters) when ``task`` is ``"sudoku"``, token ids separated by spaces otherwise.
    Errors name the line."""
    import torch

    from ..tasks import sudoku

    text = Path(path).read_text()
    if text.lstrip().startswith(">"):
        require_protein(model, f"{path} is FASTA; reading it")
        from ..tasks.protein import read_fasta

        return model.encode([s for _, s in read_fasta(path, max_length=model.max_residues)])
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            if task == "sudoku":
                grid = line.split()[-1]  # 'puzzle solution' lines: score the solution
                if "0" in grid or "." in grid:
                    raise ValueError("a grid to score must be complete (no blanks)")
                rows.append(sudoku.encode(grid, model.mask_id))
            else:
                ids = [int(t) for t in line.replace(",", " ").split()]
                if not ids:
                    raise ValueError("no token ids on this line")
                bad = [t for t in ids if not 0 <= t < model.vocab_size or t == model.mask_id]
                if bad:
                    raise ValueError(f"unknown token ids {sorted(set(bad))[:5]} (vocab_size={model.vocab_size})")
                rows.append(torch.tensor(ids))
        except ValueError as e:
            raise ValueError(f"{path}:{n}: {e}") from None
    if not rows:
        raise ValueError(f"{path}: no sequences found")
    lengths = {len(r) for r in rows}
    fixed = getattr(getattr(model, "config", None), "seq_len", None)
    if fixed is not None and lengths != {fixed}:
        raise ValueError(f"{path}: this model scores sequences of exactly {fixed} tokens, got lengths {sorted(lengths)}")
    if len(lengths) > 1:
        raise ValueError(f"{path}: sequences must share one length, got lengths {sorted(lengths)}")
    return torch.stack(rows)


def cmd_nll(args):
    import torch
    from tqdm import tqdm

    from ..likelihood import nll

    check_positive(args, "chunk")
    if args.samples < 2:
        raise ValueError(f"--samples must be >= 2 (for a standard error), got {args.samples}")
    resolved = resolve_model(args.model, args)
    model = resolved.model
    x = read_sequences(args.input, model, resolved.task)
    g = torch.Generator().manual_seed(args.seed)
    rows = []
    for s in tqdm(range(0, len(x), args.chunk), desc="nll", unit="chunk"):
        r = nll(model, x[s: s + args.chunk], samples=args.samples, method=args.method, generator=g)
        rows += list(zip(r.nll.tolist(), r.per_token.tolist(), r.stderr.tolist()))
    print(f"{'seq':>5s} {'nll (nats)':>12s} {'nats/token':>11s} {'stderr':>8s}")
    for i, (a, b, c) in enumerate(rows):
        print(f"{i:5d} {a:12.3f} {b:11.4f} {c:8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": str(args.model), "input": str(args.input), "method": args.method, "samples": args.samples,
            "seed": args.seed, "provenance": provenance(args),
            "sequences": [{"nll": a, "nats_per_token": b, "stderr": c} for a, b, c in rows]}, indent=1) + "\n")



def add_parsers(sub) -> None:
    nl = sub.add_parser("nll", help="estimate -log p(x) per sequence (I-MDCE time-free by default)")
    nl.add_argument("--model", required=True, help="a shipped model (" + ", ".join(SHIPPED) + "), hf:<id or dir> "
                    "or a model directory")
    nl.add_argument("--input", required=True, help="one sequence per line (token ids, or Sudoku grids)")
    nl.add_argument("--samples", type=int, default=128, help="model passes per sequence")
    nl.add_argument("--method", default="time_free", choices=["time_free", "time_integral"],
                    help="I-MDCE time-free (lower variance) or the time-integral baseline")
    nl.add_argument("--seed", type=int, default=0, help="seed of the masks")
    nl.add_argument("--chunk", type=int, default=16, help="sequences per progress step")
    nl.add_argument("--json", help="write the per-sequence figures here")
    nl.set_defaults(func=cmd_nll)
