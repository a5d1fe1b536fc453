"""The field's newer decoders (KLASS, DUS, PC-Sampler, information gain, ReMDM-style
remasking) on hand-made logits whose decisions can be worked out by hand."""

import math

import pytest
import torch

import mdmi
from mdmi.decode import decode, replay
from mdmi.interface import ModelOutput
from mdmi.selectors import SELECTORS, Step, StepState, make_selector
from mdmi.selectors.dilated import dilated_levels
from mdmi.selectors.info_gain import InfoGain

from conftest import TableModel


def logp(rows):
    """(L, V) probabilities -> (1, L, V) log-probabilities."""
    return torch.tensor(rows, dtype=torch.float32).log()[None]


def state(probs, masked=None, prev=None, **kw):
    lp = logp(probs)
    L = lp.shape[1]
    m = torch.ones(1, L, dtype=torch.bool) if masked is None else torch.tensor([masked])
    return StepState(x=torch.zeros(1, L, dtype=torch.long), log_probs=lp, masked=m,
                     prev_log_probs=None if prev is None else logp(prev), **kw)


class ScriptedModel:
    """Returns the t-th (L, V) table of ``tables`` at its t-th call (the last one after)."""

    def __init__(self, tables, mask_id):
        self.tables = [torch.tensor(t, dtype=torch.float32).log() for t in tables]
        self.vocab_size, self.mask_id, self.calls = self.tables[0].shape[-1], mask_id, 0

    def __call__(self, x):
        t = self.tables[min(self.calls, len(self.tables) - 1)]
        self.calls += 1
        return ModelOutput(logits=t[: x.shape[1]].expand(x.shape[0], -1, -1).clone(), hidden=None)


# ------------------------------------------------------------------ KLASS


def test_klass_refuses_a_confident_but_unstable_position():
    sel = make_selector("klass", tau=0.9, eps=0.01, history=1)
    # both positions are 0.95 confident; position 0's marginal moved since the last step, position 1's did not
    s = state([[0.95, 0.05], [0.95, 0.05]], prev=[[0.5, 0.5], [0.95, 0.05]])
    kl0 = 0.95 * math.log(0.95 / 0.5) + 0.05 * math.log(0.05 / 0.5)  # 0.495 nats > eps
    assert torch.allclose(sel.kl_step(s)[0], torch.tensor([kl0, 0.0]), atol=1e-5)
    assert sel(s).fill.tolist() == [[False, True]]
    # stable but not confident enough: refused too
    s = state([[0.8, 0.2], [0.95, 0.05]], prev=[[0.8, 0.2], [0.95, 0.05]])
    assert sel(s).fill.tolist() == [[False, True]]


def test_klass_needs_history_steps_of_stability_and_starts_one_at_a_time():
    sel = make_selector("klass", tau=0.5, eps=0.01, history=2)
    table = [[0.99, 0.01]] * 4
    m = ScriptedModel([table], mask_id=2)
    res = decode(m, torch.full((1, 4), 2), sel, trace=True)
    # step 0: no previous marginal; step 1: one stable step of two; step 2: stable twice -> the rest at once
    assert [len(s["filled"][0]) for s in res.trace] == [1, 1, 2] and res.nfe.tolist() == [3]
    sel1 = make_selector("klass", tau=0.5, eps=0.01, history=1)
    res = decode(ScriptedModel([table], 2), torch.full((1, 4), 2), sel1, trace=True)
    assert [len(s["filled"][0]) for s in res.trace] == [1, 3]


def test_klass_with_moving_marginals_waits():
    # the marginals of positions 1..3 flip between steps: never stable, so KLASS is sequential
    a = [[0.99, 0.01]] + [[0.95, 0.05]] * 3
    b = [[0.99, 0.01]] + [[0.05, 0.95]] * 3
    res = decode(ScriptedModel([a, b, a, b], 2), torch.full((1, 4), 2), make_selector("klass", history=1))
    assert res.nfe.tolist() == [4]


# ------------------------------------------------------------------ DUS


