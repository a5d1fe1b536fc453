"""mdmi selectors inside transformers' own DiffusionGemma generate, on a tiny random config:
the entropy bound reproduces transformers' EntropyBoundSampler token for token."""

import pytest
import torch

pytest.importorskip("transformers.models.diffusion_gemma")
from transformers import DiffusionGemmaConfig, DiffusionGemmaForBlockDiffusion, DiffusionGemmaTextConfig  # noqa: E402
from transformers.models.diffusion_gemma.generation_diffusion_gemma import (  # noqa: E402
    EntropyBoundSampler,
    EntropyBoundSamplerConfig,
)
from transformers.models.gemma4 import Gemma4VisionConfig  # noqa: E402

from mdmi import make_selector  # noqa: E402
from mdmi.models.diffusion_gemma import (  # noqa: E402
    SelectorSampler,
    SelectorSampling,
    entropy_bound_selector,
    generate,
)
from mdmi.selectors.base import FunctionSelector  # noqa: E402
from mdmi.selectors.mi_budget import MIBudget  # noqa: E402
from mdmi.selectors.pairwise import EstimatorPairwise  # noqa: E402

V, C, D = 48, 8, 32  # vocabulary, canvas length, hidden size
STEPS = 6
PROMPTS = torch.tensor([[2, 5, 6, 7], [2, 9, 9, 4]])
SETTINGS = dict(max_new_tokens=2 * C, max_denoising_steps=STEPS, t_min=0.4, t_max=0.8, disable_compile=True)


@pytest.fixture(scope="module")
def model():
    text = DiffusionGemmaTextConfig(
        vocab_size=V, hidden_size=D, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, global_head_dim=16, max_position_embeddings=128, sliding_window=16,
        layer_types=["sliding_attention", "full_attention"], num_experts=2, top_k_experts=1,
        moe_intermediate_size=16, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    vision = Gemma4VisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                num_key_value_heads=1, head_dim=8)
    cfg = DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=C, boi_token_id=45,
                               eoi_token_id=46, image_token_id=47)
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(cfg).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(10)  # sharper, unequal marginals: the bound takes 1 to C per step
    return model


def reference(model, bound, seed, monkeypatch):
    """transformers' own generate, recording the accepted positions of each step."""
    masks = []
    host = EntropyBoundSampler.accept_canvas

    def recording(self, *args):
        out = host(self, *args)
        masks.append(self.accepted_token_mask.clone())
        return out

    with monkeypatch.context() as m:
        m.setattr(EntropyBoundSampler, "accept_canvas", recording)
        torch.manual_seed(seed)
        out = model.generate(PROMPTS, sampler_config=EntropyBoundSamplerConfig(entropy_bound=bound), **SETTINGS)
    return out.sequences, masks


def ours(model, selector, seed, **settings):
    with SelectorSampling(model, selector) as run:
        torch.manual_seed(seed)
        out = model.generate(PROMPTS, **{**SETTINGS, **settings})
    return out.sequences, run.sampler


@pytest.mark.parametrize("bound,seed", [(0.05, 0), (0.5, 1), (2.0, 2), (6.0, 3)])
def test_entropy_bound_reproduces_transformers_exactly(model, bound, seed, monkeypatch):
    ref, ref_masks = reference(model, bound, seed, monkeypatch)
    for selector in (entropy_bound_selector(EntropyBoundSamplerConfig(entropy_bound=bound)),
                     make_selector("entropy_bound", gamma=bound, order="entropy")):
        seq, sampler = ours(model, selector, seed)
        assert torch.equal(seq, ref)
        assert len(sampler.accepted) == len(ref_masks) == 2 * STEPS
        assert all(torch.equal(a, b) for a, b in zip(sampler.accepted, ref_masks))
    counts = torch.stack(ref_masks).sum(-1)  # (steps, B): the bound matters, some steps take several, not all
    assert counts.min() >= 1 and (counts < C).any()
    if bound >= 0.5:
        assert counts.max() > 1


