"""Prompted text generation with a diffusion LLM: tokenizers, left-padded prompt batches
and :func:`generate`, the prompt -> answer path through the one decode loop.

A *text tokenizer* is any object with ``encode(text) -> list[int]``, ``decode(ids) ->
str``, ``eos_id`` and ``pad_id`` (the pad id must differ from the model's mask id). mdmi's
own transformer trained on text records a :class:`CharTokenizer` in its ``config.json``
(``"tokenizer": {"kind": "chars", ...}``); Hugging Face dLLMs bring their own
(:class:`HFTokenizer` wraps it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class CharTokenizer:
    """One token per character of ``chars``, then EOS and PAD; the model's mask id comes
    after them (``vocab_size = len(chars) + 2``)."""

    chars: str

    def __post_init__(self):
        if len(set(self.chars)) != len(self.chars) or not self.chars:
            raise ValueError(f"chars must be distinct and non-empty, got {self.chars!r}")
        self.index = {c: i for i, c in enumerate(self.chars)}

    @property
    def eos_id(self) -> int:
        return len(self.chars)

    @property
    def pad_id(self) -> int:
        return len(self.chars) + 1

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 2

    def encode(self, text: str) -> list[int]:
        bad = sorted({c for c in text if c not in self.index})
        if bad:
            raise ValueError(f"text {text!r} has characters outside the vocabulary: {''.join(bad)!r} "
                             f"(the model knows {self.chars!r})")
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        """Text up to the first EOS (PAD and unknown ids dropped)."""
        out = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if 0 <= i < len(self.chars):
                out.append(self.chars[i])
        return "".join(out)

    def to_dict(self) -> dict:
        return {"kind": "chars", "chars": self.chars}


class HFTokenizer:
    """A Hugging Face tokenizer as a text tokenizer (no special tokens added to prompts)."""

    def __init__(self, tok, pad_id: int | None = None):
        self.tok = tok
        self.eos_id = tok.eos_token_id
        self.pad_id = pad_id if pad_id is not None else (tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
        if self.eos_id is None:
            raise ValueError("the tokenizer has no EOS token (eos_token_id is None)")

    def encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if self.eos_id in ids:
            ids = ids[: ids.index(self.eos_id)]
        return self.tok.decode(ids, skip_special_tokens=True)


def tokenizer_of(model):
    """The text tokenizer a model brings: ``model.tokenizer`` (Hugging Face adapters) or the
    ``tokenizer`` recorded in an mdmi checkpoint's config. ValueError when it has none."""
    tok = getattr(model, "tokenizer", None)
    if tok is not None:
        return tok if hasattr(tok, "eos_id") else HFTokenizer(tok)
    spec = (getattr(model, "meta", None) or {}).get("tokenizer")
    if spec is None:
        raise ValueError("this model has no text tokenizer (an mdmi text checkpoint records one in config.json; "
                         "Hugging Face dLLMs bring their own)")
    if spec.get("kind") != "chars":
        raise ValueError(f"unknown tokenizer kind {spec.get('kind')!r}")
    return CharTokenizer(spec["chars"])


def prompt_batch(tokenizer, prompts: list[str], gen_length: int, mask_id: int, width: int = 0):
    """Left-padded ``[pad.. prompt, mask * gen_length]`` rows: x (B, L), attention_mask
    (B, L) with 0 on padding. Prompts are padded to the longest, or to ``width`` (a model
    trained on fixed-width prompts); the answers all start at ``L - gen_length``."""
    if gen_length < 1:
        raise ValueError(f"gen_length must be >= 1, got {gen_length}")
    if tokenizer.pad_id == mask_id:
        raise ValueError(f"the pad id {tokenizer.pad_id} equals the mask id: padding would be decoded")
    ids = [tokenizer.encode(p) for p in prompts]
    P = max([width, *map(len, ids)])
    x = torch.full((len(ids), P + gen_length), tokenizer.pad_id, dtype=torch.long)
    am = torch.zeros_like(x)
    for b, row in enumerate(ids):
        x[b, P - len(row): P] = torch.tensor(row, dtype=torch.long)
        am[b, P - len(row):] = 1
    x[:, P:] = mask_id
    return x, am


@dataclass
class Generation:
    """One prompt's answer: ``text`` (up to EOS), ``tokens`` (gen_length,) the generated ids,
    ``nfe`` model passes, ``eos_filled`` positions set to EOS without a pass."""

    prompt: str
    text: str
    tokens: list[int]
    nfe: int
    eos_filled: int

    @property
    def tokens_per_pass(self) -> float:
        """Positions the passes decided per pass (EOS padding filled for free excluded)."""
        return (len(self.tokens) - self.eos_filled) / max(1, self.nfe)


def generate(model, prompts: list[str], selector, gen_length: int = 32, block_length: int | None = None,
             steps_per_block: int | None = None, temperature: float = 0.0, generator=None,
             batch_size: int = 64, tokenizer=None, progress: bool = False,
             prefix_cache: bool = False) -> list[Generation]:
    """Answer every prompt with ``model`` and ``selector`` (see :func:`mdmi.decode` for the
    block, EOS and padding rules). Cost: sum of ``nfe`` passes."""
    from ..decode import decode

    tok = tokenizer if tokenizer is not None else tokenizer_of(model)
    # an mdmi text checkpoint was trained on prompts left-padded to a fixed width, padding
    # visible: decode it the same way; other models get an attention mask over the padding
    width = int(((getattr(model, "meta", None) or {}).get("tokenizer") or {}).get("prompt_width", 0))
    out: list[Generation] = []
    starts = range(0, len(prompts), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="generate", unit="batch")
    for s in starts:
        chunk = prompts[s: s + batch_size]
        x, am = prompt_batch(tok, chunk, gen_length, model.mask_id, width)
        # decode moves x and the mask to the model's device
        res = decode(model, x, selector, generator=generator, temperature=temperature, block_length=block_length,
                     steps_per_block=steps_per_block, eos_id=tok.eos_id, prefix_cache=prefix_cache,
                     attention_mask=None if width or bool(am.all()) else am)
        gen = res.tokens[:, -gen_length:].tolist()
        out += [Generation(p, tok.decode(g), g, int(n), int(e))
                for p, g, n, e in zip(chunk, gen, res.nfe.tolist(), res.eos_filled.tolist())]
    return out
