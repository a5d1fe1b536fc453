"""The neural MI estimator: one small head, the whole (L, L) MI matrix from the hidden
states of the pass the decoder already runs (DESIGN.md section 3).

    a_i     = LayerNorm(W_in hidden_i)                      per position, (B, L, width)
    q_i^h   = W_q^h a_i,  k_i^h = W_k^h a_i                 H heads of width r
    s_ij^h  = <q_i^h, q_j^h> / sqrt(r)   (symmetric)        (B, L, L, H)
    t_ij^h  = <q_i^h, k_j^h> / sqrt(r)   (directed j -> i)
    MI_ij   = scale * expm1(softplus(MLP_mi(s_ij)))            symmetric, >= 0
    D[j->i] = sigmoid(MLP_tv([t_ji, t_ij]))                 DEMASK influence, in [0, 1]

Cost: O(L^2 H r) for the scores plus O(L^2 H m) for the per-pair MLPs, far below a model
pass for small H, r, m (see benchmarks/estimator.py). Outputs are zeroed on the diagonal
and on every pair touching an observed position; MI is symmetric and non-negative by
construction.

Target: the head predicts y = log1p(MI / scale) and is trained with MSE in that space:
MI labels span orders of magnitude (1e-6 .. 1 nats) with most mass near 0; the log
compresses the range so that the decisions the decoder takes (MI > eps, eps ~ 1e-3 .. 1e-1)
are all learnt, while large values are still ordered correctly.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "estimator.safetensors"


@dataclass
class EstimatorConfig:
    d_hidden: int = 128  # width of the frozen model's hidden states
    width: int = 64  # per-position projection width
    heads: int = 8  # pairwise score channels: expressiveness vs. O(L^2 H) cost
    rank: int = 16  # width of each head's query/key
    mlp: int = 16  # hidden units of the per-pair MLP
    scale: float = 0.01  # nats; target y = log1p(MI / scale)

    def __post_init__(self):
        for k in ("d_hidden", "width", "heads", "rank", "mlp"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")


class Estimator(nn.Module):
    """``estimator(hidden (B, L, D), masked (B, L) bool) -> {"mi": (B, L, L), "tv": (B, L, L)}``;
    ``estimator.mi(hidden, masked)`` returns the MI matrix alone (nats)."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.config = cfg
        self.inp = nn.Linear(cfg.d_hidden, cfg.width)
        self.ln = nn.LayerNorm(cfg.width)
        self.q = nn.Linear(cfg.width, cfg.heads * cfg.rank)
        self.k = nn.Linear(cfg.width, cfg.heads * cfg.rank)
        self.mi_mlp = nn.Sequential(nn.Linear(cfg.heads, cfg.mlp), nn.GELU(), nn.Linear(cfg.mlp, 1))
        self.tv_mlp = nn.Sequential(nn.Linear(2 * cfg.heads, cfg.mlp), nn.GELU(), nn.Linear(cfg.mlp, 1))

    def _pair_mask(self, masked):
        L = masked.shape[1]
        return masked[:, :, None] & masked[:, None, :] & ~torch.eye(L, dtype=torch.bool, device=masked.device)

    def forward(self, hidden: torch.Tensor, masked: torch.Tensor) -> dict:
        y, tv_logit = self.raw(hidden, masked)
        pair = self._pair_mask(masked)
        mi = self.config.scale * torch.expm1(y) * pair
        tv = torch.sigmoid(tv_logit) * pair
        return {"mi": mi, "tv": tv, "y": y * pair}

    def raw(self, hidden, masked):
        """(y, tv_logit): y = predicted log1p(MI/scale) >= 0, symmetric; tv_logit[b, j, i] for D[j->i]."""
        cfg = self.config
        B, L, _ = hidden.shape
        a = self.ln(self.inp(hidden.float()))  # (B, L, width)
        q = self.q(a).view(B, L, cfg.heads, cfg.rank).transpose(1, 2)  # (B, H, L, r)
        k = self.k(a).view(B, L, cfg.heads, cfg.rank).transpose(1, 2)
        s = (q @ q.transpose(-1, -2)) / math.sqrt(cfg.rank)  # (B, H, L, L) symmetric
        t = (k @ q.transpose(-1, -2)) / math.sqrt(cfg.rank)  # t[.., j, i] = <k_j, q_i>: j -> i
        y = F.softplus(self.mi_mlp(s.permute(0, 2, 3, 1)))[..., 0]  # (B, L, L)
        tv = self.tv_mlp(torch.cat([t, t.transpose(-1, -2)], 1).permute(0, 2, 3, 1))[..., 0]
        return y, tv

    def mi(self, hidden, masked):
        return self(hidden, masked)["mi"]

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (WEIGHTS_NAME + ".tmp")
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(tmp))
        tmp.replace(path / WEIGHTS_NAME)
        meta = {"kind": "mdmi.Estimator", "config": asdict(self.config), **(extra or {})}
        (path / CONFIG_NAME).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "Estimator":
        from safetensors.torch import load_file

        path = Path(path)
        for f in (CONFIG_NAME, WEIGHTS_NAME):
            if not (path / f).is_file():
                raise FileNotFoundError(f"estimator directory {path} has no {f}")
        meta = json.loads((path / CONFIG_NAME).read_text())
        if meta.get("kind") != "mdmi.Estimator":
            raise ValueError(f"{path / CONFIG_NAME} is not an mdmi.Estimator config (kind={meta.get('kind')!r})")
        est = cls(EstimatorConfig(**meta["config"]))
        state = load_file(str(path / WEIGHTS_NAME))
        own = est.state_dict()
        bad = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
        if bad or set(state) - set(own):
            raise ValueError(f"{path / WEIGHTS_NAME} does not match its config (bad or missing: {bad[:5]})")
        est.load_state_dict(state)
        est.meta = meta
        return est.eval()
