"""Likelihood on real antibodies under pretrained antibody LMs (DESIGN.md section 5).

    python benchmarks/antibody_likelihood.py --models sapiens:vh,sapiens:vl --n 200

Per model, on ``--n`` test sequences of its chain:
- -log p(x): I-MDCE time-free vs time-integral, ``--samples`` passes each: mean nats per
  residue and the per-sample variance (mean over sequences);
- pseudo-log-likelihood (one pass per residue, each residue masked alone) and the rank and
  linear correlation of the time-free NLL with -PLL across sequences;
- single point mutants (``--mutants`` per sequence on the first ``--mutant-seqs``):
  log p(mutant) - log p(wild type) with coupled vs independent masks (per-sample variance),
  and the rank correlation of the coupled estimate with the masked-marginal score
  log p_i(mutant aa | rest) - log p_i(wild-type aa | rest) that protein-LM users compute.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


import mdmi
from mdmi.interface import masked_log_probs, scorable
from mdmi.likelihood import log_ratio, nll, pseudo_log_likelihood
from mdmi.stats import pearson, spearman
from mdmi.tasks.antibody import load_antibodies
from mdmi.cli.common import script_provenance

CHAIN = {"sapiens:vh": "vh", "sapiens:vl": "vl", "antiberty": "vh"}


def pll(model, x):
    """(B,) mean over residues of log p_i(x_i | x_{-i}) and the (B, L) terms; one pass per residue."""
    terms = pseudo_log_likelihood(model, x)
    return terms.sum(1) / scorable(model, x).sum(1), terms


@torch.no_grad()
def masked_marginal(model, x, pos, aa):
    """log p_i(aa | rest) - log p_i(x_i | rest), position i masked, for each row."""
    inp = x.clone()
    inp[torch.arange(len(x)), pos] = model.mask_id
    lp = masked_log_probs(model(inp).logits, model.allowed).double()[torch.arange(len(x)), pos]
    return lp.gather(1, aa[:, None])[:, 0] - lp.gather(1, x[torch.arange(len(x)), pos][:, None])[:, 0]


def run(name, n, samples, mutants, mutant_seqs, seed):
    model = mdmi.load(name)
    recs = load_antibodies(CHAIN[name], "test", n=n, seed=seed)
    x = model.encode([r.sequence for r in recs])
    t0 = time.time()
    row = {"model": name, "version": model.version, "sequences": n, "samples": samples, "seed": seed}
    est = {}
    for method in ("time_free", "time_integral"):
        r = nll(model, x, samples=samples, method=method, generator=torch.Generator().manual_seed(seed))
        est[method] = r
        row[method] = {"nats_per_residue": float(r.per_token.mean()),
                       "per_sample_variance": float(r.samples.var(1).mean()),
                       "mean_stderr_nats": float(r.stderr.mean())}
    row["variance_ratio_integral_over_free"] = (row["time_integral"]["per_sample_variance"]
                                                / row["time_free"]["per_sample_variance"])
    p, terms = pll(model, x)
    free = est["time_free"].per_token
    row["pll"] = {"mean_nats_per_residue": float(p.mean()),
                  "spearman_nll_vs_minus_pll": spearman(free, -p), "pearson_nll_vs_minus_pll": pearson(free, -p)}
    # single point mutants of the first mutant_seqs sequences
    g = torch.Generator().manual_seed(seed + 1)
    aa_ids = model.allowed.nonzero().squeeze(1)
    wt, mt, pos, new = [], [], [], []
    for b in range(min(mutant_seqs, n)):
        content = scorable(model, x[b: b + 1])[0].nonzero().squeeze(1)
        for _ in range(mutants):
            i = int(content[torch.randint(len(content), (1,), generator=g)])
            choices = aa_ids[aa_ids != x[b, i]]
            a = int(choices[torch.randint(len(choices), (1,), generator=g)])
            y = x[b].clone()
            y[i] = a
            wt.append(x[b])
            mt.append(y)
            pos.append(i)
            new.append(a)
    wt, mt, pos, new = torch.stack(wt), torch.stack(mt), torch.tensor(pos), torch.tensor(new)
    coupled = log_ratio(model, mt, wt, samples=samples, coupled=True, generator=torch.Generator().manual_seed(seed))
    indep = log_ratio(model, mt, wt, samples=samples, coupled=False, generator=torch.Generator().manual_seed(seed))
    mm = masked_marginal(model, wt, pos, new)
    row["mutants"] = {
        "count": len(wt), "coupled_per_sample_variance": float(coupled.samples.var(1).mean()),
        "independent_per_sample_variance": float(indep.samples.var(1).mean()),
        "variance_ratio_independent_over_coupled": float(indep.samples.var(1).mean() / coupled.samples.var(1).mean()),
        "spearman_coupled_vs_masked_marginal": spearman(coupled.nll, mm),
        "spearman_independent_vs_masked_marginal": spearman(indep.nll, mm),
        "pearson_coupled_vs_masked_marginal": pearson(coupled.nll, mm),
        "mean_coupled_log_ratio": float(coupled.nll.mean()), "mean_masked_marginal": float(mm.mean())}
    row["seconds"] = time.time() - t0
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="sapiens:vh,sapiens:vl")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--samples", type=int, default=64, help="passes per sequence per estimator")
    p.add_argument("--mutants", type=int, default=4, help="single point mutants per sequence")
    p.add_argument("--mutant-seqs", type=int, default=50, help="sequences that get mutants")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="benchmarks/results/likelihood/antibody_sapiens.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.json)
    rows = json.loads(out.read_text()) if out.is_file() else []
    for name in a.models.split(","):
        rows = [r for r in rows if r["model"] != name]
        rows.append({**run(name, a.n, a.samples, a.mutants, a.mutant_seqs, a.seed), "provenance": script_provenance()})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(rows, indent=2) + "\n")
        r = rows[-1]
        m = r["mutants"]
        print(f"{name}: NLL time-free {r['time_free']['nats_per_residue']:.4f} nats/residue "
              f"(per-sample var {r['time_free']['per_sample_variance']:.1f}), time-integral "
              f"{r['time_integral']['nats_per_residue']:.4f} (var {r['time_integral']['per_sample_variance']:.1f}; "
              f"x{r['variance_ratio_integral_over_free']:.2f}); PLL {r['pll']['mean_nats_per_residue']:.4f}; "
              f"Spearman(NLL, -PLL) {r['pll']['spearman_nll_vs_minus_pll']:.3f}; mutants {m['count']}: var coupled "
              f"{m['coupled_per_sample_variance']:.3f} vs independent {m['independent_per_sample_variance']:.1f} "
              f"(x{m['variance_ratio_independent_over_coupled']:.0f}); Spearman(coupled, masked-marginal) "
              f"{m['spearman_coupled_vs_masked_marginal']:.3f} (independent "
              f"{m['spearman_independent_vs_masked_marginal']:.3f}); {r['seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
