"""The prompted text benchmark: every selector setting on a problem file of the text testbed
(:mod:`mdmi.tasks.textbed`), in one loop with one NFE count, greedy or sampled, whole or in
blocks; scored by each task's checker.

Per setting: validity (fraction of answers the checker accepts, with a 95% Wilson
interval), per task, per problem (``per_seq["validity"]``, what the paired comparisons of
``benchmarks/ranking.py --metric validity`` read), mean NFE (model passes per answer), and
when sampling the share of distinct valid answers per prompt and the JSD (nats) of each
prompt's answers to sequential's (the sequential row's own JSD is to a second, independent
sequential run: the noise floor)."""

from __future__ import annotations

import time

from ..tasks import textbed
from .analysis import add_reduction
from .rows import BenchRow
from .settings import TEXT_SWEEPS, build, settings


def run_text(model, pairs, selectors, estimator=None, block_length: int | None = None, temperature: float = 0.0,
             samples: int = 1, seed: int = 0, batch_size: int = 256, sweep: bool = True, progress: bool = True,
             on_row=None, prefix_cache: bool = False) -> list[BenchRow]:
    """One :class:`BenchRow` per (selector, knobs) of ``selectors`` (their ``TEXT_SWEEPS``
    settings, or the given specs). Sequential runs first (it is the JSD reference), also
    when not asked for. ``on_row(rows)`` is called after every setting (partial results).
    Cost: each setting's NFE passes over ``len(pairs) * samples`` answers."""
    from tqdm import tqdm

    jobs = settings(selectors, sweep, TEXT_SWEEPS)
    jobs = [("sequential", {})] + [j for j in jobs if j != ("sequential", {})]
    kw = dict(block_length=block_length, temperature=temperature, samples=samples, batch_size=batch_size,
              prefix_cache=prefix_cache)
    built = [build(name, params, model, estimator) for name, params in jobs]  # every knob checked before any run
    clash = sorted({name for (name, _), sel in zip(jobs, built) if sel.needs_attentions})
    if prefix_cache and clash:
        raise ValueError(f"{', '.join(clash)} read attention maps over the whole sequence, which the prefix cache "
                         f"does not compute: run them without prefix_cache")
    rows, ref = [], None
    for (name, params), sel in tqdm(list(zip(jobs, built)), desc="bench text", unit="setting", disable=not progress):
        t0 = time.time()
        r = textbed.evaluate(model, pairs, sel, seed=seed, reference=ref, **kw)
        secs = time.time() - t0
        if name == "sequential" and samples > 1:  # the floor: a second, independent sequential run
            again = textbed.evaluate(model, pairs, sel, seed=seed + 10_007, reference=r["answers"], **kw)
            r["jsd_to_reference"] = again["jsd_to_reference"]
        extra = {"validity_ci95": r["validity_ci95"], "validity_by_task": r["validity_by_task"], "block_length": block_length,
                 "prefix_cache": prefix_cache,
                 "temperature": temperature, "samples": samples, "tokens_per_pass": r["mean_tokens_per_pass"],
                 "answers_per_s": len(pairs) * samples / secs,
                 "per_seq": {"validity": r["valid_per_problem"], "nfe": r["nfe_per_problem"]}}
        if samples > 1:
            extra["distinct_valid"] = r["distinct_valid"]
            extra["jsd_to_sequential"] = r.get("jsd_to_reference")
        if name == "sequential":
            ref = r["answers"]
        rows.append(BenchRow(selector=name, params=params, mean_nfe=r["mean_nfe"], n=len(pairs), seconds=secs,
                             validity=r["validity"], extra=extra))
        if on_row is not None:
            on_row(rows)
    return add_reduction(rows)


def print_text_table(rows: list[BenchRow]) -> None:
    """Validity (%, 95% CI), per task, NFE and its reduction, and for sampled rows the
    distinct valid share and JSD to sequential."""
    tasks = list(rows[0].extra["validity_by_task"])
    sampled = rows[0].extra["samples"] > 1
    head = f"{'selector':28s} {'knobs':22s} {'NFE':>6s} {'xfewer':>6s} {'valid %':>7s} {'95% CI':>11s} " + " ".join(
        f"{t:>6s}" for t in tasks) + (f" {'distinct':>8s} {'JSD':>7s}" if sampled else "")
    print(head)
    for r in rows:
        lo, hi = r.extra["validity_ci95"]
        knobs = ",".join(f"{k}={v}" for k, v in r.params.items())
        line = (f"{r.selector:28s} {knobs:22s} {r.mean_nfe:6.2f} {r.nfe_reduction_vs_sequential or 0:6.2f} "
                f"{100 * r.validity:7.1f} {100 * lo:5.1f}-{100 * hi:<5.1f} "
                + " ".join(f"{100 * r.extra['validity_by_task'][t]:6.1f}" for t in tasks))
        if sampled:
            jsd = r.extra.get("jsd_to_sequential")
            line += f" {100 * r.extra['distinct_valid']:8.1f} {'' if jsd is None else f'{jsd:7.3f}'}"
        print(line)
    print("NFE: model passes per answer (mean); valid %: answers the task's checker accepts"
          + ("; distinct: distinct valid answers per prompt, % of samples; JSD: nats, to sequential's answers "
             "(sequential's own: to a second sequential run)" if sampled else ""))
