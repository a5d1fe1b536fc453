"""Diffusion-LLM-style decoding on a real antibody LM: Sapiens VH generating the rest of the
variable domain from its first framework region (the prompt), whole-sequence decoding vs
semi-autoregressive blocks of 8, 16 and 32.

Reads the ``bench antibody --task after_fr1 [--block-length B]`` rows (greedy: PLL of the
generated residues, nats per residue; sampled at temperature 1: JSD of the residue
distributions to sequential decoding's samples, nats, with the floor two sequential runs
reach), checks that every row left the prompt untouched, prints one table per block
setting and draws PLL and JSD against NFE, one panel per block setting, one curve per
selector. Writes the summary JSON (with every input's command) and a PNG.

    python benchmarks/dllm_blocks.py --greedy G_b0.json G_b8.json G_b16.json G_b32.json \
        --sampled S_b0.json S_b8.json S_b16.json S_b32.json \
        --json benchmarks/results/antibody/sapiens_vh/after_fr1_blocks.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mdmi.bench import BenchRow, curve_rows
from mdmi.plots import selector_style
from mdmi.cli.common import script_provenance


def block_of(rows: list[dict]) -> str:
    b = rows[0].get("block_length") or (rows[0].get("extra") or {}).get("block_length")
    return "whole" if b in (None, 0) else str(b)


def summarise(paths: list[str], metric: str) -> dict:
    out = {}
    for p in paths:
        raw = json.loads(Path(p).read_text())
        rows = curve_rows([BenchRow.from_dict(r) for r in raw])
        out[block_of(raw)] = {
            "file": p, "command": (raw[0].get("provenance") or {}).get("command"), "n": raw[0].get("n"),
            "observed_untouched": all(r.get("observed_untouched", False) for r in raw),
            "jsd_floor": next((r.get("jsd_floor") for r in raw if r.get("jsd_floor") is not None), None),
            "rows": [{"selector": r.selector, "params": r.params, "mean_nfe": r.mean_nfe, metric: r.get(metric)}
                     for r in rows],
        }
    return out


def table(title: str, summary: dict, metric: str, unit: str) -> None:
    for block, s in summary.items():
        floor = f", JSD floor {s['jsd_floor']:.3f}" if s["jsd_floor"] is not None else ""
        print(f"\n{title}, block {block} (n {s['n']}; prompt untouched: {s['observed_untouched']}{floor})")
        print(f"{'selector':<18} {'knobs':<22} {'NFE':>7} {metric + ' (' + unit + ')':>16}")
        for r in s["rows"]:
            knobs = ",".join(f"{k}={v}" for k, v in r["params"].items())
            print(f"{r['selector']:<18} {knobs:<22} {r['mean_nfe']:>7.2f} {r[metric]:>16.4f}")


def plot(greedy: dict, sampled: dict, path: str) -> None:
    from mdmi.plots import _plt

    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    blocks = list(dict.fromkeys(list(greedy) + list(sampled)))
    fig, axes = plt.subplots(2, len(blocks), figsize=(3.6 * len(blocks), 6.4), squeeze=False)
    for j, block in enumerate(blocks):
        for i, (summary, metric, label) in enumerate([(greedy, "pll", "PLL (nats per residue)"),
                                                      (sampled, "jsd", "JSD to sequential (nats)")]):
            ax = axes[i][j]
            s = summary.get(block)
            if s is None:
                ax.set_visible(False)
                continue
            for name in dict.fromkeys(r["selector"] for r in s["rows"]):
                pts = sorted((r["mean_nfe"], r[metric]) for r in s["rows"] if r["selector"] == name)
                ax.plot(*zip(*pts), label=name, ms=4, lw=1.1, **selector_style(name))
            if metric == "jsd" and s["jsd_floor"] is not None:
                ax.axhline(s["jsd_floor"], color="grey", lw=0.8, ls=":", label="floor (seq. vs seq.)")
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else ""))
            ax.set_title(f"{'greedy' if i == 0 else 'sampled, T=1'}; block {block}; n {s['n']}", fontsize=8)
            ax.set_xlabel("mean NFE (passes per sequence)", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Sapiens VH: the domain after FR1 from FR1 as the prompt", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--greedy", nargs="+", required=True, help="bench antibody rows at temperature 0")
    ap.add_argument("--sampled", nargs="+", default=[], help="bench antibody rows at temperature 1")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    greedy, sampled = summarise(a.greedy, "pll"), summarise(a.sampled, "jsd")
    table("greedy", greedy, "pll", "nats/res")
    table("sampled", sampled, "jsd", "nats")
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    prov = script_provenance()
    out.write_text(json.dumps({"greedy": greedy, "sampled": sampled, "provenance": prov}, indent=2) + "\n")
    plot(greedy, sampled, str(out.with_suffix(".png")))
    print(f"\nwrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
