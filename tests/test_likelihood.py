import itertools
import math

import pytest
import torch

from mdmi.likelihood import log_ratio, nll
from mdmi.tasks.hmm import HMM, HMMConfig, HMMOracle

from tiny import tiny_model as _tiny_model


@pytest.fixture(scope="module")
def oracle():
    return HMMOracle(HMM(HMMConfig(n_states=5, n_symbols=6, length=16, coupling=0.9, seed=4)))


def _within(est, exact, k=4.0):
    return ((est.nll - exact).abs() <= k * est.stderr).all()


@pytest.mark.parametrize("method", ["time_free", "time_integral"])
@pytest.mark.parametrize("length", [6, 16])
def test_nll_matches_exact_hmm(method, length):
    hmm = HMM(HMMConfig(n_states=5, n_symbols=6, length=length, coupling=0.9, seed=4))
    x = hmm.sample(5, torch.Generator().manual_seed(1))
    est = nll(HMMOracle(hmm), x, samples=400, method=method, generator=torch.Generator().manual_seed(2))
    exact = -hmm.log_prob(x)
    assert _within(est, exact), (est.nll, est.stderr, exact)
    assert (est.stderr < 0.1 * exact).all()


def test_conditional_nll_matches_exact(oracle):
    hmm = oracle.hmm
    x = hmm.sample(4, torch.Generator().manual_seed(3))
    prompt = torch.zeros_like(x, dtype=torch.bool)
    prompt[:, :6] = True
    est = nll(oracle, x, samples=400, prompt_mask=prompt, generator=torch.Generator().manual_seed(4))
    only_prompt = torch.where(prompt, x, torch.full_like(x, hmm.mask_id))
    exact = -(hmm.log_prob(x) - hmm.log_prob(only_prompt))
    assert _within(est, exact) and (est.tokens == 10).all()


@pytest.mark.parametrize("coupled", [True, False])
def test_log_ratio_matches_exact(oracle, coupled):
    hmm = oracle.hmm
    g = torch.Generator().manual_seed(5)
    x, y = hmm.sample(4, g), hmm.sample(4, g)
    y[:, :8] = x[:, :8]  # share half, so coupling has something to cancel
    est = log_ratio(oracle, x, y, samples=300, coupled=coupled, generator=torch.Generator().manual_seed(6))
    exact = hmm.log_prob(x) - hmm.log_prob(y)
    assert _within(est, exact)


def test_seeded_and_stratified(oracle):
    x = oracle.hmm.sample(2, torch.Generator().manual_seed(0))
    a = nll(oracle, x, samples=32, generator=torch.Generator().manual_seed(9), stratified=True)
    b = nll(oracle, x, samples=32, generator=torch.Generator().manual_seed(9), stratified=True)
    assert torch.equal(a.samples, b.samples)


def test_time_free_expectation_is_average_over_orders():
    """Exact expectation of the estimator (all k, all subsets) = mean over orders of the chain rule."""
    m = _tiny_model(V=3, L=4, seed=2)
    x = torch.tensor([[0, 2, 1, 1]])
    L = 4

    def term(observed):  # sum_{i not in I} -log p_i(x_i | x_I)
        inp = x.clone()
        inp[0, [i for i in range(L) if i not in observed]] = m.mask_id
        with torch.no_grad():
            lp = torch.log_softmax(m(inp).logits.double(), -1)[0]
        return {i: -lp[i, x[0, i]].item() for i in range(L) if i not in observed}

    expect = 0.0
    for k in range(L):
        subsets = list(itertools.combinations(range(L), k))
        for I in subsets:
            expect += (1 / L) * (1 / len(subsets)) * L / (L - k) * sum(term(set(I)).values())
    orders = list(itertools.permutations(range(L)))
    chain = sum(sum(term(set(o[:t]))[o[t]] for t in range(L)) for o in orders) / len(orders)
    assert math.isclose(expect, chain, rel_tol=1e-10)
    # and the sampler's average converges to it
    est = nll(m, x, samples=20000, generator=torch.Generator().manual_seed(0), batch_size=4096)
    assert abs(est.nll.item() - expect) <= 4 * est.stderr.item()


def test_bad_arguments(oracle):
    x = oracle.hmm.sample(1, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="method"):
        nll(oracle, x, method="elbo")
    with pytest.raises(ValueError, match="samples"):
        nll(oracle, x, samples=1)
    with pytest.raises(ValueError, match="no response"):
        nll(oracle, x, prompt_mask=torch.ones_like(x, dtype=torch.bool))
    with pytest.raises(ValueError, match="same shape"):
        log_ratio(oracle, x, x[:, :3])
