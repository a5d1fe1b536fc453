"""The prefix KV cache: speed and quality change against the uncached loop.

On the shipped HMM model (mdmi's transformer, 32 positions) with a prompt of the first
``--prompt`` positions of true HMM samples, the rest generated in blocks of
``--block-length`` at temperature 1 with the same seeds, with and without
``prefix_cache``: wall time per sequence, passes, and the quality of the samples under the
exact HMM (mean log p(x) of the whole sequence, nats per position, higher is better; the
prompt is shared, so a difference is the generated part's) and the fraction of sequences whose tokens differ. Prints a
table, writes JSON with the command.

    python benchmarks/prefix_cache.py --json benchmarks/results/hmm/prefix_cache.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import mdmi
from mdmi.resolve import resolve
from mdmi.selectors import make_selector, parse_spec
from mdmi.tasks.hmm import HMM, HMMConfig
from mdmi.cli.common import script_provenance


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=256, help="sequences")
    ap.add_argument("--prompt", type=int, default=8, help="observed leading positions")
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--selectors", default="sequential,threshold:tau=0.5,entropy_bound:gamma=3")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs (the median is kept)")
    ap.add_argument("--json")
    a = ap.parse_args()
    r = resolve("hmm")
    model = r.model
    hmm = HMM(HMMConfig(**r.model.meta["hmm"]))
    clean = hmm.sample(a.n, torch.Generator().manual_seed(0))
    x = clean.clone()
    x[:, a.prompt:] = model.mask_id
    rows = []
    for spec in a.selectors.split(","):
        ((name, knobs),) = parse_spec(spec)
        out = {}
        for cached in (False, True):
            times, res = [], None
            for _ in range(a.repeats):
                gens = [torch.Generator().manual_seed(1000 + i) for i in range(a.n)]
                t0 = time.perf_counter()
                res = mdmi.decode(model, x, make_selector(name, **knobs), generator=gens, temperature=1.0,
                                  block_length=a.block_length, prefix_cache=cached)
                times.append(time.perf_counter() - t0)
            # the prompt is the same in both runs: differences in log p(x) are the generated part's
            out[cached] = (sorted(times)[len(times) // 2], res, float(hmm.log_prob(res.tokens).mean()) / x.shape[1])
        (t0, r0, q0), (t1, r1, q1) = out[False], out[True]
        rows.append({"selector": name, "params": knobs, "mean_nfe": float(r0.nfe.double().mean()),
                     "mean_nfe_cached": float(r1.nfe.double().mean()), "seconds": t0, "seconds_cached": t1,
                     "speedup": t0 / t1, "loglik_per_position": q0, "loglik_per_position_cached": q1,
                     "sequences_changed": float((r0.tokens != r1.tokens).any(1).double().mean())})
    print(f"{'selector':<28} {'NFE':>6} {'s/seq':>9} {'cached':>9} {'speed-up':>8} {'loglik/pos':>10} {'cached':>8} {'changed':>8}")
    for row in rows:
        label = row["selector"] + (" " + ",".join(f"{k}={v}" for k, v in row["params"].items()) if row["params"] else "")
        print(f"{label:<28} {row['mean_nfe']:>6.1f} {row['seconds'] / a.n:>9.5f} {row['seconds_cached'] / a.n:>9.5f} "
              f"{row['speedup']:>8.2f} {row['loglik_per_position']:>10.4f} {row['loglik_per_position_cached']:>8.4f} "
              f"{100 * row['sequences_changed']:>7.1f}%")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        prov = script_provenance()
        Path(a.json).write_text(json.dumps({"rows": rows, "n": a.n, "prompt": a.prompt, "block_length": a.block_length,
                                            "provenance": prov}, indent=2) + "\n")


if __name__ == "__main__":
    main()
