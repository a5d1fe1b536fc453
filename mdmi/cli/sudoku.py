"""Sudoku: ``mdmi solve``, ``mdmi eval sudoku``, ``mdmi generate-puzzles``."""

from __future__ import annotations

import json
from pathlib import Path

from .common import (add_decode_args, check_positive, default_model, estimator_used, load, nonnegative, provenance,
                     selector_from_args)


def cmd_solve(args):
    import torch

    from ..tasks import sudoku

    p = sudoku.Puzzle("".join(map(str, sudoku.parse(args.puzzle))))
    sudoku.reference_solutions([p])  # an unsolvable puzzle is refused before the model loads
    model = load(default_model(args.model), args)
    selector = selector_from_args(args, model)
    res = sudoku.evaluate(model, [p], selector, temperature=args.temperature,
                          generator=torch.Generator().manual_seed(args.seed))
    out = res.outputs[0]
    print(sudoku.pretty(out))
    print(f"valid: {res.solved[0]}   NFE: {res.mean_nfe:.0f}{_extra(args, res, 1)}   "
          f"blanks: {p.puzzle.count('0')}" + ("   (several solutions: scored by validity)" if res.non_unique else ""))


def _extra(args, res, n) -> str:
    """For oracle selectors, the exact-MI passes the loop's NFE leaves out, and the total."""
    from ..selectors import needs, parse_knob_list

    if needs(args.selector, parse_knob_list(args.selector, args.param or [])) != "exact":
        return ""
    extra = res.extra_passes / n
    return f" (+ {extra:.1f} exact-MI passes per puzzle = {res.mean_nfe + extra:.1f} in all)"


def cmd_eval_sudoku(args):
    import torch

    from ..tasks import sudoku

    check_positive(args, "batch_size")
    puzzles = sudoku.read_puzzles(args.puzzles)
    if args.limit:
        puzzles = puzzles[: args.limit]
    model = load(default_model(args.model), args)
    selector = selector_from_args(args, model)
    res = sudoku.evaluate(model, puzzles, selector, batch_size=args.batch_size,
                          temperature=args.temperature, generator=torch.Generator().manual_seed(args.seed),
                          progress=True)
    lo, hi = res.solve_rate_ci95
    n, nu = res.n, res.non_unique
    print(f"puzzles: {n} (mean blanks {res.mean_blanks:.1f})  selector: {args.selector} {args.param or ''}")
    print(f"solve rate: {100 * res.solve_rate:.1f}%  (95% CI {100 * lo:.1f}-{100 * hi:.1f})"
          + (f"  ({nu} puzzles have several solutions: any valid grid counts)" if nu else ""))
    acc = "n/a (no puzzle has a unique solution)" if res.cell_accuracy is None else \
        f"{100 * res.cell_accuracy:.2f}%" + (f" (over the {n - nu} unique puzzles)" if nu else "")
    print(f"cell accuracy: {acc}   mean NFE: {res.mean_nfe:.2f}{_extra(args, res, n)}")
    print(f"time: {res.seconds:.1f}s  ({res.puzzles_per_s:.1f} puzzles/s)")
    if args.json:
        row = {k: v for k, v in res.as_dict().items() if k not in ("outputs", "solved", "extra_passes")}
        row.update(selector=args.selector, params=args.param or [], puzzles=str(args.puzzles),
                   model=default_model(args.model), temperature=args.temperature, seed=args.seed, limit=args.limit,
                   batch_size=args.batch_size, estimator=estimator_used(args), provenance=provenance(args))
        if _extra(args, res, n):
            row["oracle_extra_passes_per_puzzle"] = res.extra_passes / n
            row["mean_nfe_with_oracle_passes"] = res.mean_nfe + res.extra_passes / n
        Path(args.json).write_text(json.dumps(row, indent=2) + "\n")


def cmd_generate_puzzles(args):
    from ..tasks import sudoku

    check_positive(args, "n")
    puzzles = sudoku.generate(args.n, args.givens, args.seed, split=args.split, progress=True)
    sudoku.write_puzzles(args.out, puzzles)
    g = sum(81 - p.puzzle.count("0") for p in puzzles) / len(puzzles)
    print(f"wrote {len(puzzles)} puzzles (mean givens {g:.1f}) to {args.out}")



def add_parsers(sub) -> None:
    so = sub.add_parser("solve", help="solve one Sudoku puzzle and print the grid and NFE")
    so.add_argument("puzzle", help="81 characters, 1-9 givens, 0 or . blanks")
    add_decode_args(so)
    so.set_defaults(func=cmd_solve)

    ev = sub.add_parser("eval", help="evaluate a model on a task")
    esub = ev.add_subparsers(dest="task", required=True)
    es = esub.add_parser("sudoku", help="solve rate, NFE and cell accuracy on a puzzle file")
    es.add_argument("--puzzles", required=True, help="file: one puzzle, or 'puzzle solution', per line")
    es.add_argument("--json", help="write the metrics here")
    es.add_argument("--batch-size", type=int, default=256, help="puzzles decoded together")
    es.add_argument("--limit", type=nonnegative, default=0, help="use only the first N puzzles (0 = all)")
    add_decode_args(es)
    es.set_defaults(func=cmd_eval_sudoku)
    from .text import add_eval_parser

    add_eval_parser(esub)

    gp = sub.add_parser("generate-puzzles", help="unique-solution Sudoku puzzles with their solutions")
    gp.add_argument("--n", type=int, default=1000, help="puzzles to generate")
    gp.add_argument("--givens", type=int, default=34, help="clues to keep; 0 = minimal puzzles (~24-26)")
    gp.add_argument("--seed", type=int, default=0, help="seed of the generator")
    gp.add_argument("--split", default="test", help="random stream; 'train' grids are used for training")
    gp.add_argument("--out", required=True, help="puzzle file to write ('puzzle solution' per line)")
    gp.set_defaults(func=cmd_generate_puzzles)
