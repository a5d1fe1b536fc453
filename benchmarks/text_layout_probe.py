"""Is the shipped text model's failure on ``split`` the layout of its sequences, or its training? Small models on split alone.

The shipped layout right-aligns the prompt (``[pad.. N=]`` ending at ``PROMPT_WIDTH``) and
starts the answer there, so the digit of ``A`` under ``N``'s digit ``i`` sits ``len(N) + 1``
positions after it: an offset that changes with the length of ``N``, which learned absolute
position embeddings must resolve per length. The ``left`` layout puts the prompt first and
pads it on the right to the same width (``[N= pad..]``), so ``A``'s digit ``i`` is always
``PROMPT_WIDTH`` positions after ``N``'s (``B``'s offset still depends on the length).

Each arm trains the shipped architecture (``--d-model``, ``--n-layers``, ``--n-heads``) on
``split`` problems alone, with the loss and curriculum of ``mdmi train text`` (flat
cross-entropy on the answer; EOS positions out of the loss for the first ``--content-first``
steps), the same seed, steps and batches; then it decodes the first ``--problems`` ``split``
problems of the valid split greedily with the sequential rule in one block of 32 and
reports validity with a Wilson 95% interval, overall and by the length of ``N``.

    python benchmarks/text_layout_probe.py --steps 3000 --threads 1 --out /tmp/layout_probe

Checkpoints go to ``--out/<layout>`` (``--resume`` continues them; on finished checkpoints it
only evaluates); the result to ``benchmarks/results/text/layout_probe.json``. The arms run
one after the other; to use two cores run one per process (``--layout right`` and
``--layout left``, each with ``--json`` of its own), then both with ``--resume`` into one file.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from mdmi.decode import decode
from mdmi.models.transformer import MaskedTransformer, MDMConfig
from mdmi.selectors.registry import make_selector
from mdmi.stats import wilson
from mdmi.tasks import textbed
from mdmi.train import TrainConfig, train
from mdmi.cli.common import script_provenance

OUT = Path(__file__).parent / "results" / "text"
LAYOUTS = ("right", "left")


def encode(pairs: list[tuple[str, str]], layout: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Training rows in ``layout`` (B, SEQ_LEN) and the answer region (B, SEQ_LEN) bool."""
    if layout == "right":
        return textbed.encode_problems(pairs)
    tok, W = textbed.TOKENIZER, textbed.PROMPT_WIDTH
    x, answer = textbed.encode_problems(pairs)  # the answer region is the same; only the prompt moves
    for b, (p, _) in enumerate(pairs):
        ids = tok.encode(p)
        x[b, :W] = tok.pad_id
        x[b, :len(ids)] = torch.tensor(ids)
    return x, answer


def sampler(layout: str, seed: int):
    """``sample(B, g) -> (x0, maskable)``: ``split`` training problems in ``layout``."""

    def sample(B: int, g: torch.Generator):
        rng = random.Random(f"layout:{seed}:{int(torch.randint(2 ** 62, (1,), generator=g))}")
        pairs = []
        while len(pairs) < B:
            p, r = textbed.sample_problem("split", rng)
            if textbed.split_of(p) == "train":
                pairs.append((p, r))
        return encode(pairs, layout)

    return sample