def test_dilated_levels_by_hand():
    assert dilated_levels(8, 2) == [[0, 4], [2, 6], [1, 3, 5, 7]]
    assert dilated_levels(9, 3) == [[0, 3, 6], [1, 2, 4, 5, 7, 8]]  # the last level is larger: kept
    assert dilated_levels(5, 2) == [[0, 2, 4], [1, 3]]
    assert dilated_levels(1, 2) == [[0]] and dilated_levels(0, 2) == []
    for n in range(1, 40):
        for base in (2, 3, 4):
            flat = sorted(i for level in dilated_levels(n, base) for i in level)
            assert flat == list(range(n))


def test_dus_never_fills_adjacent_positions_together():
    table = torch.full((16, 3), 1 / 3)
    res = decode(TableModel(table, mask_id=3), torch.full((2, 16), 3), make_selector("dilated", base=2), trace=True)
    assert res.nfe.tolist() == [4, 4]  # log2(16)
    for step in res.trace:
        for filled in step["filled"]:
            assert all(b - a >= 2 for a, b in zip(filled, filled[1:])), filled


def test_dus_skips_observed_positions_and_runs_blocks_in_order():
    x = torch.full((1, 10), 3)
    x[0, [0, 5]] = 1  # observed
    res = decode(TableModel(torch.full((10, 3), 1 / 3), 3), x, make_selector("dilated", base=2, block=4), trace=True)
    masked = [1, 2, 3, 4, 6, 7, 8, 9]  # ranks 0..7 in two blocks of 4: levels [0,2],[1,3] each
    assert [s["filled"][0] for s in res.trace] == [[1, 3], [2, 4], [6, 8], [7, 9]]
    assert res.tokens[0, 0] == 1 and res.tokens[0, 5] == 1 and set(sum((s["filled"][0] for s in res.trace), [])) == set(masked)


# ------------------------------------------------------------------ PC-Sampler


def test_pc_sampler_position_weight_and_calibration_by_hand():
    probs = [[0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.9, 0.05, 0.05]]
    # uniform background: the calibration is the constant log 3, so lam = 0 is confidence order
    sel = make_selector("pc_sampler", k=1, lam=0.0)
    assert sel(state(probs)).fill.tolist() == [[False, False, True]]
    # lam = 1: scores 0.6 log3, 0.7 log3 e^-1, 0.9 log3 e^-2 -> position 0 wins
    sel = make_selector("pc_sampler", k=1, lam=1.0)
    s = sel.score(state(probs))[0]
    want = torch.tensor([0.6, 0.7 * math.exp(-1), 0.9 * math.exp(-2)], dtype=torch.float64) * math.log(3)
    assert torch.allclose(s, want) and sel(state(probs)).fill.tolist() == [[True, False, False]]
    # a background in which token 0 is very common: its confident predictions are discounted
    bg = torch.tensor([0.9, 0.05, 0.05])
    probs2 = [[0.9, 0.05, 0.05], [0.05, 0.8, 0.15]]
    sel = make_selector("pc_sampler", k=1)
    sel.background = bg
    assert sel(state(probs2)).fill.tolist() == [[False, True]]  # 0.9 * -log 0.9 = 0.09 < 0.8 * -log 0.05 = 2.4
    # alpha clips: both saturate, the earlier wins the tie
    sel = make_selector("pc_sampler", k=1, alpha=0.01)
    assert sel(state(probs)).fill.tolist() == [[True, False, False]]


# ------------------------------------------------------------------ information gain


class FixedPairwise:
    def __init__(self, I):
        self.I = torch.tensor(I, dtype=torch.float64)[None]

    def __call__(self, s):
        return self.I * (s.masked[:, :, None] & s.masked[:, None, :]), None


def test_info_gain_trades_own_entropy_for_information_given():
    probs = [[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]]  # entropies 0.693, 0.325, 0.673
    I = [[0, 0.05, 0.6], [0.05, 0, 0.0], [0.6, 0.0, 0]]
    s = state(probs)
    h = s.entropy[0].double()
    gain = torch.tensor([0.65, 0.05, 0.6], dtype=torch.float64)
    sel = InfoGain(FixedPairwise(I), k=1, w=1.0, pool=3)
    assert torch.allclose(sel.score(s)[0], gain - h)  # -0.043, -0.275, -0.073
    assert sel(s).fill.tolist() == [[True, False, False]]
    # w = 0 is entropy order: the most certain position
    assert InfoGain(FixedPairwise(I), k=1, w=0.0, pool=3)(state(probs)).fill.tolist() == [[False, True, False]]
    # only masked partners count: with position 2 observed, position 0 gives 0.05 and loses to position 1
    s = state(probs, masked=[True, True, False])
    assert InfoGain(FixedPairwise(I), k=1, w=1.0, pool=3)(s).fill.tolist() == [[False, True, False]]
    # candidates are the pool most confident positions (default 2k): position 0 (confidence 0.5) is out
    s = InfoGain(FixedPairwise(I), k=1, w=1.0).score(state(probs))[0]
    assert s[0] == float("-inf") and torch.isfinite(s[1:]).all()
    assert InfoGain(FixedPairwise(I), k=1, w=1.0)(state(probs)).fill.tolist() == [[False, False, True]]


