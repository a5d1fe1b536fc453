"""Exact pairwise conditional mutual information from a model's own conditionals.

DESIGN.md section 2. For a context x (observed O, masked M) and each masked j with each
probed value v, one pass on x with x_j = v gives p_i(. | x_O, x_j = v) for every i. With
weights w_v = p_j(v | x_O) (renormalised over the probed values):

    m_i^{(j)}(u) = sum_v w_v p_i(u | x_O, x_j = v)
    I[j->i]      = sum_v w_v KL(p_i(. | x_O, x_j = v) || m_i^{(j)})
                 = H(m_i^{(j)}) - sum_v w_v H(p_i(. | x_O, x_j = v))   (>= 0, Jensen)
    D[j->i]      = sum_v w_v TV(p_i(. | x_O, x_j = v), p_i(. | x_O))    (DEMASK influence)

The second form of I is the mutual information of the chain-rule joint
q(v, u) = w_v p_i(u | x_O, x_j = v); it needs only running sums, so every probe is one row
of a batch and nothing is stored per value. Cost: 1 + sum_j |probed values of j| passes per
context, never |M|^2.

Truncation: probing only the most likely values holding >= 1 - delta of p_j's mass
changes each I[j->i] by at most ``h(delta) + delta * log|V_i|`` nats (h the binary
entropy; see :func:`truncation_bound`) and each D[j->i] by at most delta. A position left
with a single value is not probed at all (its I[j->.] is exactly 0 then).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .interface import allowed_tokens, free_positions, masked_log_probs, model_device

DEFAULT_DELTA = 5e-5  # truncation_bound(5e-5, 9) = 6.6e-4 nats < 1e-3
# probe sequences per model call. Small on purpose: on a CPU a chunk whose activations stay
# in cache runs 1.2-1.45x the passes/s of a 256-chunk (benchmarks/exact_mi.py); raise it on a GPU.
PROBE_BATCH = 32


@dataclass
class MIResult:
    """All (B, L, L) tensors are float64 and zero wherever j == i or either position is
    observed. ``[b, j, i]`` reads "from j to i".

    mi:           symmetric label I_ij = (I[j->i] + I[i->j]) / 2, nats
    mi_directed:  I[j->i]
    tv_influence: DEMASK's D[j->i]
    kl_consistency: KL(p_i(.|x_O) || m_i^{(j)}) -- 0 for a self-consistent model
    asymmetry:    |I[j->i] - I[i->j]|
    entropy:      (B, L) entropy of p_i(.|x_O), nats (0 on observed positions)
    masked:       (B, L) the positions treated as masked
    passes:       (B,) model passes spent per context (1 base pass + the probes)
    probed:       (B, L) the masked positions whose rows I[j->.] were computed (all, unless
                  ``exact_mi(probe=...)`` narrowed them); other rows are 0, not measured
    """

    mi: torch.Tensor
    mi_directed: torch.Tensor
    tv_influence: torch.Tensor
    kl_consistency: torch.Tensor
    asymmetry: torch.Tensor
    entropy: torch.Tensor
    masked: torch.Tensor
    passes: torch.Tensor
    probed: torch.Tensor

    def select(self, index) -> "MIResult":
        """The result for some contexts: ``index`` an int (kept as a batch of one), a slice
        or an index tensor."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        return MIResult(**{f: getattr(self, f)[index] for f in self.__dataclass_fields__})


def truncation_bound(delta: float, n_values: int) -> float:
    """Upper bound (nats) on |I - I_delta| when the probed values of j hold >= 1 - delta of
    its mass and position i takes ``n_values`` values: I = I(Z;U) + (1-d) I_K + d I_R with
    Z = [v kept], so |I - I_K| <= H(Z) + d * log n_values, d <= delta (<= 1/2)."""
    if not 0 <= delta <= 0.5:
        raise ValueError(f"delta must lie in [0, 0.5], got {delta}")
    if delta == 0:
        return 0.0
    h = -delta * math.log(delta) - (1 - delta) * math.log1p(-delta)
    return h + delta * math.log(n_values)


