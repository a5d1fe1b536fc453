"""Do free dependence signals rank pairs the way the model's exact MI does? Beside the trained head.

For each domain: a fresh exact-MI label set drawn with the shipped head's recipe but another
seed (``--seed``, default 101; the heads were trained on seed 0), so every context is new
to the head. On each context, one pass with attention maps gives:

- ``attention``: DAWN's attention graph, symmetrised (:func:`mdmi.selectors.signals.attention_dependence`);
- ``js``: the mean-field paper's ``1 - JSD(p_i, p_j) / ln 2`` of the marginals;
- ``similarity``: the cosine of the marginals (dllm-reason's "proxy for MI");
- ``head``: the shipped MI head on the same pass's hidden states;

and each is scored against the exact MI over the labelled masked pairs (i < j): Spearman
pooled over pairs with a 95% interval resampling whole contexts, and top-pair precision
(per context, of the |M| pairs the signal ranks highest, the share whose exact MI reaches
the |M|-th highest; |M| = masked positions; ties in the signal broken at random; contexts
with fewer than |M| pairs of nonzero MI left out). On text also over the content pairs
alone (both clean tokens other than EOS), since most masked pairs of an answer are pairs
of its near-certain EOS padding, whose MI is about 0 and whose order is noise. Cost: the signal's time beyond a plain
pass (the written-out attention and the pairwise statistic; for the head, its forward) as a
fraction of that pass, medians over interleaved repeats on one batch (of 32 contexts, and of
each further ``--cost-batch``: on a small model the head's fixed cost per operation weighs
less at the batch a decoder runs).

    python benchmarks/dependence.py --domain sudoku hmm sapiens_vh
    python benchmarks/dependence.py --domain text --repeats 21 --cost-batch 32 256  # the shipped text model

Writes the rows into ``benchmarks/results/dependence/signals_vs_exact_mi.json`` (one table,
every domain: a run replaces the rows of the domains it ran) and prints the table; label
sets are kept under ``--labels`` (default ``~/.cache/mdmi/labels``) and a rerun resumes them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import mdmi
from mdmi.interface import allowed_tokens, masked_log_probs
from mdmi.labels import load_labels
from mdmi.resolve import resolve
from mdmi.selectors.signals import attention_dependence, js_interaction, marginal_similarity
from mdmi.stats import cluster_bootstrap_ci, spearman
from mdmi.train_estimator import targets
from mdmi.cli.common import script_provenance

OUT = Path(__file__).parent / "results" / "dependence"
SIGNALS = ("attention", "js", "similarity", "head")
# the shipped heads' label recipes (their config.json), at a fraction of the contexts
DOMAINS = {
    "sudoku": {"model": "sudoku", "task": "sudoku", "contexts": 128, "shard": 64, "label": []},
    "hmm": {"model": "hmm", "task": "hmm", "contexts": 256, "shard": 128, "label": []},
    "sapiens_vh": {"model": "sapiens:vh", "task": "antibody", "contexts": 64, "shard": 32, "label": []},
    "sapiens_vl": {"model": "sapiens:vl", "task": "antibody", "contexts": 64, "shard": 32, "label": []},
    "antiberty": {"model": "antiberty", "task": "antibody", "contexts": 32, "shard": 16, "label": ["--probe", "4"]},
    "text": {"model": "text", "task": "text", "contexts": 128, "shard": 64, "label": ["--block-length", "8"],
             "filler": "eos"},
}


def label_set(domain: str, spec: dict, model: str, root: Path, seed: int, contexts: int | None) -> tuple[Path, list]:
    """The domain's label directory, made (or resumed) with ``mdmi label``; returns it and the command."""
    out = root / f"dependence_{domain}_seed{seed}"
    cmd = [sys.executable, "-m", "mdmi.cli", "label", "--model", model, "--task", spec["task"],
           "--contexts", str(contexts or spec["contexts"]), "--shard-size", str(spec["shard"]),
           "--seed", str(seed), "--out", str(out), *spec["label"]]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")})
    return out, ["mdmi", *cmd[3:]]


def top_pair_precision(sig: torch.Tensor, mi: torch.Tensor, k: int, draws: int = 16) -> float:
    """Of the ``k`` pairs ``sig`` ranks highest, the share whose exact MI reaches the k-th
    highest (ties in ``mi`` all count); ties in ``sig`` are broken at random, averaged over
    ``draws`` seeded draws (a constant signal scores what chance does)."""
    k = max(1, min(k, len(mi)))
    cut = mi.topk(k).values[-1]
    if cut <= 0:  # fewer than k pairs carry any MI: every ranking would score 1
        return None
    g = torch.Generator().manual_seed(0)
    hits = 0.0
    for _ in range(draws):
        perm = torch.randperm(len(sig), generator=g)  # random order among equal values
        top = perm[sig[perm].argsort(descending=True, stable=True)[:k]]
        hits += float((mi[top] >= cut).sum()) / k
    return hits / draws


