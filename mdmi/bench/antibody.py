"""The antibody decoding benchmark: every selector over its knob on a pretrained antibody LM,
one loop, one NFE count (DESIGN.md sections 4 and 7).

Tasks on real sequences: ``cdr3`` / ``cdrs`` fill the masked CDR3 / all three CDRs;
``after_fr1`` generates the rest of the variable domain from its first framework region
(the prompt), the diffusion-LLM setting (with ``block_length``: semi-autoregressive blocks);
``denovo`` fills every residue of sequences of real lengths. Quality of the filled set F
of each sequence, three ways:

- ``recovery``: fraction of filled residues equal to the native one (pooled over all
  filled residues of all sequences and samples);
- ``pll``: mean over filled residues of log p_i(x_i | x_{-i}) under the same model, nats,
  <= 0, higher is better; one pass per filled residue, not counted in NFE (when sampling,
  over the first ``PLL_SAMPLES`` samples of each sequence);
- ``jsd`` (sampling only, ``samples`` >= 2): per filled position, the Jensen-Shannon
  divergence (nats) between the amino-acid distribution of this decoder's samples and that
  of sequential decoding's samples, averaged over positions and sequences. The floor is the
  JSD between two independent sequential runs (``jsd_floor`` of the sequential row).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..selectors import needs
from .analysis import METRICS, NFE_LABEL, Comparison, add_reduction, curve_rows, matches_sequential
from .rows import BenchRow
from .settings import ANTIBODY_SWEEPS, build, settings

TASKS = ("cdr3", "cdrs", "after_fr1", "denovo")


def task_batch(model, records, task: str, generator: torch.Generator | None = None):
    """(x, native, filled): the masked inputs (B, L), the native tokens (B, L) and the
    positions to fill (B, L) for ``task``."""
    from ..tasks.antibody import masked_batch

    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    x, _ = masked_batch(model, records, "random:1" if task == "denovo" else task, generator)
    native = model.encode([r.sequence for r in records])
    return x, native, x == model.mask_id


def jsd(counts_a: torch.Tensor, counts_b: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (nats) between the distributions of two count tensors
    (..., V), over the last axis."""
    p = counts_a / counts_a.sum(-1, keepdim=True).clamp_min(1)
    q = counts_b / counts_b.sum(-1, keepdim=True).clamp_min(1)
    m = 0.5 * (p + q)

    def kl(a, b):
        return torch.where(a > 0, a * (a.clamp_min(1e-300).log() - b.clamp_min(1e-300).log()), torch.zeros_like(a)).sum(-1)

    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


def decode_runs(model, x, selector, temperature: float, samples: int, seed: int, batch_size: int,
                block_length: int | None = None):
    """Decode every row of x ``samples`` times (1 when greedy): tokens (S, B, L), nfe (S, B),
    seconds, and the passes an exact-MI selector spent outside the loop (in all)."""
    from ..decode import decode

    S = samples if temperature > 0 else 1
    g = torch.Generator().manual_seed(seed)
    t0 = time.time()
    xs = x.repeat(S, 1)  # every sample of every row in one batch: sample-major, (S * B, L)
    parts = [decode(model, xs[s: s + batch_size], selector, generator=g, temperature=temperature,
                    block_length=block_length)
             for s in range(0, len(xs), batch_size)]
    toks = torch.cat([p.tokens for p in parts]).reshape(S, *x.shape)
    nfes = torch.cat([p.nfe for p in parts]).reshape(S, len(x))
    return toks, nfes, time.time() - t0, int(sum(p.extra_passes.sum() for p in parts))


PLL_SAMPLES = 4  # samples per sequence whose PLL is scored (one pass per filled residue each)


def _per_seq(values: torch.Tensor, where: torch.Tensor) -> list[float]:
    """Mean of ``values`` over ``where`` for each sequence: tensors (..., B, L), averaged over
    every axis but the sequence axis B; rounded for the JSON."""
    w = where.double()
    dims = [d for d in range(w.dim()) if d != w.dim() - 2]
    return [round(float(v), 6) for v in (values.double() * w).sum(dims) / w.sum(dims).clamp_min(1)]


