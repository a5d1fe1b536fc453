"""What a benchmark runs: each selector's knob sweep (data, one dict per benchmark), the
(name, params) settings a ``--selectors`` list asks for, and the selector built from one."""

from __future__ import annotations

from ..selectors import make_selector, needs, parse_spec

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
    # the field's newer decoders; each file cites its source
    "klass": [{"tau": t} for t in (0.999, 0.99, 0.9, 0.7, 0.5)] + [{"tau": 0.9, "eps": e} for e in (1e-3, 0.1)],
    "dilated": [{"base": b} for b in (2, 3, 4, 8)] + [{"base": 2, "block": n} for n in (8, 16)],
    "pc_sampler": [{"k": k} for k in (2, 3, 4, 6, 8)] + [{"k": 3, "lam": 0.05}],
    "info_gain": [{"k": k} for k in (2, 3, 4, 6, 8)] + [{"k": 4, "w": w} for w in (0.3, 3.0)],
    "remask": [{"k": 1, "budget": b} for b in (4, 8, 16, 32)] + [{"k": k, "budget": 8} for k in (2, 4)],
    "info_gain_oracle": [{"k": 4}],
    # factor's eligibility and size, MI only to keep dependent positions apart
    "mi_gate": [{"f": f, "eps": e} for f in (0.5, 1.0, 2.0, 4.0) for e in (0.01, 0.1)],
    "mi_gate_oracle": [{"f": 1.0, "eps": 0.05}],
    # the free-signal rules (DAWN's attention graph, mean-field JS interactions, SchED's exit)
    "dawn": [{"tau_low": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "mean_field": [{"tau": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "sched": [{"tau_low": t} for t in (2.5, 1.0, 0.0)],
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
    "dawn": [{"tau_low": t} for t in (0.7, 0.5, 0.3, 0.1)],
    "mean_field": [{"tau": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "sched": [{"tau_low": t} for t in (2.5, 1.0, 0.0)] + [{"tau_low": 1.0, "k": 2}],
}

# The text testbed's answers: digits and letters the model is often sure of, with joint
# uncertainty where many answers are valid (split, perm).
TEXT_SWEEPS = {
    "sequential": [{}],
    "topk": [{"k": k} for k in (2, 3, 4, 6, 8)],
    "threshold": [{"tau": t} for t in (0.99, 0.95, 0.9, 0.8, 0.7, 0.5)],
    "factor": [{"f": f} for f in (0.1, 0.3, 0.5, 1.0, 2.0, 4.0)],
    "entropy_bound": [{"gamma": g} for g in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)],
    "mi_budget": [{"gamma": g} for g in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)]
    + [{"gamma": g, "eta": 0.0} for g in (0.003, 0.01, 0.03, 0.1, 0.3)]
    # greedy: the same-argmax clash skipped (selectors/mi_budget.py), dependence charged alone
    + [{"gamma": g, "eta": 0.0, "distinct": 0.01} for g in (0.1, 0.3, 1.0, 3.0, 10.0)],
    "dependency_bound": [{"tau": t} for t in (0.03, 0.1, 0.3, 1.0)],
    "mi_gate": [{"f": f, "eps": e} for f in (0.5, 1.0, 2.0) for e in (0.01, 0.1)],
    "klass": [{"tau": t} for t in (0.9, 0.7, 0.5)],
    "pc_sampler": [{"k": k} for k in (2, 4, 8)],
    "dawn": [{"tau_low": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "mean_field": [{"tau": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "sched": [{"tau_low": t} for t in (2.5, 1.0, 0.0)],
    "mi_budget_oracle": [{"gamma": g} for g in (0.03, 0.3)],
}

# Antibody marginals in a masked CDR are broad (1-2 nats each), so budgets are larger than
# for Sudoku.
ANTIBODY_SWEEPS = {
    "sequential": [{}],
    "topk": [{"k": k} for k in (2, 3, 4, 6, 8)],
    "threshold": [{"tau": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "factor": [{"f": f} for f in (0.5, 1.0, 2.0, 4.0)],
    "entropy_bound": [{"gamma": g} for g in (0.3, 1.0, 3.0, 10.0)],
    "mi_budget": [{"gamma": g} for g in (1.0, 3.0, 10.0, 30.0)] + [{"gamma": g, "eta": 0.0} for g in (0.1, 0.3, 1.0)],
    "dependency_bound": [{"tau": t} for t in (0.3, 1.0, 3.0)],
    "klass": [{"tau": t} for t in (0.9, 0.7, 0.5)],
    "dilated": [{"base": b} for b in (2, 3, 4)],
    "pc_sampler": [{"k": k} for k in (2, 4, 8)],
    "info_gain": [{"k": k} for k in (2, 4, 8)],
    "remask": [{"k": 1, "budget": b, "tau": 0.5} for b in (4, 16)] + [{"k": 2, "budget": 8, "tau": 0.5}],
    "mi_gate": [{"f": f, "eps": e} for f in (1.0, 4.0) for e in (0.1, 0.5)],
    "dawn": [{"tau_low": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "mean_field": [{"tau": t} for t in (0.9, 0.7, 0.5, 0.3)],
    "sched": [{"tau_low": t} for t in (2.5, 1.0, 0.0)] + [{"tau_low": 2.5, "k": 2}],
}


def build(name: str, params: dict, model, estimator):
    """A selector from its registry name and knobs; MI-guided ones get the estimator (the
    ``*_oracle`` names, exact MI of the model)."""
    need = needs(name, params)  # ValueError for an unknown name
    if need == "pairwise":
        if estimator is None:
            raise ValueError(f"selector {name!r} needs an estimator (--estimator DIR), or pairwise=attention|js|"
                             f"similarity (a free signal)")
        return make_selector(name, estimator=estimator, **params)
    if need == "exact":
        return make_selector(name, model=model, **params)
    return make_selector(name, **params)


def settings(selectors, sweep: bool = True, sweeps: dict | None = None,
             picked: dict | None = None) -> list[tuple[str, dict]]:
    """(name, params) jobs: every knob value of each selector's sweep, or without ``sweep``
    the settings ``picked`` on validation for it (``{name: [knobs, ...]}``, recorded in a
    shipped head) or else its first sweep value. A selector given as a spec with knobs
    (:func:`mdmi.selectors.parse_spec`: ``mi_budget:gamma=0.1/0.3,eta=0``, or the older
    ``name:knob=v1/v2+other=v``) runs those settings instead."""
    sweeps = SWEEPS if sweeps is None else sweeps
    jobs = []
    for spec in selectors:
        name, _, grid = spec.partition(":")
        if name not in sweeps:
            raise ValueError(f"no sweep for selector {name!r}; known: {sorted(sweeps)}")
        if grid:
            jobs += parse_spec(spec)
        elif not sweep and picked and name in picked:
            jobs += [(name, dict(p)) for p in picked[name]]
        else:
            jobs += [(name, p) for p in (sweeps[name] if sweep else sweeps[name][:1])]
    return jobs


def picked_settings(estimator, task: str, temperature: float) -> dict:
    """``{selector: [knobs, ...]}`` picked on validation for ``task`` at ``temperature``, as
    recorded in a shipped head's config (``"picked"``, see ``benchmarks/picks.py``); empty
    when the head records none for this task."""
    rec = ((getattr(estimator, "meta", None) or {}).get("picked") or {}).get(task)
    if not rec or float(rec.get("temperature", 0.0)) != float(temperature):
        return {}
    out: dict = {}
    for name, knobs in rec["settings"]:
        out.setdefault(name, []).append(knobs)
    return out


def selector_names(sweeps: dict, has_estimator: bool) -> list[str]:
    """The default selectors of a benchmark: all but the costly oracles, and the MI-guided
    ones only when an estimator is at hand."""
    return [n for n in sweeps if needs(n) != "exact" and (has_estimator or needs(n) != "pairwise")]
