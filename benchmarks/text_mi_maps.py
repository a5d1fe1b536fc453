"""Exact MI maps of the text testbed's answers: where a text dLLM's answer tokens depend on each other.

For one test problem per task (``add``: carries, ``split``: the coupling of A and B,
``perm``: each letter once), the model's exact pairwise MI among the answer positions, at
two states: the whole answer masked (the first step of decoding) and halfway through
sequential decoding (half the answer filled). One picture per task and beside it a JSON
of its matrices, with the command that made it.

    python benchmarks/text_mi_maps.py --model text
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import mdmi
from mdmi.mi import exact_mi
from mdmi.tasks import textbed
from mdmi.cli.common import script_provenance

OUT = Path(__file__).parent / "results" / "text"


def states(model, prompt: str, n_chars: int) -> list[tuple[str, torch.Tensor]]:
    """(name, (1, L) context) pairs: the answer all masked, then sequential decoding replayed
    until half of the first ``n_chars + 1`` positions are filled (with whatever EOS padding
    it filled on the way; the rest masked)."""
    x, _ = textbed.encode_problems([(prompt, "")])
    x[:, textbed.PROMPT_WIDTH:] = model.mask_id
    res = mdmi.decode(model, x, mdmi.make_selector("sequential"), trace=True)
    half = x.clone()
    filled = 0
    end = textbed.PROMPT_WIDTH + n_chars + 1
    for step in res.trace:  # replay the fills until half of the answer and its EOS are filled
        for i, tok in zip(step["filled"][0], step["tokens"][0]):
            if filled < (n_chars + 1) // 2:
                half[0, i] = tok
                filled += int(i) < end
    return [("all masked", x), ("half filled", half)]


def plot(task, prompt, answer, mats, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(answer) + 1  # the answer and its EOS
    labels = list(answer) + ["EOS"]
    fig, axes = plt.subplots(1, len(mats), figsize=(4.6 * len(mats), 4.2))
    for ax, (name, mi, x) in zip(axes, mats):
        sub = mi[textbed.PROMPT_WIDTH:textbed.PROMPT_WIDTH + n, textbed.PROMPT_WIDTH:textbed.PROMPT_WIDTH + n]
        im = ax.imshow(sub.numpy(), cmap="magma")
        shown = [lab if x[0, textbed.PROMPT_WIDTH + i] == -1 else f"[{lab}]" for i, lab in enumerate(labels)]
        ax.set_xticks(range(n), shown, fontsize=7, rotation=90)
        ax.set_yticks(range(n), shown, fontsize=7)
        ax.set_title(f"{name}: exact MI (nats)", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{task}: {prompt} {answer}   ([x] = filled; axes: the greedy answer)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="text", help="a text dLLM: the shipped one (text) or a checkpoint ('mdmi train text')")
    ap.add_argument("--seed", type=int, default=3, help="seed of the test problems shown")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    model = mdmi.load(a.model)
    a.out.mkdir(parents=True, exist_ok=True)
    prov = script_provenance(a.model)
    rows = []
    for task in textbed.TASKS:
        prompt, _ = textbed.problems(task, 1, seed=a.seed, split="test")[0]
        greedy = mdmi.tasks.text.generate(model, [prompt], mdmi.make_selector("sequential"),
                                          gen_length=textbed.GEN_LENGTH)[0].text
        mats = []
        for name, x in states(model, prompt, len(greedy)):
            r = exact_mi(model, x)
            shown = torch.where(x == model.mask_id, -1, x)
            mats.append((name, r.mi[0].float(), shown))
            ans = slice(textbed.PROMPT_WIDTH, textbed.PROMPT_WIDTH + len(greedy) + 1)
            rows.append({"task": task, "prompt": prompt, "greedy_answer": greedy,
                         "valid": textbed.check(task, prompt, greedy), "state": name,
                         "answer_mi": [[round(float(v), 6) for v in row] for row in r.mi[0][ans, ans]],
                         "max_mi": float(r.mi[0][ans, ans].max()), "passes": int(r.passes.sum()),
                         "provenance": prov})
        plot(task, prompt, greedy, mats, a.out / f"mi_map_{task}.png")
        print(f"{task}: {prompt}{greedy} (valid: {rows[-1]['valid']}); max MI "
              + ", ".join(f"{r['state']} {r['max_mi']:.3f}" for r in rows[-2:]) + " nats")
        (a.out / f"mi_map_{task}.json").write_text(json.dumps(rows[-2:], indent=2) + "\n")  # beside its picture


if __name__ == "__main__":
    main()
