"""What every selector sees, and the one helper they share: the order of candidates.

A selector is any callable ``selector(state: StepState) -> BoolTensor (B, L)`` returning
the masked positions to fill this step, or a :class:`Step` that also names filled
positions to re-mask. The decode loop guarantees progress: a row for which a selector
fills nothing gets its most confident masked position.

Rules that need the past read it from the state: ``prev_log_probs`` (the last step's
marginals of the same rows), ``step`` (loop step), ``start_masked`` (what was masked when
decoding began), ``fill_logp`` (log-probability of each filled token when it was filled)
and ``memory``, a dict that lives for one ``decode`` call, for anything else (tensors kept
there are indexed by the original batch row, ``rows``). A selector object itself stays
stateless, so one object serves many ``decode`` calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

ORDERS = ("confidence", "margin", "entropy")


@dataclass
class StepState:
    """One decoding step of one batch of unfinished sequences.

    x:         (B, L) current tokens (mask id where hidden)
    log_probs: (B, L, V) log-marginals over the allowed tokens (-inf elsewhere), float32
    masked:    (B, L) positions still to fill
    hidden:    (B, L, D) or None, from the same model pass
    step:      loop step, 0 for the first pass
    rows:      (B,) original batch rows of these sequences (finished ones leave the batch)
    prev_log_probs: (B, L, V) the previous step's ``log_probs`` of these rows; None at step 0
                    and unless the selector sets ``uses_history = True`` (it costs B*L*V)
    start_masked:   (B, L) positions masked when decoding began (the only ones ever filled
                    or re-masked); defaults to ``masked``
    fill_logp:  (B, L) log p of each filled token at the step it was filled (0 elsewhere)
    memory:     dict kept for one decode call (see the module docstring)
    """

    x: torch.Tensor
    log_probs: torch.Tensor
    masked: torch.Tensor
    hidden: torch.Tensor | None = None
    step: int = 0
    rows: torch.Tensor | None = None
    prev_log_probs: torch.Tensor | None = None
    start_masked: torch.Tensor | None = None
    fill_logp: torch.Tensor | None = None
    memory: dict = field(default_factory=dict, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.rows is None:
            self.rows = torch.arange(self.x.shape[0])
        if self.start_masked is None:
            self.start_masked = self.masked.clone()
        if self.fill_logp is None:
            self.fill_logp = torch.zeros(self.masked.shape)

    @property
    def probs(self) -> torch.Tensor:  # (B, L, V)
        if "probs" not in self._cache:
            self._cache["probs"] = self.log_probs.exp()
        return self._cache["probs"]

    @property
    def entropy(self) -> torch.Tensor:
        """(B, L) entropy of each marginal in nats (0 * log 0 = 0)."""
        if "entropy" not in self._cache:
            p, lp = self.probs, self.log_probs
            self._cache["entropy"] = -(p * lp.masked_fill(p == 0, 0.0)).sum(-1)
        return self._cache["entropy"]

    @property
    def confidence(self) -> torch.Tensor:
        """(B, L) largest marginal probability."""
        return self.probs.max(-1).values

    @property
    def margin(self) -> torch.Tensor:
        """(B, L) top-1 minus top-2 probability."""
        top = self.probs.topk(2, dim=-1).values
        return top[..., 0] - top[..., 1]

    def score(self, order: str) -> torch.Tensor:
        """(B, L) higher = fill sooner; masked-out positions get -inf."""
        if order == "confidence":
            s = self.confidence
        elif order == "margin":
            s = self.margin
        elif order == "entropy":
            s = -self.entropy
        else:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        return s.masked_fill(~self.masked, float("-inf"))

    def ranked(self, order: str) -> torch.Tensor:
        """(B, L) position indices, best candidate first (observed positions last)."""
        return self.score(order).argsort(dim=-1, descending=True, stable=True)


@dataclass
class Step:
    """What a selector may return instead of a bool tensor: ``fill`` (B, L) masked positions
    to fill now, and ``remask`` (B, L) positions filled at earlier steps to hide again (the
    loop ignores any remask outside ``start_masked & ~masked``: observed and special
    positions are never touched). A selector that re-masks must bound how often, and say
    by how many extra steps at most in its ``extra_steps`` attribute."""

    fill: torch.Tensor
    remask: torch.Tensor | None = None


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    return order
