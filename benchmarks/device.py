"""The core on every device at hand: sequence-passes per second (one sequence through the
model once) of decoding, exact MI, label
contexts and the MI head on the CPU and, when one is present, on CUDA.

Runs the shipped Sudoku model and head (found through the installed package) on the same
puzzles on each device, checks that the decoded grids are the same (greedy decoding is
deterministic; a mismatch is reported, not hidden: float32 kernels differ between
devices), prints a table and writes JSON with the command that made it.

    python benchmarks/device.py --n 256 --json benchmarks/results/device/device.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

import mdmi
from mdmi.mi import exact_mi
from mdmi.selectors import make_selector
from mdmi.tasks import sudoku
from mdmi.cli.common import script_provenance


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats: int):
    """(result of the last call, median seconds of ``repeats`` calls after one warm-up)."""
    out = fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return out, sorted(times)[len(times) // 2]


def run(device: torch.device, puzzles, n_mi: int, repeats: int) -> dict:
    model = mdmi.load("sudoku").to(device)  # the shipped model and head, wherever mdmi is installed
    head = mdmi.load_estimator("sudoku").to(device)
    x = torch.stack([sudoku.encode(p.puzzle, model.mask_id) for p in puzzles]).to(device)
    seq = make_selector("sequential")
    mib = make_selector("mi_budget", estimator=head, gamma=0.05)
    res, t_seq = timed(lambda: mdmi.decode(model, x, seq), device, repeats)
    res_mi, t_mi = timed(lambda: mdmi.decode(model, x, mib), device, repeats)
    out = model(x)
    masked = x == model.mask_id
    _, t_pass = timed(lambda: model(x), device, repeats)
    _, t_head = timed(lambda: head(out.hidden, masked), device, repeats)
    r, t_exact = timed(lambda: exact_mi(model, x[:n_mi], batch_size=256 if device.type == "cuda" else 32), device, 1)
    return {
        "device": str(device),
        "name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "puzzles": len(puzzles),
        "decode_sequential_passes_per_s": int(res.nfe.sum()) / t_seq,
        "decode_mi_budget_passes_per_s": int(res_mi.nfe.sum()) / t_mi,
        "pass_seconds": t_pass, "head_seconds": t_head, "head_fraction_of_pass": t_head / t_pass,
        "exact_mi_passes_per_s": int(r.passes.sum()) / t_exact, "exact_mi_contexts": n_mi,
        "tokens_sequential": res.tokens.cpu(), "tokens_mi_budget": res_mi.tokens.cpu(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--puzzles", default=str(Path(__file__).resolve().parent.parent / "data" / "test_34.txt"))
    ap.add_argument("--n", type=int, default=64, help="puzzles decoded together")
    ap.add_argument("--n-mi", type=int, default=4, help="contexts for the exact-MI timing")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the table here")
    a = ap.parse_args()
    puzzles = sudoku.read_puzzles(a.puzzles)[: a.n]
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = [run(d, puzzles, a.n_mi, a.repeats) for d in devices]
    base = rows[0]
    print(f"{'device':<8} {'decode seq p/s':>15} {'decode MI p/s':>14} {'head/pass':>10} {'exact MI p/s':>13}  same grids")
    for r in rows:
        same = torch.equal(r.pop("tokens_sequential"), base["tokens_sequential"]) if r is not base else True
        same_mi = torch.equal(r.pop("tokens_mi_budget"), base["tokens_mi_budget"]) if r is not base else True
        r["same_grids_as_cpu"] = {"sequential": same, "mi_budget": same_mi}
        print(f"{r['device']:<8} {r['decode_sequential_passes_per_s']:>15.0f} {r['decode_mi_budget_passes_per_s']:>14.0f} "
              f"{100 * r['head_fraction_of_pass']:>9.1f}% {r['exact_mi_passes_per_s']:>13.0f}  {same and same_mi}")
    base.pop("tokens_sequential", None)
    base.pop("tokens_mi_budget", None)
    if len(rows) == 1:
        print("no CUDA device here: CPU figures only")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        prov = script_provenance()
        Path(a.json).write_text(json.dumps({"rows": rows, "provenance": prov}, indent=2) + "\n")


if __name__ == "__main__":
    main()
