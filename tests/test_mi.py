import math

import pytest
import torch
from tiny import contexts as _contexts, tiny_model as _tiny_model

from mdmi.mi import exact_mi, truncation_bound
from mdmi.tasks.hmm import HMM, HMMConfig, HMMOracle
from mdmi.models.transformer import MaskedTransformer, MDMConfig

from conftest import CountingModel, TableModel


def _brute_force(m, x):
    """The definition, term by term: KL of each p_i(.|x_j=v) from the mixture."""
    B, L = x.shape
    out = torch.zeros(B, L, L, dtype=torch.float64)
    with torch.no_grad():
        for b in range(B):
            base = torch.softmax(m(x[b:b + 1]).logits[0].double(), -1)
            M = (x[b] == m.mask_id).nonzero().squeeze(1).tolist()
            for j in M:
                cond = []
                for v in range(m.vocab_size):
                    xv = x[b:b + 1].clone()
                    xv[0, j] = v
                    cond.append(torch.softmax(m(xv).logits[0].double(), -1))
                for i in M:
                    if i == j:
                        continue
                    mix = sum(base[j, v] * cond[v][i] for v in range(m.vocab_size))
                    out[b, j, i] = sum(base[j, v] * (cond[v][i] * (cond[v][i] / mix).log()).sum()
                                       for v in range(m.vocab_size))
    return out


def test_equals_brute_force_on_tiny_model():
    m = _tiny_model()
    x = _contexts(m, 5)
    res = exact_mi(m, x, delta=0.0, batch_size=7)
    ref = _brute_force(m, x)
    assert torch.allclose(res.mi_directed, ref, atol=1e-6)
    assert res.mi.max() > 1e-3  # the test model is far from independent
    assert (res.mi >= 0).all() and torch.equal(res.mi, res.mi.transpose(1, 2))
    obs = ~res.masked
    assert (res.mi[obs[:, :, None].expand_as(res.mi)] == 0).all()
    assert (res.mi.diagonal(dim1=1, dim2=2) == 0).all()
    assert torch.allclose(res.asymmetry, (ref - ref.transpose(1, 2)).abs(), atol=1e-6)


def test_pass_count_is_masked_times_values():
    m = CountingModel(_tiny_model(scale=1.0))  # every value has p > 0, so every value is probed
    x = _contexts(m.model, 5)
    res = exact_mi(m, x, delta=0.0, batch_size=4)
    n_masked = (x == m.mask_id).sum(1)
    assert res.passes.equal(1 + n_masked * m.vocab_size)
    assert m.rows == int(res.passes.sum())


def test_independent_model_has_zero_mi():
    table = torch.randn(6, 4)
    m = TableModel(table, mask_id=4)
    res = exact_mi(m, torch.full((2, 6), 4), delta=0.0)
    assert res.mi.abs().max() < 1e-12 and res.kl_consistency.abs().max() < 1e-12


def test_allowed_tokens_per_position():
    m = _tiny_model(V=4, scale=1.0)
    x = _contexts(m, 5)
    allowed = torch.ones(4, dtype=torch.bool)
    allowed[3] = False
    res = exact_mi(m, x, allowed=allowed, delta=0.0)
    assert res.passes.equal(1 + (x == m.mask_id).sum(1) * 3)
    only_one = torch.zeros(4, dtype=torch.bool)
    only_one[1] = True
    res1 = exact_mi(m, x, allowed=only_one, delta=0.0)
    assert res1.mi.abs().max() == 0 and (res1.entropy == 0).all()


def _n_probed(m, x, delta):
    from mdmi.mi import probe_values

    with torch.no_grad():
        p = torch.softmax(m(x).logits.double(), -1)
    return probe_values(p, x == m.mask_id, delta).sum(-1)


def test_delta_error_shrinks_and_respects_bound():
    m = _tiny_model(V=5, seed=1)
    x = _contexts(m, 5, B=4, seed=2)
    exact = exact_mi(m, x, delta=0.0)
    errors, passes = [], []
    for delta in (0.3, 0.1, 0.03, 0.01, 1e-3, 0.0):
        r = exact_mi(m, x, delta=delta)
        err = (r.mi_directed - exact.mi_directed).abs().max().item()
        assert err <= truncation_bound(delta, 5) + 1e-9
        multi = _n_probed(m, x, delta) > 1  # (B, L)
        tv_err = (r.tv_influence - exact.tv_influence).abs()[multi[:, :, None].expand_as(r.tv_influence)]
        assert tv_err.numel() == 0 or tv_err.max().item() <= delta + 1e-9
        errors.append(err)
        passes.append(int(r.passes.sum()))
    assert errors[0] > 1e-3 and errors[-1] == 0.0
    assert all(a >= b for a, b in zip(errors, errors[1:]))
    assert all(a <= b for a, b in zip(passes, passes[1:]))
    assert truncation_bound(5e-5, 9) < 1e-3


def test_bad_arguments():
    m = _tiny_model()
    with pytest.raises(ValueError, match="delta"):
        exact_mi(m, torch.full((1, 5), m.mask_id), delta=0.7)
    with pytest.raises(ValueError, match="allowed"):
        exact_mi(m, torch.full((1, 5), m.mask_id), allowed=torch.ones(7, dtype=torch.bool))


# ---------------------------------------------------------------- the exact HMM


