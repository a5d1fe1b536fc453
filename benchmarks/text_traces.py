"""Are the text dLLM's parallel-decoding failures on ``perm`` joint? Traces of each selector's answers.

A permutation answer fails when a letter is doubled, left out or foreign. Decoding each
``perm`` problem with each ``--selectors`` setting (greedy, or one sample per prompt with
``--temperature 1``; trace on), every failed answer
gets its first fault:

- ``joint``: a doubled letter whose two copies were filled in the same pass: an error of
  filling in parallel, which a dependence-aware rule is built to avoid;
- ``repeat``: a doubled letter whose second copy came in a later pass, when the first was
  already in view: the model's own conditional picked it (sequential decoding can do that);
- ``length``: no letter doubled, but the answer is too short or too long (EOS placed wrong);
- ``foreign``: a letter that is not in the prompt.

Per setting it prints validity, mean NFE, the failures by kind, and over the passes that
filled two or more content letters together, how many doubled a letter, with the mean
entropy of those picks (nats) and, for MI-guided selectors, their summed pairwise score
(the head's MI, nats), for the doubling passes against the clean ones. Writes JSON.

    python benchmarks/text_traces.py --problems data/text_test.tsv --block-length 8 \\
        --selectors threshold:tau=0.9/0.5,factor:f=0.5/2,entropy_bound:gamma=0.3/1,mi_budget:gamma=0.03/0.1/0.3+eta=0 \\
        --json benchmarks/results/text/traces_test_b8_perm.json
    python benchmarks/text_traces.py --temperature 1 --json benchmarks/results/text/traces_test_b8_perm_sampled.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch

import mdmi
from mdmi.bench.settings import build, settings
from mdmi.cli.common import default_estimator, load_estimator, script_provenance
from mdmi.decode import decode
from mdmi.tasks import textbed
from mdmi.tasks.text import prompt_batch

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("joint", "repeat", "length", "foreign")


def fill_steps(trace: list[dict], n_rows: int, start: int) -> list[dict[int, int]]:
    """Per row, answer position (0-based from ``start``) -> the step that filled it (EOS
    tails set without a pass count as their step)."""
    when: list[dict[int, int]] = [{} for _ in range(n_rows)]
    for k, step in enumerate(trace):
        tails = step.get("eos", [[]] * len(step["rows"]))
        for r, filled, tail in zip(step["rows"], step["filled"], tails):
            for p in [*filled, *tail]:
                when[r][p - start] = k
    return when


def fault(word: str, answer: str, when: dict[int, int]) -> str | None:
    """The first fault of ``answer`` to the prompt letters ``word`` (None when valid)."""
    if sorted(answer) == sorted(word):
        return None
    if any(c not in word for c in answer):
        return "foreign"
    seen: dict[str, int] = {}
    for i, c in enumerate(answer):
        if c in seen:
            return "joint" if when.get(seen[c]) == when.get(i) else "repeat"
        seen[c] = i
    return "length"


def passes(trace: list[dict], start: int, answers: list[str]) -> list[dict]:
    """Every pass (row, step) that filled two or more content letters: did it double one?"""
    out = []
    for step in trace:
        for j, (r, filled) in enumerate(zip(step["rows"], step["filled"])):
            content = [k for k, p in enumerate(filled) if p - start < len(answers[r])]
            if len(content) < 2:
                continue
            letters = [answers[r][filled[k] - start] for k in content]
            pw = step.get("pairwise")
            score = None if pw is None else float(torch.tensor(pw[j])[content][:, content].triu(1).sum())
            out.append({"doubled": len(set(letters)) < len(letters), "size": len(letters),
                        "entropy": sum(step["entropy"][j][k] for k in content) / len(content), "pairwise_sum": score})
    return out


def run(model, est, pairs, name, params, block_length, batch_size, temperature=0.0, seed=0):
    sel = build(name, params, model, est)
    tok = textbed.TOKENIZER
    width = textbed.PROMPT_WIDTH
    answers, multi = [], []
    g = torch.Generator().manual_seed(seed)
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s: s + batch_size]
        x, _ = prompt_batch(tok, [p for p, _ in chunk], textbed.GEN_LENGTH, model.mask_id, width)
        res = decode(model, x, sel, block_length=block_length, eos_id=tok.eos_id, trace=True,
                     temperature=temperature, generator=g)
        texts = [tok.decode(ids) for ids in res.tokens[:, width:].tolist()]
        when = fill_steps(res.trace, len(chunk), width)
        for (p, _), a, w, n in zip(chunk, texts, when, res.nfe.tolist()):
            answers.append({"prompt": p, "answer": a, "nfe": int(n), "fault": fault(p[:-1], a, w)})
        multi += passes(res.trace, width, texts)
    faults = Counter(r["fault"] for r in answers if r["fault"])
    doubled = [q for q in multi if q["doubled"]]
    clean = [q for q in multi if not q["doubled"]]

    def mean(qs, key):
        v = [q[key] for q in qs if q[key] is not None]
        return sum(v) / len(v) if v else None

    return {"selector": name, "params": params, "temperature": temperature, "n": len(answers),
            "validity": sum(r["fault"] is None for r in answers) / len(answers),
            "mean_nfe": sum(r["nfe"] for r in answers) / len(answers),
            "faults": {k: faults.get(k, 0) for k in KINDS},
            "multi_letter_passes": len(multi), "doubling_passes": len(doubled),
            "entropy_doubling": mean(doubled, "entropy"), "entropy_clean": mean(clean, "entropy"),
            "pairwise_doubling": mean(doubled, "pairwise_sum"), "pairwise_clean": mean(clean, "pairwise_sum"),
            "answers": answers}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="text", help="a text dLLM (default: the shipped one)")
    ap.add_argument("--estimator", help="its MI head (default: <model>/estimator)")
    ap.add_argument("--problems", type=Path, default=ROOT / "data" / "text_test.tsv")
    ap.add_argument("--block-length", type=int, default=8)
    ap.add_argument("--selectors", default="sequential,threshold:tau=0.9/0.5,factor:f=0.5/2,"
                                           "entropy_bound:gamma=0.3/1,mi_budget:gamma=0.03/0.1/0.3+eta=0")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy; 1 = one sampled answer per prompt")
    ap.add_argument("--seed", type=int, default=0, help="seed of the samples")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    model = mdmi.load(a.model)
    est_dir = default_estimator(a.estimator, a.model)
    if est_dir is None:
        raise SystemExit(f"{a.model} has no MI head: pass --estimator DIR")
    est = load_estimator(est_dir, a.model)
    pairs = [(p, r) for p, r in textbed.read_problems(a.problems) if textbed.task_of(p) == "perm"]
    if not pairs:
        raise SystemExit(f"{a.problems} holds no perm problems")
    prov = script_provenance(a.model)
    out = []
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{'setting':34s} {'valid':>6s} {'NFE':>6s}  " + " ".join(f"{k:>7s}" for k in KINDS)
          + "  multi-letter passes: doubled / all, mean entropy doubled vs clean, pairwise doubled vs clean")
    for name, params in settings(a.selectors.split(",")):
        r = run(model, est, pairs, name, params, a.block_length, a.batch_size, a.temperature, a.seed)
        out.append(r)
        knobs = ",".join(f"{k}={v}" for k, v in params.items())
        print(f"{name + '(' + knobs + ')':34s} {100 * r['validity']:5.1f}% {r['mean_nfe']:6.2f}  "
              + " ".join(f"{r['faults'][k]:7d}" for k in KINDS)
              + f"  {r['doubling_passes']}/{r['multi_letter_passes']}, {fmt(r['entropy_doubling'])} vs "
                f"{fmt(r['entropy_clean'])}, {fmt(r['pairwise_doubling'])} vs {fmt(r['pairwise_clean'])}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"problems": str(a.problems), "block_length": a.block_length, "temperature": a.temperature,
               "settings": out, "provenance": prov}
        a.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
