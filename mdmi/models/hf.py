"""Any Hugging Face masked LM (ESM-2, BERT) or diffusion LLM (LLaDA, Dream) as an mdmi model.

``HFMaskedLM(model, tokenizer)`` or ``HFMaskedLM.from_pretrained("facebook/esm2_t6_8M_UR50D")``
(also reached as ``mdmi.load("hf:<id or local dir>")``). One call = one forward pass with
``output_hidden_states=True``: logits over the model's whole vocabulary and
``hidden_states[-1]`` (None when the model returns no hidden states), both float32 and left
on the device where the model ran (callers move what they need).

The mask id is the tokenizer's ``mask_token_id``, else the config's (diffusion LLMs keep it
there); a model with neither is refused. Special tokens (``<cls>``, ``<eos>``, padding,
...) are reported by :meth:`fixed`, so every algorithm keeps them observed and leaves them
out of MI, decoding and likelihood. ``allowed`` restricts the tokens a masked position may
take (``"protein"``: the 20 standard amino acids); ``allow_eos`` lets a text model end an
answer with its EOS token (then EOS counts as content, not as a special).

Diffusion LLMs ship their modelling code beside the weights (``auto_map`` in config.json):
:meth:`HFMaskedLM.from_pretrained` runs it only when given ``trust_remote_code=True`` and
otherwise says so. A family whose forward pass differs from a plain masked LM is described
by a :class:`Convention` (Dream: logits shifted by one, a 4-D padding mask).

Padding: ``model(x, attention_mask=am)`` passes ``am`` (B, L), 0 on padding, to the model
(left-padded prompt batches); without it the mask is derived from the pad id, unless the
pad id is a token decoding may write (LLaDA pads with its EOS), which cannot mark padding.
A mask without padding is not passed at all (Dream's forward takes no 2-D mask).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..interface import ModelOutput

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
PRESETS = {"protein": list(AMINO_ACIDS)}
# auto classes tried, in order, for a model that brings its own code (LLaDA and Dream map
# only AutoModel; their AutoModel returns logits)
REMOTE_AUTO_CLASSES = ("AutoModelForMaskedLM", "AutoModel")


@dataclass(frozen=True)
class Convention:
    """How a model family's forward pass departs from a plain masked LM."""

    shift_logits: bool = False  # logits at i score token i + 1 (an AR-initialised dLLM): shifted right by one
    mask_4d: bool = False  # padding goes in as a (B, 1, L, L) bool mask plus position ids counting content only


PLAIN = Convention()
# by config.model_type; Dream's own generate shifts its logits and builds this mask
CONVENTIONS = {"Dream": Convention(shift_logits=True, mask_4d=True)}


def _require_transformers():
    try:
        import transformers  # noqa: F401
    except ImportError as e:
        raise ImportError("Hugging Face models need transformers: pip install 'mdmi[hf]'") from e


def _mask_id(tokenizer, config) -> int:
    """The tokenizer's mask id, else the config's; both set and different is an error."""
    tok = getattr(tokenizer, "mask_token_id", None)
    cfg = getattr(config, "mask_token_id", None)
    if tok is not None and cfg is not None and int(tok) != int(cfg):
        raise ValueError(f"the tokenizer's mask_token_id {tok} differs from the config's {cfg}")
    if tok is None and cfg is None:
        raise ValueError("neither the tokenizer nor the config has a mask_token_id; mdmi needs a masked model")
    return int(tok if tok is not None else cfg)


