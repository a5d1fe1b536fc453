import pytest
import torch

import mdmi
from mdmi.selectors import NAMES, SELECTORS, StepState, make_selector
from mdmi.selectors.dependency_bound import DependencyBound
from mdmi.selectors.mi_budget import MIBudget

from tiny import contexts as _contexts, tiny_model as _tiny_model


def _state(probs, masked=None):
    p = torch.as_tensor(probs, dtype=torch.float32)
    if p.dim() == 2:
        p = p[None]
    masked = torch.ones(p.shape[:2], dtype=torch.bool) if masked is None else torch.as_tensor(masked)[None]
    return StepState(x=torch.zeros(p.shape[:2], dtype=torch.long), log_probs=p.log(), masked=masked)


PROBS = [[0.99, 0.01], [0.6, 0.4], [0.95, 0.05], [0.5, 0.5], [0.91, 0.09]]


def _idx(step):
    return step.fill[0].nonzero().squeeze(1).tolist()


def test_threshold_takes_what_it_should():
    assert _idx(make_selector("threshold", tau=0.9)(_state(PROBS))) == [0, 2, 4]
    assert _idx(make_selector("threshold", tau=0.999)(_state(PROBS))) == [0]  # top-1 always
    assert _idx(make_selector("threshold", tau=0.9)(_state(PROBS, [False, True, True, True, True]))) == [2, 4]


def test_topk_respects_k_and_mask():
    assert _idx(make_selector("topk", k=2)(_state(PROBS))) == [0, 2]
    assert _idx(make_selector("topk", k=9)(_state(PROBS, [True, False, True, False, False]))) == [0, 2]


def test_factor_rule():
    # sorted confidences .99 .95 .91 .6 .5: (n+1)(1-c_n) = .02 .15 .36 2.0 3.0
    assert _idx(make_selector("factor", f=0.4)(_state(PROBS))) == [0, 2, 4]
    assert _idx(make_selector("factor", f=0.2)(_state(PROBS))) == [0, 2]
    assert _idx(make_selector("factor", f=0.001)(_state(PROBS))) == [0]


def test_entropy_bound_prefix():
    s = _state(PROBS)
    h = s.entropy[0]
    order = h.argsort()
    gamma = float(h[order[1]] + h[order[2]]) + 1e-6  # first three: sum - max = the two smallest
    assert sorted(_idx(make_selector("entropy_bound", gamma=gamma)(s))) == sorted(order[:3].tolist())


