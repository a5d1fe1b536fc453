"""``mdmi mi``: exact (and predicted) pairwise MI of one context, with a picture."""

from __future__ import annotations

import argparse

from .common import (ESTIMATOR_DEFAULT, MODEL_HELP, default_estimator, default_model, load, load_estimator,
                     require_protein)


def cmd_mi(args):
    from ..mi import exact_mi, masked_pairs
    from ..tasks import sudoku

    model_dir = default_model(args.model)
    model = load(model_dir, args)
    grid = 0
    if args.fasta:
        return _protein_mi(args, model, model_dir)
    if args.puzzle:
        x, grid = sudoku.encode(args.puzzle, model.mask_id)[None], 9
        if args.cell is not None and not (0 <= args.cell < 81 and int(x[0, args.cell]) == model.mask_id):
            raise ValueError(f"--cell {args.cell} is not a blank cell of the puzzle (cells are 0..80)")
    else:
        raise ValueError("give a Sudoku puzzle or --fasta FILE")
    res = exact_mi(model, x, progress=True)
    est_dir = default_estimator(args.estimator, model_dir)
    pred = _predicted(est_dir, model_dir, model, x, res.masked) if est_dir else None
    masked = res.masked[0].nonzero().squeeze(1)
    if len(masked) < 2:
        raise ValueError("the puzzle needs at least two blanks for pairwise MI")
    cell = args.cell if args.cell is not None else int(masked[0])
    m = res.mi[0]
    L = m.shape[0]
    pair = masked_pairs(res.masked[0])
    print(f"masked positions {len(masked)}; exact MI cost {int(res.passes[0])} model passes")
    if grid:
        same = sudoku.same_unit()
        print(f"mean exact MI: same row/col/box {m[pair & same].mean():.4f} nats, other pairs {m[pair & ~same].mean():.4f}")
    else:
        top = (m * pair).flatten().topk(min(5, int(pair.sum()))).indices
        print("strongest pairs: " + ", ".join(f"({int(t) // L},{int(t) % L}) {m.flatten()[t]:.3f}" for t in top))
    if pred is not None:
        from ..stats import spearman

        print(f"estimator ({est_dir}): Spearman vs exact over masked pairs {spearman(pred[pair], m[pair]):.3f}")
    if args.plot:
        from ..plots import mi_maps

        mi_maps(m.float(), None if pred is None else pred.float(), args.plot, cell=cell, grid=grid,
                title=(args.puzzle or args.fasta)[:40], pairs=pair)
        print(f"wrote {args.plot}")


def _predicted(est_dir, model_dir, model, x, masked):
    """(L, L) float64: the MI head's matrix for the one context ``x`` (1, L), from one pass."""
    import torch

    from ..interface import allowed_tokens, masked_log_probs

    with torch.no_grad():
        out = model(x)
        return load_estimator(est_dir, model_dir).to(out.hidden.device).predict(
            out.hidden, masked, "mi", log_probs=masked_log_probs(out.logits, allowed_tokens(model)))[0].double()