@pytest.fixture(scope="module")
def hmm():
    return HMM(HMMConfig(n_states=4, n_symbols=3, length=7, coupling=0.9, sharpness=3.0, seed=3))


def _brute_joint(hmm):
    """log p(x) for every complete sequence, by summing over all state paths."""
    import itertools

    K, V, L = hmm.config.n_states, hmm.config.n_symbols, hmm.config.length
    seqs = torch.tensor(list(itertools.product(range(V), repeat=L)))
    lp = torch.full((len(seqs),), float("-inf"), dtype=torch.float64)
    for path in itertools.product(range(K), repeat=L):
        z = torch.tensor(path)
        s = hmm.pi[z[0]].log() + hmm.A[z[:-1], z[1:]].log().sum()
        lp = torch.logaddexp(lp, s + hmm.E[z[None, :], seqs].log().sum(1))
    return seqs, lp


def test_hmm_likelihood_and_conditionals_match_enumeration(hmm):
    seqs, lp = _brute_joint(hmm)
    assert torch.allclose(lp.exp().sum(), torch.tensor(1.0, dtype=torch.float64))
    idx = torch.tensor([0, 17, 400, 2186])
    assert torch.allclose(hmm.log_prob(seqs[idx]), lp[idx], atol=1e-10)
    # conditional of position 2 given positions 0 and 5 observed
    x = torch.full((1, 7), hmm.mask_id)
    x[0, 0], x[0, 5] = 1, 2
    sel = (seqs[:, 0] == 1) & (seqs[:, 5] == 2)
    p = torch.stack([lp[sel & (seqs[:, 2] == u)].exp().sum() for u in range(3)])
    assert torch.allclose(hmm.conditionals(x)[0, 2].exp(), p / p.sum(), atol=1e-10)
    assert torch.allclose(hmm.log_prob(x), p.sum().log(), atol=1e-10)


def test_hmm_pairwise_mi_matches_enumeration(hmm):
    seqs, lp = _brute_joint(hmm)
    x = torch.full((1, 7), hmm.mask_id)
    x[0, 3] = 0
    mi = hmm.pairwise_mi(x)[0]
    sel = seqs[:, 3] == 0
    for i, j in [(0, 1), (1, 5), (2, 6)]:
        joint = torch.zeros(3, 3, dtype=torch.float64)
        for u in range(3):
            for w in range(3):
                joint[u, w] = lp[sel & (seqs[:, i] == u) & (seqs[:, j] == w)].exp().sum()
        joint = joint / joint.sum()
        ref = (joint * (joint / joint.sum(1, keepdim=True) / joint.sum(0, keepdim=True)).log()).sum()
        assert math.isclose(mi[i, j].item(), ref.item(), abs_tol=1e-10)
        assert mi[i, j] == mi[j, i]
    assert mi[3].abs().max() == 0


def test_exact_mi_of_hmm_oracle_equals_hmm_mi():
    hmm = HMM(HMMConfig(n_states=6, n_symbols=5, length=12, coupling=0.9, seed=1))
    g = torch.Generator().manual_seed(0)
    x = hmm.sample(4, g)
    x[torch.rand(4, 12, generator=g) < 0.7] = hmm.mask_id
    res = exact_mi(HMMOracle(hmm), x, delta=0.0)
    ref = hmm.pairwise_mi(x)
    assert ref.max() > 1e-2
    assert (res.mi - ref).abs().max() < 1e-6
    assert res.asymmetry.max() < 1e-6 and res.kl_consistency.max() < 1e-6  # the truth is self-consistent


def test_coupling_zero_makes_positions_independent():
    hmm = HMM(HMMConfig(n_states=5, n_symbols=4, length=6, coupling=0.0, seed=2))
    x = torch.full((1, 6), hmm.mask_id)
    assert hmm.pairwise_mi(x).abs().max() < 1e-12


def test_probe_subset_rows_match_full_and_cost_only_their_passes():
    """exact_mi(probe=...): probed rows equal the full computation, others are 0, a pair's
    mi is its known direction (mean of both when both are probed), and passes count only
    the probed positions."""
    m = CountingModel(_tiny_model(scale=1.0))
    x = _contexts(m.model, 4)
    full = exact_mi(m.model, x, delta=0.0)
    masked = x == m.model.mask_id
    probe = masked & (torch.arange(x.shape[1]) % 2 == 0)  # even positions only
    part = exact_mi(m, x, delta=0.0, probe=probe)
    assert part.probed.equal(probe)
    row = probe[:, :, None]
    assert torch.allclose(part.mi_directed, full.mi_directed * row, atol=1e-12)
    assert torch.allclose(part.tv_influence, full.tv_influence * row, atol=1e-12)
    both, one_i = row & probe[:, None, :], ~row & probe[:, None, :]  # [b, j, i]: j probed / only i probed
    assert torch.allclose(part.mi[both], full.mi[both], atol=1e-12)
    assert torch.allclose(part.mi[one_i], full.mi_directed.transpose(1, 2)[one_i], atol=1e-12)
    none = ~row & ~probe[:, None, :]
    assert (part.mi[none] == 0).all() and torch.equal(part.mi, part.mi.transpose(1, 2))
    assert part.passes.equal(1 + probe.sum(1) * m.model.vocab_size)
    assert m.rows == int(part.passes.sum())
    with pytest.raises(ValueError, match="probe must be"):
        exact_mi(m.model, x, probe=probe[:, :3])
