"""One ranking of every selector: knob picked on validation puzzles, reported on test.

    python benchmarks/ranking.py --valid V1.json [V2.json ...] --test T1.json [T2.json ...] \
        --json benchmarks/results/sudoku/ranking_minimal.json --plot benchmarks/results/sudoku/ranking_minimal.png

Antibody rows (``bench antibody``) rank by ``--metric pll`` (greedy) or ``--metric neg_jsd``
(sampled: minus the JSD to sequential's samples); there the MI budget with ``eta=0`` is its
own curve, ``mi_budget(eta=0)``.

Pick rule (fixed before looking at test): per selector, among its validation settings with
mean NFE <= sequential's / ``--speed`` (default 3x fewer passes), the one with the highest
solve rate (ties: fewer NFE); a selector that never gets that fast is listed with its
fastest setting and marked. Then the picked setting's test row, and the MI budget's test
solve rate interpolated at the same NFE (the equal-NFE comparison), with the paired
difference (per-puzzle outcomes, 95% interval) against the MI budget setting nearest in NFE.

``--matched LO HI`` adds, with ``--matched-json``, every test row of the other selectors
whose NFE is LO-HI times below sequential's (no pick: each setting of the sweep), paired
against the ``--ours`` setting nearest in NFE: the comparison at every matched NFE.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


from mdmi.bench import METRICS, NFE_LABEL, BenchRow, curve_rows, interpolate, model_of
from mdmi.plots import pareto_plot
from mdmi.cli.common import script_provenance


def load(paths):
    rows, seen = [], set()
    for p in paths:
        rows_here = [BenchRow.from_dict(r) for r in json.loads(Path(p).read_text())]
        for r in curve_rows(rows_here):  # mi_budget(eta=0): its own curve
            key = (r.selector, json.dumps(r.params, sort_keys=True))
            if key not in seen:
                seen.add(key)
                rows.append(r)
    return rows


def pick(rows, speed, metric="solve_rate"):
    seq = next(r for r in rows if r.selector == "sequential")
    picks = {}
    for name in dict.fromkeys(r.selector for r in rows):
        mine = [r for r in rows if r.selector == name]
        fast = [r for r in mine if r.mean_nfe <= seq.mean_nfe / speed]
        if name == "sequential":
            picks[name] = (seq, True)
        elif fast:
            picks[name] = (max(fast, key=lambda r: (r.get(metric), -r.mean_nfe)), True)
        else:
            picks[name] = (min(mine, key=lambda r: r.mean_nfe), False)
    return picks


def paired(a, b, metric="solve_rate"):
    """Mean difference (a - b) of the per-puzzle solves, or of the per-sequence ``metric``
    of antibody rows (``per_seq``), and its 95% interval (normal approximation). Rows are
    BenchRows or their dicts."""
    if metric == "solve_rate":
        if not (a.get("solved_per_puzzle") and b.get("solved_per_puzzle")):
            return None
        xa, xb = [int(v) for v in a.get("solved_per_puzzle")], [int(v) for v in b.get("solved_per_puzzle")]
    else:
        key, sign = ("jsd", -1) if metric == "neg_jsd" else (metric, 1)
        if key not in a.get("per_seq", {}) or key not in b.get("per_seq", {}):
            return None
        xa, xb = [sign * v for v in a.get("per_seq")[key]], [sign * v for v in b.get("per_seq")[key]]
    d = [x - y for x, y in zip(xa, xb)]
    n = len(d)
    m = sum(d) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in d) / max(1, n - 1))
    return m, m - 1.96 * sd / math.sqrt(n), m + 1.96 * sd / math.sqrt(n)


def matched(test, seq, ours, metric, lo, hi, path, fmt, dfmt):
    """Every test row of the other selectors between ``lo`` and ``hi`` times fewer NFE than
    sequential, paired against the ``ours`` row nearest in NFE; printed and written to ``path``."""
    prov = script_provenance()
    mine = [r for r in test if r.selector == ours]
    out = []
    print(f"\nevery setting at {lo:g}-{hi:g}x fewer NFE, paired against the nearest {ours}\n")
    for t in sorted(test, key=lambda r: r.mean_nfe):
        red = seq.mean_nfe / t.mean_nfe
        if t.selector in (ours, "sequential") or not lo <= red <= hi or not mine:
            continue
        near = min(mine, key=lambda r: abs(r.mean_nfe - t.mean_nfe))
        pd = paired(t, near, metric)
        out.append({"selector": t.selector, "params": t.params, "test_nfe": t.mean_nfe, "reduction": red,
                    f"test_{metric}": t.get(metric), "ours": ours, "ours_params": near.params,
                    "ours_nfe": near.mean_nfe, f"ours_{metric}": near.get(metric),
                    "diff": None if pd is None else pd[0], "ci95": None if pd is None else [pd[1], pd[2]],
                    "provenance": prov})
        knob = ",".join(f"{k}={v}" for k, v in t.params.items())
        print(f"{t.selector:16s} {knob:16s} {t.mean_nfe:6.2f} ({red:4.1f}x) {fmt(t.get(metric)):>6s}  vs "
              f"{ours} {json.dumps(near.params)} {near.mean_nfe:6.2f} {fmt(near.get(metric)):>6s}: "
              + ("n/a" if pd is None else f"{dfmt(pd[0])} ({dfmt(pd[1])}, {dfmt(pd[2])})"))
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--valid", nargs="+", required=True)
    p.add_argument("--test", nargs="+", required=True)
    p.add_argument("--speed", type=float, default=3.0, help="the pick's NFE must be this many times below sequential's")
    p.add_argument("--metric", default="solve_rate", choices=["solve_rate", "pll", "neg_jsd", "validity"],
                   help="what the pick maximises and the table compares (higher is better)")
    p.add_argument("--ours", default="mi_budget", help="the curve interpolated at every pick's NFE")
    p.add_argument("--json")
    p.add_argument("--plot")
    p.add_argument("--matched", nargs=2, type=float, metavar=("LO", "HI"),
                   help="also pair every test setting LO-HI times below sequential's NFE with --ours nearest in NFE")
    p.add_argument("--matched-json", help="where the --matched rows go")
    a = p.parse_args()
    if bool(a.matched) != bool(a.matched_json):
        p.error("--matched and --matched-json go together")
    valid, test = load(a.valid), load(a.test)
    picks = pick(valid, a.speed, a.metric)
    seq_test = next(r for r in test if r.selector == "sequential")
    M = a.metric
    fmt = (lambda v: f"{100 * v:.1f}") if M in ("solve_rate", "validity") else (lambda v: f"{v:.4f}")  # noqa: E731
    dfmt = (lambda v: f"{100 * v:+.1f}") if M in ("solve_rate", "validity") else (lambda v: f"{v:+.4f}")  # noqa: E731
    mi = sorted((r.mean_nfe, r.get(M)) for r in test if r.selector == a.ours)
    out = []
    print(f"knobs picked on validation: best {M} at >= {a.speed:g}x fewer NFE than sequential\n")
    print(f"{'selector':18s} {'picked knob':24s} {'test NFE':>8s} {'xfewer':>6s} {M:>8s} "
          f"{a.ours + ' at same NFE':>24s} {'paired diff vs nearest ' + a.ours:>34s}")
    for name, (vrow, fast) in picks.items():
        t = next((r for r in test if r.selector == name and r.params == vrow.params), None)
        if t is None:
            print(f"{name:18s} {json.dumps(vrow.params):24s}   (no test row for this setting)")
            continue
        at = interpolate(mi, t.mean_nfe) if mi else None
        mis = [r for r in test if r.selector == a.ours]
        near = min(mis, key=lambda r: abs(r.mean_nfe - t.mean_nfe)) if mis else None
        pd = paired(t, near, M) if near is not None and name != a.ours else None
        nfe_near = near.mean_nfe if near is not None else math.nan
        row = {"selector": name, "params": t.params, "fast_enough": fast, "test_nfe": t.mean_nfe,
               "reduction": seq_test.mean_nfe / t.mean_nfe, f"test_{M}": t.get(M),
               f"{a.ours}_{M}_at_same_nfe": at, "valid_nfe": vrow.mean_nfe, f"valid_{M}": vrow.get(M),
               "matches_sequential": t.get("matches_sequential"),
               "paired_vs_nearest_mi_budget": None if pd is None else {
                   "mi_budget_params": near.params, "mi_budget_nfe": near.mean_nfe, "diff": pd[0],
                   "ci95": [pd[1], pd[2]]}}
        out.append(row)
        knob = ",".join(f"{k}={v}" for k, v in t.params.items()) + ("" if fast else " (slower)")
        print(f"{name:18s} {knob:24s} {t.mean_nfe:8.2f} {row['reduction']:6.2f} {fmt(t.get(M)):>8s} "
              f"{'n/a' if at is None else fmt(at):>24s} "
              f"{'' if pd is None else f'{dfmt(pd[0])} ({dfmt(pd[1])}, {dfmt(pd[2])})  at NFE {nfe_near:.1f}':>34s}")
    if a.json:
        prov = script_provenance()
        for row in out:
            row.setdefault("provenance", prov)
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    if a.matched:
        matched(test, seq_test, a.ours, M, *a.matched, a.matched_json, fmt, dfmt)
    if a.plot:
        shown = "jsd" if M == "neg_jsd" else M  # JSD itself (lower is better) on the plot
        kind = test[0].benchmark
        task = "Sudoku" if kind == "sudoku" else test[0].extra.get("task", kind)
        pareto_plot(test, a.plot, metric=shown, ylabel=METRICS[shown].label, scale=METRICS[shown].scale,
                    xlabel=NFE_LABEL[kind], title=f"model {model_of(test)} · {task} (test rows) · n = {test[0].n}")
        print(f"wrote {a.plot}")


if __name__ == "__main__":
    main()
