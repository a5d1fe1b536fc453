"""PC-Sampler, position-aware calibrated confidence (Huang et al. 2025, "PC-Sampler:
Position-Aware Calibration of Decoding Bias in Masked Diffusion Models"; code:
NEUIR/PC-Sampler, ``pc_sampler_function``).

Rule: score each masked position i by

    s_i = exp(-lam * r_i) * min(alpha, -p_i(v_i) * log f(v_i))

with v_i the most likely token, p_i(v_i) its probability, f a background frequency of
tokens and r_i the position's rank among the positions masked at the start (0, 1, 2, ...
in sequence order); fill the ``k`` best. The log-frequency factor calibrates confidence:
tokens that are frequent everywhere (trivially confident) score lower; the exponential
favours early positions (``lam = 0`` turns it off).

Differences, stated: the paper estimates f from a text corpus; mdmi has no corpus for every
model, so f is uniform over the allowed tokens unless a ``background`` (V,) tensor is
given (then positions are calibrated per token), and r counts masked positions, not
absolute ones (the same for a fully masked sequence).
"""

from __future__ import annotations

import torch

from .base import Selector, StepState
from .spec import Knob


class PCSampler(Selector):
    name = "pc_sampler"
    summary = "the k best by position-weighted, frequency-calibrated confidence"
    source = "PC-Sampler, Huang et al. 2025 (code: NEUIR/PC-Sampler)"
    knobs = (
        Knob("k", int, 2, "positions per step", lo=1),
        Knob("lam", float, 0.0, "decay favouring early positions (0 = off)", lo=0.0),
        Knob("alpha", float, 10.0, "clip of the calibrated score", lo=0.0, lo_open=True),
    )
    wiring = ("background",)

    def __init__(self, k: int = 2, lam: float = 0.0, alpha: float = 10.0, background: torch.Tensor | None = None):
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a positive integer, got {k}")
        if lam < 0 or alpha <= 0:
            raise ValueError(f"lam must be >= 0 and alpha > 0, got lam={lam}, alpha={alpha}")
        if background is not None and (background.dim() != 1 or not bool((background > 0).all())):
            raise ValueError("background must be a (V,) tensor of positive token frequencies")
        self.k, self.lam, self.alpha = int(k), float(lam), float(alpha)
        self.background = background

    def score(self, state: StepState) -> torch.Tensor:
        """(B, L) the calibrated, position-weighted score; -inf off the masked positions."""
        conf, tok = state.probs.max(-1)  # (B, L)
        if self.background is None:
            n_allowed = torch.isfinite(state.log_probs).sum(-1).clamp_min(2).double()  # (B, L)
            neg_log_f = n_allowed.log()
        else:
            neg_log_f = -self.background.double().log()[tok]
        calibrated = (conf.double() * neg_log_f).clamp(max=self.alpha)
        rank = state.start_masked.long().cumsum(1) - 1  # rank among the positions masked at the start
        s = torch.exp(-self.lam * rank.double()) * calibrated
        return s.masked_fill(~state.masked, float("-inf"))

    def select(self, state: StepState) -> torch.Tensor:
        best = self.score(state).argsort(dim=-1, descending=True, stable=True)[:, : self.k]
        return torch.zeros_like(state.masked).scatter(1, best, True) & state.masked

    def __repr__(self):
        return f"PCSampler(k={self.k}, lam={self.lam}, alpha={self.alpha})"
