"""Pretrained antibody masked LMs whose weights ship inside registry wheels (no hub).

- ``antiberty``: AntiBERTy (Ruffolo et al. 2021; ``pip install antiberty==0.1.3``, the
  only release with weights), a BERT masked LM (8 layers, 512 wide, 26M parameters) trained
  on 558M natural antibody sequences. Its checkpoint holds ``BertForMaskedLM`` weights
  (``bert.*``, ``cls.predictions.*``) beside unused species/chain/graft heads and a pooler.
- ``sapiens:vh`` / ``sapiens:vl``: Sapiens (Prihoda et al. 2022; ``pip install --no-deps
  sapiens==1.0.5``), fairseq RoBERTa-small masked LMs (4 layers, 128 wide) trained on 20M
  human heavy / light chains. fairseq is not needed: :func:`sapiens_state_dict` renames the
  fairseq tensors to ``RobertaForMaskedLM`` ones (same architecture: learned positions
  offset by the padding id, post-norm layers, GELU, an LM head of dense-GELU-LayerNorm-linear).

Both come back as :class:`~mdmi.models.hf.HFMaskedLM` with ``allowed`` the 20 amino acids,
so no algorithm knows which model it is. The packages are found with ``importlib`` and never
imported (Sapiens' own code imports fairseq); checkpoints load with ``weights_only=True``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
from pathlib import Path

import torch

from ..extras import EXTRAS
from .hf import HFMaskedLM, _require_transformers

INSTALL = {name: EXTRAS[name].install for name in ("antiberty", "sapiens")}
SAPIENS_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # fairseq Dictionary ids 0-3; <mask> comes last


def package_file(package: str, relative: str) -> Path:
    """A data file inside an installed package, found without importing the package.
    FileNotFoundError names the ``pip install`` line when the package or file is missing."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {package!r} package is not installed: {INSTALL[package]}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        version = importlib.metadata.version(package)
        raise FileNotFoundError(f"{package} {version} has no {relative} (this release ships no weights): "
                                f"{INSTALL[package]}")
    return path


class ResidueTokenizer:
    """The part of a Hugging Face tokenizer that :class:`HFMaskedLM` uses, for a fixed list
    of tokens (one residue per token). ``start`` / ``end`` frame every sequence."""

    def __init__(self, tokens: list[str], mask: str, pad: str, start: str, end: str, unk: str):
        self.tokens = list(tokens)
        self.vocab = {t: i for i, t in enumerate(self.tokens)}
        self.mask_token_id, self.pad_token_id = self.vocab[mask], self.vocab[pad]
        self.cls_token_id, self.eos_token_id = self.vocab[start], self.vocab[end]
        self.bos_token_id = self.sep_token_id = None
        self.all_special_ids = [self.vocab[t] for t in (mask, pad, start, end, unk)]

    def get_vocab(self) -> dict[str, int]:
        return dict(self.vocab)

    def convert_ids_to_tokens(self, i: int) -> str:
        return self.tokens[i]

    def __len__(self) -> int:
        return len(self.tokens)


