"""The model interface every mdmi algorithm is written against.

A *model* is any object with

- ``mask_id: int`` -- the token id that marks a hidden position;
- ``vocab_size: int`` -- the number of real tokens it predicts over; logit ``k`` scores
  token id ``k``. The mask id is never a prediction target; it may lie inside or outside
  ``0..vocab_size-1``;
- ``__call__(x: LongTensor (B, L)) -> ModelOutput`` -- one forward pass.

A model that can show its attention maps (the DAWN attention graph, the ``attention``
dependence source) declares ``supports_attentions = True`` and takes
``__call__(x, ..., output_attentions=True)``, returning ``ModelOutput.attentions``.

Optionally ``allowed: BoolTensor (vocab_size,)`` restricts the tokens a position may take
(Sudoku: all nine digits; proteins: the 20 amino acids of a larger vocabulary), and
``fixed: BoolTensor (B, L)`` -> see :func:`observed_fixed`; neither is required. A model
that reads residue strings is a :class:`ProteinModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch


@dataclass
class ModelOutput:
    """What one forward pass returns.

    logits: (B, L, vocab_size) unnormalised scores; logit k scores token id k.
    hidden: (B, L, D) final hidden states, or None if the model has none (an exact oracle).
    attentions: (B, n_layers, L, L) each layer's attention probabilities averaged over its
        heads (row i: how query i spreads over keys j), only when asked for with
        ``output_attentions=True``; else None.
    """

    logits: torch.Tensor
    hidden: torch.Tensor | None = None
    attentions: torch.Tensor | None = None


@runtime_checkable
class MaskedModel(Protocol):
    mask_id: int
    vocab_size: int

    def __call__(self, x: torch.Tensor) -> ModelOutput: ...


@runtime_checkable
class ProteinModel(MaskedModel, Protocol):
    """A masked LM over residue strings, one residue per token (the antibody LMs, ESM-2:
    :class:`mdmi.models.hf.HFMaskedLM`). Commands that read FASTA test for this, never for
    a model kind. The residues of row ``b`` of ``encode(seqs)`` sit, in order, at the
    positions :func:`scorable` keeps (start, end and padding tokens are ``fixed``)."""

    max_residues: int | None  # the longest sequence it takes, in residues (its token limit less start/end); None: any

    def encode(self, seqs: list[str]) -> torch.Tensor: ...  # (B, L) ids framed by start/end tokens, right-padded

    def decode_tokens(self, x: torch.Tensor) -> list[str]: ...  # (B, L) ids -> residue strings, specials dropped

    def fixed(self, x: torch.Tensor) -> torch.Tensor: ...  # (B, L) bool: start, end and padding tokens


@runtime_checkable
class PrefixCacheModel(Protocol):
    """A model that can reuse the keys and values of a finished prefix (the ``prefix_cache``
    option of :func:`mdmi.decode`): ``prefix_cache(x, P, attention_mask) -> (cache, output)``
    is one full pass that keeps positions < P; ``forward_cached(x[:, P:], cache,
    attention_mask[:, P:]) -> ModelOutput`` computes positions P.. only."""

    def prefix_cache(self, x: torch.Tensor, prefix_len: int, attention_mask: torch.Tensor | None = None): ...

    def forward_cached(self, x_suffix: torch.Tensor, cache, attention_mask: torch.Tensor | None = None): ...


def supports_attentions(model) -> bool:
    """Does ``model`` declare that it returns attention maps (``supports_attentions = True``)?"""
    return bool(getattr(model, "supports_attentions", False))


def model_device(model) -> torch.device | None:
    """Where ``model`` runs: its ``device`` attribute (Hugging Face adapters), else the
    device of its first parameter (a torch module), else None (no preference: an oracle)."""
    dev = getattr(model, "device", None)
    if dev is not None:
        return torch.device(dev)
    params = getattr(model, "parameters", None)
    if callable(params):
        first = next(iter(params()), None)
        if first is not None:
            return first.device
    return None


def allowed_tokens(model, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Bool mask over the vocabulary of tokens a masked position may take.

    Order of precedence: the explicit ``allowed`` argument, then ``model.allowed``, then
    every id in ``0..vocab_size-1`` except the mask id. Shape (V,) or (B, L, V).
    """
    if allowed is None:
        allowed = getattr(model, "allowed", None)
    if allowed is None:
        allowed = torch.ones(model.vocab_size, dtype=torch.bool)
        if 0 <= model.mask_id < model.vocab_size:
            allowed[model.mask_id] = False
    allowed = torch.as_tensor(allowed, dtype=torch.bool)
    if allowed.shape[-1] != model.vocab_size:
        raise ValueError(
            f"allowed has last dimension {allowed.shape[-1]}, expected vocab_size={model.vocab_size}"
        )
    if not bool(allowed.any(-1).all()):
        raise ValueError("allowed leaves some position with no token it may take")
    return allowed


def masked_log_probs(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """log-softmax over the allowed tokens only; disallowed tokens get -inf. (B, L, V).
    At least float32 (float64 stays float64, for exact oracles)."""
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32)).masked_fill(~allowed.to(logits.device), float("-inf"))
    return torch.log_softmax(logits, dim=-1)


def scorable(model, x: torch.Tensor) -> torch.Tensor:
    """Bool (B, L): positions that carry content (not the model's ``fixed`` special or
    padding tokens). Likelihoods score these; contexts mask only these."""
    fixed = getattr(model, "fixed", None)
    return torch.ones_like(x, dtype=torch.bool) if fixed is None else ~fixed(x)


def free_positions(model, x: torch.Tensor) -> torch.Tensor:
    """Bool (B, L): positions that are masked and may be filled.

    A model can keep some masked-looking positions out of play (padding, special tokens)
    by defining ``fixed(x) -> BoolTensor (B, L)``; those are never counted as masked.
    """
    return (x == model.mask_id) & scorable(model, x)
