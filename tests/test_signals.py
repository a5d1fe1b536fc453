"""The free dependence signals and the papers' rules built on them: attention maps as a model
capability, the JS interaction and marginal similarity against brute force, DAWN's sets,
the mean-field fixed point, SchED's exit, and the pairwise= knob of the MI-guided rules."""

import math

import pytest
import torch
from tiny import RowwiseModel, tiny_model

import mdmi
from mdmi.selectors import StepState, make_selector, needs, parse_spec
from mdmi.selectors.dawn import DAWN
from mdmi.selectors.mean_field import MeanField
from mdmi.selectors.sched import SchED
from mdmi.selectors.signals import (attention_dependence, attention_graph, js_interaction, marginal_similarity)


def _marginals(B=2, L=5, V=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(3 * torch.randn(B, L, V, generator=g), -1)


def test_attention_maps_are_the_pass_attention():
    m = tiny_model(V=4, L=7, seed=1, scale=3.0)
    x = torch.tensor([[4, 1, 4, 2, 4, 4, 0], [4, 4, 4, 4, 4, 4, 4]])
    plain, att = m(x), m(x, output_attentions=True)
    assert plain.attentions is None
    assert torch.allclose(plain.logits, att.logits, atol=1e-5)  # written-out attention = SDPA's
    assert att.attentions.shape == (2, m.config.n_layers, 7, 7)
    assert torch.allclose(att.attentions.sum(-1), torch.ones(2, m.config.n_layers, 7), atol=1e-5)
    # padded keys get no attention
    am = torch.ones_like(x)
    am[:, :2] = 0
    padded = m(x, attention_mask=am, output_attentions=True).attentions
    assert padded[..., :2].abs().max() == 0


def test_js_interaction_matches_brute_force():
    lp = _marginals()
    masked = torch.ones(2, 5, dtype=torch.bool)
    masked[1, 2] = False
    D = js_interaction(lp, masked)
    p = lp.double().exp()
    for b in range(2):
        for i in range(5):
            for j in range(5):
                if i == j or not (masked[b, i] and masked[b, j]):
                    assert D[b, i, j] == 0
                    continue
                mix = (p[b, i] + p[b, j]) / 2
                jsd = 0.5 * (p[b, i] * (p[b, i] / mix).log()).sum() + 0.5 * (p[b, j] * (p[b, j] / mix).log()).sum()
                assert math.isclose(float(D[b, i, j]), 1 - float(jsd) / math.log(2), abs_tol=1e-9)
    assert torch.equal(D, D.transpose(1, 2)) and (D >= 0).all() and (D <= 1).all()


def test_js_interaction_extremes_and_chunking(monkeypatch):
    import mdmi.selectors.signals as signals

    lp = torch.log(torch.tensor([[[1.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]]).clamp_min(1e-30))
    D = js_interaction(lp, torch.ones(1, 3, dtype=torch.bool))
    assert D[0, 0, 1] == pytest.approx(1.0) and D[0, 0, 2] == pytest.approx(0.0, abs=1e-12)
    big = _marginals(B=1, L=9, V=6, seed=3)
    full = js_interaction(big, torch.ones(1, 9, dtype=torch.bool))
    monkeypatch.setattr(signals, "JS_CHUNK", 7)  # one pair row at a time
    assert torch.allclose(js_interaction(big, torch.ones(1, 9, dtype=torch.bool)), full)


def test_marginal_similarity_is_the_cosine():
    lp = _marginals(seed=2)
    masked = torch.ones(2, 5, dtype=torch.bool)
    S = marginal_similarity(lp, masked)
    p = lp.double().exp()
    want = torch.nn.functional.cosine_similarity(p[0, 1], p[0, 3], dim=0)
    assert float(S[0, 1, 3]) == pytest.approx(float(want)) and S[0, 1, 1] == 0


def test_attention_graph_removes_sinks_and_is_symmetrised():
    a = torch.full((1, 2, 4, 4), 0.05)
    a[:, :, :, 0] = 0.85  # key 0 takes most of the attention: a sink
    a[:, 1, 2, 3] = 0.45  # the last layer: query 2 attends to key 3
    g = attention_graph(a, layers=1, sink=2.0)
    assert (g[0, :, 0] == 0).all() and (g.diagonal(dim1=1, dim2=2) == 0).all()
    assert g[0, 2, 3] == pytest.approx(0.45)
    both = attention_graph(a, layers=2, sink=0.0)
    assert both[0, 2, 3] == pytest.approx((0.05 + 0.45) / 2)
    masked = torch.ones(1, 4, dtype=torch.bool)
    dep = attention_dependence(a, masked, layers=1, sink=2.0)
    assert dep[0, 3, 2] == dep[0, 2, 3] == pytest.approx(0.45)


def test_attention_graph_ignores_padding():
    # row 1 is row 0 left-padded by two positions: the same graph on its real positions
    a0 = torch.softmax(torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(0)), -1)
    a1 = torch.zeros(1, 1, 6, 6)
    a1[:, :, 2:, 2:] = a0
    a1[:, :, :2, 2:] = 0.25  # padded queries attend somewhere: they must not count
    real = torch.tensor([[False, False, True, True, True, True]])
    g0 = attention_graph(a0, layers=1, sink=1.5)
    g1 = attention_graph(a1, layers=1, sink=1.5, real=real)
    assert torch.allclose(g1[0, 2:, 2:], g0[0]) and g1[0, :2].abs().max() == 0 and g1[0, :, :2].abs().max() == 0


def _state(probs, masked, attentions=None, fill_p=None):
    probs = torch.as_tensor(probs, dtype=torch.float32)
    lp = probs.clamp_min(1e-30).log()
    B, L, _ = probs.shape
    fill_logp = torch.zeros(B, L) if fill_p is None else torch.as_tensor(fill_p).clamp_min(1e-30).log()
    return StepState(x=torch.zeros(B, L, dtype=torch.long), log_probs=lp, masked=torch.as_tensor(masked),
                     attentions=attentions, fill_logp=fill_logp)


def test_dawn_sets():
    # position 0 decoded and certain (an anchor); 1 confident; 2 induced by the anchor; 3 and 4
    # candidates joined by an edge (only the more confident one goes); 5 too unsure
    conf = [1.0, 0.95, 0.8, 0.78, 0.75, 0.4]
    probs = torch.tensor([[[c, 1 - c] for c in conf]])
    masked = torch.tensor([[False, True, True, True, True, True]])
    att = torch.zeros(1, 1, 6, 6)
    att[0, 0, 2, 0] = 0.5  # 2 attends to the anchor
    att[0, 0, 4, 3] = 0.5  # 4 attends to 3: a conflict
    att += 0.001
    fill = DAWN(tau_sink=0.0, layers=1)(_state(probs, masked, att)).fill[0].tolist()
    assert fill == [False, True, True, True, False, False]
    # without the edge between 3 and 4 both go; without the anchor 2 is a plain candidate
    att[0, 0, 4, 3] = 0.001
    assert DAWN(tau_sink=0.0, layers=1)(_state(probs, masked, att)).fill[0].tolist()[3:5] == [True, True]
    unsure = DAWN(tau_sink=0.0, layers=1)(_state(probs, masked, att, fill_p=[[0.5] * 6])).fill[0].tolist()
    assert unsure == [False, True, True, True, True, False]  # 2 now an independent-set candidate


def test_mean_field_without_interactions_is_a_gap_threshold():
    # disjoint supports: JSD = ln 2, so D = 0 and q = sigmoid(c)
    probs = torch.zeros(1, 3, 6)
    gaps = [3.0, 1.0, 2.5]
    for i, c in enumerate(gaps):
        probs[0, i, 2 * i], probs[0, i, 2 * i + 1] = 1 / (1 + math.exp(-c)), 1 / (1 + math.exp(c))
    masked = torch.ones(1, 3, dtype=torch.bool)
    fill = MeanField(tau=0.9)(_state(probs, masked)).fill[0].tolist()
    assert fill == [sigmoid >= 0.9 for sigmoid in (1 / (1 + math.exp(-c)) for c in gaps)]


def test_mean_field_interactions_hold_back_and_lower_tau_fills_more():
    lp = _marginals(B=3, L=8, V=3, seed=5)
    state = StepState(x=torch.zeros(3, 8, dtype=torch.long), log_probs=lp, masked=torch.ones(3, 8, dtype=torch.bool))
    prev = None
    for tau in (0.99, 0.9, 0.7, 0.5, 0.2):
        fill = MeanField(tau=tau)(state).fill
        if prev is not None:
            assert (fill | ~prev).all()  # a superset
        prev = fill
    # twin positions (identical marginals) interact: with rounds the fixed point drops below sigmoid(c)
    twin = torch.log(torch.tensor([[[0.92, 0.08], [0.92, 0.08]]]))
    st = StepState(x=torch.zeros(1, 2, dtype=torch.long), log_probs=twin, masked=torch.ones(1, 2, dtype=torch.bool))
    assert MeanField(tau=0.9, rounds=0)(st).fill.all() and not MeanField(tau=0.9, rounds=2)(st).fill.any()


def test_sched_exits_once_the_gap_clears_the_threshold():
    sure = torch.tensor([[[0.999, 0.001]] * 4])  # gap log(999) = 6.9 nats
    masked = torch.ones(1, 4, dtype=torch.bool)
    st = _state(sure, masked)
    assert SchED(tau_high=7.5, tau_low=2.5)(st).fill.sum() == 1  # at the block's start the bar is 7.5
    assert SchED(tau_high=6.0, tau_low=2.5)(st).fill.all()  # cleared: all at once
    s = SchED(tau_high=7.5, tau_low=2.5, schedule="linear")
    p = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    assert s.threshold(p).tolist() == pytest.approx([7.5, 5.0, 2.5])
    assert SchED(schedule="cosine").threshold(p).tolist() == pytest.approx([7.5, 5.0, 2.5])
    assert SchED(schedule="exp", rate=16).threshold(p)[0] == pytest.approx(7.5)
    # halfway through the block (2 of 4 left) the exp bar is near tau_low
    start = torch.ones(1, 4, dtype=torch.bool)
    half = StepState(x=torch.zeros(1, 4, dtype=torch.long), log_probs=sure.log(), masked=torch.tensor([[0, 0, 1, 1]]).bool(),
                     start_masked=start)
    assert SchED()(half).fill.sum() == 2
    with pytest.raises(ValueError, match="tau_low"):
        SchED(tau_high=1.0, tau_low=2.0)


def test_the_pairwise_knob_swaps_the_source():
    assert needs("mi_budget") == "pairwise" and needs("mi_budget", {"pairwise": "js"}) == "nothing"
    assert needs("mi_budget", {"pairwise": "exact"}) == "exact" and needs("mi_budget_oracle") == "exact"
    sel = make_selector("mi_budget", pairwise="attention", gamma=0.5)
    assert sel.needs_attentions and not make_selector("mi_budget", pairwise="js").needs_attentions
    assert parse_spec("dependency_bound:pairwise=similarity/js") == [
        ("dependency_bound", {"pairwise": "similarity"}), ("dependency_bound", {"pairwise": "js"})]
    with pytest.raises(ValueError, match="pairwise"):
        make_selector("mi_budget", pairwise="cosine")
    with pytest.raises(ValueError, match="delta"):
        make_selector("mi_budget", pairwise="js", delta=0.01)
    with pytest.raises(ValueError, match="pairwise"):
        make_selector("topk", pairwise="js")


def test_attention_rules_need_a_model_that_shows_attention():
    class NoAttention(RowwiseModel):
        supports_attentions = False

    m = tiny_model(V=3, L=6)
    x = torch.full((1, 6), m.mask_id)
    with pytest.raises(ValueError, match="supports_attentions"):
        mdmi.decode(NoAttention(m), x, make_selector("dawn"))
    with pytest.raises(ValueError, match="prefix_cache"):
        mdmi.decode(m, x, make_selector("mi_budget", pairwise="attention"), prefix_cache=True, block_length=3)
    # the same model with attention decodes, and MI rules on a free signal need no head
    assert not (mdmi.decode(m, x, make_selector("dawn")).tokens == m.mask_id).any()
