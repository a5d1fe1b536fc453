"""Our own masked diffusion model: a small bidirectional transformer.

Token + position embeddings (plus row/column/box embeddings for grid tasks such as Sudoku),
pre-LayerNorm blocks with full attention, a final LayerNorm and a linear head. There is no
hard-coded attention mask: which positions depend on which is learned, so the dependency
structure the MI tools show is the model's, not ours.

The model only maps tokens to logits and hidden states; it never decodes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import check_types
from ..files import read_json, read_safetensors
from ..interface import ModelOutput

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


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

    @classmethod
    def from_dict(cls, d: dict) -> "MDMConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown MDMConfig fields {sorted(unknown)}")
        return cls(**d)


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

    @torch.no_grad()
    def fingerprint(self) -> list[float]:
        """Eight logits on a fixed input (every third position masked): recorded at save
        and checked at load, so a config edited after training (say ``n_heads``, which no
        weight shape shows) is refused instead of giving wrong outputs."""
        import copy

        L, V = self.config.seq_len, self.config.vocab_size
        x = torch.arange(L)[None] % V
        x[:, ::3] = self.mask_id
        # in float64, so that a change far below float32 noise (a random-init model's attention
        # is near uniform, whatever its head count) still shows, and rounding never does
        out = copy.deepcopy(self).double().eval()(x).logits[0, :8, 0]
        return [float(v) for v in out]

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Write ``model.safetensors`` + ``config.json`` (plus ``extra`` keys) to ``path``."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        tmp = path / (WEIGHTS_NAME + ".tmp")
        save_file(state, str(tmp))
        tmp.replace(path / WEIGHTS_NAME)
        meta = {"kind": "mdmi.MaskedTransformer", "config": asdict(self.config), **(extra or {}),
                "fingerprint": self.fingerprint()}
        (path / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "MaskedTransformer":
        """Load a directory written by :meth:`save`; clear errors for missing or wrong files."""
        path = Path(path)
        cfg_file, w_file = path / CONFIG_NAME, path / WEIGHTS_NAME
        for f in (cfg_file, w_file):
            if not f.is_file():
                raise FileNotFoundError(f"model directory {path} has no {f.name}")
        meta = read_json(cfg_file)
        if meta.get("kind") != "mdmi.MaskedTransformer":
            raise ValueError(f"{cfg_file} is not an mdmi.MaskedTransformer config (kind={meta.get('kind')!r})")
        model = cls(MDMConfig.from_dict(meta["config"]))
        state = read_safetensors(w_file)
        own = model.state_dict()
        bad = [k for k in own if k in state and state[k].shape != own[k].shape]
        missing, unexpected = set(own) - set(state), set(state) - set(own)
        if bad or missing or unexpected:
            detail = [f"{k}: file {tuple(state[k].shape)} vs config {tuple(own[k].shape)}" for k in bad]
            raise ValueError(
                f"checkpoint {w_file} does not match its config: "
                + "; ".join(detail + [f"missing {sorted(missing)}"] * bool(missing)
                            + [f"unexpected {sorted(unexpected)}"] * bool(unexpected))
            )
        model.load_state_dict(state)
        want = meta.get("fingerprint")
        if want is not None and not torch.allclose(torch.tensor(model.fingerprint()), torch.tensor(want), rtol=1e-7, atol=1e-9):
            raise ValueError(f"{cfg_file} no longer describes the weights in {w_file.name}: their outputs on a fixed "
                             f"input differ from those recorded at save (was the config edited?)")
        model.meta = meta
        return model.eval()
