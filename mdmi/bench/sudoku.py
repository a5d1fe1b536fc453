"""The Sudoku decoding benchmark: every selector over a sweep of its knob, one loop, one
NFE count (DESIGN.md section 4). Rows: selector, params, solve rate (95% CI), mean NFE,
NFE reduction vs sequential, wall time, puzzles/s; written as JSON and CSV, with a Pareto
plot (solve rate vs mean NFE, one line per selector)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from ..selectors import make_selector, needs

# knob sweeps, from cautious (close to sequential) to aggressive (few passes). The Sudoku
# model is confident (most entropies < 0.01 nats), so its budgets start small; the HMM
# samples at temperature 1 from marginals of ~1-2 nats, so its budgets are larger.
SWEEPS = {
    "sequential": [{}],
    "topk": [{"k": k} for k in (2, 3, 4, 6, 8)],
    "threshold": [{"tau": t} for t in (0.999, 0.99, 0.95, 0.9, 0.8, 0.7, 0.5)],
    "factor": [{"f": f} for f in (0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)],
    "entropy_bound": [{"gamma": g} for g in (1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)],
    "mi_budget": [{"gamma": g} for g in (1e-3, 3e-3, 0.01, 0.03, 0.05, 0.1, 0.3, 0.5, 1.0, 3.0)],
    "dependency_bound": [{"tau": t} for t in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)],
    "mi_budget_oracle": [{"gamma": g} for g in (0.01, 0.1)],
    "dependency_bound_oracle": [{"tau": t} for t in (0.1, 1.0)],
    # the field's newer decoders (issue 16); each file cites its source
    "klass": [{"tau": t} for t in (0.999, 0.99, 0.9, 0.7, 0.5)] + [{"tau": 0.9, "eps": e} for e in (1e-3, 0.1)],
    "dilated": [{"base": b} for b in (2, 3, 4, 8)] + [{"base": 2, "block": n} for n in (8, 16)],
    "pc_sampler": [{"k": k} for k in (2, 3, 4, 6, 8)] + [{"k": 3, "lam": 0.05}],
    "info_gain": [{"k": k} for k in (2, 3, 4, 6, 8)] + [{"k": 4, "w": w} for w in (0.3, 3.0)],
    "remask": [{"k": 1, "budget": b} for b in (4, 8, 16, 32)] + [{"k": k, "budget": 8} for k in (2, 4)],
    "info_gain_oracle": [{"k": 4}],
    # issue 18: factor's eligibility and size, MI only to keep dependent positions apart
    "mi_gate": [{"f": f, "eps": e} for f in (0.5, 1.0, 2.0, 4.0) for e in (0.01, 0.1)],
    "mi_gate_oracle": [{"f": 1.0, "eps": 0.05}],
}
HMM_SWEEPS = {
    "sequential": [{}],
    "topk": [{"k": k} for k in (2, 4, 8, 16)],
    "threshold": [{"tau": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "factor": [{"f": f} for f in (0.5, 1.0, 2.0, 4.0)],
    "entropy_bound": [{"gamma": g} for g in (0.3, 1.0, 3.0, 10.0, 30.0)],
    # eta = 1 is the design's rule; eta = 0 charges dependence alone (see selectors/mi_budget.py)
    "mi_budget": [{"gamma": g} for g in (1.0, 3.0, 5.0, 10.0, 30.0, 100.0)]
    + [{"gamma": g, "eta": 0.0} for g in (0.03, 0.1, 0.3, 1.0, 3.0)],
    "dependency_bound": [{"tau": t} for t in (0.1, 0.3, 1.0, 3.0, 10.0)],
    "mi_budget_oracle": [{"gamma": g} for g in (3.0, 30.0)],
    "dependency_bound_oracle": [{"tau": t} for t in (0.3, 3.0)],
    "klass": [{"tau": t} for t in (0.7, 0.5, 0.3)] + [{"tau": 0.5, "eps": e} for e in (1e-3, 0.1)],
    "dilated": [{"base": b} for b in (2, 3, 4, 8)],
    "pc_sampler": [{"k": k} for k in (2, 4, 8, 16)],
    "info_gain": [{"k": k} for k in (2, 4, 8, 16)],
    "remask": [{"k": 1, "budget": b, "tau": 0.5} for b in (4, 16)] + [{"k": k, "budget": 8, "tau": 0.5} for k in (2, 4)],
    "info_gain_oracle": [{"k": 4}],
    "mi_gate": [{"f": f, "eps": e} for f in (1.0, 4.0) for e in (0.1, 0.5)],
    "mi_gate_oracle": [{"f": 1.0, "eps": 0.1}],
}
def build(name: str, params: dict, model, estimator):
    """A selector from its registry name and knobs; MI-guided ones get the estimator (the
    ``*_oracle`` names, exact MI of the model)."""
    need = needs(name)  # ValueError for an unknown name
    if need == "pairwise":
        if estimator is None:
            raise ValueError(f"selector {name!r} needs an estimator (--estimator DIR)")
        return make_selector(name, estimator=estimator, **params)
    if need == "exact":
        return make_selector(name, model=model, **params)
    return make_selector(name, **params)


def settings(selectors, sweep: bool = True, sweeps: dict | None = None) -> list[tuple[str, dict]]:
    """(name, params) jobs: every knob value of each selector's sweep, or only its first one.
    A selector given as a spec with knobs (:func:`mdmi.selectors.parse_spec`:
    ``mi_budget:gamma=0.1/0.3,eta=0``, or the older ``name:knob=v1/v2+other=v``) runs those
    settings instead."""
    from ..selectors import parse_spec

    sweeps = SWEEPS if sweeps is None else sweeps
    jobs = []
    for spec in selectors:
        name, _, grid = spec.partition(":")
        if name not in sweeps:
            raise ValueError(f"no sweep for selector {name!r}; known: {sorted(sweeps)}")
        if grid:
            jobs += parse_spec(spec)
        else:
            jobs += [(name, p) for p in (sweeps[name] if sweep else sweeps[name][:1])]
    return jobs


def selector_names(sweeps: dict, has_estimator: bool) -> list[str]:
    """The default selectors of a benchmark: all but the costly oracles, and the MI-guided
    ones only when an estimator is at hand."""
    return [n for n in sweeps if needs(n) != "exact" and (has_estimator or needs(n) != "pairwise")]


def run_sudoku(model, puzzles, selectors, estimator=None, batch_size: int = 256, progress: bool = True,
               sweep: bool = True) -> list[dict]:
    """One row per (selector, params) of ``SWEEPS`` restricted to ``selectors``."""
    from tqdm import tqdm

    from ..tasks import sudoku

    rows = []
    for name, params in tqdm(settings(selectors, sweep), desc="bench", unit="setting", disable=not progress):
        sel = build(name, params, model, estimator)
        r = sudoku.evaluate(model, puzzles, sel, batch_size=batch_size)
        row = {"selector": name, "params": params,
               **{k: v for k, v in r.as_dict().items() if k not in ("outputs", "solved", "nfe", "extra_passes")},
               # per puzzle, for analyses by puzzle (benchmarks/sudoku_depth.py)
               "solved_per_puzzle": "".join("1" if s else "0" for s in r.solved), "nfe_per_puzzle": r.nfe}
        if needs(name) == "exact":
            row["oracle_extra_passes_per_puzzle"] = r.extra_passes / len(puzzles)
        rows.append(row)
    return add_reduction(rows)


def sequential_row(rows: list[dict]) -> dict | None:
    """The sequential row (the NFE and quality reference), or None."""
    return next((r for r in rows if r["selector"] == "sequential"), None)


def add_reduction(rows: list[dict]) -> list[dict]:
    """Set each row's ``nfe_reduction_vs_sequential`` (None without a sequential row)."""
    seq = sequential_row(rows)
    for r in rows:
        r["nfe_reduction_vs_sequential"] = seq["mean_nfe"] / r["mean_nfe"] if seq else None
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"{'selector':24s} {'params':18s} {'solve %':>8s} {'95% CI':>13s} {'NFE':>7s} {'xfewer':>7s} "
          f"{'sec':>7s} {'puz/s':>7s}")
    for r in rows:
        lo, hi = r["solve_rate_ci95"]
        red = r.get("nfe_reduction_vs_sequential")
        p = ",".join(f"{k}={v}" for k, v in r["params"].items())
        extra = r.get("oracle_extra_passes_per_puzzle")
        print(f"{r['selector']:24s} {p:18s} {100 * r['solve_rate']:8.1f} {100 * lo:6.1f}-{100 * hi:5.1f} "
              f"{r['mean_nfe']:7.2f} {'-' if red is None else f'{red:.2f}':>7} {r['seconds']:7.1f} "
              f"{r['puzzles_per_s']:7.1f}" + ("" if extra is None else
                                              f"   + {extra:.1f} exact-MI passes = {r['mean_nfe'] + extra:.1f} in all"))