def _jsd_stats(counts, ref_counts, filled) -> tuple[float, list[float]]:
    """JSD to the reference counts: pooled over the filled positions, and per sequence."""
    d = jsd(counts, ref_counts)  # (B, L)
    return float(d[filled].mean()), _per_seq(d, filled)


def score(model, tokens, native, filled, ref_counts=None, pll_samples: int = PLL_SAMPLES):
    """Recovery, PLL (nats per filled residue, over the first ``pll_samples`` samples of
    each sequence) and, given the sequential counts, JSD; pooled over all filled residues,
    and per sequence under ``per_seq`` (for paired intervals over sequences)."""
    from ..likelihood import pseudo_log_likelihood

    S, B, L = tokens.shape
    fs = filled[None].expand_as(tokens)
    hit = tokens == native[None]
    flat = tokens[:pll_samples].reshape(-1, L)
    fp = fs[:pll_samples].reshape(flat.shape)
    pll = pseudo_log_likelihood(model, flat, positions=fp)
    per_seq = {"recovery": _per_seq(hit, fs), "pll": _per_seq(pll.reshape(-1, B, L), fp.reshape(-1, B, L))}
    out = {"recovery": float(hit[fs].double().mean()), "pll": float(pll[fp].mean()), "per_seq": per_seq}
    counts = torch.nn.functional.one_hot(tokens, model.vocab_size).sum(0).double()  # (B, L, V)
    if ref_counts is not None and S > 1:
        out["jsd"], per_seq["jsd"] = _jsd_stats(counts, ref_counts, filled)
    return out, counts


def _load_reference(path, key: dict, x: torch.Tensor):
    """The cached sequential row and counts at ``path``, or None when there is no file yet. A
    file written for another model, task, seed or batch is a clear error, never silently reused."""
    from pathlib import Path

    if path is None or not Path(path).exists():
        return None
    ref = torch.load(path, weights_only=True)
    if ref.get("key") != key or not torch.equal(ref.get("x"), x):
        raise ValueError(f"{path} holds a sequential reference for another run ({ref.get('key')}, "
                         f"{tuple(ref['x'].shape)} inputs); this run is {key}, {tuple(x.shape)} inputs: "
                         "use another --reference path")
    return ref


