"""Free dependence signals: pairwise matrices that cost no label set and no trained head.

Each is a pairwise source (see :mod:`mdmi.selectors.pairwise`) that the MI-guided rules
(``mi_budget``, ``dependency_bound``, ``mi_gate``) take in place of the MI head
(``pairwise="attention" | "js" | "similarity"``), and a plain function that the papers' own
rules (:mod:`~mdmi.selectors.dawn`, :mod:`~mdmi.selectors.mean_field`) and
``benchmarks/dependence.py`` call. None of them is MI: each is a proxy whose ranking of
pairs ``benchmarks/dependence.py`` measures against the model's exact MI.

- :func:`attention_dependence` (DAWN, arXiv 2602.06953): the model's attention between two
  positions, averaged over heads and the last layers, attention sinks removed,
  symmetrised by the larger direction. Needs a model with ``supports_attentions``; costs
  the written-out attention of the pass.
- :func:`js_interaction` (mean-field parallel decoding, arXiv 2606.15805):
  ``1 - JSD(p_i, p_j) / ln 2`` between two positions' marginals: high when they predict the
  same tokens. Costs O(M^2 V) per row from the marginals.
- :func:`marginal_similarity` (dllm-reason's ``adaptive_dynamic`` scheduler, "a proxy for
  mutual information"): cosine similarity of the two marginals, clamped at 0. O(M^2 V).

Every matrix is (B, L, L) float64, symmetric, zero on the diagonal and outside pairs of
masked positions. A rule that reads a directed statistic (``dependency_bound``, DEMASK's
influence ``D[j->i]``) reads the symmetric signal in both directions, so its ``tau`` is on
the signal's own scale.
"""

from __future__ import annotations

import math

import torch

from ..mi import entropy_of_probs
from .base import StepState

SIGNALS = ("attention", "js", "similarity")
DAWN_LAYERS = 4  # DAWN averages the last 4 layers (of LLaDA's 32)
# a key whose mean incoming attention exceeds this many times the uniform share 1/L (whose
# summed incoming attention exceeds this) is a sink;
# DAWN's absolute 0.01 is about 3/L at LLaDA's lengths (a prompt + 256), and on shorter
# sequences an absolute 0.01 would call every key a sink (1/L > 0.01 for L < 100)
DAWN_SINK = 3.0


