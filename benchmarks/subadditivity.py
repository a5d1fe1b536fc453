"""The measured cost of parallel sampling on the sets the selectors actually pick.

For each selector setting: decode some Sudoku puzzles with a trace, draw a uniform sample
of the steps that filled >= 2 cells, and measure on each (context, S) the total correlation
TC(S) of the model's chain-rule joint (exact by enumeration when small, else Monte Carlo)
beside the sum of exact pairwise MI over S and the EB bound sum H - max H. Sub-additivity
fails on a set when TC exceeds the pairwise sum by more than 2 standard errors.

    python benchmarks/subadditivity.py --puzzles data/test_minimal.txt --json benchmarks/results/sudoku/subadditivity_test_minimal.json

A pretrained antibody LM (``--model sapiens:vh``) decodes real test sequences of AbNatiV's
test split instead, with their CDR3 masked or (``--task denovo``) every residue masked:

    python benchmarks/subadditivity.py --model sapiens:vh --estimator mdmi/checkpoints/sapiens_vh/estimator \
        --task cdr3 --selectors mi_budget:gamma=3/10,factor:f=1/4 --json benchmarks/results/antibody/sapiens_vh/subadditivity_cdr3.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mdmi.bench import build, settings
from mdmi.diagnostics import selector_sets, subadditivity_report
from mdmi.estimator import Estimator
from mdmi.resolve import resolve
from mdmi.resources import checkpoint_dir
from mdmi.tasks import sudoku
from mdmi.cli.common import script_provenance

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ("mi_budget:gamma=0.01/0.3,entropy_bound:gamma=0.01/0.3,threshold:tau=0.99/0.8,"
           "dependency_bound:tau=0.1/1")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(checkpoint_dir("sudoku")))
    ap.add_argument("--estimator", default=str(checkpoint_dir("sudoku/estimator")))
    ap.add_argument("--puzzles", default=str(ROOT / "data" / "test_minimal.txt"))
    ap.add_argument("--n-puzzles", type=int, default=16, help="puzzles (or sequences) decoded per setting")
    ap.add_argument("--task", default="cdr3", choices=["cdr3", "cdrs", "denovo"], help="antibody models only")
    ap.add_argument("--sets", type=int, default=24, help="sets measured per setting")
    ap.add_argument("--samples", type=int, default=128, help="Monte Carlo draws per set")
    ap.add_argument("--selectors", default=DEFAULT, help="comma-separated name:knob=v1/v2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "sudoku" / "subadditivity.json"))
    args = ap.parse_args()

    resolved = resolve(args.model)
    model = resolved.model
    est = Estimator.load(args.estimator)
    if resolved.chain is not None:  # a pretrained antibody LM
        from mdmi.bench.antibody import task_batch
        from mdmi.tasks.antibody import load_antibodies

        records = load_antibodies(resolved.chain, "test", n=args.n_puzzles)
        x = task_batch(model, records, args.task, torch.Generator().manual_seed(args.seed))[0]
    else:
        x = torch.stack([sudoku.encode(p.puzzle) for p in sudoku.read_puzzles(args.puzzles)[: args.n_puzzles]])
    out = []
    for name, params in tqdm(settings(args.selectors.split(",")), desc="settings"):
        t0 = time.perf_counter()
        pairs = selector_sets(model, x, build(name, params, model, est), max_sets=args.sets,
                              generator=torch.Generator().manual_seed(args.seed))
        rep = subadditivity_report(model, pairs, samples=args.samples, seed=args.seed).as_dict()
        rep.update(selector=name, params=params, seconds=time.perf_counter() - t0)
        out.append(rep)

    print(f"{'selector':18s} {'params':12s} {'sets':>4s} {'|S|':>5s} {'TC':>8s} {'sum I':>8s} {'EB bnd':>8s} "
          f"{'sub-add fails':>13s} {'EB viol':>7s} {'TC>sumI':>7s}")
    for r in out:
        p = ",".join(f"{k}={v}" for k, v in r["params"].items())
        above = sum(row["tc"] > row["pairwise_mi_sum"] for row in r["rows"])  # point estimates, no error bar
        print(f"{r['selector']:18s} {p:12s} {r['sets']:4d} {r['mean_set_size']:5.1f} {r['mean_tc']:8.4f} "
              f"{r['mean_pairwise_mi_sum']:8.4f} {r['mean_eb_bound']:8.4f} "
              f"{r['subadditivity_failures']:5d} ({100 * r['failure_rate']:4.1f}%) {r['eb_bound_violations']:7d} "
              f"{above:7d}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"args": vars(args), "settings": out, "provenance": script_provenance()}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
