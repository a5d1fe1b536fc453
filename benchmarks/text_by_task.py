"""One task's rows of a text benchmark: ``mdmi bench text`` rows restricted to the problems of one task.

A bench file mixes the three tasks, and its mean NFE and validity are over all of them; a
rule that fills one task's answers fast can then look fast on another. This reads each
row's per-problem outcomes (``per_seq``: validity and NFE, in the problem file's order),
keeps the problems of ``--task`` and recomputes validity (with its 95% Wilson interval),
mean NFE and the reduction against sequential, so that ``benchmarks/ranking.py --metric
validity`` can rank the selectors on that task alone. Sampled rows keep their mean JSD only
over all tasks, so it is dropped here.

    python benchmarks/text_by_task.py --rows valid_greedy_b8.json --problems data/text_valid.tsv --task perm --out valid_greedy_b8_perm.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mdmi.stats import wilson
from mdmi.tasks import textbed
from mdmi.cli.common import script_provenance


def restrict(rows: list[dict], tasks: list[str], task: str, prov: dict) -> list[dict]:
    idx = [i for i, t in enumerate(tasks) if t == task]
    if not idx:
        raise SystemExit(f"the problem file holds no {task} problems")
    out = []
    for r in rows:
        v, nfe = r["per_seq"]["validity"], r["per_seq"]["nfe"]
        if len(v) != len(tasks):
            raise SystemExit(f"{r['selector']}: {len(v)} per-problem outcomes for {len(tasks)} problems: "
                             f"not the problem file this bench ran on")
        k = sum(v[i] for i in idx) * r["samples"]
        n = len(idx) * r["samples"]
        row = {**r, "validity": k / n, "validity_ci95": list(wilson(round(k), n)), "validity_by_task": {task: k / n},
               "mean_nfe": sum(nfe[i] for i in idx) / len(idx), "n": len(idx),
               "per_seq": {"validity": [v[i] for i in idx], "nfe": [nfe[i] for i in idx]},
               "provenance": {**prov, "from": r.get("provenance", {})}}
        for key in ("jsd_to_sequential", "distinct_valid"):
            row.pop(key, None)
        out.append(row)
    seq = next((r["mean_nfe"] for r in out if r["selector"] == "sequential"), None)
    for r in out:
        r["nfe_reduction_vs_sequential"] = seq / r["mean_nfe"] if seq else None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=Path, required=True, help="a 'mdmi bench text' JSON")
    ap.add_argument("--problems", type=Path, required=True, help="the problem file that bench ran on")
    ap.add_argument("--task", choices=textbed.TASKS, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    prov = script_provenance()
    tasks = [textbed.task_of(p) for p, _ in textbed.read_problems(a.problems)]
    rows = restrict(json.loads(a.rows.read_text()), tasks, a.task, prov)
    a.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {len(rows)} rows of {a.task} ({rows[0]['n']} problems) to {a.out}")


if __name__ == "__main__":
    main()
