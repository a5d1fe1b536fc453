"""The selector contract, checked for every entry of the registry: each step fills at least
one masked position and only masked ones, observed and fixed positions are never touched,
decoding ends with nothing masked, a seed fixes the output, bad knobs are refused by name,
and a batch decodes exactly as each of its rows would alone (greedy and sampled, with and
without blocks, prompts, EOS and left padding)."""

import math

import pytest
import torch
from tiny import RowwiseHead, RowwiseModel, tiny_model

import mdmi
from mdmi.selectors import NAMES, Selector, Step, StepState, knob_specs, make_selector, needs, parse_spec

V, L = 4, 10


@pytest.fixture(scope="module")
def model():
    return RowwiseModel(tiny_model(V=V, L=L + 2, seed=3, scale=4.0), fixed_first=True)


# every registry entry, and the MI-guided rules on each free signal in place of the head
CASES = NAMES + ("mi_budget:pairwise=attention", "dependency_bound:pairwise=js", "mi_gate:pairwise=similarity")


def build(spec, model):
    (name, knobs), = parse_spec(spec)
    need = needs(name, knobs)
    if need == "pairwise":
        return make_selector(name, estimator=RowwiseHead(), **knobs)
    if need == "exact":
        return make_selector(name, model=model, **knobs)
    return make_selector(name, **knobs)


def batch(model, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (B, L), generator=g)
    x[torch.rand(B, L, generator=g) < 0.7] = model.mask_id
    x[:, 0] = model.mask_id  # a fixed special position that looks masked: never filled
    x[0, 1:] = model.mask_id
    return x


@pytest.mark.parametrize("name", CASES)
def test_every_step_fills_only_masked_positions(name, model):
    x = batch(model)
    sel = build(name, model)
    assert isinstance(sel, Selector)
    res = mdmi.decode(model, x, sel, trace=True)
    for step in res.trace:
        for filled in step["filled"]:
            assert len(filled) >= 1
    fixed = model.fixed(x)
    observed = (x != model.mask_id) | fixed
    assert torch.equal(res.tokens[observed], x[observed])
    assert not ((res.tokens == model.mask_id) & ~fixed).any()
    assert (res.nfe >= 1).all() and (res.nfe <= L + 1 + sel.extra_steps).all()
    if needs(*parse_spec(name)[0]) == "exact":
        assert (res.extra_passes > 0).all()
    else:
        assert (res.extra_passes == 0).all()


@pytest.mark.parametrize("name", CASES)
def test_a_step_is_a_step_within_the_masked_positions(name, model):
    x = batch(model)
    sel = build(name, model)
    out = model(x, output_attentions=sel.needs_attentions)
    masked = (x == model.mask_id) & ~model.fixed(x)
    lp = torch.log_softmax(out.logits, -1)
    state = StepState(x=x, log_probs=lp, masked=masked, hidden=out.hidden, attentions=out.attentions)
    sel.reset()
    step = sel(state)
    assert isinstance(step, Step) and step.fill.dtype == torch.bool and step.fill.shape == x.shape
    assert not (step.fill & ~masked).any()
    if step.remask is not None:
        assert not (step.remask & masked).any()


@pytest.mark.parametrize("name", CASES)
def test_seeded_sampling_is_deterministic(name, model):
    x = batch(model)
    runs = [mdmi.decode(model, x, build(name, model), temperature=1.0, generator=torch.Generator().manual_seed(7))
            for _ in range(2)]
    assert torch.equal(runs[0].tokens, runs[1].tokens) and torch.equal(runs[0].nfe, runs[1].nfe)


def _bad_values(spec):
    if spec.type is str:
        return ["no-such-choice", 3]
    bad = [True, float("nan"), "text"]
    if spec.type is int:
        bad.append(1.5)
    if spec.choices is not None:
        bad.append(max(spec.choices) + 1)
    if spec.lo is not None:
        bad.append(spec.lo if spec.lo_open else spec.lo - 1)
    if spec.hi is not None:
        bad.append(spec.hi if spec.hi_open else spec.hi + 1)
    return bad


