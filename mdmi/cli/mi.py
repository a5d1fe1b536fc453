"""``mdmi mi``: exact (and predicted) pairwise MI of one context, with a picture."""

from __future__ import annotations

from .common import default_estimator, default_model, load


def cmd_mi(args):
    import torch

    from ..estimator import Estimator
    from ..mi import exact_mi
    from ..tasks import sudoku

    model_dir = default_model(args.model)
    model = load(model_dir)
    grid = 0
    if args.fasta:
        x = _masked_protein(model, args.fasta, args.mask_frac, args.seed)
    elif args.puzzle:
        x, grid = sudoku.encode(args.puzzle, model.mask_id)[None], 9
    else:
        raise ValueError("give a Sudoku puzzle or --fasta FILE")
    res = exact_mi(model, x, progress=True)
    est_dir = default_estimator(args.estimator, model_dir)
    pred = None
    if est_dir:
        from ..interface import allowed_tokens, masked_log_probs

        with torch.no_grad():
            out = model(x)
            pred = Estimator.load(est_dir).predict(out.hidden, res.masked, "mi",
                                                   log_probs=masked_log_probs(out.logits, allowed_tokens(model)))[0].double()
    masked = res.masked[0].nonzero().squeeze(1)
    if len(masked) < 2:
        raise ValueError("the puzzle needs at least two blanks for pairwise MI")
    cell = args.cell if args.cell is not None else int(masked[0])
    m = res.mi[0]
    L = m.shape[0]
    pair = res.masked[0][:, None] & res.masked[0][None, :] & ~torch.eye(L, dtype=torch.bool)
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
                title=(args.puzzle or args.fasta)[:40])
        print(f"wrote {args.plot}")


def _masked_protein(model, fasta, frac, seed):
    """The first FASTA record, encoded, with a seeded random ``frac`` of residues masked."""
    import torch

    from ..interface import scorable
    from ..tasks.protein import read_fasta

    limit = model.max_length - 2 if getattr(model, "max_length", None) else None
    x = model.encode([read_fasta(fasta, max_length=limit)[0][1]])
    g = torch.Generator().manual_seed(seed)
    hide = (torch.rand(x.shape, generator=g) < frac) & scorable(model, x)
    return torch.where(hide, torch.full_like(x, model.mask_id), x)



def add_parsers(sub) -> None:
    mi = sub.add_parser("mi", help="exact (and predicted) MI of a Sudoku puzzle or a protein, with a picture")
    mi.add_argument("puzzle", nargs="?", help="a Sudoku puzzle (or use --fasta)")
    mi.add_argument("--fasta", help="protein: the first record, with --mask-frac of residues masked")
    mi.add_argument("--mask-frac", type=float, default=0.3)
    mi.add_argument("--seed", type=int, default=0)
    mi.add_argument("--model")
    mi.add_argument("--estimator", help="default: <model>/estimator when present")
    mi.add_argument("--cell", type=int, help="cell (0..80) for the board heat map; default: first blank")
    mi.add_argument("--plot", help="write the picture here (PNG)")
    mi.set_defaults(func=cmd_mi)
