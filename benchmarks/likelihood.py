"""Variance of the likelihood estimators, on the exact HMM oracle and on the trained HMM model.

For each model: per-sample variance of -log p(x) estimates, time-free vs time-integral
(and stratified time-free); per-sample variance of log p(x) - log p(y) with coupled vs
independent masks (y = x with a few positions edited). For the trained model also the R^2
of estimated against exact NLL over held-out sequences, and a scatter plot.

    python benchmarks/likelihood.py --json benchmarks/results/likelihood/hmm.json --plot benchmarks/results/likelihood/hmm.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import mdmi
from mdmi.likelihood import log_ratio, nll
from mdmi.resources import checkpoint_dir
from mdmi.tasks.hmm import HMM, HMMConfig, HMMOracle
from mdmi.cli.common import script_provenance

ROOT = Path(__file__).resolve().parent.parent


def edited(x: torch.Tensor, n_edits: int, V: int, g: torch.Generator) -> torch.Tensor:
    """x with ``n_edits`` random positions per row set to a different random symbol."""
    y = x.clone()
    for r in range(len(y)):
        pos = torch.randperm(x.shape[1], generator=g)[:n_edits]
        y[r, pos] = (y[r, pos] + torch.randint(1, V, (n_edits,), generator=g)) % V
    return y


def variances(model, x, y, samples, seed):
    """Mean over sequences of the per-sample variance of each estimator."""
    out = {}
    for name, kw in [("time_free", {}), ("time_free_stratified", {"stratified": True}),
                     ("time_integral", {"method": "time_integral"})]:
        r = nll(model, x, samples=samples, generator=torch.Generator().manual_seed(seed), **kw)
        out[f"var_{name}"] = float(r.samples.var(1).mean())
    for name, coupled in [("coupled", True), ("independent", False)]:
        r = log_ratio(model, x, y, samples=samples, coupled=coupled, generator=torch.Generator().manual_seed(seed))
        out[f"var_ratio_{name}"] = float(r.samples.var(1).mean())
    out["time_integral_over_time_free"] = out["var_time_integral"] / out["var_time_free"]
    out["independent_over_coupled"] = out["var_ratio_independent"] / out["var_ratio_coupled"]
    return out


def r_squared(est: torch.Tensor, exact: torch.Tensor) -> float:
    """1 - SS(est - exact) / SS(exact - mean): agreement with the identity line, bias included."""
    return float(1 - ((est - exact) ** 2).sum() / ((exact - exact.mean()) ** 2).sum())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(checkpoint_dir("hmm")))
    ap.add_argument("--sequences", type=int, default=100, help="sequences for the variance figures")
    ap.add_argument("--samples", type=int, default=256, help="samples per sequence for the variance figures")
    ap.add_argument("--r2-sequences", type=int, default=500)
    ap.add_argument("--r2-samples", type=int, default=128)
    ap.add_argument("--edits", type=int, default=4, help="positions edited to make y from x")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "likelihood" / "hmm.json"))
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "results" / "likelihood" / "hmm.png"))
    args = ap.parse_args()

    model = mdmi.load(args.model)
    hmm = HMM(HMMConfig(**model.meta["hmm"]))
    g = torch.Generator().manual_seed(10_000 + args.seed)  # held out: training used other streams
    x = hmm.sample(args.sequences, g)
    y = edited(x, args.edits, hmm.vocab_size, g)
    result = {"model": args.model, "hmm": model.meta["hmm"], "sequences": args.sequences,
              "samples": args.samples, "edits": args.edits}
    table = {"hmm_oracle": variances(HMMOracle(hmm), x, y, args.samples, args.seed),
             "trained_model": variances(model, x, y, args.samples, args.seed)}
    result["variance"] = table

    xr = hmm.sample(args.r2_sequences, g)
    exact = -hmm.log_prob(xr)
    est = nll(model, xr, samples=args.r2_samples, generator=torch.Generator().manual_seed(args.seed))
    result["r2"] = {"sequences": args.r2_sequences, "samples": args.r2_samples,
                    "r2_identity": r_squared(est.nll, exact),
                    "pearson_r2": float(torch.corrcoef(torch.stack([est.nll, exact]))[0, 1] ** 2),
                    "mean_exact_nll": float(exact.mean()), "mean_estimated_nll": float(est.nll.mean()),
                    "mean_stderr": float(est.stderr.mean())}

    print(f"{'model':14s} {'var TF':>9s} {'var TF-strat':>12s} {'var TI':>9s} {'TI/TF':>6s} "
          f"{'var ratio cpl':>13s} {'var ratio ind':>13s} {'ind/cpl':>7s}")
    for name, v in table.items():
        print(f"{name:14s} {v['var_time_free']:9.2f} {v['var_time_free_stratified']:12.2f} {v['var_time_integral']:9.2f} "
              f"{v['time_integral_over_time_free']:6.1f} {v['var_ratio_coupled']:13.2f} "
              f"{v['var_ratio_independent']:13.2f} {v['independent_over_coupled']:7.1f}")
    r2 = result["r2"]
    print(f"trained model, {r2['sequences']} held-out sequences x {r2['samples']} samples: R^2 (identity) "
          f"{r2['r2_identity']:.3f}, Pearson r^2 {r2['pearson_r2']:.3f}; mean NLL est {r2['mean_estimated_nll']:.2f} "
          f"vs exact {r2['mean_exact_nll']:.2f} nats")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**result, "provenance": script_provenance()}, indent=2) + "\n")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install mdmi[plot]); no plot")
        return
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.errorbar(exact, est.nll, yerr=est.stderr, fmt=".", ms=3, alpha=0.5, lw=0.5)
    lo, hi = float(exact.min()), float(exact.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("exact -log p(x) (nats, forward algorithm)")
    ax.set_ylabel("I-MDCE time-free estimate (nats)")
    ax.set_title(f"trained HMM model, R$^2$ = {r2['r2_identity']:.3f}")
    fig.tight_layout()
    fig.savefig(args.plot, dpi=120)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
