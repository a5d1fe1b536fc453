"""The text dLLM's training curve: sequential (greedy) validity per task against training steps.

Each snapshot directory (a checkpoint copied at some step: ``model.safetensors`` and
``config.json``, whose ``step`` says when) decodes the valid problems sequentially at each
block length; the loss comes from the run's ``train_log.jsonl``. Writes a JSON of the rows
and a picture.

    python benchmarks/text_curve.py --snapshots runs/ckpts --log textlm/train_log.jsonl --problems valid.tsv
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import mdmi
from mdmi.tasks import textbed
from mdmi.cli.common import script_provenance

OUT = Path(__file__).parent / "results" / "text"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snapshots", type=Path, required=True, help="folder of checkpoint copies, one per step")
    ap.add_argument("--log", type=Path, required=True, help="the run's train_log.jsonl")
    ap.add_argument("--problems", type=Path, required=True, help="valid problems ('mdmi generate-text')")
    ap.add_argument("--block-lengths", default="32,8")
    ap.add_argument("--every", type=int, default=1, help="evaluate every k-th snapshot (the last always)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--name", default="training_curve", help="file stem of the JSON and the picture")
    a = ap.parse_args()
    pairs = textbed.read_problems(a.problems)
    snaps = sorted((d for d in a.snapshots.iterdir() if (d / "config.json").is_file()),
                   key=lambda d: json.loads((d / "config.json").read_text())["step"])
    snaps = [d for i, d in enumerate(snaps) if i % a.every == 0 or i == len(snaps) - 1]
    log = [json.loads(line) for line in a.log.read_text().splitlines()]
    prov = script_provenance()
    rows = []
    for d in snaps:
        model = mdmi.load(d)
        step = model.meta["step"]
        loss = next((r["loss"] for r in reversed(log) if r["step"] <= step), None)
        elapsed = next((r["elapsed_s"] for r in reversed(log) if r["step"] <= step), None)
        for bl in map(int, a.block_lengths.split(",")):
            r = textbed.evaluate(model, pairs, mdmi.make_selector("sequential"), block_length=bl)
            by = r["validity_by_task"]
            rows.append({"step": step, "loss": loss, "train_seconds": elapsed, "block_length": bl,
                         "validity": r["validity"], "validity_ci95": r["validity_ci95"], "validity_by_task": by,
                         "n": len(pairs), "provenance": prov})
            print(f"step {step:6d} loss {loss:.4f} block {bl:2d}: valid {100 * r['validity']:5.1f}% "
                  + " ".join(f"{t} {100 * v:5.1f}" for t, v in by.items()), flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    plot(rows, log, a.out / f"{a.name}.png")


def plot(rows, log, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax1.plot([r["step"] for r in log], [r["loss"] for r in log], lw=1, color="#0072B2")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("training loss (nats per masked token)")
    styles = {"add": "#D55E00", "split": "#009E73", "perm": "#CC79A7"}
    for bl, ls in zip(sorted({r["block_length"] for r in rows}, reverse=True), ("-", "--", ":")):
        sub = [r for r in rows if r["block_length"] == bl]
        for t, c in styles.items():
            ax2.plot([r["step"] for r in sub], [100 * r["validity_by_task"].get(t, 0) for r in sub], ls, color=c,
                     marker="o", ms=3, label=f"{t}, blocks of {bl}")
    ax2.axhline(95, color="grey", lw=0.8)
    ax2.set_xlabel("training step")
    ax2.set_ylabel("sequential greedy validity (%)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