class HFMaskedLM:
    """A Hugging Face model (anything whose forward returns ``.logits``) as an mdmi model.

    model, tokenizer: the transformers objects; allowed: a preset name, a token list or None
    (every real non-special token); device, dtype: where and in what precision it runs;
    allow_eos: the tokenizer's EOS may fill a masked position (text answers); convention:
    the family's forward-pass conventions (default: looked up by ``config.model_type``).
    """

    def __init__(self, model, tokenizer, allowed: str | list[str] | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype | None = None, allow_eos: bool = False, convention: Convention | None = None):
        self.mask_id = _mask_id(tokenizer, model.config)
        self.model = model.to(device=device, dtype=dtype).eval() if dtype else model.to(device).eval()
        self.tokenizer = tokenizer
        self.device = device
        self.pad_id = tokenizer.pad_token_id
        eos = getattr(tokenizer, "eos_token_id", None)
        # the one special a masked position may take (text answers end with it)
        self.answer_eos = int(eos) if allow_eos and eos is not None else None
        self.vocab_size = int(model.config.vocab_size)
        self.convention = convention or CONVENTIONS.get(getattr(model.config, "model_type", ""), PLAIN)
        specials = set(tokenizer.all_special_ids) - {self.mask_id}
        limit = getattr(model.config, "max_position_embeddings", None)
        self.max_length = int(limit) if limit else None
        self.allowed = self._allowed(allowed, specials)
        # a special the decoder may write (EOS when allowed) is content, not fixed
        self.special_ids = torch.tensor(sorted(i for i in specials if not self._may_fill(i)), dtype=torch.long)

    def _may_fill(self, token_id: int | None) -> bool:
        return token_id is not None and 0 <= token_id < self.vocab_size and bool(self.allowed[token_id])

    def _allowed(self, allowed, specials: set[int]) -> torch.Tensor:
        if isinstance(allowed, str):
            if allowed not in PRESETS:
                raise ValueError(f"allowed preset {allowed!r} unknown; choose from {sorted(PRESETS)} or pass tokens")
            allowed = PRESETS[allowed]
        mask = torch.zeros(self.vocab_size, dtype=torch.bool)
        if allowed is None:
            mask[: len(self.tokenizer)] = True  # every real token of the tokenizer, but no special ...
            mask[torch.tensor(sorted(i for i in specials if i < self.vocab_size), dtype=torch.long)] = False
            if self.answer_eos is not None:
                mask[self.answer_eos] = True  # ... except the EOS that ends a text answer
            if 0 <= self.mask_id < self.vocab_size:
                mask[self.mask_id] = False
            return mask
        vocab = self.tokenizer.get_vocab()
        unknown = [t for t in allowed if t not in vocab]
        if unknown:
            raise ValueError(f"allowed tokens not in the tokenizer's vocabulary: {unknown}")
        mask[[vocab[t] for t in allowed]] = True
        return mask

    @classmethod
    def from_pretrained(cls, name_or_path: str, allowed: str | list[str] | None = None,
                        device: str | torch.device = "cpu", dtype: torch.dtype | str | None = None,
                        trust_remote_code: bool = False, allow_eos: bool | None = None) -> "HFMaskedLM":
        """Load a hub id or a local directory: AutoTokenizer + AutoModelForMaskedLM, or, for a
        model that brings its own code (a diffusion LLM), the first of
        ``REMOTE_AUTO_CLASSES`` its ``auto_map`` names, run only with ``trust_remote_code``.
        ``dtype`` e.g. ``torch.bfloat16`` (loaded in that dtype). ``allow_eos`` defaults to
        True for such models (text answers end with EOS), False for native masked LMs."""
        _require_transformers()
        import transformers
        from transformers import AutoTokenizer, PretrainedConfig

        if isinstance(dtype, str):
            dtype = getattr(torch, dtype)
        local = Path(name_or_path).expanduser()
        if not local.is_dir() and (name_or_path.startswith(("/", ".", "~")) or name_or_path.count("/") > 1):
            raise FileNotFoundError(f"hf:{name_or_path}: no such directory (a hub id looks like 'org/name')")
        config, _ = PretrainedConfig.get_config_dict(name_or_path)
        auto = cls._auto_class(name_or_path, config, trust_remote_code)
        remote = config.get("model_type") not in transformers.CONFIG_MAPPING
        tok = AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=trust_remote_code)
        model = getattr(transformers, auto).from_pretrained(name_or_path, trust_remote_code=trust_remote_code,
                                                            **({"dtype": dtype} if dtype else {}))
        if allowed is None and getattr(model.config, "model_type", "") in ("esm", "esmc"):
            allowed = "protein"
        return cls(model, tok, allowed=allowed, device=device, dtype=dtype,
                   allow_eos=remote if allow_eos is None else allow_eos)

    @staticmethod
    def _auto_class(name: str, config: dict, trust_remote_code: bool) -> str:
        """The transformers auto class that loads ``config``; a model type transformers does
        not know needs its own code, which runs only when the caller trusts it."""
        from transformers import CONFIG_MAPPING

        model_type = config.get("model_type")
        if model_type in CONFIG_MAPPING:
            return "AutoModelForMaskedLM"
        auto_map = config.get("auto_map") or {}
        if not auto_map:
            raise ValueError(f"hf:{name}: model type {model_type!r} is unknown to transformers and its config "
                             "names no code to load it (no auto_map)")
        if not trust_remote_code:
            raise ValueError(f"hf:{name}: model type {model_type!r} is not part of transformers; its config points "
                             f"at its own modelling code ({', '.join(sorted(auto_map))}). Loading it runs that code: "
                             "pass trust_remote_code=True (command line: --trust-remote-code) if you trust it")
        for auto in REMOTE_AUTO_CLASSES:
            if auto in auto_map:
                return auto
        raise ValueError(f"hf:{name}: its auto_map has none of {REMOTE_AUTO_CLASSES} (only {sorted(auto_map)})")

    def fixed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: special and padding tokens, never masked, filled or scored."""
        return torch.isin(x, self.special_ids.to(x.device))

    def _padding(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor | None:
        """(B, L) long, 0 on padding, or None when nothing is padding."""
        if attention_mask is None:
            if self.pad_id is None or self._may_fill(self.pad_id):
                return None  # no pad id, or one decoding may write: no sign of padding
            attention_mask = ids != self.pad_id
        attention_mask = attention_mask.to(ids.device).long()
        return None if bool(attention_mask.all()) else attention_mask

    def _mask_kwargs(self, attention_mask: torch.Tensor | None) -> dict:
        if attention_mask is None:
            return {}
        if not self.convention.mask_4d:
            return {"attention_mask": attention_mask}
        keep = attention_mask.bool()  # (B, L)
        return {"attention_mask": keep[:, None, None, :] & keep[:, None, :, None],  # (B, 1, L, L)
                "position_ids": (attention_mask.cumsum(-1) - 1).masked_fill(~keep, 1)}

    supports_attentions = True  # __call__(..., output_attentions=True); see _attention_pass

    def _attention_pass(self, ids: torch.Tensor, padding: dict):
        """One pass that returns attention probabilities: they need the eager attention (fused
        kernels return none), so the model switches to it for this pass and back after. An
        additive float mask replaces a 4-d bool one (eager attention adds the mask)."""
        impl = getattr(self.model.config, "_attn_implementation", "eager")
        if impl != "eager" and not hasattr(self.model, "set_attn_implementation"):
            raise ValueError(f"attention maps need eager attention; this model runs {impl!r} and its "
                             f"transformers version cannot switch (load it with attn_implementation='eager')")
        mask = padding.get("attention_mask")
        if mask is not None and mask.dim() == 4 and mask.dtype == torch.bool:
            dtype = next(self.model.parameters()).dtype
            padding = {**padding, "attention_mask": torch.zeros(mask.shape, dtype=dtype, device=mask.device)
                       .masked_fill(~mask, torch.finfo(dtype).min)}
        if impl != "eager":
            self.model.set_attn_implementation("eager")
        try:
            return self.model(input_ids=ids, output_hidden_states=True, output_attentions=True, **padding)
        finally:
            if impl != "eager":
                self.model.set_attn_implementation(impl)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 output_attentions: bool = False) -> ModelOutput:
        """One pass over ``x`` (B, L); ``attention_mask`` (B, L), 0 on padding, optional.
        Returns logits (B, L, V) and hidden (B, L, D) or None, on the model's device; with
        ``output_attentions`` also ``attentions`` (B, n_layers, L, L), each layer's
        attention probabilities averaged over heads (that pass runs eager attention; every
        layer's (B, H, L, L) maps are held at once, so large models need small batches)."""
        if self.max_length and x.shape[1] > self.max_length:
            raise ValueError(f"sequence length {x.shape[1]} exceeds the model's limit {self.max_length}")
        if attention_mask is not None and attention_mask.shape != x.shape:
            raise ValueError(f"attention_mask must be (B, L) = {tuple(x.shape)}, got {tuple(attention_mask.shape)}")
        ids = x.to(self.device)
        padding = self._mask_kwargs(self._padding(ids, attention_mask))
        if output_attentions:
            out = self._attention_pass(ids, padding)
        else:
            out = self.model(input_ids=ids, output_hidden_states=True, **padding)
        logits = out.logits  # (B, L, V)
        if self.convention.shift_logits:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        states = getattr(out, "hidden_states", None)
        hidden = states[-1].float() if states else None  # (B, L, D)
        maps = None
        if output_attentions:
            att = getattr(out, "attentions", None)
            if not att or any(a is None for a in att):
                raise ValueError(f"{type(self.model).__name__} returned no attention maps with output_attentions=True")
            maps = torch.stack([a.float().mean(1) for a in att], 1)  # (B, n_layers, L, L)
            if self.convention.shift_logits:  # query i's outputs are read at position i + 1
                # a query's attention to its own token is no dependence between two positions:
                # zeroed before the shift, where it would become an edge to the left neighbour
                maps = maps * (1 - torch.eye(maps.shape[-1], dtype=maps.dtype, device=maps.device))
                maps = torch.cat([maps[:, :, :1], maps[:, :, :-1]], dim=2)
        return ModelOutput(logits=logits.float(), hidden=hidden, attentions=maps)

    # ------------------------------------------------------------ text <-> ids

    def encode(self, seqs: list[str]) -> torch.Tensor:
        """Sequences (one character per token, e.g. proteins) -> (B, L) ids framed by the
        tokenizer's start (cls/bos) and end (eos/sep) tokens, right-padded with the pad id.
        A character the vocabulary does not hold raises ValueError."""
        start, end = self._frame()
        vocab = self.tokenizer.get_vocab()
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

    def _frame(self) -> tuple[int | None, int | None]:
        """The ids :meth:`encode` puts before (cls, else bos) and after (eos, else sep) a sequence."""
        t = self.tokenizer
        start = t.cls_token_id if t.cls_token_id is not None else t.bos_token_id
        end = t.eos_token_id if t.eos_token_id is not None else t.sep_token_id
        return start, end

    @property
    def max_residues(self) -> int | None:
        """The longest sequence :meth:`encode` takes, in residues: ``max_length`` less the
        start and end tokens (None: no limit)."""
        if not self.max_length:
            return None
        start, end = self._frame()
        return self.max_length - (start is not None) - (end is not None)

    def decode_tokens(self, x: torch.Tensor) -> list[str]:
        """(B, L) ids -> strings, special tokens dropped, masks shown as '#'."""
        out = []
        for row in x.tolist():
            toks = [("#" if t == self.mask_id else self.tokenizer.convert_ids_to_tokens(t))
                    for t in row if t not in set(self.special_ids.tolist())]
            out.append("".join(toks))
        return out
