"""The selector contract: what every selector sees (:class:`StepState`), what it returns
(:class:`Step`), and what it declares (:class:`Selector`).

A selector subclasses :class:`Selector` and implements ``select(state) -> Step`` (a bare
(B, L) bool tensor is accepted and wrapped). The decode loop only ever reads what the base
class declares:

- ``needs``: ``"nothing"`` or ``"pairwise"`` (a pairwise dependence source, see
  :mod:`mdmi.selectors.pairwise`, given at construction);
- ``uses_history``: the loop keeps last step's marginals in ``state.prev_log_probs``;
- ``extra_steps``: the most steps beyond L the selector may add by re-masking;
- ``needs_attentions``: the loop asks the model for its attention maps;
- ``reset()``: called by the loop once at the start of every decode.

Every call returns a :class:`Step`: the positions to fill, optional positions to re-mask,
the model passes it spent outside the loop (``extra_passes``, per row; an exact oracle),
and the pairwise matrix it used (``pairwise``, for traces). The loop guarantees progress:
a row for which a selector fills nothing gets its most confident masked position.

Rules that need the past read it from the state: ``prev_log_probs``, ``step`` (loop
step), ``block_step`` (steps since the current block began), ``start_masked`` (what the
current block had masked when it began), ``fill_logp`` (log-probability of each filled
token when it was filled) and ``memory``, a dict that lives for one ``decode`` call, for
anything else (tensors kept there are indexed by the original batch row, ``rows``). A
selector object holds only its knobs, so one object serves many ``decode`` calls.
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
    start_masked:   (B, L) positions of the current block masked when it began (the only ones
                    ever filled or re-masked); defaults to ``masked``
    fill_logp:  (B, L) log p of each filled token at the step it was filled (0 elsewhere)
    memory:     dict kept for one decode call (see the module docstring)
    block:      (B,) index of each row's current block (0 without blocks)
    block_step: (B,) steps each row has spent in its current block
    attention_mask: (B, L) 0 on padding, or None (pass it on to any extra model pass)
    attentions: (B, n_layers, L, L) the pass's head-averaged attention probabilities (query
                rows), only for a selector with ``needs_attentions``; else None
    pending:    (B, L) positions still masked in later blocks (never filled this step); the
                decoded context is ``~masked & ~pending``
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
    block: torch.Tensor | None = None
    block_step: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    attentions: torch.Tensor | None = None
    pending: torch.Tensor | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.rows is None:
            self.rows = torch.arange(self.x.shape[0], device=self.x.device)
        if self.start_masked is None:
            self.start_masked = self.masked.clone()
        if self.fill_logp is None:
            self.fill_logp = torch.zeros(self.masked.shape, device=self.masked.device)
        if self.block is None:
            self.block = torch.zeros(self.masked.shape[0], dtype=torch.long, device=self.masked.device)
        if self.block_step is None:
            self.block_step = torch.full_like(self.block, self.step)
        if self.pending is None:
            self.pending = torch.zeros_like(self.masked)

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

    @property
    def logit_gap(self) -> torch.Tensor:
        """(B, L) float64 ``log p(top 1) - log p(top 2)`` (nats; +inf where one token is
        allowed, NaN where none is finite)."""
        if "logit_gap" not in self._cache:
            top = self.log_probs.double().topk(2, dim=-1).values  # (B, L, 2)
            self._cache["logit_gap"] = top[..., 0] - top[..., 1]
        return self._cache["logit_gap"]

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
    """What a selector returns for one step.

    fill:    (B, L) masked positions to fill now
    remask:  (B, L) positions filled at earlier steps to hide again, or None (the loop
             ignores any remask outside ``start_masked & ~masked``: observed, prompt and
             special positions are never touched); a selector that re-masks declares a
             bound in ``extra_steps``
    extra_passes: (B,) model passes spent outside the loop for each row (an exact-MI
             oracle), or None; never counted as NFE, reported beside it
    pairwise: (B, L, L) the dependence matrix the rule used, or None (kept in traces)
    """

    fill: torch.Tensor
    remask: torch.Tensor | None = None
    extra_passes: torch.Tensor | None = None
    pairwise: torch.Tensor | None = None


NEEDS = ("nothing", "pairwise")


class Selector:
    """Base class of every selector: declares what the decode loop may use.

    Subclasses set the class attributes that apply and implement :meth:`select`.
    """

    needs: str = "nothing"  # "pairwise": takes a pairwise dependence source at construction
    uses_history: bool = False  # the loop keeps the last step's marginals (costs B * L * V)
    extra_steps: int = 0  # at most this many steps beyond L (re-masking selectors)
    pairwise_kind: str | None = None  # "mi" or "tv": the statistic a pairwise selector reads
    # the registry's declaration (see mdmi.selectors.registry)
    name: str = ""
    summary: str = ""
    source: str = ""
    knobs: tuple = ()  # Knob specs
    wiring: tuple = ()  # constructor arguments that are objects, not knobs (never on a command line)

    @property
    def needs_attentions(self) -> bool:
        """The loop asks the model for attention maps (``StepState.attentions``): a rule that
        reads them sets this True; an MI-guided rule inherits it from its pairwise source."""
        return bool(getattr(getattr(self, "pairwise", None), "needs_attentions", False))

    def reset(self) -> None:
        """Called once at the start of every decode. Selectors keep per-decode state in
        ``state.memory``, so the default does nothing."""

    def select(self, state: StepState) -> "Step | torch.Tensor":
        raise NotImplementedError

    def __call__(self, state: StepState) -> Step:
        out = self.select(state)
        return out if isinstance(out, Step) else Step(fill=out)


class FunctionSelector(Selector):
    """Wraps a plain callable ``fn(state) -> (B, L) bool tensor or Step`` as a selector that
    needs nothing (for quick experiments: ``decode(model, x, FunctionSelector(fn))``)."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError(f"a selector must be callable, got {type(fn).__name__}")
        self.fn = fn

    def select(self, state: StepState):
        return self.fn(state)

    def __repr__(self):
        return f"FunctionSelector({getattr(self.fn, '__name__', self.fn)!r})"


def as_selector(selector) -> Selector:
    """A :class:`Selector` as is; any other callable wrapped in :class:`FunctionSelector`."""
    return selector if isinstance(selector, Selector) else FunctionSelector(selector)


def check_order(order: str) -> str:
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    return order
