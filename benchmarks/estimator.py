"""Cost of the neural MI head next to one model pass (the target is <= 5%).

Times ``model(x)`` and ``estimator(out.hidden, masked)`` on the same batch of contexts,
interleaved round by round (the fraction is the median over rounds of head / pass): Sudoku
grids, or for a pretrained antibody LM real test sequences (AbNatiV's test split) with half
their residues masked. Prints a line, writes JSON.

    python benchmarks/estimator.py --batch-size 256
    python benchmarks/estimator.py --model sapiens:vh --estimator mdmi/checkpoints/sapiens_vh/estimator \
        --batch-size 64 --json benchmarks/results/estimator/cost_sapiens_vh.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from mdmi.estimator import Estimator, EstimatorConfig
from mdmi.interface import allowed_tokens, masked_log_probs
from mdmi.labels import random_mask_contexts
from mdmi.resolve import resolve
from mdmi.resources import checkpoint_dir
from mdmi.tasks import clean_sampler
from mdmi.cli.common import script_provenance

ROOT = Path(__file__).resolve().parent.parent


def timed_rounds(fns, repeats):
    """Seconds per call of each of ``fns``, timed in interleaved rounds (one call of each per
    round, after two untimed rounds) so that all of them see the same machine state: a busy
    or throttled stretch slows the pass and the head together instead of only one of them.
    Returns (n_fns, repeats) seconds."""
    for _ in range(2):
        for fn in fns:
            fn()
    out = torch.zeros(len(fns), repeats, dtype=torch.float64)
    for r in range(repeats):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            out[k, r] = time.perf_counter() - t0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(checkpoint_dir("sudoku")))
    ap.add_argument("--estimator", default=str(checkpoint_dir("sudoku/estimator")))
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=50, help="timed rounds (each: one model pass, the MI output, MI and influence); a ~10 ms head needs ~50 to be steady")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "estimator" / "cost_sudoku.json"))
    args = ap.parse_args()
    resolved = resolve(args.model)
    model = resolved.model
    g = torch.Generator().manual_seed(0)
    if resolved.chain is not None:  # a pretrained antibody LM
        from mdmi.tasks.antibody import load_antibodies, masked_batch

        x, _ = masked_batch(model, load_antibodies(resolved.chain, "test", n=args.batch_size), "random:0.5", g)
    else:
        x = random_mask_contexts(clean_sampler("sudoku", 0)(args.batch_size, g), model.mask_id, 2, g)
    masked = x == model.mask_id
    est_path = Path(args.estimator)
    est = Estimator.load(est_path) if (est_path / "config.json").is_file() else Estimator(
        EstimatorConfig(d_hidden=int(model(x[:1]).hidden.shape[-1])))
    with torch.no_grad():
        out = model(x)
        hidden, lp = out.hidden, masked_log_probs(out.logits, allowed_tokens(model))
        secs = timed_rounds([lambda: model(x),
                             # what mi_budget pays per step (with its probability features when it reads them)
                             lambda: est.predict(hidden, masked, "mi", log_probs=lp),
                             lambda: est(hidden, masked, lp)],  # MI and influence together
                            args.repeats)  # (3, repeats)
    t_model, t_est, t_both = secs.median(1).values.tolist()
    ratio = secs[1] / secs[0]  # (repeats,) the head against the pass of the same round
    p10, p90 = ratio.quantile(torch.tensor([0.1, 0.9], dtype=torch.float64)).tolist()
    res = {"model": args.model, "batch_size": args.batch_size, "length": x.shape[1], "model_pass_s": t_model, "estimator_s": t_est,
           "fraction_of_pass": float(ratio.median()), "fraction_of_pass_p10_p90": [p10, p90],
           "estimator_mi_and_tv_s": t_both, "fraction_of_pass_mi_and_tv": float((secs[2] / secs[0]).median()),
           "repeats": args.repeats, "threads": torch.get_num_threads(),
           "estimator": str(est_path) if (est_path / "config.json").is_file() else "untrained default config",
           "estimator_params": sum(p.numel() for p in est.parameters()), "provenance": script_provenance(args.model)}
    print(f"batch {args.batch_size}: model pass {1e3 * t_model:.1f} ms, estimator MI {1e3 * t_est:.1f} ms "
          f"= {100 * res['fraction_of_pass']:.1f}% of a pass (rounds p10-p90 {100 * p10:.1f}-{100 * p90:.1f}%); MI + influence {1e3 * t_both:.1f} ms = "
          f"{100 * res['fraction_of_pass_mi_and_tv']:.1f}% ({res['estimator_params']} parameters)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
