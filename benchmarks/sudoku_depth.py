"""How many parallel rounds a puzzle needs: the floor under any decoder that fills only
forced cells, and where a bench run's passes go.

For each puzzle, ``sudoku.singles_depth``: rounds of naked + hidden singles done in
parallel, or "not solvable by singles". With a bench JSON (``mdmi bench sudoku --json``,
which keeps per-puzzle results), each row's solve rate and mean NFE are split into
singles-solvable puzzles and the rest, beside the mean depth of the solvable ones.

    python benchmarks/sudoku_depth.py --puzzles data/test_minimal.txt \\
        --bench benchmarks/results/sudoku/test_minimal.json --json benchmarks/results/sudoku/singles_depth_test_minimal.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from mdmi.tasks import sudoku
from mdmi.cli.common import script_provenance


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--puzzles", required=True)
    ap.add_argument("--bench", help="a bench JSON over the same puzzle file")
    ap.add_argument("--json")
    args = ap.parse_args()

    puzzles = sudoku.read_puzzles(args.puzzles)
    depth = [sudoku.singles_depth(sudoku.parse(p.puzzle)) for p in puzzles]
    ok = [d for d, s in depth if s]
    summary = {"puzzles": args.puzzles, "n": len(puzzles), "solvable_by_singles": len(ok),
               "depth_mean": statistics.mean(ok) if ok else None, "depth_median": statistics.median(ok) if ok else None,
               "depth_max": max(ok) if ok else None,
               "depth_histogram": {d: ok.count(d) for d in sorted(set(ok))}}
    print(f"{args.puzzles}: {len(ok)}/{len(puzzles)} solvable by singles; rounds mean "
          f"{summary['depth_mean']:.2f}, median {summary['depth_median']}, max {summary['depth_max']}")
    rows = []
    if args.bench:
        bench_rows = json.loads(Path(args.bench).read_text())
        easy = [s for _, s in depth]
        print(f"{'selector':18s} {'params':14s} {'solve %':>8s} {'NFE':>6s} | singles-solvable: {'solve %':>7s} "
              f"{'NFE':>6s} {'depth':>5s} | rest: {'solve %':>7s} {'NFE':>6s}")
        for r in bench_rows:
            if "solved_per_puzzle" not in r or len(r["nfe_per_puzzle"]) != len(puzzles):
                raise SystemExit(f"{args.bench}: row {r['selector']} has no per-puzzle results for {len(puzzles)} puzzles")
            out = {"selector": r["selector"], "params": r["params"], "solve_rate": r["solve_rate"],
                   "mean_nfe": r["mean_nfe"]}
            for name, want in (("singles", True), ("rest", False)):
                idx = [i for i, e in enumerate(easy) if e == want]
                n = max(1, len(idx))
                out[name] = {"n": len(idx), "solve_rate": sum(r["solved_per_puzzle"][i] == "1" for i in idx) / n,
                             "mean_nfe": sum(r["nfe_per_puzzle"][i] for i in idx) / n}
            rows.append(out)
            p = ",".join(f"{k}={v}" for k, v in r["params"].items())
            print(f"{r['selector']:18s} {p:14s} {100 * r['solve_rate']:8.1f} {r['mean_nfe']:6.2f} | "
                  f"{'':17s} {100 * out['singles']['solve_rate']:7.1f} {out['singles']['mean_nfe']:6.2f} "
                  f"{summary['depth_mean']:5.1f} | {'':5s} {100 * out['rest']['solve_rate']:7.1f} "
                  f"{out['rest']['mean_nfe']:6.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows, "provenance": script_provenance()}, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
