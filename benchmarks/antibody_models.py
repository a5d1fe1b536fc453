"""The pretrained antibody LMs on a CPU: masked-residue recovery (the conversion check) and
speed (model passes/s and exact-MI contexts/s at batch 1/8/32).

    python benchmarks/antibody_models.py --models sapiens:vh,sapiens:vl,antiberty --n 500

Recovery: ``--n`` test sequences of the model's chain, each residue masked with probability
0.15 (seeded), all masked residues predicted from one pass (argmax over the 20 amino
acids). A mis-converted or random model gets about 5-20%. Speed: the best of ``--repeats``
timings after an untimed call, ``--threads`` CPU threads. Needs the abnativ wheel
('make antibody-data') for the sequences.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


import mdmi
from mdmi.interface import masked_log_probs
from mdmi.mi import exact_mi
from mdmi.tasks.antibody import load_antibodies, masked_batch
from mdmi.cli.common import script_provenance

CHAIN = {"sapiens:vh": "vh", "sapiens:vl": "vl", "antiberty": "vh"}


@torch.no_grad()
def recovery(model, records, frac, seed, batch=32):
    g = torch.Generator().manual_seed(seed)
    hit = total = 0
    for s in range(0, len(records), batch):
        x, residues = masked_batch(model, records[s: s + batch], f"random:{frac}", g)
        native = model.encode([r.sequence for r in records[s: s + batch]])
        hide = x == model.mask_id
        pred = masked_log_probs(model(x).logits, model.allowed).argmax(-1)
        hit += int((pred[hide] == native[hide]).sum())
        total += int(hide.sum())
    return hit / total, total


def best_time(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def speed(model, records, batches, repeats, mi_contexts):
    out = {}
    for b in batches:
        x = model.encode([r.sequence for r in records[:b]])
        t = best_time(lambda: model(x), repeats)
        x_mi, _ = masked_batch(model, records[:mi_contexts], "cdr3", torch.Generator().manual_seed(0))
        passes = {}

        def run_mi():
            passes["n"] = int(exact_mi(model, x_mi, batch_size=b).passes.sum())

        t_mi = best_time(run_mi, 1)
        out[str(b)] = {"passes_per_s": b / t, "mi_contexts_per_s": mi_contexts / t_mi,
                       "mi_passes_per_context": passes["n"] / mi_contexts, "length": x.shape[1]}
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="sapiens:vh,sapiens:vl,antiberty")
    p.add_argument("--n", type=int, default=500, help="test sequences for recovery")
    p.add_argument("--frac", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mi-contexts", type=int, default=4, help="CDR3-masked contexts timed for exact MI")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--json", default="benchmarks/results/antibody/models.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for name in a.models.split(","):
        model = mdmi.load(name)
        records = load_antibodies(CHAIN[name], "test", n=a.n, seed=a.seed)
        rec, masked = recovery(model, records, a.frac, a.seed)
        row = {"model": name, "version": model.version, "recovery": rec, "masked_residues": masked,
               "sequences": len(records), "mask_frac": a.frac, "threads": a.threads}
        print(f"{name}: recovery {100 * rec:.1f}% of {masked} masked residues in {len(records)} test sequences",
              flush=True)
        if not a.skip_speed:
            row["speed"] = speed(model, records, [int(b) for b in a.batches.split(",")], a.repeats, a.mi_contexts)
            for b, s in row["speed"].items():
                print(f"  batch {b:>2s}: {s['passes_per_s']:8.1f} passes/s   exact MI (CDR3 masked, "
                      f"{s['mi_passes_per_context']:.0f} passes/context): {s['mi_contexts_per_s']:.3f} contexts/s",
                      flush=True)
        rows.append({**row, "provenance": script_provenance()})
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