@torch.no_grad()
def signals_of(model, head, x: torch.Tensor, masked: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every signal's (B, L, L) matrix on contexts ``x`` (B, L) from one pass."""
    out = model(x, output_attentions=True)
    lp = masked_log_probs(out.logits, allowed_tokens(model).to(out.logits.device))
    sig = {"attention": attention_dependence(out.attentions, masked), "js": js_interaction(lp, masked),
           "similarity": marginal_similarity(lp, masked)}
    if head is not None:
        sig["head"] = head.predict(out.hidden, masked, "mi", log_probs=lp).double()
    return sig


@torch.no_grad()
def costs(model, head, x: torch.Tensor, masked: torch.Tensor, repeats: int = 7) -> dict[str, float]:
    """Each signal's extra time as a fraction of one plain pass over ``x`` (medians of
    interleaved repeats): attention = the written-out attention + the graph; js,
    similarity = the statistic from the pass's marginals; head = its forward."""
    times: dict[str, list[float]] = {k: [] for k in ("pass", "pass_attn", *SIGNALS)}
    allow = allowed_tokens(model).to(x.device)

    def clock(key, fn):
        sync = torch.cuda.synchronize if x.is_cuda or torch.cuda.is_available() else (lambda: None)
        sync()
        t0 = time.perf_counter()
        r = fn()
        sync()
        times[key].append(time.perf_counter() - t0)
        return r

    for _ in range(repeats):
        out = clock("pass", lambda: model(x))
        att = clock("pass_attn", lambda: model(x, output_attentions=True))
        lp = masked_log_probs(out.logits, allow)
        clock("attention", lambda: attention_dependence(att.attentions, masked))
        clock("js", lambda: js_interaction(lp, masked))
        clock("similarity", lambda: marginal_similarity(lp, masked))
        if head is not None:
            clock("head", lambda: head.predict(out.hidden, masked, "mi", log_probs=lp))
    med = {k: statistics.median(v) for k, v in times.items() if v}
    res = {k: med[k] / med["pass"] for k in SIGNALS if k in med}
    res["attention"] += (med["pass_attn"] - med["pass"]) / med["pass"]
    res["pass_seconds"] = med["pass"]
    return res


def _score(groups: list, prec: list) -> dict:
    a = torch.cat([g[0] for g in groups])
    y = torch.cat([g[1] for g in groups])
    if bool((a == a[0]).all()):  # a constant signal ranks nothing
        return {"spearman": None, "spearman_ci95": [None, None], "top_pair_precision": None, "pairs": len(a),
                "contexts": len(groups), "note": "constant over every pair"}
    return {"spearman": spearman(a, y), "spearman_ci95": list(cluster_bootstrap_ci(groups, spearman)),
            "top_pair_precision": sum(prec) / len(prec) if prec else None, "pairs": len(a),
            "contexts": len(groups), "precision_contexts": len(prec)}


def evaluate(model, head, labels: dict, batch_size: int = 32, filler: int | None = None) -> dict:
    """Spearman (95% CI, contexts resampled) and top-pair precision of every signal; with
    ``filler`` (a token id, e.g. text's EOS) also ``content``: the same over the pairs whose
    clean tokens are both something else (the answer, not its EOS padding)."""
    scale = head.config.scale if head is not None else 0.01
    t = targets(labels, scale)
    L = t["mi"].shape[1]
    upper = torch.ones(L, L, dtype=torch.bool).triu(1)
    views = ("all", "content") if filler is not None else ("all",)
    groups = {v: {k: [] for k in SIGNALS} for v in views}
    prec = {v: {k: [] for k in SIGNALS} for v in views}
    tokens = labels["tokens"]
    for s in range(0, len(tokens), batch_size):
        x, masked = tokens[s:s + batch_size], t["masked"][s:s + batch_size]
        sig = signals_of(model, head, x, masked)
        for b in range(len(x)):
            pairs = {"all": t["pair"][s + b] & upper}
            if filler is not None:
                real = labels["clean"][s + b] != filler
                pairs["content"] = pairs["all"] & real[:, None] & real[None, :]
            for view, pair in pairs.items():
                if not pair.any():
                    continue
                exact = t["mi"][s + b][pair].double()
                k_top = int(masked[b].sum()) if view == "all" else int((masked[b].bool() & real).sum())
                for k, m in sig.items():
                    v = m[b].cpu()[pair]
                    groups[view][k].append((v, exact))
                    tp = top_pair_precision(v, exact, k_top)
                    if tp is not None:
                        prec[view][k].append(tp)
    res = {}
    for k in SIGNALS:
        if not groups["all"][k]:
            continue
        res[k] = _score(groups["all"][k], prec["all"][k])
        if filler is not None and groups["content"][k]:
            res[k]["content"] = _score(groups["content"][k], prec["content"][k])
    return res


def run(domain: str, model_spec: str | None, root: Path, seed: int, contexts: int | None, repeats: int = 7,
        cost_batches: tuple = (32,)) -> dict:
    spec = DOMAINS[domain]
    model_spec = model_spec or spec["model"]
    if model_spec is None:
        raise SystemExit(f"--domain {domain} needs --model (a trained text model directory)")
    labels_dir, label_cmd = label_set(domain, spec, model_spec, root, seed, contexts)
    resolved = resolve(model_spec)
    model = resolved.model
    head = mdmi.load_estimator(model_spec) if resolved.head is not None else None
    labels = load_labels(labels_dir)
    t0 = time.time()
    filler = None
    if spec.get("filler") == "eos":  # text: rank the answer's pairs apart from its EOS padding too
        from mdmi.tasks.textbed import TOKENIZER

        filler = TOKENIZER.eos_id
    res = evaluate(model, head, labels, filler=filler)
    by_batch = {}
    for b in cost_batches:
        # the first b label contexts, repeated when there are fewer (the time does not depend on the tokens)
        idx = torch.arange(b) % len(labels["tokens"])
        by_batch[b] = costs(model, head, labels["tokens"][idx], labels["masked"][idx].bool(), repeats)
    cost = by_batch[cost_batches[0]]
    prov = script_provenance(model_spec)
    common = {"domain": domain, "model": resolved.ref, "label_contexts": len(labels["tokens"]),
              "label_passes": int(labels["passes"].sum()), "cost_batch": cost_batches[0],
              "pass_seconds": cost["pass_seconds"], "threads": torch.get_num_threads(), "cost_repeats": repeats,
              "label_command": " ".join(label_cmd)}
    return [{"signal": k, **v, "cost_fraction_of_pass": cost[k], **common,
             "cost_by_batch": {str(b): {"fraction_of_pass": c[k], "pass_seconds": c["pass_seconds"]}
                               for b, c in by_batch.items()},
             "head": str(resolved.head) if k == "head" else None, "seconds": time.time() - t0, "provenance": prov}
            for k, v in res.items()]


def table(rows: list[dict]) -> str:
    head = "| domain | signal | Spearman vs exact MI (95% CI) | top-pair precision | cost (x pass) |"
    lines = [head, "|---|---|---|---|---|"]
    for v in rows:
        if v["spearman"] is None:
            lines.append(f"| {v['domain']} | {v['signal']} | {v['note']} | - | {v['cost_fraction_of_pass']:.3f} |")
            continue
        lo, hi = v["spearman_ci95"]
        c = v.get("content")
        extra = (f"; content pairs {c['spearman']:.3f} ({c['spearman_ci95'][0]:.3f}-{c['spearman_ci95'][1]:.3f})"
                 if c and c["spearman"] is not None else "")
        lines.append(f"| {v['domain']} | {v['signal']} | {v['spearman']:.3f} ({lo:.3f}-{hi:.3f}){extra} | "
                     f"{v['top_pair_precision']:.3f} | {v['cost_fraction_of_pass']:.3f} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domain", nargs="+", default=["sudoku", "hmm"], choices=sorted(DOMAINS))
    ap.add_argument("--model", help="the model (and its head) for a single domain; default: the shipped one")
    ap.add_argument("--labels", type=Path, default=Path(os.environ.get("MDMI_CACHE", Path.home() / ".cache/mdmi"))
                    / "labels", help="where the label sets go (a rerun resumes them)")
    ap.add_argument("--seed", type=int, default=101, help="label seed (the shipped heads used 0)")
    ap.add_argument("--contexts", type=int, help="label contexts (default: per domain)")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats of each signal (medians) for the cost")
    ap.add_argument("--cost-batch", type=int, nargs="+", default=[32],
                    help="batch sizes the cost is timed at (the table shows the first; mdmi bench text decodes 256 at a time)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    if min(args.cost_batch) < 1:
        ap.error(f"--cost-batch must be >= 1, got {args.cost_batch}")
    torch.manual_seed(0)
    path = args.out / "signals_vs_exact_mi.json"  # one table, every domain: a run replaces its domains' rows
    for d in args.domain:
        r = run(d, args.model, args.labels, args.seed, args.contexts, args.repeats, args.cost_batch)
        print(table(r), flush=True)
        old = json.loads(path.read_text()) if path.is_file() else []
        rows = [x for x in old if x["domain"] != d] + r
        rows.sort(key=lambda x: (list(DOMAINS).index(x["domain"]), SIGNALS.index(x["signal"])))
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rows, indent=2) + "\n")
    print("\n" + table(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