@torch.no_grad()
def evaluate(model, layout: str, pairs: list[tuple[str, str]]) -> dict:
    """Sequential greedy validity in one block of 32, overall and by the digits of N."""
    tok = textbed.TOKENIZER
    x, answer = encode(pairs, layout)
    x = x.masked_fill(answer, model.mask_id)
    res = decode(model, x, make_selector("sequential"), block_length=textbed.GEN_LENGTH, eos_id=tok.eos_id)
    texts = [tok.decode(row) for row in res.tokens[:, textbed.PROMPT_WIDTH:].tolist()]
    ok = [textbed.check("split", p, a) for (p, _), a in zip(pairs, texts)]
    # where a wrong answer goes wrong: A (written like the references: as long as N, each digit
    # after the first at most N's), or B = N - A (the digits of one place, coupled)
    a_like = b_right = 0
    for (p, _), t in zip(pairs, texts):
        n, (a, plus, b) = p[:-1], t.partition("+")
        if not (plus and a.isdigit() and b.isdigit()):
            continue
        a_like += len(a) == len(n) and all(x <= y for x, y in zip(a[1:], n[1:]))
        b_right += int(a) <= int(n) and b == str(int(n) - int(a))
    by_len: dict[int, list[bool]] = {}
    for (p, _), v in zip(pairs, ok):
        by_len.setdefault(len(p) - 1, []).append(v)
    k, n = sum(ok), len(ok)
    return {"validity": k / n, "validity_ci95": list(wilson(k, n)), "problems": n,
            "validity_by_digits": {str(d): sum(v) / len(v) for d, v in sorted(by_len.items())},
            "problems_by_digits": {str(d): len(v) for d, v in sorted(by_len.items())},
            "a_like_reference": a_like / n, "b_is_n_minus_a": b_right / n,
            "examples": [{"prompt": p, "answer": a, "valid": v} for (p, _), a, v in list(zip(pairs, texts, ok))[:8]]}


def run_arm(layout: str, args) -> dict:
    mcfg = MDMConfig(vocab_size=textbed.TOKENIZER.vocab_size, seq_len=textbed.SEQ_LEN, d_model=args.d_model,
                     n_layers=args.n_layers, n_heads=args.n_heads)
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, loss="flat",
                       seed=args.seed, ckpt_every=500, log_every=50)
    torch.manual_seed(tcfg.seed)
    model = MaskedTransformer(mcfg)
    out = args.out / layout
    t0 = time.time()
    train(model, sampler(layout, args.seed), tcfg, out, resume=args.resume and out.is_dir(),
          extra={"task": "split", "layout": layout, "command": script_provenance()["command"]}, progress=True,
          weight=lambda step, x0: textbed.content_weight(x0) if step < args.content_first else None)
    seconds = time.time() - t0
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    # each call's clock starts at 0: the total is the sum of every call's last reading
    total = sum(r["elapsed_s"] for r, nxt in zip(log, log[1:] + [None]) if nxt is None or nxt["elapsed_s"] < r["elapsed_s"])
    model.eval()
    pairs = textbed.problems("split", args.problems, seed=0, split="valid")
    return {"layout": layout, "parameters": sum(p.numel() for p in model.parameters()), "steps": args.steps,
            "batch_size": args.batch_size, "threads_this_call": torch.get_num_threads(), "train_seconds": total,
            "trained_by": json.loads((out / "config.json").read_text()).get("command"), "train_seconds_this_call": seconds,
            "final_loss": log[-1].get("loss"), "loss_curve": [[r["step"], r.get("loss")] for r in log],
            **evaluate(model, layout, pairs)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layout", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=7e-4)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--content-first", type=int, default=600, help="steps with EOS out of the loss (as mdmi train text)")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=4)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--problems", type=int, default=200, help="valid split problems decoded per arm")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, required=True, help="checkpoint folder (one sub-folder per layout)")
    ap.add_argument("--resume", action="store_true", help="continue the arms' checkpoints in --out")
    ap.add_argument("--json", type=Path, default=OUT / "layout_probe.json",
                    help="result file; an arm's row replaces the row of the same layout, steps and size there")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.problems < 1:
        ap.error("--steps and --problems must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    prov = script_provenance()
    for layout in args.layout:
        row = {**run_arm(layout, args), "provenance": prov}
        old = json.loads(args.json.read_text()) if args.json.is_file() else []
        key = (layout, row["steps"], row["parameters"])
        rows = sorted([r for r in old if (r["layout"], r["steps"], r["parameters"]) != key] + [row],
                      key=lambda r: (LAYOUTS.index(r["layout"]), r["steps"], r["parameters"]))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
        lo, hi = row["validity_ci95"]
        print(f"{layout}: split validity {row['validity']:.1%} ({lo:.1%}-{hi:.1%}) after {row['steps']} steps "
              f"({row['train_seconds'] / 60:.0f} min), loss {row['final_loss']:.4f}; A like the references "
              f"{row['a_like_reference']:.1%}, B = N - A {row['b_is_n_minus_a']:.1%}; by digits {row['validity_by_digits']}",
              flush=True)


if __name__ == "__main__":
    main()
