"""The neural MI estimator: one small head, the whole (L, L) MI matrix from the hidden
states of the pass the decoder already runs (DESIGN.md section 3).

    a_i      = LayerNorm(GELU(W_in hidden_i)), then a_i + GELU(W a_i)  (B, L, width)
    q_i, k_i = W_q a_i, W_k a_i                                     (B, L, rank)
    y_ij     = softplus(<q_i, diag(w) q_j> / sqrt(rank) + c_i + c_j + b)   symmetric, >= 0
    MI_ij    = scale * expm1(y_ij)                                  nats
    D[j->i]  = sigmoid(<k_j, q_i> / sqrt(rank) + e_j + f_i)         DEMASK influence, in [0, 1]

Everything pairwise is one batched matrix product plus elementwise work on (B, L, L), so
the head costs a few percent of a model pass (benchmarks/estimator.py); no per-pair MLP,
whose (B, L, L, m) activations cost more than the model itself on a CPU. Outputs are zero
on the diagonal and on every pair touching an observed position.

Target: the head predicts y = log1p(MI / scale) and is trained with MSE in that space:
MI labels span orders of magnitude (1e-6 .. 1 nats) with most mass near 0; the log
compresses the range so that the decisions the decoder takes (MI > eps, eps ~ 1e-3 .. 1e-1)
are all learnt, while large values are still ordered correctly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import check_types
from .mi import masked_pairs
from .persist import load_module, save_module

KIND = "mdmi.Estimator"
WEIGHTS_NAME = "estimator.safetensors"


@dataclass
class EstimatorConfig:
    d_hidden: int = 128  # width of the frozen model's hidden states
    width: int = 96  # per-position feature width
    rank: int = 64  # rank of the pairwise bilinear forms: expressiveness vs. O(L^2 rank) cost
    scale: float = 0.01  # nats; target y = log1p(MI / scale)
    prob_features: bool = False  # also read each position's entropy and top probabilities from the same pass

    def __post_init__(self):
        check_types(self)
        for k in ("d_hidden", "width", "rank"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k} must be >= 1, got {getattr(self, k)}")
        if self.scale <= 0:
            raise ValueError(f"scale must be > 0, got {self.scale}")


N_PROB_FEATURES = 4


def prob_features(log_probs: torch.Tensor) -> torch.Tensor:
    """(B, L, 4) cheap per-position features of the pass's marginals (log-probs over the
    allowed tokens, -inf allowed): entropy H, log(H + 1e-8), max p, log(1 - max p + 1e-8).
    The logs resolve the near-certain positions, where MI <= H is tiny."""
    from .mi import entropy

    lp = log_probs.float()
    h = entropy(lp).clamp_min(0)
    top = lp.amax(-1).exp()  # exp on (B, L) alone, not on (B, L, V)
    return torch.stack([h, torch.log(h + 1e-8), top, torch.log((1 - top).clamp_min(0) + 1e-8)], -1)


class EstimatorOutput(NamedTuple):
    """The head's outputs, each (B, L, L) and zero off the masked pairs."""

    mi: torch.Tensor  # nats, symmetric, >= 0
    tv: torch.Tensor  # tv[b, j, i] = D[j->i], the DEMASK influence, in [0, 1]
    y: torch.Tensor  # log1p(mi / scale), the space the head is trained in


