"""DAWN (Dependency-Aware fast inference, arXiv 2602.06953; code: github.com/silence1024/DAWN,
``llada/generate.py`` and ``llada/gdllm_utils.py``): fill together what the model's own
attention says does not conflict.

The rule, each step (c_i the confidence max_v p_i(v) of masked position i):

1. the attention graph ``A`` (:func:`~mdmi.selectors.signals.attention_graph`): the
   head-averaged attention of the last ``layers`` layers, sink columns (mean incoming
   attention > ``tau_sink / L``) and the diagonal zeroed; an edge j -> i where query i attends
   to key j with ``A[i, j] >= tau_edge``;
2. ``U_conf``: masked positions with ``c_i >= tau_high``;
3. ``U_induce``: the other masked positions with ``c_i >= tau_induce`` that have an edge
   from an anchor, a decoded position of the context that the model was sure of;
4. ``U_conflict``: the remaining masked positions with ``c_i >= tau_low`` that attend to
   nothing chosen in 2-3, taken greedily in confidence order as an independent set of the
   symmetric graph ``E or E^T`` (a candidate is skipped when it is joined to one taken);
5. fill ``U_conf | U_induce | U_conflict`` (the loop adds the top-1 when that is empty).

Where mdmi departs from the paper's code:
- anchors: DAWN re-reads the confidence of already-decoded positions from the current
  pass; mdmi's models are trained on masked positions only, so their outputs at decoded
  positions mean nothing. An anchor here is a decoded position (prompt included) whose
  token had probability >= ``tau_high`` when it was filled (``StepState.fill_logp``; an
  observed token counts as certain). As in DAWN, later blocks are no anchors.
- step 4 excludes candidates that attend to any position chosen in 2-3 (the paper's
  Algorithm 1); the code excludes only neighbours that are both anchors and confident.
- the independent set stops when no candidate is left (the code's loop can run past the
  candidates and write into position 0).
- the sink threshold is relative, ``tau_sink`` times the uniform share 1/L: DAWN's
  absolute 0.01 is about 3/L at its lengths (prompt + 256 tokens) and would mark every key
  a sink on sequences shorter than 100 (Sudoku's 81 cells, a CDR-infilled antibody);
- the paper's layers are the last 4 of LLaDA's 32; ``layers`` counts from the end of
  whatever model runs (all of them when it has fewer).
Defaults: the paper's LLaDA settings (tau_low 0.7 is its code default; Table 3 uses
0.70-0.80 per task).
"""

from __future__ import annotations

import torch

from .base import Selector, Step, StepState
from .signals import DAWN_LAYERS, DAWN_SINK, attention_graph
from .spec import Knob, check_knobs

_P = dict(lo=0.0, hi=1.0)


class DAWN(Selector):
    name = "dawn"
    summary = "confident positions, those an anchor induces, and an attention-graph independent set"
    source = "DAWN, arXiv 2602.06953 (github.com/silence1024/DAWN)"
    needs_attentions = True
    knobs = (
        Knob("tau_high", float, 0.9, "confidence filled outright; also what makes an anchor", **_P),
        Knob("tau_induce", float, 0.7, "confidence enough for a position an anchor points to", **_P),
        Knob("tau_low", float, 0.7, "least confidence of an independent-set candidate", **_P),
        Knob("tau_edge", float, 0.07, "attention weight that makes an edge", **_P),
        Knob("tau_sink", float, DAWN_SINK, "mean incoming attention, in multiples of 1/L, that marks a sink key "
             "(0: none)", lo=0.0),
        Knob("layers", int, DAWN_LAYERS, "last layers whose attention is averaged", lo=1),
    )

    def __init__(self, tau_high: float = 0.9, tau_induce: float = 0.7, tau_low: float = 0.7, tau_edge: float = 0.07,
                 tau_sink: float = DAWN_SINK, layers: int = DAWN_LAYERS):
        v = check_knobs(self, tau_high=tau_high, tau_induce=tau_induce, tau_low=tau_low, tau_edge=tau_edge,
                        tau_sink=tau_sink, layers=layers)
        self.tau_high, self.tau_induce, self.tau_low = float(v["tau_high"]), float(v["tau_induce"]), float(v["tau_low"])
        self.tau_edge, self.tau_sink, self.layers = float(v["tau_edge"]), float(v["tau_sink"]), int(v["layers"])

    def select(self, state: StepState) -> Step:
        if state.attentions is None:
            raise ValueError("dawn needs the pass's attention maps (StepState.attentions is None)")
        M = state.masked  # (B, L)
        c = state.confidence.masked_fill(~M, 0.0)
        A = attention_graph(state.attentions, self.layers, self.tau_sink, state.attention_mask)  # query i, key j
        edge = A >= self.tau_edge  # edge[b, i, j]: j -> i
        conf = M & (c >= self.tau_high)
        real = torch.ones_like(M) if state.attention_mask is None else state.attention_mask.bool()
        anchor = ~M & ~state.pending & real & (state.fill_logp.exp() >= self.tau_high)
        induced = M & ~conf & (c >= self.tau_induce) & (edge & anchor[:, None, :]).any(-1)
        chosen = conf | induced
        cand = M & ~chosen & (c >= self.tau_low) & ~(edge & chosen[:, None, :]).any(-1)
        conflict = (edge | edge.transpose(1, 2)) & cand[:, :, None] & cand[:, None, :]
        taken = torch.zeros_like(M)
        rows = torch.arange(M.shape[0], device=M.device)
        order = c.masked_fill(~cand, -1.0).argsort(dim=-1, descending=True, stable=True)  # (B, L)
        for r in range(int(cand.sum(1).max()) if cand.any() else 0):
            i = order[:, r]  # each row's r-th best candidate
            ok = cand[rows, i] & ~(conflict[rows, i] & taken).any(-1)
            taken[rows, i] |= ok
        return Step(fill=chosen | taken)

    def __repr__(self):
        return (f"DAWN(tau_high={self.tau_high}, tau_induce={self.tau_induce}, tau_low={self.tau_low}, "
                f"tau_edge={self.tau_edge}, tau_sink={self.tau_sink}, layers={self.layers})")
