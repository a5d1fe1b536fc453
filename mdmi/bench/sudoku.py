"""The Sudoku decoding benchmark: every selector over a sweep of its knob, one loop, one
NFE count (DESIGN.md section 4). Rows: selector, params, solve rate (95% CI), mean NFE,
NFE reduction vs sequential, wall time, puzzles/s; written as JSON and CSV, with a Pareto
plot (solve rate vs mean NFE, one line per selector)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..selectors import needs
from .analysis import METRICS, NFE_LABEL, Comparison, add_reduction
from .rows import BenchRow, write_rows
from .settings import build, settings

# the fields of SudokuEval.as_dict that a row keeps under BenchRow's own names
_TYPED = ("solve_rate", "solve_rate_ci95", "mean_nfe", "cell_accuracy", "n", "seconds")
# per-puzzle lists kept (as strings below) or dropped from the row
_PER_PUZZLE = ("outputs", "solved", "nfe", "extra_passes")


def run_sudoku(model, puzzles, selectors, estimator=None, batch_size: int = 256, progress: bool = True,
               sweep: bool = True) -> list[BenchRow]:
    """One row per (selector, params) of ``SWEEPS`` restricted to ``selectors``: solve rate,
    mean NFE (passes per puzzle), per-puzzle outcomes, and the reduction vs sequential."""
    from tqdm import tqdm

    from ..tasks import sudoku

    rows = []
    for name, params in tqdm(settings(selectors, sweep), desc="bench", unit="setting", disable=not progress):
        sel = build(name, params, model, estimator)
        r = sudoku.evaluate(model, puzzles, sel, batch_size=batch_size).as_dict()
        extra = {k: v for k, v in r.items() if k not in _TYPED + _PER_PUZZLE}
        # per puzzle, for analyses by puzzle (benchmarks/sudoku_depth.py)
        extra["solved_per_puzzle"] = "".join("1" if s else "0" for s in r["solved"])
        extra["nfe_per_puzzle"] = r["nfe"]
        if needs(name, params) == "exact":
            extra["oracle_extra_passes_per_puzzle"] = r["extra_passes"] / len(puzzles)
        rows.append(BenchRow(selector=name, params=params, **{k: r[k] for k in _TYPED}, extra=extra))
    return add_reduction(rows)


def merge(paths) -> list[BenchRow]:
    """The rows of several ``bench sudoku --json`` files on the same puzzles as one result:
    each selector's rows together (in input order), the reduction vs the sequential row."""
    rows, seen = [], set()
    for f in paths:
        try:
            got = json.loads(Path(f).read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{f} is not JSON: {e}") from None
        if not isinstance(got, list) or not got or not all(
                isinstance(r, dict) and {"selector", "params", "n", "mean_nfe", "solve_rate"} <= set(r) for r in got):
            raise ValueError(f"{f} is not a 'bench sudoku --json' result (a list of rows with selector, params, "
                             f"n, mean_nfe, solve_rate)")
        for r in map(BenchRow.from_dict, got):
            key = (r.selector, json.dumps(r.params, sort_keys=True))
            if key in seen:
                raise ValueError(f"{f}: {r.selector} {r.params} appears in more than one input")
            seen.add(key)
            rows.append(r)
    ns = {r.n for r in rows}
    if len(ns) > 1:
        raise ValueError(f"inputs were run on different puzzle counts {sorted(ns)}; merge runs on the same puzzles")
    first = {name: k for k, name in reversed(list(enumerate(r.selector for r in rows)))}
    rows.sort(key=lambda r: first[r.selector])  # stable: each selector's rows together, in input order
    return add_reduction(rows)


def write(rows: list[BenchRow], json_path: str | Path, plot_path: str | Path | None = None,
          comparison: Comparison | None = None, model: str = "sudoku", task: str = "Sudoku") -> list[Path]:
    """The rows as JSON and CSV, the equal-NFE comparison beside them (``_equal_nfe.json``)
    and the Pareto plot (solve rate vs mean NFE) titled with ``model``, ``task`` and n.
    Returns the paths written."""
    json_path = Path(json_path)
    write_rows(rows, json_path)
    written = [json_path, json_path.with_suffix(".csv")]
    with written[1].open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["selector", "params", "solve_rate", "ci_low", "ci_high", "mean_nfe", "nfe_reduction",
                    "cell_accuracy", "n", "seconds", "puzzles_per_s"])
        for r in rows:
            w.writerow([r.selector, json.dumps(r.params), r.solve_rate, *r.solve_rate_ci95, r.mean_nfe,
                        r.nfe_reduction_vs_sequential, r.cell_accuracy, r.n, r.seconds, r.extra["puzzles_per_s"]])
    if comparison is not None:
        side = json_path.with_name(json_path.stem + "_equal_nfe.json")
        side.write_text(json.dumps(comparison.entries, indent=2) + "\n")
        written.append(side)
    if plot_path:
        from ..plots import pareto_plot

        pareto_plot(rows, plot_path, metric="solve_rate", ylabel=METRICS["solve_rate"].label, scale=100.0,
                    xlabel=NFE_LABEL["sudoku"], title=f"model {model} · {task} · n = {rows[0].n} puzzles")
        written.append(Path(plot_path))
    return written
