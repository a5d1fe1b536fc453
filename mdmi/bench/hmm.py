"""The HMM sampling benchmark: unconditional samples of a model trained on a known HMM, with
every selector setting, scored exactly by the HMM: NLL (nats per token) and the error of
pair co-occurrences against the true joint."""

from __future__ import annotations

import time

import torch

from .rows import BenchRow
from .settings import HMM_SWEEPS, build, settings


def cooccurrence_tv(samples: torch.Tensor, true_log_joint: torch.Tensor) -> float:
    """Mean over pairs i < j of the total variation between the samples' empirical joint of
    (x_i, x_j) and the true one. samples (N, L); true_log_joint (L, L, V, V)."""
    L, V = true_log_joint.shape[0], true_log_joint.shape[-1]
    oh = torch.nn.functional.one_hot(samples, V).double()  # (N, L, V)
    emp = torch.einsum("nia,njb->ijab", oh, oh) / len(samples)
    tv = 0.5 * (emp - true_log_joint.exp()).abs().sum((-1, -2))  # (L, L)
    return float(tv[torch.ones(L, L, dtype=torch.bool).triu(1)].mean())


def run_hmm(model, hmm, selectors, n: int = 1000, estimator=None, seed: int = 0, temperature: float = 1.0,
            progress: bool = True, sweep: bool = True) -> list[BenchRow]:
    """Unconditional samples from ``model`` (trained on ``hmm``) with every selector
    setting, scored by exact HMM NLL (nats/token) and the co-occurrence error of pairs
    against the true HMM. A first row scores n true HMM samples: the noise floor. Cost:
    each setting's NFE passes over n samples."""
    from tqdm import tqdm

    from ..decode import decode

    L = hmm.config.length
    x = torch.full((n, L), model.mask_id)
    true_joint = hmm.pairwise_log_joint(torch.full((1, L), hmm.mask_id))[0]
    ref = hmm.sample(n, torch.Generator().manual_seed(seed + 1))
    rows = [BenchRow(selector="hmm_samples (floor)", params={}, mean_nfe=0.0, n=n, seconds=0.0,
                     nll_per_token=float(-hmm.log_prob(ref).mean() / L), cooc_tv=cooccurrence_tv(ref, true_joint))]
    for name, params in tqdm(settings(selectors, sweep, HMM_SWEEPS), desc="bench hmm", unit="setting", disable=not progress):
        sel = build(name, params, model, estimator)
        t0 = time.time()
        res = decode(model, x, sel, generator=torch.Generator().manual_seed(seed), temperature=temperature)
        rows.append(BenchRow(selector=name, params=params, mean_nfe=float(res.nfe.double().mean()), n=n,
                             seconds=time.time() - t0, nll_per_token=float(-hmm.log_prob(res.tokens).mean() / L),
                             cooc_tv=cooccurrence_tv(res.tokens, true_joint)))
    return rows
