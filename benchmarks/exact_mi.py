"""Throughput and accuracy of exact_mi on the shipped Sudoku model.

Compares contexts/s of `exact_mi` (batched probes, default delta truncation) with a naive
loop (one pass per (j, v), batch of one, every value), and measures the error of the
default delta against delta = 0. Prints a table and writes JSON.

    python benchmarks/exact_mi.py --contexts 64 --naive-contexts 8 --json benchmarks/results/exact_mi/sudoku.json

Each row is the fastest of --repeats timings after an untimed call. The speed-up compares the
default with the naive loop on the same spread-out subset of the contexts; the chunks-of-256
row shows what the probe chunk size is worth on a CPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace

import torch

import mdmi
from mdmi.interface import allowed_tokens, masked_log_probs
from mdmi.labels import LabelConfig, decoding_contexts, random_mask_contexts
from mdmi.mi import DEFAULT_DELTA, PROBE_BATCH, entropy_of_probs, exact_mi, masked_pairs, truncation_bound
from mdmi.resources import checkpoint_dir
from mdmi.tasks import clean_sampler
from mdmi.cli.common import script_provenance

ROOT = Path(__file__).resolve().parent.parent


@torch.no_grad()
def naive_mi(model, x: torch.Tensor) -> SimpleNamespace:
    """I[j->i] by the definition, one model pass per (context, j, v): no batching, no truncation.
    Returns ``.mi_directed`` (B, L, L) and ``.passes`` (B,)."""
    B, L = x.shape
    allow = allowed_tokens(model)
    out = torch.zeros(B, L, L, dtype=torch.float64)
    passes = torch.zeros(B, dtype=torch.long)
    for b in range(B):
        base = masked_log_probs(model(x[b:b + 1]).logits, allow)[0].double().exp()  # (L, V)
        M = (x[b] == model.mask_id).nonzero().squeeze(1)
        for j in M.tolist():
            mix = torch.zeros(L, base.shape[1], dtype=torch.float64)
            cond_h = torch.zeros(L, dtype=torch.float64)
            for v in allow.nonzero().squeeze(1).tolist():
                xv = x[b:b + 1].clone()
                xv[0, j] = v
                q = masked_log_probs(model(xv).logits, allow)[0].double().exp()
                passes[b] += 1
                mix += base[j, v] * q
                cond_h += base[j, v] * entropy_of_probs(q)
            out[b, j, M] = (entropy_of_probs(mix) - cond_h)[M].clamp_min(0)
            out[b, j, j] = 0
        passes[b] += 1  # the base pass
    return SimpleNamespace(mi_directed=out, passes=passes)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(checkpoint_dir("sudoku")))
    ap.add_argument("--contexts", type=int, default=64)
    ap.add_argument("--naive-contexts", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=PROBE_BATCH)
    ap.add_argument("--repeats", type=int, default=2, help="time each row this many times, keep the fastest")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "exact_mi" / "sudoku.json"))
    args = ap.parse_args()

    model = mdmi.load(args.model)
    g = torch.Generator().manual_seed(args.seed)
    clean = clean_sampler("sudoku", args.seed)(args.contexts, g)
    half = args.contexts // 2
    min_masked = LabelConfig().min_masked
    x = torch.cat([decoding_contexts(model, clean[:half], min_masked, g),
                   random_mask_contexts(clean[half:], model.mask_id, min_masked, g)])
    idx = torch.linspace(0, len(x) - 1, args.naive_contexts).round().long()  # both sources
    xn = x[idx]
    rows = []

    def run(name, fn, xs):  # best of --repeats, after one untimed call on two contexts
        fn(xs[:2])
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            r = fn(xs)
            times.append(time.perf_counter() - t0)
        s = min(times)
        rows.append({"method": name, "contexts": len(xs), "seconds": s, "contexts_per_s": len(xs) / s,
                     "passes_per_context": float(r.passes.double().mean())})
        return r

    def fast_fn(xs, bs=args.batch_size):
        return exact_mi(model, xs, batch_size=bs)

    fast = run(f"exact_mi delta={DEFAULT_DELTA:g}, chunks of {args.batch_size}", fast_fn, x)
    full = run(f"exact_mi delta=0, chunks of {args.batch_size}",
               lambda xs: exact_mi(model, xs, delta=0.0, batch_size=args.batch_size), x)
    run(f"exact_mi delta={DEFAULT_DELTA:g}, chunks of 256", lambda xs: fast_fn(xs, 256), x)
    run(f"exact_mi delta={DEFAULT_DELTA:g}, chunks of {args.batch_size} (naive's contexts)", fast_fn, xn)
    naive = run("naive loop (1 pass per (j,v), batch 1)", lambda xs: naive_mi(model, xs), xn)

    pair = masked_pairs(fast.masked)
    err = (fast.mi_directed - full.mi_directed).abs()[pair]
    naive_err = (naive.mi_directed - full.mi_directed[idx]).abs().max().item()
    result = {
        "model": args.model, "masked_mean": float(fast.masked.sum(1).double().mean()), "rows": rows,
        # on the same contexts: the naive loop's are a spread-out subset
        "speedup_vs_naive": rows[3]["contexts_per_s"] / rows[4]["contexts_per_s"],
        "default_delta": DEFAULT_DELTA, "bound_nats": truncation_bound(DEFAULT_DELTA, model.vocab_size),
        "max_error_nats": err.max().item(), "mean_error_nats": err.mean().item(),
        "naive_vs_exact_mi_max_diff": naive_err, "threads": torch.get_num_threads(),
    }
    print(f"{'method':58s} {'contexts':>8s} {'passes/ctx':>10s} {'passes/s':>8s} {'ctx/s':>8s}")
    for r in rows:
        r["passes_per_s"] = r["passes_per_context"] * r["contexts_per_s"]
    for r in rows:
        print(f"{r['method']:58s} {r['contexts']:8d} {r['passes_per_context']:10.1f} {r['passes_per_s']:8.0f} {r['contexts_per_s']:8.2f}")
    print(f"speed-up of default exact_mi over the naive loop on the same {len(xn)} contexts: "
          f"{result['speedup_vs_naive']:.1f}x")
    print(f"error of delta={DEFAULT_DELTA:g} vs delta=0 over masked pairs: max {result['max_error_nats']:.2e} "
          f"mean {result['mean_error_nats']:.2e} nats (bound {result['bound_nats']:.2e})")
    print(f"naive loop vs exact_mi(delta=0): max |diff| {naive_err:.2e} nats")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**result, "provenance": script_provenance()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
