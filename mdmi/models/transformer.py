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

    def forward(self, h):  # h: (B, L, D)
        B, L, D = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        # full bidirectional attention: (B, H, L, D/H)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, D))


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

    def forward(self, h):
        h = h + self.attn(self.ln1(h))
        return h + self.mlp(self.ln2(h))


class MaskedTransformer(nn.Module):
    """A masked model (see :mod:`mdmi.interface`): ``model(x) -> ModelOutput``.

    x: LongTensor (B, L) with ids in ``0..vocab_size`` (``vocab_size`` is the mask id).
    One call is one model pass (one NFE).
    """

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

    def forward(self, x: torch.Tensor) -> ModelOutput:
        B, L = x.shape
        if L > self.config.seq_len:
            raise ValueError(f"sequence length {L} exceeds the model's seq_len={self.config.seq_len}")
        if x.min() < 0 or x.max() > self.mask_id:
            raise ValueError(f"token ids must lie in 0..{self.mask_id}, got {int(x.min())}..{int(x.max())}")
        h = self.tok(x) + self.pos.weight[:L]  # (B, L, D)
        if self.config.grid:
            h = h + self.row(self.row_idx) + self.col(self.col_idx) + self.box(self.box_idx)
        for block in self.blocks:
            h = block(h)
        h = self.ln_f(h)  # (B, L, D): the hidden states the MI estimator reads
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
