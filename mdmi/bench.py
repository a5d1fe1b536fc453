"""The Sudoku decoding benchmark: every selector over a sweep of its knob, one loop, one
NFE count (DESIGN.md section 4). Rows: selector, params, solve rate (95% CI), mean NFE,
NFE reduction vs sequential, wall time, puzzles/s; written as JSON and CSV, with a Pareto
plot (solve rate vs mean NFE, one line per selector)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from .selectors import make_selector

# knob sweeps, from cautious (close to sequential) to aggressive (few passes)
SWEEPS = {
    "sequential": [{}],
    "topk": [{"k": k} for k in (2, 3, 4, 6, 8)],
    "threshold": [{"tau": t} for t in (0.99, 0.95, 0.9, 0.8, 0.7, 0.5)],
    "factor": [{"f": f} for f in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)],
    "entropy_bound": [{"gamma": g} for g in (0.01, 0.05, 0.1, 0.3, 1.0, 3.0)],
    "mi_budget": [{"gamma": g} for g in (0.01, 0.05, 0.1, 0.3, 1.0, 3.0)],
    "dependency_bound": [{"tau": t} for t in (0.01, 0.05, 0.1, 0.3, 1.0, 3.0)],
    "mi_budget_oracle": [{"gamma": g} for g in (0.1, 1.0)],
    "dependency_bound_oracle": [{"tau": t} for t in (0.1, 1.0)],
}
NEEDS_ESTIMATOR = ("mi_budget", "dependency_bound")


def build(name: str, params: dict, model, estimator):
    """A selector from its registry name and knobs; MI-guided ones get the estimator (or,
    for oracles, the model)."""
    from .selectors import SELECTORS

    if name not in SELECTORS:
        raise ValueError(f"unknown selector {name!r}; choose from {sorted(SELECTORS)}")
    if name in NEEDS_ESTIMATOR:
        if estimator is None:
            raise ValueError(f"selector {name!r} needs an estimator (--estimator DIR)")
        return make_selector(name, estimator=estimator, **params)
    if name.endswith("_oracle"):
        return make_selector(name, model=model, **params)
    return make_selector(name, **params)


def settings(selectors, sweep: bool = True) -> list[tuple[str, dict]]:
    """(name, params) jobs: every knob value of each selector, or only its first one."""
    unknown = [s for s in selectors if s not in SWEEPS]
    if unknown:
        raise ValueError(f"no sweep for selectors {unknown}; known: {sorted(SWEEPS)}")
    return [(name, p) for name in selectors for p in (SWEEPS[name] if sweep else SWEEPS[name][:1])]


def run_sudoku(model, puzzles, selectors, estimator=None, batch_size: int = 256, progress: bool = True,
               sweep: bool = True) -> list[dict]:
    """One row per (selector, params) of ``SWEEPS`` restricted to ``selectors``."""
    from tqdm import tqdm

    from .tasks import sudoku

    rows = []
    for name, params in tqdm(settings(selectors, sweep), desc="bench", unit="setting", disable=not progress):
        sel = build(name, params, model, estimator)
        r = sudoku.evaluate(model, puzzles, sel, batch_size=batch_size)
        row = {"selector": name, "params": params, **{k: v for k, v in r.items() if k not in ("outputs", "solved")}}
        if hasattr(getattr(sel, "pairwise", None), "extra_passes"):
            row["oracle_extra_passes_per_puzzle"] = sel.pairwise.extra_passes / len(puzzles)
        rows.append(row)
    seq = [r for r in rows if r["selector"] == "sequential"]
    for r in rows:
        r["nfe_reduction_vs_sequential"] = seq[0]["mean_nfe"] / r["mean_nfe"] if seq else None
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'selector':24s} {'params':18s} {'solve %':>8s} {'95% CI':>13s} {'NFE':>7s} {'xfewer':>7s} "
          f"{'sec':>7s} {'puz/s':>7s}")
    for r in rows:
        lo, hi = r["solve_rate_ci95"]
        red = r.get("nfe_reduction_vs_sequential")
        p = ",".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{r['selector']:24s} {p:18s} {100 * r['solve_rate']:8.1f} {100 * lo:6.1f}-{100 * hi:5.1f} "
              f"{r['mean_nfe']:7.2f} {red if red is None else round(red, 2):>7} {r['seconds']:7.1f} "
              f"{r['puzzles_per_s']:7.1f}")


def write(rows: list[dict], json_path: str | Path, plot_path: str | Path | None = None) -> None:
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=2) + "\n")
    with json_path.with_suffix(".csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["selector", "params", "solve_rate", "ci_low", "ci_high", "mean_nfe", "nfe_reduction",
                    "cell_accuracy", "n", "seconds", "puzzles_per_s"])
        for r in rows:
            w.writerow([r["selector"], json.dumps(r["params"]), r["solve_rate"], *r["solve_rate_ci95"], r["mean_nfe"],
                        r.get("nfe_reduction_vs_sequential"), r["cell_accuracy"], r["n"], r["seconds"],
                        r["puzzles_per_s"]])
    if plot_path:
        pareto_plot(rows, plot_path)


def pareto_plot(rows: list[dict], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name in dict.fromkeys(r["selector"] for r in rows):
        pts = sorted((r["mean_nfe"], 100 * r["solve_rate"]) for r in rows if r["selector"] == name)
        ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "k*", label=name, ms=4 if len(pts) > 1 else 10)
    ax.set_xlabel("mean NFE (model passes per puzzle)")
    ax.set_ylabel("solve rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def cooccurrence_tv(samples: torch.Tensor, true_log_joint: torch.Tensor) -> float:
    """Mean over pairs i < j of the total variation between the samples' empirical joint of
    (x_i, x_j) and the true one. samples (N, L); true_log_joint (L, L, V, V)."""
    L, V = true_log_joint.shape[0], true_log_joint.shape[-1]
    oh = torch.nn.functional.one_hot(samples, V).double()  # (N, L, V)
    emp = torch.einsum("nia,njb->ijab", oh, oh) / len(samples)
    tv = 0.5 * (emp - true_log_joint.exp()).abs().sum((-1, -2))  # (L, L)
    return float(tv[torch.ones(L, L, dtype=torch.bool).triu(1)].mean())


def run_hmm(model, hmm, selectors, n: int = 1000, estimator=None, seed: int = 0, temperature: float = 1.0,
            progress: bool = True, sweep: bool = True) -> list[dict]:
    """Unconditional samples from ``model`` (trained on ``hmm``) with every selector
    setting, scored by exact HMM NLL (nats/token) and the co-occurrence error of pairs
    against the true HMM. A first row scores n true HMM samples: the noise floor."""
    import time

    from tqdm import tqdm

    from .decode import decode

    L = hmm.config.length
    x = torch.full((n, L), model.mask_id)
    true_joint = hmm.pairwise_log_joint(torch.full((1, L), hmm.mask_id))[0]
    ref = hmm.sample(n, torch.Generator().manual_seed(seed + 1))
    rows = [{"selector": "hmm_samples (floor)", "params": {}, "mean_nfe": 0.0, "seconds": 0.0,
             "nll_per_token": float(-hmm.log_prob(ref).mean() / L), "cooc_tv": cooccurrence_tv(ref, true_joint), "n": n}]
    for name, params in tqdm(settings(selectors, sweep), desc="bench hmm", unit="setting", disable=not progress):
        sel = build(name, params, model, estimator)
        t0 = time.time()
        res = decode(model, x, sel, generator=torch.Generator().manual_seed(seed), temperature=temperature)
        rows.append({"selector": name, "params": params, "mean_nfe": float(res.nfe.double().mean()),
                     "seconds": time.time() - t0, "nll_per_token": float(-hmm.log_prob(res.tokens).mean() / L),
                     "cooc_tv": cooccurrence_tv(res.tokens, true_joint), "n": n})
    return rows


def print_hmm_table(rows: list[dict]) -> None:
    print(f"{'selector':24s} {'params':14s} {'NFE':>6s} {'exact NLL/token':>16s} {'cooc TV':>8s} {'sec':>6s}")
    for r in rows:
        p = ",".join(f"{k}={v}" for k, v in r["params"].items())
        print(f"{r['selector']:24s} {p:14s} {r['mean_nfe']:6.1f} {r['nll_per_token']:16.4f} {r['cooc_tv']:8.4f} "
              f"{r['seconds']:6.1f}")