def _random_states(n=20, B=4, L=12, V=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        logits = 3 * torch.randn(B, L, V, generator=g)
        masked = torch.rand(B, L, generator=g) < 0.7
        masked[:, 0] = True
        st = StepState(x=torch.zeros(B, L, dtype=torch.long), log_probs=torch.log_softmax(logits, -1), masked=masked)
        I = torch.rand(B, L, L, generator=g, dtype=torch.float64) * 0.3
        yield st, (I + I.transpose(1, 2)) * (1 - torch.eye(L, dtype=torch.float64))


@pytest.mark.parametrize("make, knob, values", [
    (lambda v, I: make_selector("threshold", tau=v), "tau", [0.99, 0.9, 0.7, 0.5, 0.2]),
    (lambda v, I: make_selector("topk", k=v), "k", [1, 2, 3, 5, 12]),
    (lambda v, I: make_selector("factor", f=v), "f", [0.01, 0.1, 0.5, 1.0, 3.0]),
    (lambda v, I: make_selector("entropy_bound", gamma=v), "gamma", [0.0, 0.1, 0.5, 1.0, 5.0]),
    (lambda v, I: MIBudget(lambda s: (I, None), gamma=v), "gamma", [0.0, 0.1, 0.5, 1.0, 5.0]),
    (lambda v, I: MIBudget(lambda s: (I, None), gamma=v, eta=0.0), "gamma", [0.0, 0.1, 0.5, 1.0, 5.0]),
    (lambda v, I: MIBudget(lambda s: (I, None), gamma=v, eta=0.0, distinct=0.1), "gamma", [0.0, 0.1, 0.5, 1.0, 5.0]),
    (lambda v, I: DependencyBound(lambda s: (I, None), tau=v), "tau", [0.0, 0.1, 0.5, 1.0, 5.0]),
])
def test_looser_knob_never_takes_fewer_and_always_one(make, knob, values):
    for st, I in _random_states():
        counts = []
        for v in values:
            sel = make(v, I)(st).fill
            assert not (sel & ~st.masked).any()
            assert (sel.sum(1) >= 1).all()
            counts.append(sel.sum(1))
        for a, b in zip(counts, counts[1:]):
            assert (b >= a).all(), (knob, values)


def test_mi_budget_charges_mutual_information():
    st = _state([[0.9, 0.1]] * 3)  # equal entropies h
    h = float(st.entropy[0, 0])
    I = torch.zeros(1, 3, 3, dtype=torch.float64)
    I[0, 0, 2] = I[0, 2, 0] = 10.0  # positions 0 and 2 strongly dependent
    sel = MIBudget(lambda s: (I, None), gamma=3 * h + 1e-9, lam=1.0)(st)
    assert _idx(sel) == [0, 1]  # 2 would cost h + 10: over budget, the scan stops
    free = MIBudget(lambda s: (torch.zeros_like(I), None), gamma=3 * h + 1e-9)(st)
    assert int(free.fill.sum()) == 3
    # eta = 0 charges dependence alone: no budget needed for independent positions
    assert int(MIBudget(lambda s: (torch.zeros_like(I), None), gamma=0.0, eta=0.0)(st).fill.sum()) == 3
    assert _idx(MIBudget(lambda s: (I, None), gamma=9.0, eta=0.0)(st)) == [0, 1]  # 2 costs 10 > 9
    assert int(MIBudget(lambda s: (I, None), gamma=h, eta=1.0)(st).fill.sum()) == 1  # the first costs h: nothing left



def test_mi_budget_distinct_skips_dependent_positions_with_one_argmax():
    # 0 and 1: dependent, both most likely token 2 (a letter of a permutation, twice);
    # 2 and 3: independent, both most likely token 0 (EOS padding); 4: dependent on 0, token 1
    st = _state([[0.1, 0.1, 0.8], [0.15, 0.1, 0.75], [0.9, 0.05, 0.05], [0.85, 0.1, 0.05], [0.2, 0.7, 0.1]])
    I = torch.zeros(1, 5, 5, dtype=torch.float64)
    for i, j in ((0, 1), (0, 4)):
        I[0, i, j] = I[0, j, i] = 0.2
    src = lambda s: (I, None)  # noqa: E731
    assert _idx(MIBudget(src, gamma=100.0, eta=0.0)(st)) == [0, 1, 2, 3, 4]
    # the clash is skipped and the scan goes on: the independent repeat and the other token are taken
    assert _idx(MIBudget(src, gamma=100.0, eta=0.0, distinct=0.01)(st)) == [0, 2, 3, 4]
    # below the knob the two count as independent
    assert _idx(MIBudget(src, gamma=100.0, eta=0.0, distinct=0.5)(st)) == [0, 1, 2, 3, 4]
    # a skip costs no budget: with room for one pair charge only, 4 still gets in after the skipped 1
    assert _idx(MIBudget(src, gamma=0.25, eta=0.0, distinct=0.01)(st)) == [0, 2, 3, 4]
    with pytest.raises(ValueError, match="distinct"):
        MIBudget(src, distinct=-1.0)
    assert "distinct=0.01" in repr(MIBudget(src, distinct=0.01)) and "distinct=" not in repr(MIBudget(src))

def test_oracle_selectors_decode_and_count_extra_passes():
    m = _tiny_model(V=3, L=6, scale=3.0)
    x = _contexts(m, 6, B=2)
    for name, knob in [("mi_budget_oracle", {"gamma": 0.5}), ("dependency_bound_oracle", {"tau": 0.3})]:
        sel = make_selector(name, model=m, **knob)
        res = mdmi.decode(m, x, sel, trace=True)
        assert not (res.tokens == m.mask_id).any()
        assert all(len(p) == len(f) for st in res.trace for p, f in zip(st["pairwise"], st["filled"]))
        assert (res.extra_passes > 0).all()
        keep = x != m.mask_id
        assert res.tokens[keep].equal(x[keep])


def test_registry_complete():
    assert {"sequential", "topk", "threshold", "factor", "entropy_bound", "mi_budget", "mi_budget_oracle",
            "dependency_bound", "dependency_bound_oracle"} <= set(NAMES)
    for bad in [dict(name="threshold", tau=0), dict(name="topk", k=0), dict(name="factor", f=-1),
                dict(name="entropy_bound", gamma=-1)]:
        with pytest.raises(ValueError):
            make_selector(**bad)