def run_antibody(model, records, task: str, selectors, estimator=None, temperature: float = 0.0, samples: int = 1,
                 seed: int = 0, batch_size: int = 64, sweep: bool = True, progress: bool = True,
                 pll_samples: int = PLL_SAMPLES, reference=None, model_name: str = "", on_row=None,
                 block_length: int | None = None, picked: dict | None = None) -> list[BenchRow]:
    """One row per (selector, params) of ``ANTIBODY_SWEEPS`` restricted to ``selectors``;
    sequential runs first (twice when sampling: the JSD floor). ``reference``: a file that
    caches the sequential row and its sample counts, written on the first run and reused by
    later runs on the same model, sequences, task, seed and samples (sequential decoding is
    the costliest setting, so split sweeps need not repeat it). ``on_row(rows)`` is called
    with the rows so far after each setting (to save them as they come). ``block_length``:
    decode in semi-autoregressive blocks (every row records it)."""
    from tqdm import tqdm

    if temperature < 0 or (temperature > 0 and samples < 2):
        raise ValueError("sampling needs --temperature > 0 and --samples >= 2 (for JSD); greedy uses temperature 0")
    if pll_samples < 1:
        raise ValueError(f"pll_samples must be >= 1, got {pll_samples}")
    x, native, filled = task_batch(model, records, task, torch.Generator().manual_seed(seed))
    key = {"model": model_name, "task": task, "temperature": float(temperature), "samples": int(samples),
           "seed": int(seed), "pll_samples": int(pll_samples)}
    if block_length is not None:  # a key without it still matches references cached before blocks existed
        key["block_length"] = int(block_length)
    cached = _load_reference(reference, key, x)
    jobs = settings(selectors, sweep, ANTIBODY_SWEEPS, picked)
    jobs = [j for j in jobs if j[0] == "sequential"] + [j for j in jobs if j[0] != "sequential"]
    if not jobs or jobs[0][0] != "sequential":
        jobs = [("sequential", {})] + jobs  # the reference every row is compared with
    rows, ref = [], None
    if cached is not None:  # sequential from the cache: its row as first measured, its counts
        rows, ref = [BenchRow.from_dict(cached["row"])], cached["counts"]
        jobs = [j for j in jobs if j[0] != "sequential"]
    for name, params in tqdm(jobs, desc=f"bench antibody {task}", unit="setting", disable=not progress):
        sel = build(name, params, model, estimator)
        toks, nfe, secs, extra = decode_runs(model, x, sel, temperature, samples, seed, batch_size, block_length)
        q, counts = score(model, toks, native, filled, ref, pll_samples)
        row = BenchRow(selector=name, params=params, mean_nfe=float(nfe.double().mean()), n=len(records),
                       seconds=secs, recovery=q["recovery"], pll=q["pll"], jsd=q.get("jsd"),
                       extra={"task": task, "temperature": temperature, "samples": toks.shape[0],
                              "per_seq": q["per_seq"], "seqs_per_s": toks.shape[0] * len(records) / secs,
                              "mean_filled": float(filled.sum(1).double().mean()),
                              # observed positions (the prompt, special tokens) checked, not assumed, to be as given
                              "observed_untouched": bool(torch.equal(toks[:, ~filled],
                                                                     x[None].expand_as(toks)[:, ~filled]))})
        if needs(name, params) == "exact":
            row.extra["oracle_extra_passes_per_seq"] = extra / (len(records) * toks.shape[0])
        if name == "sequential" and ref is None:
            ref = counts
            if temperature > 0:  # a second, independent sequential run: how far sampling noise alone gets
                toks2, _, _, _ = decode_runs(model, x, sel, temperature, samples, seed + 10_007, batch_size,
                                             block_length)
                c2 = torch.nn.functional.one_hot(toks2, model.vocab_size).sum(0).double()
                row.jsd, row.extra["per_seq"]["jsd"] = _jsd_stats(counts, c2, filled)
                row.extra["jsd_floor"] = row.jsd
            if reference is not None:
                torch.save({"key": key, "x": x, "row": row.as_dict(), "counts": counts}, reference)
        rows.append(row)
        if on_row is not None:
            on_row(rows)
    add_reduction(rows)
    for r in rows:
        r.extra["matches_sequential"] = matches_sequential(r, rows[0])
        if r.jsd is not None:
            r.extra["neg_jsd"] = -r.jsd  # higher is better, for the equal-NFE comparison
        if block_length is not None:
            r.extra["block_length"] = block_length
    return rows


def write_analysis(rows: list[BenchRow], json_path: str | Path, comparisons: list[Comparison] = (),
                   plot_path: str | Path | None = None, model: str = "", task: str = "") -> list[Path]:
    """Beside the rows at ``json_path`` (written first, by :func:`write_rows`, as soon as the
    run ends): the equal-NFE comparisons (``_equal_nfe.json``, one entry list per "ours vs
    ref") and the Pareto plot (PLL, or JSD when sampled, vs mean NFE; the MI budget at
    eta = 0 its own curve) titled with ``model``, ``task`` and n. Returns the paths written."""
    json_path = Path(json_path)
    written = []
    if comparisons:
        side = json_path.with_name(json_path.stem + "_equal_nfe.json")
        side.write_text(json.dumps({c.key: c.entries for c in comparisons}, indent=2) + "\n")
        written.append(side)
    if plot_path:
        from ..plots import pareto_plot

        metric = "jsd" if any(r.jsd is not None for r in rows) else "pll"
        pareto_plot(curve_rows(rows), plot_path, metric=metric, ylabel=METRICS[metric].label, scale=1.0,
                    xlabel=NFE_LABEL["antibody"], title=f"model {model} · {task} · n = {rows[0].n} sequences")
        written.append(Path(plot_path))
    return written