def entropy(log_p: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) over the last axis with 0 log 0 = 0; -inf log-probs allowed."""
    # -inf -> the dtype's lowest finite value, whose product with p = 0 is 0 (a masked_fill_ on
    # p == 0 gives the same and costs twice as much)
    return -(log_p.exp() * log_p.clamp_min(torch.finfo(log_p.dtype).min)).sum(-1)


def entropy_of_probs(p: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) over the last axis of probabilities, 0 log 0 = 0."""
    return -torch.where(p > 0, p * p.clamp_min(1e-300).log(), torch.zeros_like(p)).sum(-1)


def probe_values(p: torch.Tensor, masked: torch.Tensor, delta: float) -> torch.Tensor:
    """Bool (B, L, V): for each masked position, the smallest set of most likely values
    holding >= 1 - delta of its mass (all values with p > 0 when delta = 0)."""
    sp, order = p.sort(dim=-1, descending=True)
    before = sp.cumsum(-1) - sp  # mass of the more likely values
    keep_sorted = (before < 1 - delta) & (sp > 0)
    keep_sorted[..., 0] |= sp[..., 0] > 0
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return keep & masked[..., None]


def masked_pairs(masked: torch.Tensor) -> torch.Tensor:
    """(B, L, L) bool: i != j, both masked; the pairs an MI matrix is defined on."""
    L = masked.shape[-1]
    return masked[..., :, None] & masked[..., None, :] & ~torch.eye(L, dtype=torch.bool, device=masked.device)


def symmetric_mi(directed: torch.Tensor, probed: torch.Tensor) -> torch.Tensor:
    """I_ij from directed rows ``[b, j, i] = I[j->i]`` of which only the ``probed`` (B, L)
    rows are known: the mean of both directions where both are, the known one where one
    is, 0 where neither."""
    row = probed[:, :, None].to(directed.dtype)
    col = row.transpose(1, 2)
    return (directed * row + directed.transpose(1, 2) * col) / (row + col).clamp_min(1)


