"""Sudoku with the shipped model and MI head: sequential decoding vs the MI budget.

The shipped 6-layer transformer fills a few test puzzles (34 givens, 47 blanks) once one
cell per pass and once with the MI budget, which fills, per pass, the cells whose summed
entropy and pairwise MI (predicted by the shipped head from the same pass) fit in gamma
nats. Printed: solve rate and mean NFE (model passes per puzzle).

    python examples/sudoku.py             # 20 puzzles, a few seconds; --n 1000 is the whole file
"""

import argparse
from pathlib import Path

import mdmi
from mdmi.tasks import sudoku

ROOT = Path(__file__).resolve().parents[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--puzzles", default=str(ROOT / "data" / "test_34.txt"), help="one 'puzzle solution' per line")
    ap.add_argument("--n", type=int, default=20, help="puzzles to solve (the first n)")
    ap.add_argument("--gamma", type=float, default=0.05, help="MI budget in nats (picked on data/valid_34.txt)")
    args = ap.parse_args()
    model, head = mdmi.load("sudoku"), mdmi.load_estimator("sudoku")  # shipped inside the package
    puzzles = sudoku.read_puzzles(args.puzzles)[: args.n]
    for name, sel in [("sequential", mdmi.make_selector("sequential")),
                      (f"mi_budget gamma={args.gamma}", mdmi.make_selector("mi_budget", estimator=head,
                                                                            gamma=args.gamma))]:
        r = sudoku.evaluate(model, puzzles, sel)
        print(f"{name:22s} solved {sum(r.solved)}/{r.n} ({100 * r.solve_rate:.1f}%)  mean NFE {r.mean_nfe:.2f}")
    print(f"the MI budget's grid for the first puzzle (valid: {r.solved[0]}):\n{sudoku.pretty(r.outputs[0])}")


if __name__ == "__main__":
    main()
