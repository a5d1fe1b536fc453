"""A diffusion LLM that brings its own modelling code (as LLaDA and Dream do) through
``hf:<dir>``: a tiny bidirectional transformer written to a directory with ``auto_map`` in
its config.json, loaded by transformers' remote-code path with the hub offline."""

import json
import textwrap

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import PreTrainedTokenizerFast  # noqa: E402

import mdmi  # noqa: E402
from mdmi import make_selector  # noqa: E402
from mdmi.models.hf import Convention, HFMaskedLM  # noqa: E402

WORDS = ["<pad>", "<eos>", "<unk>", "a", "b", "c", "d", "e", "f", "g", "h", "<|mdm_mask|>"]
MASK = WORDS.index("<|mdm_mask|>")  # a plain token of the vocabulary: only the config names it
VOCAB = 16  # the embedding is wider than the tokenizer, as in LLaDA and Dream

MODELING = textwrap.dedent('''
    """A tiny bidirectional transformer with a model type of its own (test fixture)."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import MaskedLMOutput


    class TinyDLLMConfig(PretrainedConfig):
        model_type = "tiny_dllm"

        def __init__(self, vocab_size=16, hidden_size=32, num_layers=2, num_heads=2, max_position_embeddings=64,
                     mask_token_id=None, **kwargs):
            self.vocab_size, self.hidden_size, self.num_layers = vocab_size, hidden_size, num_layers
            self.num_heads, self.max_position_embeddings = num_heads, max_position_embeddings
            self.mask_token_id = mask_token_id
            super().__init__(**kwargs)


    class Block(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.heads = heads
            self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.out = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

        def forward(self, h, mask):
            B, L, D = h.shape
            q, k, v = self.qkv(self.norm1(h)).view(B, L, 3, self.heads, D // self.heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # bidirectional: no causal mask
            h = h + self.out(a.transpose(1, 2).reshape(B, L, D))
            return h + self.mlp(self.norm2(h))


    class TinyDLLMModel(PreTrainedModel):
        config_class = TinyDLLMConfig

        def __init__(self, config):
            super().__init__(config)
            d = config.hidden_size
            self.embed = nn.Embedding(config.vocab_size, d)
            self.pos = nn.Embedding(config.max_position_embeddings, d)
            self.blocks = nn.ModuleList(Block(d, config.num_heads) for _ in range(config.num_layers))
            self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, config.vocab_size)
            self.post_init()

        def forward(self, input_ids, attention_mask=None, position_ids=None, output_hidden_states=False, **kwargs):
            B, L = input_ids.shape
            if position_ids is None:
                position_ids = torch.arange(L, device=input_ids.device)[None]
            mask = None  # (B, 1, L, L) bool, True = may attend
            if attention_mask is not None:
                keep = attention_mask.bool()
                mask = keep if keep.dim() == 4 else keep[:, None, None, :].expand(B, 1, L, L)
            h = self.embed(input_ids) + self.pos(position_ids)
            states = [h]
            for block in self.blocks:
                h = block(h, mask)
                states.append(h)
            h = self.norm(h)
            states[-1] = h
            return MaskedLMOutput(logits=self.head(h), hidden_states=tuple(states) if output_hidden_states else None)
''')