@torch.no_grad()
def exact_mi(model, x: torch.Tensor, allowed: torch.Tensor | None = None, delta: float = DEFAULT_DELTA,
             batch_size: int = PROBE_BATCH, progress: bool = False, probe: torch.Tensor | None = None,
             attention_mask: torch.Tensor | None = None) -> MIResult:
    """Exact pairwise conditional MI (and DEMASK influence) of ``model`` for contexts
    ``x`` (B, L) whose masked positions hold the model's mask id.

    ``allowed``: bool (V,) or (B, L, V) tokens a position may take (default: the model's).
    ``delta``: probe only the values holding 1 - delta of each p_j (see
    :func:`truncation_bound`); 0 probes every value. ``batch_size`` probe sequences per
    model call. Memory: O(B * L^2 * V) float64 accumulators. Cost in passes: ``result.passes``.

    ``probe``: bool (B, L), the masked positions j whose rows I[j->.] are computed (default:
    all). The others cost no pass; a pair is labelled when either end is probed
    (``result.probed``): ``mi`` is then the one known direction, or the mean of both.

    ``attention_mask``: (B, L), 0 on left padding; padding is never masked or probed and
    is passed to the model (``model(x, attention_mask=...)``). Inputs move to the model's
    device and every tensor is allocated there.
    """
    if x.dim() != 2:
        raise ValueError(f"x must be (B, L), got shape {tuple(x.shape)}")
    if not 0 <= delta <= 0.5:
        raise ValueError(f"delta must lie in [0, 0.5], got {delta}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    B, L = x.shape
    allow = allowed_tokens(model, allowed)
    V = model.vocab_size
    dev = model_device(model) or x.device
    x = x.to(dev)
    masked = free_positions(model, x)  # (B, L)
    if attention_mask is not None:
        attention_mask = attention_mask.to(dev)
        masked = masked & attention_mask.bool()
    if probe is not None and probe.shape != masked.shape:
        raise ValueError(f"probe must be (B, L) = {tuple(masked.shape)}, got {tuple(probe.shape)}")
    probed = masked if probe is None else masked & probe.to(dev).bool()
    allow = allow.to(dev)

    def log_marginals(xs, rows):  # (n, L) -> (n, L, V) float64 log-probs over allowed tokens
        a = allow[rows] if allow.dim() == 3 else allow
        out = model(xs) if attention_mask is None else model(xs, attention_mask=attention_mask[rows])
        return masked_log_probs(out.logits, a).double()

    # 1. base pass: p_i(. | x_O) for every context
    base = torch.cat([log_marginals(x[s: s + batch_size], torch.arange(s, min(B, s + batch_size), device=dev))
                      for s in range(0, B, batch_size)])  # (B, L, V)
    p0 = base.exp()
    keep = probe_values(p0, masked, delta)  # (B, L, V)
    # a position whose probed set is one value has I[j->.] = 0 exactly (the mixture is that
    # one conditional): no pass needed. Its D[j->.] is set to 0, within 2*delta of the
    # untruncated value for a self-consistent model.
    keep = keep & (keep.sum(-1, keepdim=True) > 1) & probed[..., None]
    probes = keep.nonzero()  # (n, 3): context b, position j, value v
    w = p0[keep]
    w = w / (p0 * keep).sum(-1)[probes[:, 0], probes[:, 1]]  # renormalised over probed values

    # 2. one pass per probe; running sums indexed by (b, j)
    mix = torch.zeros(B * L, L, V, dtype=torch.float64, device=dev)  # sum_v w_v p_i(. | x_j = v)
    cond_h = torch.zeros(B * L, L, dtype=torch.float64, device=dev)  # sum_v w_v H(p_i(. | x_j = v))
    tv = torch.zeros(B * L, L, dtype=torch.float64, device=dev)  # sum_v w_v TV(p_i(. | x_j = v), p_i)
    starts = range(0, len(probes), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="exact MI probes", unit="batch")
    for s in starts:
        b, j, v = probes[s: s + batch_size].unbind(1)
        xs = x[b].clone()
        xs[torch.arange(len(b), device=dev), j] = v
        lq = log_marginals(xs, b)  # (n, L, V)
        q = lq.exp()
        wn = w[s: s + batch_size]
        key = b * L + j
        mix.index_add_(0, key, wn[:, None, None] * q)
        cond_h.index_add_(0, key, wn[:, None] * entropy(lq))
        tv.index_add_(0, key, wn[:, None] * 0.5 * (q - p0[b]).abs().sum(-1))

    # 3. reductions in float64
    mix = mix.view(B, L, L, V)
    directed = (entropy_of_probs(mix) - cond_h.view(B, L, L)).clamp_min(0.0)
    pair = masked_pairs(masked)  # (B, L, L)
    known = (pair & probed[:, :, None]).double()  # [b, j, i]: a masked pair whose row j was probed
    directed = directed * known
    tv = tv.view(B, L, L) * known
    # KL(p_i || m_i^{(j)}): 0 log 0 = 0; m > 0 wherever p > 0 up to rounding
    lp0 = base[:, None, :, :]  # (B, 1, L, V)
    kl = (p0[:, None] * (lp0 - mix.clamp_min(1e-300).log())).masked_fill(p0[:, None] == 0, 0.0).sum(-1)
    kl = kl.clamp_min(0.0) * known
    mi = symmetric_mi(directed, probed) + 0.0  # + 0.0: no -0.0 (products with 0 masks) in outputs or JSON
    directed, tv, kl = directed + 0.0, tv + 0.0, kl + 0.0
    passes = 1 + keep.sum((1, 2))
    return MIResult(
        mi=mi, mi_directed=directed, tv_influence=tv, kl_consistency=kl,
        asymmetry=(directed - directed.transpose(1, 2)).abs() * known * known.transpose(1, 2),
        entropy=entropy(base) * masked, masked=masked, passes=passes, probed=probed,
    )
