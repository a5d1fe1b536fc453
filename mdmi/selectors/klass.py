"""KLASS, KL-Adaptive Stability Sampling (Kim, Hong, Jung, Park, Yun; NeurIPS 2025,
arXiv 2511.05664; code: shkim0116/KLASS, ``stable_confident_decode``).

Rule: fill every masked position that is both confident, ``max_v p_i(v) > tau``, and
stable, ``KL(p_i^(t) || p_i^(t-1)) < eps`` at each of the last ``history`` steps; when no
position qualifies, the loop's fallback fills the single most confident one. Since the
first step has no previous marginal, nothing is stable before step ``history``: decoding
always starts one position at a time.

Differences from the paper's code, stated: there the fallback fills a fixed number of
positions per step from a step schedule (LLaDA's ``num_transfer_tokens``) and decoding runs
in semi-autoregressive blocks; here the fallback is one position (our loop's progress rule)
and there are no blocks. KL is computed over the allowed tokens only.
"""

from __future__ import annotations

import torch

from .base import Selector, StepState
from .spec import Knob


class KLASS(Selector):
    name = "klass"
    summary = "every position both confident (max p > tau) and stable (KL < eps over history steps)"
    source = "KLASS, arXiv 2511.05664 (code: shkim0116/KLASS)"
    uses_history = True  # the loop keeps the last step's marginals for us
    knobs = (
        Knob("tau", float, 0.9, "confidence threshold", lo=0.0, hi=1.0, hi_open=True),
        Knob("eps", float, 0.01, "KL (nats) under which a marginal counts as stable", lo=0.0, lo_open=True),
        Knob("history", int, 2, "steps a marginal must stay stable", lo=1),
    )

    def __init__(self, tau: float = 0.9, eps: float = 0.01, history: int = 2):
        if not 0 <= tau < 1:
            raise ValueError(f"tau must lie in [0, 1), got {tau}")
        if eps <= 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if int(history) != history or history < 1:
            raise ValueError(f"history must be a positive integer, got {history}")
        self.tau, self.eps, self.history = float(tau), float(eps), int(history)

    def kl_step(self, state: StepState) -> torch.Tensor:
        """(B, L) KL(p^(t) || p^(t-1)) in nats; +inf at the first step."""
        if state.prev_log_probs is None:
            return torch.full(state.masked.shape, float("inf"), device=state.masked.device)
        p, lp, lq = state.probs, state.log_probs, state.prev_log_probs
        return (p * (lp - lq)).masked_fill(p == 0, 0.0).sum(-1).clamp_min(0.0)

    def select(self, state: StepState) -> torch.Tensor:
        kl = self.kl_step(state)  # (B, L)
        B, L = state.masked.shape
        hist = state.memory.get("klass_history")  # (B_all, L, history), by original row
        if hist is None:
            n = int(state.rows.max()) + 1 if len(state.rows) else 0
            hist = torch.full((n, L, self.history), float("inf"), device=state.masked.device)
            state.memory["klass_history"] = hist
        h = torch.cat([hist[state.rows, :, 1:], kl[..., None]], dim=-1)  # shift in this step's KL
        hist[state.rows] = h
        stable = (h < self.eps).all(-1)
        return state.masked & stable & (state.confidence > self.tau)

    def __repr__(self):
        return f"KLASS(tau={self.tau}, eps={self.eps}, history={self.history})"
