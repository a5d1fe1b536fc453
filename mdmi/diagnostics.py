"""The measured cost of parallel sampling (DESIGN.md section 4).

Filling a set S of masked positions from the product of their marginals instead of the
model's joint costs exactly the total correlation

    TC(S) = KL( joint(x_S | x_O) || prod_s p_s(x_s | x_O) )

where the joint is the model's chain rule over S in a fixed order. EB bounds it by
``sum H - max H``; the pairwise rules by ``sum_{pairs} I_ij`` (true only under
sub-additivity). :func:`parallel_error` measures TC beside both.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import torch

from .interface import allowed_tokens, masked_log_probs
from .mi import exact_mi


@dataclass
class ParallelError:
    """For one context and one set S (nats): ``tc`` and its Monte Carlo standard error
    (0 when exact), ``pairwise_mi_sum`` = sum over pairs in S of the exact label I_ij,
    ``eb_bound`` = sum H - max H, ``passes`` spent on TC, ``exact`` whether TC was enumerated."""

    tc: float
    tc_stderr: float
    pairwise_mi_sum: float
    eb_bound: float
    passes: int
    exact: bool


def _log_marg(model, x, allow):
    return masked_log_probs(model(x).logits, allow).double()  # (n, L, V)


@torch.no_grad()
def total_correlation(model, x: torch.Tensor, S: list[int], samples: int = 256, exact_limit: int = 4096,
                      generator: torch.Generator | None = None, allowed=None) -> tuple[float, float, int, bool]:
    """TC of the model's chain-rule joint over positions ``S`` (in the given order) of one
    context ``x`` (L,), against the product of the base pass's marginals.

    Exact by enumeration when the allowed values give at most ``exact_limit`` assignments
    (cost sum_t |V|^t passes), else Monte Carlo with ``samples`` draws from the chain-rule
    joint (|S| passes per draw, batched). Returns (tc, stderr, passes, exact).
    """
    if len(set(S)) != len(S) or len(S) < 1:
        raise ValueError(f"S must be distinct positions, got {S}")
    allow = allowed_tokens(model, allowed)
    if allow.dim() != 1:
        raise ValueError("total_correlation takes one allowed set for all positions")
    x = x.reshape(1, -1)
    if not (x[0, S] == model.mask_id).all():
        raise ValueError("every position of S must be masked in x")
    base = _log_marg(model, x, allow)[0]  # (L, V)
    values = allow.nonzero().squeeze(1)
    V = len(values)
    passes = 1
    if V ** len(S) <= exact_limit:
        # enumerate prefixes level by level: log joint of every assignment
        prefixes = x.clone()
        logj = torch.zeros(1, dtype=torch.float64)
        for s in S:
            lp = _log_marg(model, prefixes, allow)[:, s, values]  # (n, V)
            passes += len(prefixes)
            logj = (logj[:, None] + lp).reshape(-1)
            prefixes = prefixes.repeat_interleave(V, 0)
            prefixes[:, s] = values.repeat(len(prefixes) // V)
        logprod = sum(base[s, prefixes[:, s]] for s in S)
        p = logj.exp()
        tc = float(torch.where(p > 0, p * (logj - logprod), torch.zeros_like(p)).sum())
        return max(tc, 0.0), 0.0, passes, True
    xs = x.repeat(samples, 1)
    logj = torch.zeros(samples, dtype=torch.float64)
    for s in S:
        lp = _log_marg(model, xs, allow)[:, s]  # (n, V)
        passes += samples
        v = torch.multinomial(lp.exp().float(), 1, generator=generator)[:, 0]
        logj += lp.gather(1, v[:, None])[:, 0]
        xs[:, s] = v
    d = logj - sum(base[s, xs[:, s]] for s in S)
    return float(d.mean()), float(d.std() / math.sqrt(samples)), passes, False


def parallel_error(model, x: torch.Tensor, S: list[int], samples: int = 256, generator=None,
                   mi_result=None) -> ParallelError:
    """TC of S in context x (L,) beside the pairwise-MI sum and the EB bound."""
    tc, se, passes, exact = total_correlation(model, x, S, samples, generator=generator)
    r = mi_result if mi_result is not None else exact_mi(model, x.reshape(1, -1))
    mi_sum = float(sum(r.mi[0, i, j] for i, j in itertools.combinations(S, 2)))
    h = r.entropy[0, S]
    return ParallelError(tc=tc, tc_stderr=se, pairwise_mi_sum=mi_sum, eb_bound=float(h.sum() - h.max()),
                         passes=passes, exact=exact)


def selector_sets(model, x: torch.Tensor, selector, max_sets: int = 50, min_size: int = 2,
                  generator: torch.Generator | None = None) -> list[tuple]:
    """(context, S) pairs: the sets of size >= min_size a selector picks while decoding x (B, L).
    The first ``max_sets`` in step order, or with ``generator`` a uniform sample of them all."""
    from .decode import decode, replay

    res = decode(model, x, selector, trace=True)
    sets = ((state, list(filled)) for _, state, filled in replay(x, res) if len(filled) >= min_size)
    if generator is None:
        return list(itertools.islice(sets, max_sets))
    sets = list(sets)
    pick = torch.randperm(len(sets), generator=generator)[:max_sets].sort().values
    return [sets[i] for i in pick.tolist()]


@dataclass
class SubadditivityReport:
    """What :func:`subadditivity_report` measures (nats); :meth:`as_dict` is its JSON form."""

    sets: int
    subadditivity_failures: int  # sets whose TC exceeds the pairwise MI sum by more than z standard errors
    failure_rate: float
    eb_bound_violations: int  # sets whose TC exceeds the EB bound by more than z standard errors
    mean_tc: float
    mean_pairwise_mi_sum: float
    mean_eb_bound: float
    mean_set_size: float
    rows: list[ParallelError]  # one per set

    def as_dict(self) -> dict:
        return asdict(self)


def subadditivity_report(model, pairs: list[tuple], samples: int = 256, seed: int = 0,
                         z: float = 2.0) -> SubadditivityReport:
    """Measure every (context, S); sub-additivity fails when TC exceeds the pairwise sum by
    more than ``z`` standard errors. Also how often TC exceeds the EB bound."""
    g = torch.Generator().manual_seed(seed)
    mi = exact_mi(model, torch.stack([x for x, _ in pairs])) if pairs else None  # one batched call
    rows = [parallel_error(model, x, S, samples, g, mi.select(k)) for k, (x, S) in enumerate(pairs)]
    fails = [r for r in rows if r.tc - z * r.tc_stderr > r.pairwise_mi_sum]
    eb_fails = [r for r in rows if r.tc - z * r.tc_stderr > r.eb_bound]
    n = max(1, len(rows))
    return SubadditivityReport(
        sets=len(rows), subadditivity_failures=len(fails), failure_rate=len(fails) / n,
        eb_bound_violations=len(eb_fails),
        mean_tc=sum(r.tc for r in rows) / n, mean_pairwise_mi_sum=sum(r.pairwise_mi_sum for r in rows) / n,
        mean_eb_bound=sum(r.eb_bound for r in rows) / n,
        mean_set_size=sum(len(S) for _, S in pairs) / n, rows=rows)
