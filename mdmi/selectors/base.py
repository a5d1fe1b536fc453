"""What every selector sees, and the one helper they share: the order of candidates.

A selector is any callable ``selector(state: StepState) -> BoolTensor (B, L)`` returning
the masked positions to fill this step. The decode loop guarantees progress: a row for
which a selector returns nothing gets its first candidate in proxy order.
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
    """

    x: torch.Tensor
    log_probs: torch.Tensor
    masked: torch.Tensor
    hidden: torch.Tensor | None = None
    _cache: dict = field(default_factory=dict, repr=False)

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


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    return order