# ------------------------------------------------------------------ remasking


def test_remask_rehides_an_uncertain_fill_never_an_observed_one_and_ends():
    # every fill is below tau = 0.999: step 1 re-masks position 0 (filled at step 0), step 2
    # position 1 (filled at step 1, the least confident filled one), then the budget is spent
    table = [[0.99, 0.01], [0.98, 0.02], [0.97, 0.03], [0.96, 0.04], [0.3, 0.7]]
    x = torch.full((1, 5), 2)
    x[0, 4] = 0  # observed, with a low-probability token under the model: must stay
    sel = make_selector("remask", k=1, r=1, tau=0.999, budget=2)
    res = decode(ScriptedModel([table], 2), x, sel, trace=True)
    assert res.tokens[0, 4] == 0
    remasked = [s.get("remasked", [[]])[0] for s in res.trace]
    assert remasked == [[], [0], [1], [], [], []]
    assert res.nfe.tolist() == [4 + 2]  # 4 masked positions + 2 re-fills
    # replay with the mask id walks the same states
    states = [s for _, s, _ in replay(x, res, mask_id=2)]
    assert len(states) == 6 and (states[-1] == 2).sum() == 1


def test_remask_terminates_even_when_everything_is_uncertain():
    table = torch.full((12, 4), 0.25)
    sel = make_selector("remask", k=1, r=3, tau=1.0, budget=5)
    res = decode(TableModel(table, 4), torch.full((3, 12), 4), sel)
    assert (res.tokens != 4).all() and (res.nfe <= 12 + 5).all()


def test_step_remask_outside_filled_positions_is_ignored():
    class Wild:
        extra_steps = 0

        def __call__(self, s):
            return Step(fill=s.masked & (s.ranked("confidence") == s.ranked("confidence")[:, :1]),
                        remask=torch.ones_like(s.masked))  # asks for everything

    x = torch.tensor([[0, 2, 2]])
    res = decode(TableModel([[0.5, 0.5]] * 3, 2), x, Wild())
    assert res.tokens[0, 0] == 0  # observed stays


# ------------------------------------------------------------------ all new decoders


NEW = [("klass", {}), ("dilated", {}), ("pc_sampler", {"k": 3}), ("remask", {"budget": 3}), ("info_gain", {"k": 3})]


@pytest.mark.parametrize("name,params", NEW)
def test_deterministic_under_a_seed_and_knobs_checked(name, params, tiny_sudoku_model):
    from mdmi.tasks import sudoku

    if name == "info_gain":
        params = {**params, "estimator": lambda hidden, masked: torch.zeros(masked.shape + masked.shape[-1:])}
    x = torch.stack([sudoku.encode("0" * 81, tiny_sudoku_model.mask_id)] * 2)
    runs = [decode(tiny_sudoku_model, x, make_selector(name, **params), temperature=1.0,
                   generator=torch.Generator().manual_seed(7)) for _ in range(2)]
    assert torch.equal(runs[0].tokens, runs[1].tokens) and torch.equal(runs[0].nfe, runs[1].nfe)
    assert (runs[0].tokens != tiny_sudoku_model.mask_id).all()
    with pytest.raises(ValueError):
        make_selector(name, **{**params, "bogus": 1})


def test_bad_knobs_name_the_knob():
    for name, bad, match in [("klass", {"tau": 1.5}, "tau"), ("klass", {"history": 0}, "history"),
                             ("dilated", {"base": 1}, "base"), ("dilated", {"block": -1}, "block"),
                             ("pc_sampler", {"k": 0}, "k"), ("pc_sampler", {"lam": -1.0}, "lam"),
                             ("remask", {"tau": 0.0}, "tau"), ("remask", {"budget": -1}, "budget")]:
        with pytest.raises(ValueError, match=match):
            make_selector(name, **bad)
    assert {"klass", "dilated", "pc_sampler", "info_gain", "remask"} <= set(SELECTORS)
    assert mdmi.SELECTORS is SELECTORS


