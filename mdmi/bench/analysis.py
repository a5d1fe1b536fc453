"""What the benchmarks' rows say, the same way for every benchmark: NFE reduction vs
sequential, curves (the MI budget at eta = 0 as its own), the equal-NFE comparison of two
selectors, which settings keep sequential's quality, and the printed tables. Every number
printed names its metric and unit (:data:`METRICS`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from .rows import BenchRow


@dataclass(frozen=True)
class Metric:
    """How a row field is named, scaled and read."""

    name: str  # what it measures, for table headers and axis labels
    unit: str  # after scaling, e.g. "%" or "nats per residue"
    scale: float = 1.0  # printed value = scale * stored value (100 for a fraction shown in %)
    digits: int = 4  # decimals printed
    higher_is_better: bool = True

    @property
    def label(self) -> str:
        """``name (unit)``, e.g. "PLL (nats per residue)"."""
        return f"{self.name} ({self.unit})"

    def format(self, value: float | None, signed: bool = False) -> str:
        if value is None:
            return "n/a"
        return f"{self.scale * value:{'+' if signed else ''}.{self.digits}f}"


METRICS = {
    "solve_rate": Metric("solve rate", "%", scale=100.0, digits=1),
    "cell_accuracy": Metric("cell accuracy", "%", scale=100.0, digits=1),
    "recovery": Metric("recovery", "%", scale=100.0, digits=1),
    "pll": Metric("PLL", "nats per residue"),
    "jsd": Metric("JSD to sequential's samples", "nats", higher_is_better=False),
    "neg_jsd": Metric("minus JSD to sequential's samples", "nats"),
    "nll_per_token": Metric("exact NLL", "nats per token", higher_is_better=False),
    "cooc_tv": Metric("pair co-occurrence TV", "total variation, 0-1", higher_is_better=False),
    "validity": Metric("valid answers", "%", scale=100.0, digits=1),
}
# the cost axis of each benchmark
NFE_LABEL = {"sudoku": "mean NFE (model passes per puzzle)", "hmm": "mean NFE (model passes per sample)",
             "antibody": "mean NFE (model passes per sequence)", "text": "mean NFE (model passes per answer)"}


def _knobs(params: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items())


# ------------------------------------------------------------------ reduction and curves


def sequential_row(rows: list[BenchRow]) -> BenchRow | None:
    """The sequential row (the NFE and quality reference), or None."""
    return next((r for r in rows if r.selector == "sequential"), None)


def add_reduction(rows: list[BenchRow]) -> list[BenchRow]:
    """Set each row's ``nfe_reduction_vs_sequential`` (None without a sequential row)."""
    seq = sequential_row(rows)
    for r in rows:
        r.nfe_reduction_vs_sequential = seq.mean_nfe / r.mean_nfe if seq else None
    return rows


def curve_name(selector: str, params: dict) -> str:
    """The curve a row belongs to: its selector, with the MI budget at ``eta=0`` (dependence
    charged alone) and any MI rule on another dependence source than the head
    (``pairwise=js``...) and the MI budget that skips same-argmax clashes (``distinct``)
    named apart, e.g. ``mi_budget(eta=0)``, ``mi_budget[js]``, ``mi_budget(eta=0,distinct)``."""
    name = selector
    if params.get("pairwise", "head") != "head":
        name += f"[{params['pairwise']}]"
    if selector == "mi_budget":
        tags = ["eta=0"] * (params.get("eta") == 0) + ["distinct"] * bool(params.get("distinct"))
        name += f"({','.join(tags)})" if tags else ""
    return name


def curve_rows(rows: list[BenchRow]) -> list[BenchRow]:
    """``rows`` named by :func:`curve_name`: an equal-NFE comparison or a Pareto curve must
    not mix the MI budget that charges entropy with the one that does not, nor the head
    with a free signal. The input rows are left as they were."""
    return [replace(r, selector=curve_name(r.selector, r.params)) for r in rows]