@pytest.mark.parametrize("name", NAMES)
def test_bad_knobs_are_refused_by_name(name, model):
    for knob, spec in knob_specs(name).items():
        spec.check(name, spec.default)  # the default itself is valid
        for v in _bad_values(spec):
            with pytest.raises(ValueError, match=knob):
                make_selector(name, **{knob: v}, **({"model": model} if needs(name) == "exact" else
                                                    {"estimator": RowwiseHead()} if needs(name) == "pairwise" else {}))
    with pytest.raises(ValueError, match="no_such_knob"):
        make_selector(name, no_such_knob=1)


SETTINGS = {
    "whole": {},
    "blocks": {"block_length": 3},
    "blocks_capped_eos": {"block_length": 4, "steps_per_block": 2, "eos_id": 2},
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("temperature", [0.0, 1.0])
@pytest.mark.parametrize("name", CASES)
def test_a_batch_decodes_as_each_row_alone(name, temperature, setting, model):
    kw = SETTINGS[setting]
    x = batch(model, B=3, seed=1)
    gens = lambda rows: [torch.Generator().manual_seed(100 + r) for r in rows]  # noqa: E731
    together = mdmi.decode(model, x, build(name, model), temperature=temperature, generator=gens(range(3)), **kw)
    for r in range(3):
        alone = mdmi.decode(model, x[r:r + 1], build(name, model), temperature=temperature, generator=gens([r]), **kw)
        assert torch.equal(alone.tokens[0], together.tokens[r]), r
        assert int(alone.nfe[0]) == int(together.nfe[r])
        assert int(alone.extra_passes[0]) == int(together.extra_passes[r])


@pytest.mark.parametrize("name", CASES)
def test_one_block_is_todays_decoding(name, model):
    x = batch(model)
    plain = mdmi.decode(model, x, build(name, model), trace=True)
    one = mdmi.decode(model, x, build(name, model), trace=True, block_length=L)
    assert torch.equal(plain.tokens, one.tokens) and torch.equal(plain.nfe, one.nfe)
    assert [s["filled"] for s in plain.trace] == [s["filled"] for s in one.trace]


@pytest.mark.parametrize("name", CASES)
def test_left_padded_rows_decode_as_unpadded(name, model):
    """Row 1 is row 0 shortened by two, left-padded with a pad id (not the mask id)."""
    pad = 3
    x = batch(model, B=1, seed=2)[0]
    short = x[2:].clone()
    short[0] = model.mask_id  # the fixed special position moves with the sequence
    padded = torch.cat([torch.full((2,), pad), short])[None]
    am = torch.ones_like(padded)
    am[0, :2] = 0
    model_short = RowwiseModel(model.model, fixed_first=True)

    class Shifted(RowwiseModel):  # the special position of the padded row sits after the padding
        def fixed(self, x):
            f = torch.zeros_like(x, dtype=torch.bool)
            f[:, 2] = True
            return f

    model_pad = Shifted(model.model)
    alone = mdmi.decode(model_short, short[None], build(name, model_short), block_length=3)
    res = mdmi.decode(model_pad, padded, build(name, model_pad), block_length=3, attention_mask=am)
    assert torch.equal(res.tokens[0, :2], torch.full((2,), pad))  # padding untouched
    assert torch.equal(res.tokens[0, 2:], alone.tokens[0]) and int(res.nfe[0]) == int(alone.nfe[0])


def test_knob_specs_match_the_classes():
    """Every knob spec's default is the class's own default (one source of truth in use)."""
    import inspect

    from mdmi.selectors import SELECTORS

    for name, cls in SELECTORS.items():
        sig = inspect.signature(cls.__init__).parameters
        for k in cls.knobs:
            assert sig[k.name].default == k.default, (name, k.name)
        assert math.isfinite(len(cls.summary)) and cls.summary and cls.source, name