# ------------------------------------------------------------------ MI gate (factor rule + MI conflicts)


def test_mi_gate_keeps_factor_size_and_order_and_drops_dependent_partners():
    from mdmi.selectors.mi_gate import MIGate

    probs = [[0.999, 0.001], [0.998, 0.002], [0.997, 0.003], [0.6, 0.4]]
    I = [[0, 0.5, 0.0, 0], [0.5, 0, 0.0, 0], [0.0, 0.0, 0, 0], [0, 0, 0, 0]]
    # factor f = 1: c = .999, .998, .997, .6 -> (n+1)(1-c) = .002, .006, .012, 2.0 < 1 up to n = 3
    assert make_selector("factor", f=1.0)(state(probs)).fill.tolist() == [[True, True, True, False]]
    # position 1 depends on position 0 (0.5 nats > eps): left for the next step; 2 goes
    assert MIGate(FixedPairwise(I), f=1.0, eps=0.1)(state(probs)).fill.tolist() == [[True, False, True, False]]
    # a large eps is the factor rule; a smaller eps never takes more
    assert MIGate(FixedPairwise(I), f=1.0, eps=1.0)(state(probs)).fill.tolist() == [[True, True, True, False]]
    assert MIGate(FixedPairwise(I), f=1.0, eps=float("inf"))(state(probs)).fill.tolist() == [[True, True, True, False]]
    for eps in (0.0, 0.1, 0.4, 0.6):
        assert int(MIGate(FixedPairwise(I), 1.0, eps)(state(probs)).fill.sum()) <= 3
    # the first (most confident) position is always taken, even if nothing is eligible by the gate's count
    assert MIGate(FixedPairwise(I), f=1e-9, eps=0.0)(state(probs)).fill.tolist() == [[True, False, False, False]]


def test_mi_gate_refill_counts_only_conflict_free_positions():
    from mdmi.selectors.mi_gate import MIGate

    probs = [[0.999, 0.001], [0.998, 0.002], [0.997, 0.003], [0.9, 0.1], [0.82, 0.18]]
    I = torch.zeros(5, 5).tolist()
    I[0][1] = I[1][0] = 0.5  # 1 depends on 0
    # factor f = 1: (n+1)(1-c) = .002, .006, .012, .5, 1.08 -> the first 4
    assert make_selector("factor", f=1.0)(state(probs)).fill.tolist() == [[True, True, True, True, False]]
    # the gate drops 1 and takes nothing in its place
    assert MIGate(FixedPairwise(I), f=1.0, eps=0.1)(state(probs)).fill.tolist() == [[True, False, True, True, False]]
    # refill: 1 is skipped and not counted, so 4 is the 4th taken: (3 + 2)(1 - .82) = 0.9 < 1 goes
    assert MIGate(FixedPairwise(I), f=1.0, eps=0.1, refill=1)(state(probs)).fill.tolist() == \
        [[True, False, True, True, True]]
    # a smaller f stops the count: f 0.5 -> 0, 2 (3 x .003 = .009) then 3 (4 x .1 = .4 < .5), not 4 (.9)
    assert MIGate(FixedPairwise(I), f=0.5, eps=0.1, refill=1)(state(probs)).fill.tolist() == \
        [[True, False, True, True, False]]
    # no conflict above eps: exactly the factor rule, for every f
    for f in (1e-9, 0.01, 0.5, 1.0, 3.0):
        assert torch.equal(MIGate(FixedPairwise(I), f=f, eps=1.0, refill=1)(state(probs)).fill,
                           make_selector("factor", f=f)(state(probs)).fill)
    # the first is always taken, even when it conflicts with nothing and fits nothing
    assert MIGate(FixedPairwise(I), f=1e-9, eps=0.0, refill=1)(state(probs)).fill.tolist() == \
        [[True, False, False, False, False]]
    with pytest.raises(ValueError, match="refill"):
        MIGate(FixedPairwise(I), refill=2)
