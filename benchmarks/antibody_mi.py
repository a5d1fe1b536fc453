"""Where pretrained antibody LMs put their pairwise MI: CDR3, across CDRs, framework, and
how MI decays with sequence distance. Exact MI (DESIGN.md section 2) over real test VH/VL.

    python benchmarks/antibody_mi.py --models sapiens:vh,sapiens:vl --masks cdr3,cdrs,random:0.3 --n 200

Each (model, mask) row is written to the JSON as soon as it is done; a rerun skips the rows
already there, and a killed row resumes from its last finished batch (``<json>.partial.json``). Needs the abnativ wheel
('make antibody-data'); its sequences are never written out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm


import mdmi
from mdmi.mi import exact_mi
from mdmi.tasks.antibody import load_antibodies, masked_batch, mi_structure, region_labels
from mdmi.cli.common import script_provenance

CHAIN = {"sapiens:vh": "vh", "sapiens:vl": "vl", "antiberty": "vh"}


def run(model, name, records, mask, batch, seed, partial: Path):
    """Accumulate over batches; after each, the sums so far go to ``partial`` (JSON), so a
    killed run resumes where it stopped (the masks of the finished batches are drawn again
    without computing anything, so a resumed run uses the same masks as an unbroken one)."""
    state = json.loads(partial.read_text()) if partial.is_file() else {}
    key = f"{name}|{mask}|{len(records)}|{seed}"
    acc = state.get(key, {"done": 0, "by_region": {}, "by_dist": {}, "totals": [], "passes": 0, "masked": 0,
                          "seconds": 0.0})
    by_region, by_dist, totals = acc["by_region"], acc["by_dist"], acc["totals"]
    passes, masked = acc["passes"], acc["masked"]
    t0 = time.time() - acc["seconds"]
    g = torch.Generator().manual_seed(seed)
    for s in range(0, acc["done"], batch):  # replay the masks drawn before the restart
        masked_batch(model, records[s: s + batch], mask, g)
    for s in tqdm(range(acc["done"], len(records), batch), desc=f"{name} {mask}", unit="batch"):
        recs = records[s: s + batch]
        x, residues = masked_batch(model, recs, mask, g)
        res = exact_mi(model, x)
        passes += int(res.passes.sum())
        for b, r in enumerate(recs):
            pos = residues[b].nonzero().squeeze(1)
            st = mi_structure(res.mi[b][pos][:, pos], region_labels(r))
            totals.append(st["total"])
            masked += st["masked"]
            for k, v in st["by_region"].items():
                by_region[k] = by_region.get(k, 0.0) + v
            for k, v in st["by_distance"].items():
                d = by_dist.setdefault(k, [0.0, 0])
                d[0] += v["sum"]
                d[1] += v["pairs"]
        state[key] = {"done": s + len(recs), "by_region": by_region, "by_dist": by_dist, "totals": totals,
                      "passes": passes, "masked": masked, "seconds": time.time() - t0}
        partial.write_text(json.dumps(state) + "\n")
    return summarise(name, model, mask, totals, masked, by_region, by_dist, passes, time.time() - t0, seed)


def summarise(name, model, mask, totals, masked, by_region, by_dist, passes, seconds, seed):
    total = sum(totals)
    n = len(totals)
    return {"model": name, "version": getattr(model, "version", None), "mask": mask, "sequences": n,
            "mean_masked": masked / n, "mean_total_mi": total / n,
            "share": {k: v / total for k, v in sorted(by_region.items())},
            "mean_mi_by_distance": {k: (s / n if n else None) for k, (s, n) in by_dist.items()},
            "pairs_by_distance": {k: n for k, (s, n) in by_dist.items()},
            "passes": passes, "seconds": seconds, "seed": seed}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="sapiens:vh,sapiens:vl")
    p.add_argument("--masks", default="cdr3,cdrs,random:0.3")
    p.add_argument("--n", type=int, default=200, help="test sequences per model")
    p.add_argument("--batch", type=int, default=4, help="contexts per exact_mi call")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="benchmarks/results/antibody/mi_structure_sapiens.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.json)
    rows = json.loads(out.read_text()) if out.is_file() else []
    for name in a.models.split(","):
        model = mdmi.load(name)
        records = load_antibodies(CHAIN[name], "test", n=a.n, seed=a.seed)
        for mask in a.masks.split(","):
            if any(r["model"] == name and r["mask"] == mask and r["sequences"] == a.n for r in rows):
                continue
            rows.append({**run(model, name, records, mask, a.batch, a.seed, out.with_suffix(".partial.json")),
                         "provenance": script_provenance()})
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(rows, indent=2) + "\n")
    cats = sorted({k for r in rows for k in r["share"]})
    print(f"{'model':11s} {'mask':10s} {'masked':>6s} {'MI/seq':>7s} " + " ".join(f"{c:>11s}" for c in cats))
    for r in rows:
        print(f"{r['model']:11s} {r['mask']:10s} {r['mean_masked']:6.1f} {r['mean_total_mi']:7.3f} "
              + " ".join(f"{100 * r['share'].get(c, 0):10.1f}%" for c in cats))
    dists = list(rows[0]["mean_mi_by_distance"]) if rows else []
    print(f"\nmean MI per masked pair (nats) by sequence distance |i-j|\n{'model':11s} {'mask':10s} "
          + " ".join(f"{d:>7s}" for d in dists))
    for r in rows:
        print(f"{r['model']:11s} {r['mask']:10s} " + " ".join(
            f"{v:7.4f}" if v is not None else f"{'-':>7s}" for v in r["mean_mi_by_distance"].values()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
