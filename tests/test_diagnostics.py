import itertools
import math

import pytest
import torch

from mdmi.diagnostics import parallel_error, selector_sets, subadditivity_report, total_correlation
from mdmi.selectors import make_selector
from mdmi.tasks.hmm import HMM, HMMConfig, HMMOracle

from tiny import tiny_model as _tiny_model


def _brute_tc(model, x, S):
    """KL(chain-rule joint || product of marginals), every assignment written out."""
    V = model.vocab_size

    def lp(inp):
        with torch.no_grad():
            return torch.log_softmax(model(inp[None]).logits[0].double(), -1)

    base = lp(x)
    tc = 0.0
    for vals in itertools.product(range(V), repeat=len(S)):
        cur, logj = x.clone(), 0.0
        for s, v in zip(S, vals):
            logj += lp(cur)[s, v].item()
            cur[s] = v
        logprod = sum(base[s, v].item() for s, v in zip(S, vals))
        tc += torch.tensor(logj).exp().item() * (logj - logprod)
    return tc


def test_enumeration_and_monte_carlo_match_brute_force():
    m = _tiny_model(V=3, L=6, seed=3, scale=4.0)
    x = torch.full((6,), m.mask_id)
    x[0] = 1
    S = [2, 4, 5]
    ref = _brute_tc(m, x, S)
    tc, se, passes, exact = total_correlation(m, x, S)
    assert exact and abs(tc - ref) < 1e-6 and passes == 1 + 1 + 3 + 9 and ref > 1e-3
    mc, se, _, exact = total_correlation(m, x, S, samples=4000, exact_limit=0, generator=torch.Generator().manual_seed(0))
    assert not exact and abs(mc - ref) < 4 * se


def test_hmm_oracle_product_error_is_exact_total_correlation():
    hmm = HMM(HMMConfig(n_states=4, n_symbols=3, length=8, coupling=0.95, seed=5))
    x = torch.full((8,), hmm.mask_id)
    x[[0, 6]] = torch.tensor([1, 2])
    S = [2, 3, 5]
    # the truth: sum_s H(X_s | x_O) - H(X_S | x_O), from exact likelihoods
    logZ = hmm.log_prob(x[None])[0]
    joint = {}
    for vals in itertools.product(range(3), repeat=3):
        y = x.clone()
        y[S] = torch.tensor(vals)
        joint[vals] = (hmm.log_prob(y[None])[0] - logZ).exp().item()
    H = -sum(p * math.log(p) for p in joint.values())
    Hs = 0.0
    for k in range(3):
        for v in range(3):
            p = sum(q for vals, q in joint.items() if vals[k] == v)
            Hs -= p * math.log(p)
    tc, _, _, exact = total_correlation(HMMOracle(hmm), x, S)
    assert exact and abs(tc - (Hs - H)) < 1e-9
    r = parallel_error(HMMOracle(hmm), x, S)
    assert r.eb_bound >= r.tc - 1e-9  # EB's bound holds for a true joint


def test_report_on_selector_sets():
    m = _tiny_model(V=3, L=6, seed=1, scale=3.0)
    x = torch.full((2, 6), m.mask_id)
    pairs = selector_sets(m, x, make_selector("topk", k=3))
    assert len(pairs) == 4 and all(len(S) == 3 for _, S in pairs)
    rep = subadditivity_report(m, pairs)
    assert rep.sets == 4 and 0 <= rep.failure_rate <= 1 and rep.mean_tc >= 0
    d = rep.as_dict()  # the JSON form: keys in their order, rows as plain dicts
    assert list(d) == ["sets", "subadditivity_failures", "failure_rate", "eb_bound_violations", "mean_tc",
                       "mean_pairwise_mi_sum", "mean_eb_bound", "mean_set_size", "rows"]
    assert d["rows"][0] == rep.rows[0].__dict__ and list(d["rows"][0]) == list(rep.rows[0].__dict__)
    # the report's batched exact_mi gives each set the same pairwise sum as one context at a time
    for (x1, S), row in zip(pairs, rep.rows):
        alone = parallel_error(m, x1, S, samples=8)
        assert row.pairwise_mi_sum == pytest.approx(alone.pairwise_mi_sum, abs=1e-9)
        # entropies come from a float32 pass, batched here and alone there: equal to rounding
        assert row.eb_bound == pytest.approx(alone.eb_bound, abs=1e-6)
    sample = selector_sets(m, x, make_selector("topk", k=3), max_sets=2, generator=torch.Generator().manual_seed(0))
    assert len(sample) == 2 and all(any(torch.equal(a, b) and s == t for b, t in pairs) for a, s in sample)
