"""Our own masked diffusion model: a small bidirectional transformer.

Token + position embeddings (plus row/column/box embeddings for grid tasks such as Sudoku),
pre-LayerNorm blocks with full attention, a final LayerNorm and a linear head. There is no
hard-coded attention mask: which positions depend on which is learned, so the dependency
structure the MI tools show is the model's, not ours.

The model only maps tokens to logits and hidden states; it never decodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import check_types
from ..interface import ModelOutput
from ..persist import load_module, save_module

KIND = "mdmi.MaskedTransformer"


@dataclass
class MDMConfig:
    vocab_size: int = 9  # real tokens predicted; the mask id is vocab_size (one extra embedding)
    seq_len: int = 81  # maximum sequence length (learned position embeddings)
    grid: int = 0  # side of a square grid (9 for Sudoku) -> row/col/box embeddings; 0 = none
    d_model: int = 128  # width: capacity vs. CPU time per pass (~ d_model^2)
    n_layers: int = 6  # depth: more rounds of constraint propagation per pass, linear cost
    n_heads: int = 4  # attention heads; d_model must divide evenly
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * d_model
    dropout: float = 0.0  # unneeded with fresh augmented data every step

    def __post_init__(self):
        check_types(self)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.grid and self.grid * self.grid != self.seq_len:
            raise ValueError(f"grid={self.grid} needs seq_len={self.grid ** 2}, got {self.seq_len}")
        if self.grid and math.isqrt(self.grid) ** 2 != self.grid:
            raise ValueError(f"grid={self.grid} must be a perfect square (boxes)")


class SelfAttention(nn.Module):
    def __init__(self, cfg: MDMConfig):
        super().__init__()
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, h, keep=None, prefix=None, weights=False):
        """h (B, S, D) -> (B, S, D), and this call's keys and values, each (B, H, S, D/H).

        keep: (B, 1, 1, T) bool, the keys a query may attend to (T = P + S); None: all.
        prefix: (keys, values), each (B, H, P, D/H), of P earlier positions, attended to
        before this call's own (a prefix cache); None: none (P = 0).
        weights: also return the attention probabilities averaged over heads, (B, S, T)
        (written out, as SDPA does not return them; the same numbers up to rounding)."""
        B, S, D = h.shape
        q, k, v = self.qkv(h).view(B, S, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        kk, vv = (k, v) if prefix is None else (torch.cat([prefix[0], k], 2), torch.cat([prefix[1], v], 2))
        if weights:  # (B, H, S, T) probabilities, then the same product SDPA computes
            att = (q @ kk.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            if keep is not None:
                att = att.masked_fill(~keep, float("-inf"))
            att = att.softmax(-1)
            y = att @ vv
            return self.proj(y.transpose(1, 2).reshape(B, S, D)), (k, v), att.mean(1)
        # bidirectional attention: (B, H, S, D/H)
        y = F.scaled_dot_product_attention(q, kk, vv, attn_mask=keep, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, S, D)), (k, v)



class MLP(nn.Module):
    def __init__(self, cfg: MDMConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model)
        self.out = nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model)

    def forward(self, h):
        return self.out(F.gelu(self.fc(h)))


class Block(nn.Module):
    def __init__(self, cfg: MDMConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, h, keep=None, prefix=None, weights=False):
        """(B, S, D) -> (B, S, D), and the attention's keys and values (see SelfAttention);
        with ``weights`` also the head-averaged attention probabilities (B, S, T)."""
        a, kv, *att = self.attn(self.ln1(h), keep, prefix, weights)
        h = h + a
        return (h + self.mlp(self.ln2(h)), kv, *att)



def _attention_keep(real):
    """(B, T) bool real keys, or None -> the (B, 1, 1, T) mask attention takes, or None.
    A row with no real key at all attends to every key, so that its outputs stay finite."""
    if real is None:
        return None
    return (real | ~real.any(1, keepdim=True))[:, None, None, :]


@dataclass
class PrefixCache:
    """Each layer's attention keys and values at positions 0..prefix_len-1 of one pass
    (see :meth:`MaskedTransformer.prefix_cache`)."""

    keys: list[torch.Tensor]  # per layer, (B, H, P, D/H)
    values: list[torch.Tensor]  # per layer, (B, H, P, D/H)
    keep: torch.Tensor | None  # (B, P) bool, False on the prefix's padding; None: no padding
    prefix_len: int  # P

    def select(self, rows: torch.Tensor) -> "PrefixCache":
        """The cache of batch rows ``rows`` (indices or a (B,) bool mask), e.g. the
        sequences still unfinished."""
        return PrefixCache([k[rows] for k in self.keys], [v[rows] for v in self.values],
                           None if self.keep is None else self.keep[rows], self.prefix_len)


class MaskedTransformer(nn.Module):
    """A masked model
 (see :mod:`mdmi.interface`): ``model(x) -> ModelOutput``.

    x: LongTensor (B, L) with ids in ``0..vocab_size`` (``vocab_size`` is the mask id).
    One call is one model pass (one NFE).
    """

    supports_attentions = True  # forward(..., output_attentions=True) fills ModelOutput.attentions

    def __init__(self, cfg: MDMConfig):
        super().__init__()
        self.config = cfg
        self.vocab_size = cfg.vocab_size
        self.mask_id = cfg.vocab_size
        self.tok = nn.Embedding(cfg.vocab_size + 1, cfg.d_model)
        self.pos = nn.Embedding(cfg.seq_len, cfg.d_model)
        if cfg.grid:
            self.row = nn.Embedding(cfg.grid, cfg.d_model)
            self.col = nn.Embedding(cfg.grid, cfg.d_model)
            self.box = nn.Embedding(cfg.grid, cfg.d_model)
            idx = torch.arange(cfg.seq_len)
            r, c, b = idx // cfg.grid, idx % cfg.grid, math.isqrt(cfg.grid)
            self.register_buffer("row_idx", r, persistent=False)
            self.register_buffer("col_idx", c, persistent=False)
            self.register_buffer("box_idx", (r // b) * b + c // b, persistent=False)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        self.apply(self._init)
        for name, p in self.named_parameters():  # scaled init of residual projections (GPT-2)
            if name.endswith(("proj.weight", "out.weight")):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None,
                output_attentions: bool = False) -> ModelOutput:
        """x (B, L) -> logits (B, L, vocab_size) and hidden states (B, L, D); one pass.
        ``output_attentions``: also every layer's head-averaged attention probabilities,
        ``attentions`` (B, n_layers, L, L) (attention then runs written out, not fused).

        attention_mask: (B, L), 1 on real tokens, 0 on (left) padding; padded keys are
        never attended to, so a pad's id does not matter, and what comes out at a padded
        position is finite but meaningless. None (or all ones): no padding. Positions stay
        absolute, as in training: a row left-padded by p has its first real token at
        position p, so its outputs differ from the same row unpadded.
        """
        self._check_tokens(x, 0)
        keep = _attention_keep(self._key_padding(attention_mask, x.shape, "attention_mask"))
        h = self._embed(x, 0)  # (B, L, D)
        maps = []
        for block in self.blocks:
            h, _, *att = block(h, keep, weights=output_attentions)
            maps += att
        out = self._head(h)
        if output_attentions:
            out.attentions = torch.stack(maps, 1)  # (B, n_layers, L, L)
        return out

    def prefix_cache(self, x: torch.Tensor, prefix_len: int,
                     attention_mask: torch.Tensor | None = None) -> tuple[PrefixCache, ModelOutput]:
        """One full pass over x (B, L), keeping every layer's keys and values at the
        positions before ``prefix_len`` (0 <= prefix_len < L) for :meth:`forward_cached`.

        Returns (cache, the pass's output, the same as ``self(x, attention_mask)``), so the
        pass that builds the cache is also a decoding step's output. ``attention_mask``:
        as in :meth:`forward`; the cache keeps its prefix part. Cost: one pass, plus
        2 * n_layers * B * prefix_len * d_model floats of memory.
        """
        B, L = x.shape
        if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or not 0 <= prefix_len < L:
            raise ValueError(f"prefix_len must be an integer in 0..{L - 1} (L = {L}), got {prefix_len!r}")
        self._check_tokens(x, 0)
        pad = self._key_padding(attention_mask, x.shape, "attention_mask")
        keep, P = _attention_keep(pad), prefix_len
        h = self._embed(x, 0)
        keys, values = [], []
        for block in self.blocks:
            h, (k, v) = block(h, keep)[:2]
            keys.append(k[:, :, :P].contiguous())  # a copy, so the full pass's (B, L, 3D) is freed
            values.append(v[:, :, :P].contiguous())
        cache = PrefixCache(keys, values, None if pad is None else pad[:, :P], P)
        return cache, self._head(h)

    def forward_cached(self, x_suffix: torch.Tensor, cache: PrefixCache,
                       attention_mask: torch.Tensor | None = None) -> ModelOutput:
        """The outputs at positions P..P+S-1 only (P = ``cache.prefix_len``): x_suffix
        (B, S) -> logits (B, S, vocab_size), hidden (B, S, D).

        At every layer the suffix's queries, keys and values are computed fresh and attend
        to [the cached prefix keys/values; the suffix's own]; the prefix itself is not
        recomputed (the prefix cache of Fast-dLLM, Wu et al. 2025). Equal to
        ``self(x)[:, P:]`` up to float32 rounding when the cache was built on this very x;
        approximate once the suffix has changed since, because the cached prefix keys and
        values attended to the old suffix (attention is bidirectional).

        attention_mask: (B, S), 0 on suffix padding (None: none); the prefix's padding is
        the one the cache was built with. Cost: the linear layers and MLPs of S of the L
        positions, attention S x (P + S) instead of L x L.
        """
        B, S = x_suffix.shape
        P = cache.prefix_len
        if cache.keys[0].shape[0] != B:
            raise ValueError(f"x_suffix has {B} rows but the cache {cache.keys[0].shape[0]}")
        self._check_tokens(x_suffix, P)
        pad = self._key_padding(attention_mask, x_suffix.shape, "attention_mask (the suffix's)")
        if pad is not None or cache.keep is not None:  # (B, P + S): prefix keys, then suffix keys
            ones = torch.ones(B, P + S, dtype=torch.bool, device=x_suffix.device)
            pad = torch.cat([ones[:, :P] if cache.keep is None else cache.keep, ones[:, P:] if pad is None else pad], 1)
        keep = _attention_keep(pad)
        h = self._embed(x_suffix, P)  # (B, S, D)
        for block, k, v in zip(self.blocks, cache.keys, cache.values):
            h = block(h, keep, (k, v))[0]
        return self._head(h)

    def _check_tokens(self, x, start):
        """x (B, S) at positions start..start+S-1: within seq_len, ids in 0..mask_id."""
        S = x.shape[1]
        if start + S > self.config.seq_len:
            what = f"sequence length {S}" if start == 0 else f"prefix_len + suffix length = {start} + {S}"
            raise ValueError(f"{what} exceeds the model's seq_len={self.config.seq_len}")
        if x.min() < 0 or x.max() > self.mask_id:
            raise ValueError(f"token ids must lie in 0..{self.mask_id}, got {int(x.min())}..{int(x.max())}")

    @staticmethod
    def _key_padding(attention_mask, shape, name):
        """(B, S) 0/1 mask -> (B, S) bool, True on real tokens; None when nothing is padded
        (then attention runs unmasked, as without a mask: the same numbers, bit for bit)."""
        if attention_mask is None:
            return None
        if tuple(attention_mask.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(attention_mask.shape)}")
        if ((attention_mask != 0) & (attention_mask != 1)).any():
            raise ValueError(f"{name} must hold only 0 (padding) and 1 (real token)")
        real = attention_mask.bool()
        return None if real.all() else real

    def _embed(self, x, start):
        """x (B, S) at positions start..start+S-1 -> (B, S, D): token + absolute position
        (+ row/column/box) embeddings."""
        at = slice(start, start + x.shape[1])
        h = self.tok(x) + self.pos.weight[at]
        if self.config.grid:
            h = h + self.row(self.row_idx[at]) + self.col(self.col_idx[at]) + self.box(self.box_idx[at])
        return h

    def _head(self, h):
        h = self.ln_f(h)  # (B, S, D): the hidden states the MI estimator reads
        return ModelOutput(logits=self.head(h), hidden=h)


    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Write ``model.safetensors`` + ``config.json`` (plus the keys of ``extra``) to
        ``path``; see :func:`mdmi.persist.save_module`."""
        save_module(path, self, self.config, KIND, extra)

    @classmethod
    def load(cls, path: str | Path) -> "MaskedTransformer":
        """A directory written by :meth:`save` (``.meta``: its config.json); refused with the
        reason when files are missing or do not match (:func:`mdmi.persist.load_module`)."""
        return load_module(path, cls, MDMConfig, KIND, legacy=_matches_recorded_logits)


@torch.no_grad()
def _matches_recorded_logits(model: MaskedTransformer, recorded) -> bool:
    """The check older checkpoints carry in place of a fingerprint hash: eight logits on a
    fixed input (every third position masked) recorded at save. Computed in float64, so that
    a change far below float32 noise (a random-init model's attention is near uniform,
    whatever its head count) still shows, and rounding never does."""
    import copy

    L, V = model.config.seq_len, model.config.vocab_size
    x = torch.arange(L)[None] % V
    x[:, ::3] = model.mask_id
    got = copy.deepcopy(model).double().eval()(x).logits[0, :8, 0]
    try:
        want = torch.as_tensor(recorded, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):  # not a list of numbers
        return False
    return want.shape == got.shape and torch.allclose(got, want, rtol=1e-7, atol=1e-9)
