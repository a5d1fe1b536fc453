"""Any Hugging Face masked LM (ESM-2, BERT, diffusion LLMs with an MLM head) as an mdmi model.

``HFMaskedLM(model, tokenizer)`` or ``HFMaskedLM.from_pretrained("facebook/esm2_t6_8M_UR50D")``
(also reached as ``mdmi.load("hf:<id or local dir>")``). One call = one forward pass with
``output_hidden_states=True``: logits over the model's whole vocabulary and
``hidden_states[-1]``. The tokenizer's mask id is the mask; special tokens (``<cls>``,
``<eos>``, padding, ...) are reported by :meth:`fixed`, so every algorithm keeps them
observed and leaves them out of MI, decoding and likelihood. ``allowed`` restricts the
tokens a masked position may take (``"protein"``: the 20 standard amino acids). Padded
batches get an attention mask. Outputs come back to the CPU in float32 whatever the
model's device and dtype.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..interface import ModelOutput

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
PRESETS = {"protein": list(AMINO_ACIDS)}


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise ImportError("Hugging Face models need transformers: pip install 'mdmi[hf]'") from e


class HFMaskedLM:
    def __init__(self, model, tokenizer, allowed: str | list[str] | None = None, device: str = "cpu",
                 dtype: torch.dtype | None = None):
        if tokenizer.mask_token_id is None:
            raise ValueError("the tokenizer has no mask token; mdmi needs a masked LM")
        self.model = model.to(device=device, dtype=dtype).eval() if dtype else model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.mask_id = int(tokenizer.mask_token_id)
        self.pad_id = tokenizer.pad_token_id
        self.vocab_size = int(model.config.vocab_size)
        special = sorted(set(tokenizer.all_special_ids) - {self.mask_id})
        self.special_ids = torch.tensor(special, dtype=torch.long)
        limit = getattr(model.config, "max_position_embeddings", None)
        self.max_length = int(limit) if limit else None
        self.allowed = self._allowed(allowed)

    def _allowed(self, allowed) -> torch.Tensor:
        if isinstance(allowed, str):
            if allowed not in PRESETS:
                raise ValueError(f"allowed preset {allowed!r} unknown; choose from {sorted(PRESETS)} or pass tokens")
            allowed = PRESETS[allowed]
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        if allowed is None:
            mask[: len(self.tokenizer)] = True  # every real token of the tokenizer ...
            mask[self.special_ids] = False  # ... but no special token
            mask[self.mask_id] = False
            return mask
        vocab = self.tokenizer.get_vocab()
        unknown = [t for t in allowed if t not in vocab]
        if unknown:
            raise ValueError(f"allowed tokens not in the tokenizer's vocabulary: {unknown}")
        mask[[vocab[t] for t in allowed]] = True
        return mask

    @classmethod
    def from_pretrained(cls, name_or_path: str, allowed: str | list[str] | None = None, device: str = "cpu",
                        dtype: torch.dtype | str | None = None, trust_remote_code: bool = False) -> "HFMaskedLM":
        """Load with AutoTokenizer + AutoModelForMaskedLM (a hub id or a local directory).
        ``trust_remote_code`` only when you pass it. ``dtype`` e.g. ``torch.bfloat16``."""
        _require_transformers()
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        local = Path(name_or_path).expanduser()
        if not local.is_dir() and (name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1):
            raise FileNotFoundError(f"hf:{name_or_path}: no such directory (a hub id looks like 'org/name')")
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = AutoModelForMaskedLM.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        if allowed is None and getattr(model.config, "model_type", "") in ("esm", "esmc"):
            allowed = "protein"
        return cls(model, tok, allowed=allowed, device=device, dtype=dtype)

    def fixed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: special and padding tokens, never masked, filled or scored."""
        return torch.isin(x, self.special_ids)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> ModelOutput:
        if self.max_length and x.shape[1] > self.max_length:
            raise ValueError(f"sequence length {x.shape[1]} exceeds the model's limit {self.max_length}")
        ids = x.to(self.device)
        attn = (ids != self.pad_id).long() if self.pad_id is not None else torch.ones_like(ids)
        out = self.model(input_ids=ids, attention_mask=attn, output_hidden_states=True)
        return ModelOutput(logits=out.logits.float().cpu(), hidden=out.hidden_states[-1].float().cpu())

    # ------------------------------------------------------------ text <-> ids

    def encode(self, seqs: list[str]) -> torch.Tensor:
        """Sequences (one character per token, e.g. proteins) -> (B, L) ids framed by the
        tokenizer's start (cls/bos) and end (eos/sep) tokens, right-padded with the pad id.
        A character the vocabulary does not hold raises ValueError."""
        t = self.tokenizer
        start = t.cls_token_id if t.cls_token_id is not None else t.bos_token_id
        end = t.eos_token_id if t.eos_token_id is not None else t.sep_token_id
        vocab = t.get_vocab()
        rows = []
        for n, s in enumerate(seqs):
            unknown = sorted({c for c in s if c not in vocab})
            if unknown:
                raise ValueError(f"sequence {n} has characters the tokenizer does not know: {unknown}")
            rows.append([start] * (start is not None) + [vocab[c] for c in s] + [end] * (end is not None))
        L = max(len(r) for r in rows)
        if self.max_length and L > self.max_length:
            raise ValueError(f"a sequence needs {L} tokens with specials; the model's limit is {self.max_length}")
        pad = self.pad_id if self.pad_id is not None else self.mask_id
        return torch.tensor([r + [pad] * (L - len(r)) for r in rows], dtype=torch.long)

    def decode_tokens(self, x: torch.Tensor) -> list[str]:
        """(B, L) ids -> strings, special tokens dropped, masks shown as '#'."""
        out = []
        for row in x.tolist():
            toks = [("#" if t == self.mask_id else self.tokenizer.convert_ids_to_tokens(t))
                    for t in row if t not in set(self.special_ids.tolist())]
            out.append("".join(toks))
        return out