def write_dllm(d):
    """modelling file + config.json with auto_map + random weights + tokenizer in ``d``."""
    import importlib.util

    d.mkdir()
    (d / "modeling_tiny_dllm.py").write_text(MODELING)
    spec = importlib.util.spec_from_file_location("modeling_tiny_dllm_fixture", d / "modeling_tiny_dllm.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.TinyDLLMModel(mod.TinyDLLMConfig(vocab_size=VOCAB, mask_token_id=MASK, pad_token_id=0,
                                                 eos_token_id=1)).eval()
    model.save_pretrained(d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoConfig": "modeling_tiny_dllm.TinyDLLMConfig", "AutoModel": "modeling_tiny_dllm.TinyDLLMModel"}
    cfg["model_type"] = "tiny_dllm"
    (d / "config.json").write_text(json.dumps(cfg))
    from tokenizers import Tokenizer, models, pre_tokenizers

    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tok.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def dllm_dir(tmp_path_factory):
    return write_dllm(tmp_path_factory.mktemp("dllm") / "tiny-dllm")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def dllm(dllm_dir):
    return mdmi.load(f"hf:{dllm_dir}", trust_remote_code=True)


def test_remote_code_needs_trust(dllm_dir):
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        mdmi.load(f"hf:{dllm_dir}")


def test_loads_through_remote_code(dllm, dllm_dir):
    assert type(dllm.model).__name__ == "TinyDLLMModel" and dllm.model.config.model_type == "tiny_dllm"
    assert dllm.mask_id == MASK and dllm.tokenizer.mask_token_id is None  # from the config
    assert dllm.vocab_size == VOCAB
    # EOS may end an answer; padding, unknown, the mask and ids past the tokenizer may not
    assert dllm.allowed.nonzero().squeeze(1).tolist() == [1, *range(3, MASK)]
    x = torch.full((2, 7), MASK)
    x[0, :2] = torch.tensor([3, 4])
    out = dllm(x)
    assert out.logits.shape == (2, 7, VOCAB) and out.hidden.shape == (2, 7, 32)
    with torch.no_grad():
        ref = dllm.model(input_ids=x)
    assert torch.equal(out.logits, ref.logits)


def test_outputs_stay_on_the_model_device(dllm):
    dev = next(dllm.model.parameters()).device
    out = dllm(torch.full((1, 5), MASK))
    assert out.logits.device == dev and out.hidden.device == dev


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_outputs_stay_on_the_gpu(dllm_dir):
    m = mdmi.load(f"hf:{dllm_dir}", trust_remote_code=True, device="cuda")
    out = m(torch.full((1, 5), MASK))
    assert out.logits.device.type == "cuda" and out.hidden.device.type == "cuda"
    res = mdmi.decode(m, torch.full((2, 6), MASK), make_selector("sequential"))
    assert res.tokens.device.type == "cuda" and not (res.tokens == MASK).any()


def test_sequential_decode_fills_everything(dllm):
    x = torch.full((2, 6), MASK)
    x[1, 0] = 5  # a prompt token stays
    res = mdmi.decode(dllm, x, make_selector("sequential"))
    assert not (res.tokens == MASK).any() and res.tokens[1, 0] == 5
    assert dllm.allowed[res.tokens[x == MASK]].all()
    assert res.nfe.tolist() == [6, 5]


def test_attention_mask_passes_through(dllm):
    x = torch.tensor([[0, 0, 3, MASK, MASK], [4, 5, 3, MASK, MASK]])
    am = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    padded = dllm(x, attention_mask=am).logits
    other = x.clone()
    other[0, :2] = torch.tensor([6, 7])  # padding content is invisible behind the mask ...
    assert torch.allclose(dllm(other, attention_mask=am).logits[0, 2:], padded[0, 2:])
    # ... and visible without it (6 and 7 are no pad ids)
    assert not torch.allclose(dllm(other).logits[0, 2:], padded[0, 2:])
    assert torch.equal(dllm(x).logits[1], padded[1])  # a row without padding: as if no mask were given
    res = mdmi.decode(dllm, x, make_selector("sequential"), attention_mask=am)
    assert res.tokens[0, :2].tolist() == [0, 0] and not (res.tokens == MASK).any()
    with pytest.raises(ValueError, match="attention_mask"):
        dllm(x, attention_mask=am[:, 1:])


def test_dream_convention_shift_and_4d_mask(dllm):
    dream = HFMaskedLM(dllm.model, dllm.tokenizer, allow_eos=True, convention=Convention(shift_logits=True,
                                                                                             mask_4d=True))
    x = torch.tensor([[6, 7, 3, MASK, MASK], [3, MASK, MASK, 4, 5]])
    plain = dllm(x).logits
    shifted = dream(x).logits
    assert torch.equal(shifted[:, 1:], plain[:, :-1]) and torch.equal(shifted[:, 0], plain[:, 0])
    # a left-padded row under the 4-D mask and content-only positions scores its answer as the
    # row alone does (position 2 reads the padding's shifted logits, as in Dream's own generate)
    am = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    alone = dream(x[:1, 2:]).logits[0]
    assert torch.allclose(dream(x, attention_mask=am).logits[0, 3:], alone[1:], atol=1e-5)
    x[0, :2] = dream.pad_id  # the same mask derived from the pad id
    assert torch.allclose(dream(x).logits[0, 3:], alone[1:], atol=1e-5)


def test_mask_id_must_exist_and_agree(dllm):
    cfg = dllm.model.config
    try:
        cfg.mask_token_id = None
        with pytest.raises(ValueError, match="mask_token_id"):
            HFMaskedLM(dllm.model, dllm.tokenizer)
        cfg.mask_token_id = 4
        tok = PreTrainedTokenizerFast(tokenizer_object=dllm.tokenizer.backend_tokenizer, mask_token="<|mdm_mask|>")
        with pytest.raises(ValueError, match="differs"):
            HFMaskedLM(dllm.model, tok)
    finally:
        cfg.mask_token_id = MASK
