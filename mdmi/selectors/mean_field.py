"""Mean-field parallel decoding (Zoabi, Ali, Ringel, Wolf, arXiv 2606.15805): commit the
positions a mean-field fixed point of a pairwise energy keeps.

Over the masked positions S of the current block, with s in {0, 1}^|S| the commit set:

    P(s) ~ exp( sum_i c_i s_i - sum_{i != j} D_ij s_i s_j )

1. unary score ``c_i = log p_i(top 1) - log p_i(top 2)``, the logit gap;
2. interaction ``D_ij = 1 - JSD(p_i, p_j) / ln 2``
   (:func:`~mdmi.selectors.signals.js_interaction`): two positions that predict the same
   tokens are risky together; D is divided by its largest off-diagonal value in the row;
3. mean field: ``q = sigmoid(c)``, then ``rounds`` times ``q <- sigmoid(c - D q)``;
4. commit every i with ``q_i >= tau`` (the loop adds the top-1 when none passes).

The paper's code was not public when this was written (its repository answered 404); the
rule follows the paper's text as reproduced in github.com/vbsh123/dream-region-pilot
(``mean_field.py``): the update carries no factor 2, and ``tau = 0.9``, ``rounds = 2`` are
that reproduction's settings. mdmi departs in one place: the paper's active set is a
20-token window; here it is the current block (or the whole masked set without blocks).
"""

from __future__ import annotations

import torch

from .base import Selector, Step, StepState
from .signals import js_interaction
from .spec import Knob, check_knobs


class MeanField(Selector):
    name = "mean_field"
    summary = "commit where the mean-field fixed point of logit gaps minus JS interactions is >= tau"
    source = "Mean-field parallel decoding, arXiv 2606.15805"
    knobs = (
        Knob("tau", float, 0.9, "mean-field commit probability; lower fills more per step", lo=0.0, hi=1.0,
             lo_open=True),
        Knob("rounds", int, 2, "fixed-point iterations of q <- sigmoid(c - D q)", lo=0),
    )

    def __init__(self, tau: float = 0.9, rounds: int = 2):
        v = check_knobs(self, tau=tau, rounds=rounds)
        self.tau, self.rounds = float(v["tau"]), int(v["rounds"])

    def select(self, state: StepState) -> Step:
        M = state.masked  # (B, L)
        c = state.logit_gap.nan_to_num(posinf=1e4).masked_fill(~M, 0.0)  # one allowed token: certain
        D = js_interaction(state.log_probs, M)  # (B, L, L), 0 off the masked pairs
        D = D / D.amax((1, 2), keepdim=True).clamp_min(1e-12)
        q = torch.sigmoid(c)
        for _ in range(self.rounds):
            q = torch.sigmoid(c - (D @ (q * M)[..., None])[..., 0])
        return Step(fill=M & (q >= self.tau), pairwise=D)

    def __repr__(self):
        return f"MeanField(tau={self.tau}, rounds={self.rounds})"