def interpolate(points: list[tuple[float, float]], x: float) -> float | None:
    """Piecewise-linear y at x through (x, y) points sorted by x; None outside their range."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1] if len(points) == 1 and points[0][0] == x else None


# ------------------------------------------------------------------ equal NFE


def equal_nfe(rows: list[BenchRow], ours: str = "mi_budget", ref: str = "entropy_bound", lo: float = 2.0,
              hi: float = 6.0, tol: float = 0.10, metric: str = "solve_rate", label: str = "solve") -> list[dict]:
    """Quality at equal mean NFE: one entry per sweep point of either selector whose NFE is
    ``lo``..``hi`` times fewer than sequential. Each gives the other selector's nearest
    point (and whether its NFE is within ``tol``), its ``metric`` interpolated linearly in
    NFE at that point (None outside the other's measured range), and whether some point of
    the other curve dominates it (no more NFE, within ``tol``, and no lower ``metric``).
    ``metric`` (higher is better) is the row field compared, ``label`` its name in the
    entries' keys. Entries sorted by NFE; empty when no point of either is in range."""
    seq = sequential_row(rows)
    if seq is None:
        raise ValueError("equal_nfe needs the sequential row (the NFE reference)")
    s_nfe = seq.mean_nfe
    curves = {n: sorted(((r.mean_nfe, r.get(metric), r.params) for r in rows if r.selector == n),
                        key=lambda t: t[:2])  # params (dicts) never compared, even on ties
              for n in (ours, ref)}
    out = []
    for here, there in ((ref, ours), (ours, ref)):
        other = curves[there]
        for nfe, rate, params in curves[here]:
            if not (lo <= s_nfe / nfe <= hi) or not other:
                continue
            near = min(other, key=lambda o: abs(o[0] - nfe))
            interp = interpolate([(o[0], o[1]) for o in other], nfe)
            ours_rate, ref_rate = (interp, rate) if here == ref else (rate, interp)
            out.append({"at": here, "params": params, "nfe": nfe, "reduction": s_nfe / nfe, f"{here}_{label}": rate,
                        f"{there}_{label}_interp": interp, f"{there}_nearest": {"params": near[2], "nfe": near[0],
                                                                                label: near[1]},
                        "nearest_within_tol": abs(near[0] - nfe) <= tol * nfe,
                        # a point of the other curve with no more NFE (within tol) and a score at least as high
                        f"{there}_dominates": any(o[0] <= (1 + tol) * nfe and o[1] >= rate for o in other),
                        "ours_minus_ref": None if interp is None else ours_rate - ref_rate})
    return sorted(out, key=lambda e: e["nfe"])


@dataclass(frozen=True)
class Comparison:
    """One equal-NFE comparison: ``ours`` vs ``ref`` on ``metric`` (:func:`equal_nfe`)."""

    ours: str  # the curve compared, e.g. "mi_budget"
    ref: str  # the curve it is compared with, e.g. "entropy_bound"
    metric: str  # the row field, higher is better (a key of METRICS)
    label: str  # the metric's name in the entries' keys
    entries: list  # equal_nfe's entries (JSON-ready dicts)
    lo: float = 2.0  # the NFE window: lo..hi times fewer than sequential
    hi: float = 6.0

    @property
    def key(self) -> str:
        return f"{self.ours} vs {self.ref}"


def comparisons(rows: list[BenchRow], pairs, metric: str, label: str) -> list[Comparison]:
    """:func:`equal_nfe` of each (ours, ref) in ``pairs`` whose two curves both ran (and a
    sequential row, the NFE reference)."""
    have = {r.selector for r in rows}
    if "sequential" not in have:
        return []
    return [Comparison(ours, ref, metric, label, equal_nfe(rows, ours=ours, ref=ref, metric=metric, label=label))
            for ours, ref in pairs if {ours, ref} <= have]


def sudoku_comparison(rows: list[BenchRow]) -> Comparison | None:
    """The MI budget vs the entropy bound on solve rate, when both (and sequential) ran."""
    got = comparisons(rows, [("mi_budget", "entropy_bound")], "solve_rate", "solve")
    return got[0] if got else None


def antibody_comparisons(rows: list[BenchRow]) -> list[Comparison]:
    """Each MI budget curve (eta = 1 and eta = 0, apart) vs the entropy bound, threshold and
    factor, on PLL (greedy) or minus the JSD to sequential's samples (sampled): higher is
    better either way."""
    sampled = any(r.jsd is not None for r in rows)
    metric = "neg_jsd" if sampled else "pll"
    pairs = [(ours, ref) for ours in ("mi_budget", "mi_budget(eta=0)")
             for ref in ("entropy_bound", "threshold", "factor")]
    return comparisons(curve_rows(rows), pairs, metric, metric)


def print_comparison(c: Comparison) -> None:
    """The entries of one comparison as a table, or one line saying why there are none."""
    m = METRICS[c.metric]
    if not c.entries:
        print(f"\nequal NFE, {c.ours} vs {c.ref}: no setting of {c.ours} or {c.ref} at {c.lo:g}x-{c.hi:g}x fewer NFE "
              "than sequential; run with --sweep (or give settings in that range)")
        return
    print(f"\nequal NFE, {c.ours} vs {c.ref} on {m.label} (points {c.lo:g}x-{c.hi:g}x fewer NFE than sequential; "
          "the other curve interpolated linearly in NFE)")
    print(f"{'point of':16s} {'params':14s} {'NFE':>6s} {'xfewer':>6s} {c.ours:>16s} {c.ref:>16s} {'diff':>7s} "
          f"{'dominated by other':>18s}")
    for e in c.entries:
        a = e.get(f"{c.ours}_{c.label}", e.get(f"{c.ours}_{c.label}_interp"))
        b = e.get(f"{c.ref}_{c.label}", e.get(f"{c.ref}_{c.label}_interp"))
        dom = next(v for k, v in e.items() if k.endswith("_dominates"))
        print(f"{e['at']:16s} {_knobs(e['params']):14s} {e['nfe']:6.2f} {e['reduction']:6.2f} {m.format(a):>16s} "
              f"{m.format(b):>16s} {m.format(e['ours_minus_ref'], signed=True):>7s} {'yes' if dom else 'no':>18s}")


# ------------------------------------------------------------------ keeping sequential's quality


def sequential_match(rows: list[BenchRow], ours: str = "mi_budget", points: float = 0.01,
                     frac: float = 0.25) -> list[BenchRow]:
    """The ``ours`` settings within ``points`` of sequential's solve rate at <= ``frac`` of its NFE."""
    s = sequential_row(rows)
    if s is None:
        return []
    return [r for r in rows if r.selector == ours and r.solve_rate >= s.solve_rate - points
            and r.mean_nfe <= frac * s.mean_nfe]


def print_sequential_match(rows: list[BenchRow], ours: str = "mi_budget") -> None:
    """One line: the ``ours`` settings of :func:`sequential_match`, or "none"."""
    s = sequential_row(rows)
    if s is None:
        return
    ok = sequential_match(rows, ours)
    print(f"{ours} within 1 point of sequential's solve rate ({100 * s.solve_rate:.1f}%) at <= 1/4 of its NFE "
          f"({s.mean_nfe / 4:.2f}): " + (", ".join(f"{r.params} {100 * r.solve_rate:.1f}% at {r.mean_nfe:.2f}"
                                                   for r in ok) or "none"))


def matches_sequential(row: BenchRow, seq: BenchRow) -> bool:
    """The antibody bar for keeping sequential's quality: greedy, recovery within 1 point
    and PLL within 0.02 nats/residue of sequential's; sampled, JSD to sequential's samples
    within the floor (two sequential runs) + 0.01 nats."""
    if "jsd_floor" in seq.extra:
        return row.jsd <= seq.extra["jsd_floor"] + 0.01
    return abs(row.recovery - seq.recovery) <= 0.01 and row.pll >= seq.pll - 0.02


# ------------------------------------------------------------------ tables


def _reduction(r: BenchRow) -> str:
    red = r.nfe_reduction_vs_sequential
    return "-" if red is None else f"{red:.2f}"


def print_sudoku_table(rows: list[BenchRow]) -> None:
    """Solve rate (%, 95% Wilson interval), mean NFE (passes per puzzle), x fewer NFE than
    sequential, seconds and puzzles per second of each row."""
    print(f"{'selector':24s} {'params':18s} {'solve (%)':>9s} {'95% CI (%)':>13s} {'NFE':>7s} {'xfewer':>7s} "
          f"{'sec':>7s} {'puz/s':>7s}")
    for r in rows:
        lo, hi = r.solve_rate_ci95
        extra = r.extra.get("oracle_extra_passes_per_puzzle")
        print(f"{r.selector:24s} {_knobs(r.params):18s} {100 * r.solve_rate:9.1f} {100 * lo:6.1f}-{100 * hi:5.1f} "
              f"{r.mean_nfe:7.2f} {_reduction(r):>7} {r.seconds:7.1f} {r.extra['puzzles_per_s']:7.1f}"
              + ("" if extra is None else f"   + {extra:.1f} exact-MI passes = {r.mean_nfe + extra:.1f} in all"))
    print("NFE: model passes per puzzle (mean); xfewer: sequential's NFE / this NFE")


def print_hmm_table(rows: list[BenchRow]) -> None:
    """Mean NFE (passes per sample), exact NLL (nats per token) and pair co-occurrence TV of
    each row."""
    print(f"{'selector':24s} {'params':14s} {'NFE':>6s} {'NLL (nats/token)':>16s} {'cooc TV':>8s} {'sec':>6s}")
    for r in rows:
        print(f"{r.selector:24s} {_knobs(r.params):14s} {r.mean_nfe:6.1f} {r.nll_per_token:16.4f} {r.cooc_tv:8.4f} "
              f"{r.seconds:6.1f}")
    print("NFE: model passes per sample (mean); NLL: exact, under the true HMM; cooc TV: total variation (0-1) "
          "of pair co-occurrences vs the true HMM's, lower is better")


def print_antibody_table(rows: list[BenchRow]) -> None:
    """Mean NFE (passes per sequence), recovery (%), PLL (nats per filled residue), JSD to
    sequential's samples (nats, when sampling) and whether sequential's quality is kept."""
    sampled = any(r.jsd is not None for r in rows)
    print(f"{'selector':18s} {'params':24s} {'NFE':>6s} {'xfewer':>6s} {'recov (%)':>9s} {'PLL (nats/res)':>14s}"
          + (f" {'JSD (nats)':>10s}" if sampled else "") + f" {'seq/s':>7s} {'= seq':>5s}")
    for r in rows:
        print(f"{r.selector:18s} {_knobs(r.params):24s} {r.mean_nfe:6.2f} {_reduction(r):>6s} "
              f"{100 * r.recovery:9.1f} {r.pll:14.4f}"
              + (f" {math.nan if r.jsd is None else r.jsd:10.4f}" if sampled else "")
              + f" {r.extra['seqs_per_s']:7.1f} {'yes' if r.extra.get('matches_sequential') else '':>5s}")
    print("NFE: model passes per sequence (mean); PLL: nats per filled residue, higher is better"
          + ("; JSD: to sequential's samples, per filled position, lower is better" if sampled else ""))
    print("= seq: keeps sequential's quality (greedy: recovery within 1 point and PLL within 0.02 nats; "
          "sampled: JSD within the floor + 0.01 nats)")
    if sampled:
        print(f"JSD floor (two independent sequential runs): {rows[0].extra.get('jsd_floor', math.nan):.4f} nats")