class Estimator(nn.Module):
    """``estimator(hidden (B, L, D), masked (B, L) bool[, log_probs (B, L, V)]) ->
    EstimatorOutput(mi, tv, y)``; ``estimator.predict(hidden, masked, "mi")`` returns
    one output alone. ``log_probs`` (the same pass's marginals) is needed when the config
    has ``prob_features``."""

    def __init__(self, cfg: EstimatorConfig):
        super().__init__()
        self.config = cfg
        self.inp = nn.Linear(cfg.d_hidden, cfg.width)
        self.ln = nn.LayerNorm(cfg.width)
        self.mlp = nn.Linear(cfg.width, cfg.width)
        self.q = nn.Linear(cfg.width, cfg.rank)
        self.k = nn.Linear(cfg.width, cfg.rank)
        self.w = nn.Parameter(torch.ones(cfg.rank))
        self.bias = nn.Linear(cfg.width, 3)  # c_i (MI), e_j and f_i (influence)
        self.feat = nn.Linear(N_PROB_FEATURES, cfg.width) if cfg.prob_features else None
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, hidden: torch.Tensor, masked: torch.Tensor,
                log_probs: torch.Tensor | None = None) -> EstimatorOutput:
        y, tv_logit = self.raw(hidden, masked, self.features_of(log_probs))
        pair = masked_pairs(masked)
        mi = self.config.scale * torch.expm1(y) * pair
        tv = torch.sigmoid(tv_logit) * pair
        return EstimatorOutput(mi=mi, tv=tv, y=y * pair)

    def features_of(self, log_probs):
        """The per-position features this head reads from ``log_probs`` (None if it reads
        none or none were given; :meth:`_features` then says what is missing)."""
        return None if self.feat is None or log_probs is None else prob_features(log_probs)

    def _trunk(self, hidden, feats=None):
        """(B, L, width) per-position features ``a``."""
        dtype = self.inp.weight.dtype  # the head's own precision, whatever the model's (bf16 hidden states, say)
        z = self.inp(hidden.to(dtype))
        if self.feat is not None:
            if feats is None:
                raise ValueError("this estimator was trained with prob_features: pass log_probs (the same pass's marginals)")
            z = z + self.feat(feats.to(dtype))
        a = self.ln(F.gelu(z))  # (B, L, width)
        return a + F.gelu(self.mlp(a))

    def _features(self, hidden, feats=None):
        a = self._trunk(hidden, feats)
        return a, self.q(a), self.bias(a).unbind(-1)  # features, q (B, L, rank), (c, e, f) each (B, L)

    def _y(self, q, c):
        s = (q * self.w) @ q.transpose(1, 2) / math.sqrt(self.config.rank) + c[:, :, None] + c[:, None, :] + self.b
        return F.softplus(s)  # (B, L, L)

    def _mi_projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(weight (2 rank + 4, width), bias): one linear map from the features ``a`` to
        ``[lhs | rhs]`` with ``lhs = [q * w / sqrt(rank), c + k, 1]`` and ``rhs = [q, 1, c + k]``,
        ``k = (b + log scale) / 2``, so that ``lhs_i . rhs_j = s_ij + log scale``. Built from
        the parameters once and kept until one of them changes (training, load_state_dict)."""
        params = (self.q.weight, self.q.bias, self.bias.weight, self.bias.bias, self.w, self.b)
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in params)
        cached = getattr(self, "_projection", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            wq = self.w / math.sqrt(self.config.rank)
            k = (self.b + math.log(self.config.scale)) / 2
            wc, bc = self.bias.weight[:1], self.bias.bias[:1] + k
            zero, one = torch.zeros_like(wc), torch.ones_like(bc)
            weight = torch.cat([self.q.weight * wq[:, None], wc, zero, self.q.weight, zero, wc])
            bias = torch.cat([self.q.bias * wq, bc, one, self.q.bias, one, bc])
        self._projection = (key, (weight, bias))
        return weight, bias

    def _mi(self, a, masked):
        """MI = scale * expm1(softplus(s)) = scale * exp(s), as one linear map, one matrix
        product and one exp: the row and column terms ride in two extra columns of the
        factors, with log(scale) and b in them (:meth:`_mi_projection`); then rows and
        columns of observed positions and the diagonal are zeroed in place. On a small model
        such as Sapiens (4 layers of 128) the elementwise passes over (B, L, L) of the plain
        formula cost as much as the rest of the head, and on the text model (one pass of 32
        answers: 35 ms) each of the head's ops costs 10-70 us, so the head runs as few as it
        can. (Zeroing by a very negative row term instead is slower: exp's underflow path is
        15x its normal one.) Not differentiable: training goes through :meth:`raw`."""
        weight, bias = self._mi_projection()
        r = self.config.rank + 2
        m = masked.to(a.dtype)[..., None]  # (B, L, 1)
        # observed rows of both factors zeroed first, so their exp is 1 (never inf) before the
        # multiplies by the mask zero them: two multiplies cost a quarter of two masked_fill_
        lr = F.linear(a, weight, bias).mul_(m)  # (B, L, 2 rank + 4)
        mi = torch.bmm(lr[..., :r], lr[..., r:].transpose(1, 2)).exp_()  # (B, L, L)
        mi.mul_(m).mul_(m.transpose(1, 2))
        mi.diagonal(dim1=1, dim2=2).zero_()
        return mi

    def _tv_logit(self, a, q, e, f):
        return self.k(a) @ q.transpose(1, 2) / math.sqrt(self.config.rank) + e[:, :, None] + f[:, None, :]

    def raw(self, hidden, masked, feats=None):
        """(y, tv_logit): y = predicted log1p(MI/scale) >= 0, symmetric; tv_logit[b, j, i] for D[j->i].
        ``feats``: :func:`prob_features` of the pass, when the config reads them."""
        a, q, (c, e, f) = self._features(hidden, feats)
        return self._y(q, c), self._tv_logit(a, q, e, f)

    def predict(self, hidden: torch.Tensor, masked: torch.Tensor, kind: str = "mi",
                log_probs: torch.Tensor | None = None, feats: torch.Tensor | None = None) -> torch.Tensor:
        """One output, computing only what it needs: "mi" (nats) or "tv" (DEMASK influence).
        This is what the decoder pays per step. ``feats``: precomputed :func:`prob_features`
        instead of ``log_probs``."""
        if hidden is None or hidden.shape[-1] != self.config.d_hidden:
            got = "no hidden states" if hidden is None else f"{hidden.shape[-1]} hidden features"
            owner = getattr(self, "meta", {}).get("model", "another model")
            raise ValueError(f"this estimator reads {self.config.d_hidden} hidden features and the model gives {got}: "
                             f"it was trained for {owner}")
        if kind not in ("mi", "tv"):
            raise ValueError(f"kind must be 'mi' or 'tv', got {kind!r}")
        feats = feats if feats is not None else self.features_of(log_probs)
        if kind == "mi":
            return self._mi(self._trunk(hidden, feats), masked)
        a, q, (c, e, f) = self._features(hidden, feats)
        return torch.sigmoid(self._tv_logit(a, q, e, f)) * masked_pairs(masked)

    def mi(self, hidden, masked, log_probs=None):
        return self.predict(hidden, masked, "mi", log_probs)

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Write ``estimator.safetensors`` + ``config.json`` (plus the keys of ``extra``) to
        ``path``; see :func:`mdmi.persist.save_module`."""
        save_module(path, self, self.config, KIND, extra, weights_name=WEIGHTS_NAME)

    @classmethod
    def load(cls, path: str | Path) -> "Estimator":
        """A directory written by :meth:`save` (``.meta``: its config.json); refused with the
        reason when files are missing or do not match (:func:`mdmi.persist.load_module`)."""
        return load_module(path, cls, EstimatorConfig, KIND, weights_name=WEIGHTS_NAME)