def _pairs(m: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """m (B, L, L) -> float64, zero on the diagonal and outside masked x masked."""
    masked = masked.to(m.device)
    keep = masked[:, :, None] & masked[:, None, :]
    keep &= ~torch.eye(m.shape[-1], dtype=torch.bool, device=m.device)
    return m.double().masked_fill(~keep, 0.0)


def attention_graph(attentions: torch.Tensor, layers: int = DAWN_LAYERS, sink: float = DAWN_SINK,
                    real: torch.Tensor | None = None) -> torch.Tensor:
    """DAWN's attention proxy, directed: (B, n_layers, L, L) head-averaged attention ->
    (B, L, L) ``A[i, j]``, how much query i attends to key j.

    1. the mean over the last ``layers`` layers (all of them if the model has fewer);
    2. sinks removed: a key j whose mean incoming attention ``mean_i A[i, j]`` exceeds
       ``sink / n`` (``sink`` times the uniform share; n the real positions of the row,
       ``real`` (B, L) bool, default all L), i.e. whose summed incoming attention exceeds
       ``sink``, gets its column zeroed (0: keep every column);
    3. the diagonal, padded queries and padded keys zeroed."""
    if attentions.dim() != 4:
        raise ValueError(f"attentions must be (B, n_layers, L, L), got shape {tuple(attentions.shape)}")
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    a = attentions[:, -layers:].double().mean(1)  # (B, L, L)
    L = a.shape[-1]
    real = torch.ones(a.shape[:2], dtype=torch.bool, device=a.device) if real is None else real.to(a.device).bool()
    a = a * (real[:, :, None] & real[:, None, :])
    if sink > 0:  # mean over the n real queries > sink / n  <=>  summed incoming attention > sink
        a = a.masked_fill((a.sum(1) > sink)[:, None, :], 0.0)
    return a * (1 - torch.eye(L, dtype=a.dtype, device=a.device))


def attention_dependence(attentions: torch.Tensor, masked: torch.Tensor, layers: int = DAWN_LAYERS,
                         sink: float = DAWN_SINK, real: torch.Tensor | None = None) -> torch.Tensor:
    """(B, L, L) ``max(A[i, j], A[j, i])`` of :func:`attention_graph` over masked pairs
    (DAWN's conflict edges are the symmetric closure of its directed ones)."""
    a = attention_graph(attentions, layers, sink, real)
    return _pairs(torch.maximum(a, a.transpose(1, 2)), masked)


def js_interaction(log_probs: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """(B, L, L) ``1 - JSD(p_i, p_j) / ln 2`` in [0, 1] over masked pairs, from the
    log-marginals (B, L, V): ``JSD = H((p_i + p_j) / 2) - (H(p_i) + H(p_j)) / 2`` (nats).
    Cost O(M^2 V) time; the pair mixtures are built a few rows of pairs at a time, so memory
    stays near ``JS_CHUNK`` floats whatever the vocabulary."""
    p = log_probs.double().exp()  # (B, L, V)
    h = entropy_of_probs(p)  # (B, L)
    out = torch.zeros(p.shape[:2] + p.shape[1:2], dtype=torch.float64, device=p.device)
    for b in range(p.shape[0]):
        idx = masked[b].nonzero().squeeze(1)
        q, hq = p[b, idx], h[b, idx]  # (M, V), (M,)
        step = max(1, JS_CHUNK // max(1, q.numel()))
        for s in range(0, len(idx), step):
            jsd = entropy_of_probs((q[s:s + step, None] + q[None]) / 2) - (hq[s:s + step, None] + hq[None]) / 2  # (c, M)
            out[b, idx[s:s + step, None], idx[None]] = (1 - jsd / math.log(2)).clamp(0, 1)
    return _pairs(out, masked)


JS_CHUNK = 2 ** 24  # floats of pair mixtures held at once by js_interaction



def marginal_similarity(log_probs: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """(B, L, L) cosine similarity of the two marginals (probability vectors), clamped at 0,
    over masked pairs."""
    p = torch.nn.functional.normalize(log_probs.double().exp(), dim=-1)  # (B, L, V)
    return _pairs((p @ p.transpose(1, 2)).clamp_min(0), masked)


class AttentionPairwise:
    """``pairwise="attention"``: :func:`attention_dependence` of the same pass (the loop
    asks the model for attention maps, no extra pass)."""

    needs_attentions = True

    def __init__(self, layers: int = DAWN_LAYERS, sink: float = DAWN_SINK):
        if layers < 1 or sink < 0:
            raise ValueError(f"layers must be >= 1 and sink >= 0, got layers={layers}, sink={sink}")
        self.layers, self.sink = int(layers), float(sink)

    def __call__(self, state: StepState) -> tuple[torch.Tensor, None]:
        if state.attentions is None:
            raise ValueError("the attention source needs the pass's attention maps (StepState.attentions is None)")
        return attention_dependence(state.attentions, state.masked, self.layers, self.sink, state.attention_mask), None

    def __repr__(self):
        return f"AttentionPairwise(layers={self.layers}, sink={self.sink})"


class MarginalPairwise:
    """``pairwise="js"`` or ``"similarity"``: a statistic of two positions' marginals
    (:func:`js_interaction`, :func:`marginal_similarity`); no extra pass."""

    FUNCTIONS = {"js": js_interaction, "similarity": marginal_similarity}

    def __init__(self, signal: str):
        if signal not in self.FUNCTIONS:
            raise ValueError(f"signal must be one of {tuple(self.FUNCTIONS)}, got {signal!r}")
        self.signal = signal

    def __call__(self, state: StepState) -> tuple[torch.Tensor, None]:
        return self.FUNCTIONS[self.signal](state.log_probs, state.masked), None

    def __repr__(self):
        return f"MarginalPairwise({self.signal!r})"


def make_signal(name: str):
    """The pairwise source of a free signal by name (one of :data:`SIGNALS`)."""
    if name == "attention":
        return AttentionPairwise()
    if name in MarginalPairwise.FUNCTIONS:
        return MarginalPairwise(name)
    raise ValueError(f"signal must be one of {SIGNALS}, got {name!r}")
