"""What the MI budget gets wrong next to the factor rule, step by step: are its Sudoku failures joint
(two dependent picks) or single confidently wrong cells?

Decodes Sudoku puzzles greedily with each ``--drivers`` selector (trace on). On every state
a driver visits, every ``--compare`` selector is asked what it would fill from that same
state (one model pass for all states), and each picked set is described:

- ``size``; ``wrong``: picks whose greedy value is not the solution's (each one makes the
  board unsolvable); ``clash``: pairs of picks in one row/column/box given the same digit;
- ``sum_h``: summed entropy of the picks (nats); ``conf``: mean confidence;
- ``mi_pred``: summed predicted pairwise MI over the picks (the shipped head);
  ``mi_exact`` (``--exact``): the same sum from exact MI of the state (extra passes);
Figures are means over the states still *on track* (every filled cell right so far): on
a later state the board is already lost.

- ``wrong_rank0``: wrong picks that are the single most confident cell (a sequential
  decoder makes that error too), against ``wrong_parallel``: the other wrong picks,
  errors of filling in parallel.

Per driver it also reports each failed puzzle's first wrong step: how many wrong picks, of
which parallel ones, and whether any clashed; and over all blank cells of on-track states,
how well confidence, margin, entropy and predicted dependence (sum of predicted MI with the
other blanks) tell the cells whose greedy value is wrong from the right ones (AUC). Prints tables and writes JSON.

    python benchmarks/step_traces.py --puzzles data/valid_minimal.txt --limit 100 \\
        --drivers mi_budget:gamma=0.5,factor:f=0.5 \\
        --compare mi_budget:gamma=0.5,factor:f=0.5,entropy_bound:gamma=0.03,mi_gate:eps=0.01+f=0.5 \\
        --json benchmarks/results/sudoku/step_traces_valid_minimal.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from tqdm import tqdm

import mdmi
from mdmi.bench import build, settings
from mdmi.decode import decode, replay
from mdmi.estimator import Estimator
from mdmi.interface import allowed_tokens, masked_log_probs
from mdmi.mi import exact_mi
from mdmi.resources import checkpoint_dir
from mdmi.selectors.base import StepState
from mdmi.stats import auc
from mdmi.tasks import sudoku
from mdmi.cli.common import script_provenance

ROOT = Path(__file__).resolve().parent.parent


def label(name: str, params: dict) -> str:
    return name + "(" + ",".join(f"{k}={v}" for k, v in params.items()) + ")"


def states_of(model, x: torch.Tensor, selector):
    """Tokens and NFE of a traced decode, and every state it visited as (puzzle row, step, state)."""
    res = decode(model, x, selector, trace=True)
    seen, steps = [], {}
    for r, state, _ in replay(x, res):
        seen.append((r, steps.get(r, 0), state))
        steps[r] = steps.get(r, 0) + 1
    return res, seen


def describe(sel: torch.Tensor, state: StepState, solution: torch.Tensor, pred: torch.Tensor,
             exact: torch.Tensor | None, unit: torch.Tensor) -> list[dict]:
    """Per state (row of ``sel`` (N, 81)), the figures of the picked set (see module doc)."""
    greedy = state.log_probs.argmax(-1)  # (N, 81)
    conf = state.confidence
    top = conf.masked_fill(~state.masked, -1).argmax(-1)  # the cell sequential would fill
    out = []
    for n in range(len(sel)):
        S = sel[n].nonzero().squeeze(1)
        wrong = S[greedy[n, S] != solution[n, S]]
        same = unit[S][:, S] & (greedy[n, S][:, None] == greedy[n, S][None, :])
        iu = torch.triu_indices(len(S), len(S), 1)
        row = {"size": len(S), "wrong": len(wrong), "clash": int(same.triu(1).sum()),
               "wrong_rank0": int((wrong == top[n]).sum()), "wrong_parallel": int((wrong != top[n]).sum()),
               "sum_h": float(state.entropy[n, S].sum()), "conf": float(conf[n, S].mean()),
               "mi_pred": float(pred[n][S][:, S][iu[0], iu[1]].sum())}
        if exact is not None:
            row["mi_exact"] = float(exact[n][S][:, S][iu[0], iu[1]].sum())
        out.append(row)
    return out


def mean(rows: list[dict], key: str) -> float:
    return sum(r[key] for r in rows) / max(1, len(rows))


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(checkpoint_dir("sudoku")))
    ap.add_argument("--estimator", default=str(checkpoint_dir("sudoku/estimator")))
    ap.add_argument("--puzzles", default=str(ROOT / "data" / "valid_minimal.txt"))
    ap.add_argument("--limit", type=int, default=100, help="first N puzzles")
    ap.add_argument("--drivers", default="mi_budget:gamma=0.5,factor:f=0.5", help="selectors whose states are visited")
    ap.add_argument("--compare", default="mi_budget:gamma=0.5,factor:f=0.5,entropy_bound:gamma=0.03,"
                                          "mi_gate:eps=0.01+f=0.5", help="selectors asked on every visited state")
    ap.add_argument("--exact", action="store_true", help="also the exact MI of every state (about 9 passes per blank)")
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "sudoku" / "step_traces.json"))
    args = ap.parse_args()

    model = mdmi.load(args.model)
    est = Estimator.load(args.estimator)
    puzzles = sudoku.read_puzzles(args.puzzles)[: args.limit]
    sols = sudoku.reference_solutions(puzzles)
    x = torch.stack([sudoku.encode(p.puzzle) for p in puzzles])
    solution = torch.stack([sudoku.encode(s) if s else torch.full((81,), -1) for s in sols])
    unit = sudoku.same_unit()
    compare = [(label(n, p), build(n, p, model, est)) for n, p in settings(args.compare.split(","))]
    report = {"args": vars(args), "drivers": []}
    for dname, dparams in settings(args.drivers.split(",")):
        t0 = time.time()
        res, seen = states_of(model, x, build(dname, dparams, model, est))
        rows = torch.tensor([r for r, _, _ in seen])
        states = torch.stack([s for _, _, s in seen])
        out = model(states)
        lp = masked_log_probs(out.logits, allowed_tokens(model))
        masked = states == model.mask_id
        st = StepState(x=states, log_probs=lp, masked=masked, hidden=out.hidden)
        pred = est.predict(out.hidden, masked, "mi", log_probs=lp).double()
        exact = None
        if args.exact:
            exact = torch.cat([exact_mi(model, states[s: s + 64]).mi for s in
                               tqdm(range(0, len(states), 64), desc="exact MI of visited states")])
        solved = [bool(sols[r] and sudoku.to_string(res.tokens[r]) == sols[r]) for r in range(len(puzzles))]
        # on track: every cell filled so far is the solution's (later states are lost already)
        on_track = ((states == solution[rows]) | masked).all(1) & (solution[rows] >= 0).all(1)
        per = {}
        for cname, sel_fn in compare:
            sel = sel_fn(st).fill & masked
            per[cname] = describe(sel, st, solution[rows], pred, exact, unit)
        own = per.get(label(dname, dparams)) or describe(  # what the driver itself filled
            torch.zeros_like(masked), st, solution[rows], pred, exact, unit)
        # the first wrong step of every failed puzzle, as the driver took it
        first = {}
        for k, (r, step, _) in enumerate(seen):
            if r not in first and own[k]["wrong"] > 0:
                first[r] = {"puzzle": r, "step": step, **own[k]}
        failed = [first[r] for r in sorted(first) if not solved[r]]
        d = {"driver": label(dname, dparams), "puzzles": len(puzzles), "solved": sum(solved),
             "mean_nfe": float(res.nfe.double().mean()), "states": len(seen), "seconds": time.time() - t0,
             "on_track_states": int(on_track.sum()),
             "per_selector": {c: {k: mean([v[n] for n in on_track.nonzero().squeeze(1).tolist()], k) for k in v[0]}
                              for c, v in per.items()},
             "first_wrong_steps": failed,
             "first_wrong_summary": {"failed": len(failed), "mean_step": mean(failed, "step"),
                                     "mean_wrong": mean(failed, "wrong"),
                                     "with_parallel_error": sum(f["wrong_parallel"] > 0 for f in failed),
                                     "only_rank0_error": sum(f["wrong_parallel"] == 0 for f in failed),
                                     "with_clash": sum(f["clash"] > 0 for f in failed)}}
        # can dependence tell the cells the model gets wrong from the right ones, beyond confidence?
        cand = masked & on_track[:, None]
        wrong = (lp.argmax(-1) != solution[rows]) & cand
        conf = st.confidence.double()
        dep = (pred * masked[:, None, :]).sum(-1)  # predicted sum_j I_ij over the other masked cells
        scores = {"confidence": conf, "margin": st.margin.double(), "-entropy": -st.entropy.double(),
                  "-dependence": -dep, "confidence - dependence": conf - dep,
                  "confidence - 3 dependence": conf - 3 * dep}
        d["wrong_cell_auc"] = {"cells": int(cand.sum()), "wrong": int(wrong.sum()),
                               **{k: auc(v[cand], ~wrong[cand]) for k, v in scores.items()}}
        report["drivers"].append(d)
        keys = list(next(iter(d["per_selector"].values())))
        print(f"\nstates visited by {d['driver']}: {d['states']} ({d['solved']}/{d['puzzles']} solved at "
              f"{d['mean_nfe']:.2f} NFE); mean over the {d['on_track_states']} states still on track "
              f"(no wrong cell yet) of what each selector would fill there:")
        print(f"{'asked':34s} " + " ".join(f"{k:>14s}" for k in keys))
        for c, v in d["per_selector"].items():
            print(f"{c:34s} " + " ".join(f"{v[k]:14.4f}" for k in keys))
        s = d["first_wrong_summary"]
        print(f"first wrong step of the {s['failed']} failed puzzles: step {s['mean_step']:.1f} on average, "
              f"{s['mean_wrong']:.2f} wrong picks; {s['with_parallel_error']} with a parallel error, "
              f"{s['only_rank0_error']} only the most confident cell wrong, {s['with_clash']} with a clash")
        a = d["wrong_cell_auc"]
        print(f"AUC of telling right from wrong greedy values over the {a['cells']} blank cells of on-track states "
              f"({a['wrong']} wrong): " + ", ".join(f"{k} {v:.4f}" for k, v in a.items() if k not in ("cells", "wrong")))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({**report, "provenance": script_provenance()}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
