"""One ranking of every selector: knob picked on validation puzzles, reported on test.

    python benchmarks/ranking.py --valid V1.json [V2.json ...] --test T1.json [T2.json ...] \
        --json benchmarks/results/ranking_minimal.json --plot benchmarks/results/ranking_minimal.png

Pick rule (fixed before looking at test): per selector, among its validation settings with
mean NFE <= sequential's / ``--speed`` (default 3x fewer passes), the one with the highest
solve rate (ties: fewer NFE); a selector that never gets that fast is listed with its
fastest setting and marked. Then the picked setting's test row, and the MI budget's test
solve rate interpolated at the same NFE (the equal-NFE comparison), with the paired
difference (per-puzzle outcomes, 95% interval) against the MI budget setting nearest in NFE.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mdmi.bench import _interp, pareto_plot  # noqa: E402


def load(paths):
    rows, seen = [], set()
    for p in paths:
        for r in json.loads(Path(p).read_text()):
            key = (r["selector"], json.dumps(r["params"], sort_keys=True))
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return rows


def pick(rows, speed):
    seq = next(r for r in rows if r["selector"] == "sequential")
    picks = {}
    for name in dict.fromkeys(r["selector"] for r in rows):
        mine = [r for r in rows if r["selector"] == name]
        fast = [r for r in mine if r["mean_nfe"] <= seq["mean_nfe"] / speed]
        if name == "sequential":
            picks[name] = (seq, True)
        elif fast:
            picks[name] = (max(fast, key=lambda r: (r["solve_rate"], -r["mean_nfe"])), True)
        else:
            picks[name] = (min(mine, key=lambda r: r["mean_nfe"]), False)
    return picks


def paired(a, b):
    """Mean difference of per-puzzle solves (a - b) and its 95% interval (normal approx.)."""
    if not (a.get("solved_per_puzzle") and b.get("solved_per_puzzle")):
        return None
    d = [int(x) - int(y) for x, y in zip(a["solved_per_puzzle"], b["solved_per_puzzle"])]
    n = len(d)
    m = sum(d) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in d) / max(1, n - 1))
    return m, m - 1.96 * sd / math.sqrt(n), m + 1.96 * sd / math.sqrt(n)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--valid", nargs="+", required=True)
    p.add_argument("--test", nargs="+", required=True)
    p.add_argument("--speed", type=float, default=3.0, help="the pick's NFE must be this many times below sequential's")
    p.add_argument("--json")
    p.add_argument("--plot")
    a = p.parse_args()
    valid, test = load(a.valid), load(a.test)
    picks = pick(valid, a.speed)
    seq_test = next(r for r in test if r["selector"] == "sequential")
    mi = sorted((r["mean_nfe"], r["solve_rate"]) for r in test if r["selector"] == "mi_budget")
    out = []
    print(f"knobs picked on validation: best solve rate at >= {a.speed:g}x fewer NFE than sequential\n")
    print(f"{'selector':18s} {'picked knob':24s} {'test NFE':>8s} {'xfewer':>6s} {'solve %':>8s} "
          f"{'mi_budget % at same NFE':>24s} {'paired diff vs nearest mi_budget':>34s}")
    for name, (vrow, fast) in picks.items():
        t = next((r for r in test if r["selector"] == name and r["params"] == vrow["params"]), None)
        if t is None:
            print(f"{name:18s} {json.dumps(vrow['params']):24s}   (no test row for this setting)")
            continue
        at = _interp(mi, t["mean_nfe"]) if mi else None
        mis = [r for r in test if r["selector"] == "mi_budget"]
        near = min(mis, key=lambda r: abs(r["mean_nfe"] - t["mean_nfe"])) if mis else None
        pd = paired(t, near) if near is not None and name != "mi_budget" else None
        nfe_near = near["mean_nfe"] if near is not None else math.nan
        row = {"selector": name, "params": t["params"], "fast_enough": fast, "test_nfe": t["mean_nfe"],
               "reduction": seq_test["mean_nfe"] / t["mean_nfe"], "test_solve": t["solve_rate"],
               "mi_budget_solve_at_same_nfe": at, "valid_nfe": vrow["mean_nfe"], "valid_solve": vrow["solve_rate"],
               "paired_vs_nearest_mi_budget": None if pd is None else {
                   "mi_budget_params": near["params"], "mi_budget_nfe": near["mean_nfe"], "diff": pd[0],
                   "ci95": [pd[1], pd[2]]}}
        out.append(row)
        knob = ",".join(f"{k}={v}" for k, v in t["params"].items()) + ("" if fast else " (slower)")
        print(f"{name:18s} {knob:24s} {t['mean_nfe']:8.2f} {row['reduction']:6.2f} {100 * t['solve_rate']:8.1f} "
              f"{'n/a' if at is None else f'{100 * at:.1f}':>24s} "
              f"{'' if pd is None else f'{100 * pd[0]:+.1f} ({100 * pd[1]:+.1f}, {100 * pd[2]:+.1f})  at NFE {nfe_near:.1f}':>34s}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    if a.plot:
        pareto_plot(test, a.plot)
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