def sapiens_state_dict(fairseq: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fairseq RoBERTa tensor names -> ``RobertaForMaskedLM`` names (no value changes; the
    single token-type embedding, which fairseq lacks, is zero)."""
    enc, out = "decoder.sentence_encoder.", {}
    layer_names = {"self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
                   "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
                   "self_attn_layer_norm": "attention.output.LayerNorm", "fc1": "intermediate.dense",
                   "fc2": "output.dense", "final_layer_norm": "output.LayerNorm"}
    top = {enc + "embed_tokens.weight": "roberta.embeddings.word_embeddings.weight",
           enc + "embed_positions.weight": "roberta.embeddings.position_embeddings.weight",
           enc + "emb_layer_norm.weight": "roberta.embeddings.LayerNorm.weight",
           enc + "emb_layer_norm.bias": "roberta.embeddings.LayerNorm.bias",
           "decoder.lm_head.weight": "lm_head.decoder.weight", "decoder.lm_head.bias": "lm_head.bias"}
    for k, v in fairseq.items():
        if k in top:
            out[top[k]] = v
        elif k.startswith("decoder.lm_head."):
            out["lm_head." + k[len("decoder.lm_head."):]] = v
        elif k.startswith(enc + "layers."):
            n, rest = k[len(enc + "layers."):].split(".", 1)
            module, param = rest.rsplit(".", 1)
            if module not in layer_names:
                raise ValueError(f"unexpected Sapiens tensor {k}")
            out[f"roberta.encoder.layer.{n}.{layer_names[module]}.{param}"] = v
        elif k.endswith("version"):
            continue
        else:
            raise ValueError(f"unexpected Sapiens tensor {k}")
    out["lm_head.decoder.bias"] = out["lm_head.bias"]
    d = out["roberta.embeddings.word_embeddings.weight"].shape[1]
    out["roberta.embeddings.token_type_embeddings.weight"] = torch.zeros(1, d)
    return out


def read_sapiens(chain: str) -> tuple[dict[str, torch.Tensor], argparse.Namespace, list[str]]:
    """The raw fairseq tensors, training arguments and token list of Sapiens ``vh``/``vl``."""
    if chain not in ("vh", "vl"):
        raise ValueError(f"Sapiens chain must be 'vh' or 'vl', got {chain!r}")
    path = package_file("sapiens", f"models/v1/checkpoint_{chain}.pt")
    symbols = [line.split()[0] for line in package_file("sapiens", "models/v1/dict.txt").read_text().splitlines()
               if line.strip()]
    # the checkpoint pickles its argparse Namespace; allow exactly that class, nothing else
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt["model"], ckpt["args"], SAPIENS_SPECIALS + symbols + ["<mask>"]


def load_sapiens(chain: str, **kwargs) -> HFMaskedLM:
    """Sapiens ``vh`` or ``vl`` as a ``RobertaForMaskedLM`` behind :class:`HFMaskedLM`.
    ``kwargs``: device, dtype (as for :meth:`HFMaskedLM.from_pretrained`)."""
    _require_transformers()
    from transformers import RobertaConfig, RobertaForMaskedLM

    tensors, a, tokens = read_sapiens(chain)
    cfg = RobertaConfig(vocab_size=len(tokens), hidden_size=a.encoder_embed_dim, num_hidden_layers=a.encoder_layers,
                        num_attention_heads=a.encoder_attention_heads, intermediate_size=a.encoder_ffn_embed_dim,
                        hidden_act=a.activation_fn, max_position_embeddings=a.max_positions + 2, type_vocab_size=1,
                        layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, tie_word_embeddings=False)
    if len(tokens) != tensors["decoder.sentence_encoder.embed_tokens.weight"].shape[0]:
        raise ValueError(f"Sapiens {chain}: dictionary has {len(tokens)} tokens, the weights another count")
    model = RobertaForMaskedLM(cfg)
    missing, unexpected = model.load_state_dict(sapiens_state_dict(tensors), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"Sapiens {chain} conversion: missing {missing}, unexpected {unexpected}")
    tok = ResidueTokenizer(tokens, mask="<mask>", pad="<pad>", start="<s>", end="</s>", unk="<unk>")
    m = HFMaskedLM(model, tok, allowed="protein", **_device_kwargs(kwargs))
    m.max_length = a.max_positions  # tokens, start and end included
    m.name, m.version = f"sapiens:{chain}", importlib.metadata.version("sapiens")
    return m


def load_antiberty(**kwargs) -> HFMaskedLM:
    """AntiBERTy as a ``BertForMaskedLM`` behind :class:`HFMaskedLM` (its vocabulary read by
    a ``BertTokenizer``). The species/chain/graft heads and the pooler are not used."""
    _require_transformers()
    from transformers import BertConfig, BertForMaskedLM, BertTokenizer

    weights = package_file("antiberty", "trained_models/AntiBERTy_md_smooth/pytorch_model.bin")
    meta = json.loads(weights.with_name("config.json").read_text())
    meta.update(architectures=["BertForMaskedLM"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    meta.pop("_name_or_path", None)
    model = BertForMaskedLM(BertConfig(**meta))
    tensors = torch.load(weights, map_location="cpu", weights_only=True)
    keep = {k: v for k, v in tensors.items() if k.startswith(("bert.", "cls.predictions."))
            and not k.startswith("bert.pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(keep, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(f"AntiBERTy: missing {missing}, unexpected {unexpected}")
    tok = BertTokenizer(str(package_file("antiberty", "trained_models/vocab.txt")), do_lower_case=False)
    m = HFMaskedLM(model, tok, allowed="protein", **_device_kwargs(kwargs))
    m.name, m.version = "antiberty", importlib.metadata.version("antiberty")
    return m


def _device_kwargs(kwargs: dict) -> dict:
    dtype = kwargs.get("dtype")
    return {"device": kwargs.get("device") or "cpu", "dtype": getattr(torch, dtype) if isinstance(dtype, str) else dtype}


def pretrained_ref(name: str) -> str:
    """How a pretrained model is recorded in specs and configs: name and package version,
    e.g. ``sapiens:vh (sapiens==1.0.5)``."""
    package = name.split(":")[0]
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the {package!r} package is not installed: {INSTALL[package]}") from None
    return f"{name} ({package}=={version})"


PRETRAINED = {
    "antiberty": load_antiberty,
    "sapiens:vh": lambda **kw: load_sapiens("vh", **kw),
    "sapiens:vl": lambda **kw: load_sapiens("vl", **kw),
}