def test_entropy_bound_accepts_as_the_host_on_hand_made_logits():
    """Random logits, sharp and flat, on a long canvas where whole groups of positions tie
    in entropy (the bound then cuts inside a group: which members it takes is the sort's
    order among equals, where mdmi's own stable ranking would differ)."""
    g = torch.Generator().manual_seed(0)
    L = 64
    for trial in range(64):
        bound = [0.01, 0.3, 1.0, 3.0][trial % 4]
        logits = torch.randn(3, L, V, generator=g) * [0.3, 1.0, 3.0, 10.0][trial // 4 % 4]
        if trial % 2:
            logits = logits[:, torch.arange(L) % 4]  # four distinct rows, each 16 times
        cfg = EntropyBoundSamplerConfig(entropy_bound=bound)
        host = EntropyBoundSampler(cfg, L, V, STEPS)
        mine = SelectorSampler(entropy_bound_selector(cfg), cfg, L, V, STEPS)
        cur, den = torch.randint(0, V, (3, L), generator=g), torch.randint(0, V, (3, L), generator=g)
        a = host.accept_canvas(cur, den, logits, STEPS)
        b = mine.accept_canvas(cur, den, logits, STEPS)
        assert torch.equal(host.accepted_token_mask, mine.accepted_token_mask) and torch.equal(a, b)


def test_mi_budget_runs_inside_generate(model):
    seen, steps = [], []

    def zero_mi(hidden, masked):  # (B, L, D), (B, L) -> (B, L, L)
        seen.append((tuple(hidden.shape), bool(masked.all())))
        return torch.zeros(*masked.shape, masked.shape[-1])

    budget = MIBudget(EstimatorPairwise(zero_mi), gamma=1.5, lam=1.0)

    def recorded(state):
        out = budget(state)
        steps.append((state.entropy.clone(), out.fill.clone()))
        return out

    seq, sampler = ours(model, FunctionSelector(recorded), 0)
    assert seq.shape == (2, PROMPTS.shape[1] + 2 * C) and torch.equal(seq[:, :PROMPTS.shape[1]], PROMPTS)
    assert ((seq >= 0) & (seq < V)).all()
    assert seen == [((2, C, D), True)] * (2 * STEPS)
    assert all(torch.equal(a, fill) for a, (_, fill) in zip(sampler.accepted, steps))
    # zero MI: the budget pays entropy alone, the ascending prefix with sum H <= gamma (first always)
    for h, fill in steps:
        order = h.argsort(-1)
        take = h.gather(1, order).double().cumsum(-1) <= 1.5
        take[:, 0] = True
        assert torch.equal(fill.gather(1, order), take)


def test_sequential_accepts_one_per_step(model):
    seq, sampler = ours(model, make_selector("sequential"), 0)
    assert seq.shape == (2, PROMPTS.shape[1] + 2 * C)
    assert all(a.sum(-1).tolist() == [1, 1] for a in sampler.accepted)


def test_state_comes_from_the_same_pass(model):
    """hidden -> lm_head -> softcap -> temperature gives the state's log-probs; a bare-tensor
    selector works; the model is restored afterwards."""
    checks = []
    soft = model.config.text_config.final_logit_softcapping

    def check(state):
        cur_step = STEPS - int(state.block_step[0])
        t = SETTINGS["t_min"] + (SETTINGS["t_max"] - SETTINGS["t_min"]) * cur_step / STEPS
        with torch.no_grad():
            logits = torch.tanh(model.lm_head(state.hidden) / soft) * soft / t
        checks.append(torch.allclose(torch.log_softmax(logits, -1), state.log_probs, atol=1e-4))
        assert state.masked.all() and state.block.tolist() == [state.step // STEPS] * 2
        return state.masked & (torch.arange(C) < 2)  # the first two positions, a bare tensor

    seq, sampler = ours(model, FunctionSelector(check), 0)
    assert checks == [True] * (2 * STEPS)
    assert all(a[:, :2].all() and not a[:, 2:].any() for a in sampler.accepted)
    assert "_prepare_sampler" not in vars(model) and not model.lm_head._forward_hooks
    plain = generate(model, PROMPTS, lambda state: state.masked, **SETTINGS)  # accept everything
    assert plain.sequences.shape == seq.shape