def _protein_mi(args, model, model_spec):
    """One FASTA record with --mask residues hidden: exact MI over residues, the strongest
    pairs with their regions, the matrix (--out .npy or .json) and a log-scale map (--plot)."""
    import json
    from pathlib import Path

    import torch

    from ..mi import exact_mi
    from ..tasks.antibody import (
        masked_batch,
        parse_mask,
        read_antibody_fasta,
        region_labels,
    )

    require_protein(model, "--fasta")
    spec = f"random:{args.mask_frac}" if args.mask_frac is not None else args.mask
    parse_mask(spec)
    if args.out and Path(args.out).suffix not in (".npy", ".json"):
        raise ValueError(f"--out must end in .npy or .json, got {args.out!r}")
    records = read_antibody_fasta(args.fasta, max_length=model.max_residues)
    if not 0 <= args.record < len(records):
        raise ValueError(f"--record {args.record} is out of range: {args.fasta} holds {len(records)} records")
    rec = records[args.record]
    x, residues = masked_batch(model, [rec], spec, torch.Generator().manual_seed(args.seed))
    res = exact_mi(model, x, progress=True)
    pos = residues[0].nonzero().squeeze(1)
    m = res.mi[0][pos][:, pos]  # (R, R) residues only
    hidden = res.masked[0][pos]
    if int(hidden.sum()) < 2:
        raise ValueError(f"mask {spec!r} hides {int(hidden.sum())} residue(s); pairwise MI needs two")
    regions = region_labels(rec)
    R = len(rec.sequence)
    upper = torch.triu(torch.ones(R, R, dtype=torch.bool), 1) & hidden[:, None] & hidden[None, :]
    vals = m[upper]
    order = vals.argsort(descending=True)[: args.top]
    ij = upper.nonzero()[order]
    top = [f"{rec.sequence[i]}{i:<3d}({regions[i]:4s}) - {rec.sequence[j]}{j:<3d}({regions[j]:4s}) "
           f"{float(m[i, j]):.4f} nats" for i, j in ij.tolist()]
    print(f"{rec.name}: {len(rec.sequence)} residues, {int(hidden.sum())} masked ({spec}); "
          f"exact MI cost {int(res.passes[0])} model passes; total pairwise MI {float(vals.sum()):.3f} nats")
    print("strongest pairs (residue index 0-based, region):")
    print("\n".join("  " + t for t in top))
    panels = [("exact pairwise MI (nats)", m)]
    rho = None
    est_dir = default_estimator(args.estimator, model_spec)
    if est_dir:  # the MI head of this model, from the same single pass
        from ..stats import spearman

        pm = _predicted(est_dir, model_spec, model, x, res.masked)[pos][:, pos]
        panels.append(("predicted by the MI head, one pass (nats)", pm))
        rho = spearman(pm[upper], vals)
        print(f"MI head ({est_dir}): Spearman vs exact over the masked pairs {rho:.3f}, "
              f"total predicted {float(pm[upper].sum()):.3f} nats")
    if args.out:
        if args.out.endswith(".npy"):
            import numpy as np

            np.save(args.out, m.numpy())
        else:
            Path(args.out).write_text(json.dumps({
                "name": rec.name, "sequence": rec.sequence, "spans": rec.spans, "mask": spec,
                "masked": hidden.nonzero().squeeze(1).tolist(), "passes": int(res.passes[0]),
                "mi_nats": m.tolist()}) + "\n")
        print(f"wrote {args.out} ({R} x {R} residue matrix, nats)")
    if args.plot:
        from ..plots import residue_mi_map

        shown = hidden.nonzero().squeeze(1).tolist()
        residue_mi_map(panels, rec.sequence, regions, shown, args.plot,
                       title=f"{getattr(model, 'name', '')} {rec.name}: mask {spec}"
                       + (f"; MI head vs exact: Spearman {rho:.3f} over {int(upper.sum())} masked pairs" if rho is not None
                          else ""), top=top[:8])
        print(f"wrote {args.plot}")


def add_parsers(sub) -> None:
    mi = sub.add_parser("mi", help="exact (and predicted) MI of a Sudoku puzzle or a protein, with a picture",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mi.add_argument("puzzle", nargs="?", help="a Sudoku puzzle (or use --fasta)")
    mi.add_argument("--fasta", help="protein FASTA (headers may carry cdrN=START-END spans); see --record, --mask")
    mi.add_argument("--record", type=int, default=0, help="which FASTA record (0-based)")
    mi.add_argument("--mask", default="random:0.3", help="residues to hide: cdr3, cdrs, cdr1, cdr2 or random:F")
    mi.add_argument("--mask-frac", type=float, help="same as --mask random:F")
    mi.add_argument("--top", type=int, default=10, help="strongest pairs to print (protein)")
    mi.add_argument("--out", help="protein: write the residue MI matrix here (.npy or .json)")
    mi.add_argument("--seed", type=int, default=0, help="seed of the random mask")
    mi.add_argument("--model", help=MODEL_HELP)
    mi.add_argument("--estimator", help=f"MI head whose prediction is shown beside the exact map "
                    f"(default: {ESTIMATOR_DEFAULT})")
    mi.add_argument("--cell", type=int, help="cell (0..80) for the board heat map; default: first blank")
    mi.add_argument("--plot", help="write the picture here (PNG)")
    mi.set_defaults(func=cmd_mi)