def _interp(points: list[tuple[float, float]], x: float) -> float | None:
    """Piecewise-linear y at x through (x, y) points sorted by x; None outside their range."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1] if len(points) == 1 and points[0][0] == x else None


def curve_rows(rows: list[dict]) -> list[dict]:
    """``rows`` with the MI budget at ``eta=0`` (dependence charged alone) named as its own
    curve, ``mi_budget(eta=0)``: an equal-NFE comparison or a Pareto curve must not mix it
    with the MI budget that also charges entropy."""
    return [{**r, "selector": "mi_budget(eta=0)"} if r["selector"] == "mi_budget" and r["params"].get("eta") == 0
            else r for r in rows]


def equal_nfe(rows: list[dict], ours: str = "mi_budget", ref: str = "entropy_bound", lo: float = 2.0,
              hi: float = 6.0, tol: float = 0.10, metric: str = "solve_rate", label: str = "solve") -> list[dict]:
    """Solve rates at equal mean NFE: one entry per sweep point of either selector whose NFE
    is ``lo``..``hi`` times fewer than sequential. Each gives the other selector's nearest
    point (and whether its NFE is within ``tol``), its solve rate interpolated linearly
    in NFE at that point (None outside the other's measured range), and whether some point
    of the other curve dominates it (no more NFE, within ``tol``, and no lower solve rate).
    ``metric`` (higher is better) is the row key compared, ``label`` its name in the keys."""
    seq = sequential_row(rows)
    if seq is None:
        raise ValueError("equal_nfe needs the sequential row (the NFE reference)")
    s_nfe = seq["mean_nfe"]
    curves = {n: sorted(((r["mean_nfe"], r[metric], r["params"]) for r in rows if r["selector"] == n),
                        key=lambda t: t[:2])  # params (dicts) never compared, even on ties
              for n in (ours, ref)}
    out = []
    for here, there in ((ref, ours), (ours, ref)):
        other = curves[there]
        for nfe, rate, params in curves[here]:
            if not (lo <= s_nfe / nfe <= hi) or not other:
                continue
            near = min(other, key=lambda o: abs(o[0] - nfe))
            interp = _interp([(o[0], o[1]) for o in other], nfe)
            ours_rate, ref_rate = (interp, rate) if here == ref else (rate, interp)
            out.append({"at": here, "params": params, "nfe": nfe, "reduction": s_nfe / nfe, f"{here}_{label}": rate,
                        f"{there}_{label}_interp": interp, f"{there}_nearest": {"params": near[2], "nfe": near[0],
                                                                                label: near[1]},
                        "nearest_within_tol": abs(near[0] - nfe) <= tol * nfe,
                        # a point of the other curve with no more NFE (within tol) and a solve rate at least as high
                        f"{there}_dominates": any(o[0] <= (1 + tol) * nfe and o[1] >= rate for o in other),
                        "ours_minus_ref": None if interp is None else ours_rate - ref_rate})
    return sorted(out, key=lambda e: e["nfe"])


def print_equal_nfe(cmp: list[dict], ours: str = "mi_budget", ref: str = "entropy_bound", label: str = "solve",
                    scale: float = 100.0) -> None:
    print(f"\nequal NFE, {ours} vs {ref} on {label} (points 2x-6x fewer NFE than sequential; "
          "the other curve interpolated linearly in NFE)")
    print(f"{'point of':16s} {'params':14s} {'NFE':>6s} {'xfewer':>6s} {ours + ' %':>14s} {ref + ' %':>16s} {'diff':>6s} "
          f"{'dominated by other':>18s}")
    for e in cmp:
        a = e.get(f"{ours}_{label}", e.get(f"{ours}_{label}_interp"))
        b = e.get(f"{ref}_{label}", e.get(f"{ref}_{label}_interp"))
        f = lambda v: "   n/a" if v is None else f"{scale * v:6.1f}" if scale == 100 else f"{v:6.3f}"  # noqa: E731
        p = ",".join(f"{k}={v}" for k, v in e["params"].items())
        d = e["ours_minus_ref"]
        dom = next(v for k, v in e.items() if k.endswith("_dominates"))
        print(f"{e['at']:16s} {p:14s} {e['nfe']:6.2f} {e['reduction']:6.2f} {f(a):>14s} {f(b):>16s} "
              f"{'n/a' if d is None else f'{scale * d:+.{1 if scale == 100 else 3}f}':>6s} {'yes' if dom else 'no':>18s}")


def sequential_match(rows: list[dict], ours: str = "mi_budget", points: float = 0.01, frac: float = 0.25) -> list[dict]:
    """The ``ours`` settings within ``points`` of sequential's solve rate at <= ``frac`` of its NFE."""
    s = sequential_row(rows)
    if s is None:
        return []
    return [r for r in rows if r["selector"] == ours and r["solve_rate"] >= s["solve_rate"] - points
            and r["mean_nfe"] <= frac * s["mean_nfe"]]


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


def pareto_plot(rows: list[dict], path: str | Path, metric: str = "solve_rate", ylabel: str = "solve rate (%)",
                scale: float = 100.0, xlabel: str = "mean NFE (model passes per puzzle, log scale)") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)  # more selectors than the default 10 colours
    for name in dict.fromkeys(r["selector"] for r in rows):
        pts = sorted((r["mean_nfe"], scale * r[metric]) for r in rows if r["selector"] == name)
        ax.plot(*zip(*pts), "o-" if len(pts) > 1 else "k*", label=name, ms=4 if len(pts) > 1 else 10)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
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

    from ..decode import decode

    L = hmm.config.length
    x = torch.full((n, L), model.mask_id)
    true_joint = hmm.pairwise_log_joint(torch.full((1, L), hmm.mask_id))[0]
    ref = hmm.sample(n, torch.Generator().manual_seed(seed + 1))
    rows = [{"selector": "hmm_samples (floor)", "params": {}, "mean_nfe": 0.0, "seconds": 0.0,
             "nll_per_token": float(-hmm.log_prob(ref).mean() / L), "cooc_tv": cooccurrence_tv(ref, true_joint), "n": n}]
    for name, params in tqdm(settings(selectors, sweep, HMM_SWEEPS), desc="bench hmm", unit="setting", disable=not progress):
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
