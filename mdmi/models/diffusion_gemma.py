"""DiffusionGemma (transformers' native block-diffusion LLM) decoded by any mdmi selector.

``generate(model, input_ids, selector, **generate_kwargs)`` runs transformers' own
``DiffusionGemmaForBlockDiffusion.generate`` unchanged, except that at every denoising step
an mdmi selector, not the entropy bound, decides which canvas positions to accept. Cost:
the same decoder passes as ``model.generate`` (at most ``max_denoising_steps`` per canvas),
plus whatever the selector spends (``SelectorSampler.extra_passes``).

How it hooks in. ``generate`` builds its sampler once per call in the private
``DiffusionGemmaGenerationMixin._prepare_sampler(generation_config)``, which always returns
an ``EntropyBoundSampler`` (``generation_config.sampler_config`` must be an
``EntropyBoundSamplerConfig`` and carries only the bound), so there is no public extension
point. :class:`SelectorSampling` therefore, for the duration of a ``with`` block,

1. overrides ``_prepare_sampler`` on the model *instance* to return a
   :class:`SelectorSampler`, a subclass of ``EntropyBoundSampler`` that overrides only
   ``accept_canvas`` (``initialize_canvas`` and ``renoise_canvas`` are inherited, so the
   noise is drawn exactly as before);
2. registers a forward hook on ``model.lm_head`` that keeps its input, the decoder's final
   hidden states of the same pass (``state.hidden``, (B, L, D));
3. sets ``generation_config.disable_compile``: a selector is Python with data-dependent
   control flow, and ``generate`` caches compiled acceptance functions on the model, so a
   compiled run would reuse the entropy-bound kernel.

Everything else (encoder prefill, self-conditioning, the temperature schedule, the
multinomial draw of the denoiser canvas, renoising, adaptive stopping, EOS handling) is
transformers' code.

The mapping onto an mdmi :class:`~mdmi.selectors.base.StepState`, per denoising step:

- ``x``: the current canvas (B, L), L = ``config.canvas_length``;
- ``log_probs``: log-softmax of the *processed* logits (after the linear temperature
  schedule), over the whole vocabulary: the distribution the denoiser canvas is drawn from;
- ``masked``: every canvas position (see below); ``start_masked`` the same;
- ``hidden``: the decoder's last hidden states from the same pass;
- ``step``: denoising passes so far in this ``generate`` call; ``block``: the canvas index;
  ``block_step``: steps into this canvas (``max_denoising_steps - cur_step``);
- ``fill_logp``: log p of each token accepted at the previous step (0 elsewhere);
  ``prev_log_probs``: the previous step's of this canvas, for selectors that ask;
- ``attention_mask``: None (the prompt's padding lives in the encoder cache).

A selector's ``Step.fill`` becomes the accepted set: there the denoiser's sampled token
replaces the canvas token; every other position is renoised. A row given nothing gets its
most confident position, as in :func:`mdmi.decode`.

Where this departs from an absorbing-mask MDM (what the mdmi loop assumes):

- There is no mask token. The canvas starts as uniform noise over the vocabulary and
  positions not accepted are filled with fresh noise, so ``x`` never holds a mask id:
  a selector must read ``state.masked``, never ``x == mask_id``.
- Nothing is ever final. A token accepted at step t is context for step t + 1, where it is
  redrawn and renoised unless accepted again; the host's entropy bound ranks every
  position at every step. So *every* position counts as still to decide (``masked`` all
  True) at every step, and a selector's set S means "accept now", not "commit for good":
  ``sequential`` accepts one token per step, it does not fill the canvas one by one.
- The loop does not end when nothing is masked: it ends after ``max_denoising_steps`` or
  when transformers' adaptive stopping fires, and the canvas it appends is the *argmax*
  of the last step's logits, not the accepted tokens.
- Filled values are the host's multinomial draws at the scheduled temperature; mdmi's
  ``temperature`` and generators play no part (seed with ``torch.manual_seed``).
- ``Step.remask`` is ignored: every position not accepted is renoised anyway.
- An exact-MI source (:class:`~mdmi.selectors.pairwise.ExactPairwise`) probes by masking,
  which this model cannot express; pairwise selectors take a head on ``state.hidden`` or
  any callable source.

Entropy and ranking are the host's. ``state.entropy`` is
``torch.distributions.Categorical(logits=processed_logits).entropy()``, the very call
``EntropyBoundSampler`` makes, and candidates in entropy order are ranked by ``torch.sort``
of it, as the host ranks them (mdmi's own ranking is a stable argsort; they differ only
among exactly equal entropies). With that, mdmi's
:class:`~mdmi.selectors.entropy_bound.EntropyBound` with ``gamma = entropy_bound`` (same
nats, same inequality ``sum H - max H <= gamma`` over the ascending prefix, first position
always taken; :func:`entropy_bound_selector`) computes bit for bit the host's costs. One
difference remains on paper: mdmi stops at the first position over the bound, the host
takes every position whose cost fits; the costs are non-decreasing, so the two agree unless
float rounding makes a cost dip below gamma after one exceeded it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..selectors.base import StepState
from ..selectors.entropy_bound import EntropyBound

try:
    from transformers.models.diffusion_gemma.generation_diffusion_gemma import EntropyBoundSampler
except ImportError as e:
    raise ImportError("DiffusionGemma needs a transformers release that has it (5.x): "
                      "pip install -U 'transformers>=5'") from e


@dataclass
class CanvasState(StepState):
    """A :class:`StepState` whose entropy and entropy ranking are the host sampler's.

    host_entropy: (B, L) entropy in nats as ``EntropyBoundSampler`` computes it.
    """

    host_entropy: torch.Tensor | None = None

    @property
    def entropy(self) -> torch.Tensor:
        return self.host_entropy if self.host_entropy is not None else super().entropy

    def ranked(self, order: str) -> torch.Tensor:
        if order == "entropy":  # ascending entropy, ties as torch.sort leaves them (the host's order)
            return torch.sort(self.entropy.masked_fill(~self.masked, float("inf")), dim=-1).indices
        return super().ranked(order)


def entropy_bound_selector(sampler_config) -> EntropyBound:
    """mdmi's :class:`EntropyBound` that reproduces ``EntropyBoundSampler`` under
    ``sampler_config`` (an ``EntropyBoundSamplerConfig``): ``gamma = entropy_bound``,
    entropy order (see the module docstring for why they agree)."""
    return EntropyBound(gamma=float(sampler_config.entropy_bound), order="entropy")


class SelectorSampler(EntropyBoundSampler):
    """``EntropyBoundSampler`` whose acceptance is decided by an mdmi selector.

    selector: a :class:`~mdmi.selectors.base.Selector` (or any callable ``state ->
    Step | (B, L) bool``); hidden: a callable returning the last pass's (B, L, D) hidden
    states or None. After ``generate``: ``accepted`` (per step, the (B, L) accepted
    positions), ``extra_passes`` ((B,) passes the selector spent, or None), ``steps``.
    """

    def __init__(self, selector, config, canvas_length: int, vocab_size: int, max_denoising_steps: int,
                 hidden=None):
        super().__init__(config, canvas_length, vocab_size, max_denoising_steps)
        self.selector = selector
        self.max_denoising_steps = int(max_denoising_steps)
        self.hidden = hidden if hidden is not None else (lambda: None)
        self.memory: dict = {}
        self.steps = 0
        self.canvas = -1
        self.accepted: list[torch.Tensor] = []
        self.extra_passes: torch.Tensor | None = None
        self._prev: torch.Tensor | None = None
        self._fill_logp: torch.Tensor | None = None
        if hasattr(selector, "reset"):
            selector.reset()  # once per generation

    def accept_canvas(self, current_canvas, denoiser_canvas, logits, cur_step):
        """One step: the selector picks the accepted positions; they take the
        denoiser's token, the rest keep the current one (renoised next by the host)."""
        B, L = current_canvas.shape
        dev = current_canvas.device
        block_step = self.max_denoising_steps - int(cur_step)  # generate counts cur_step down to 1
        if block_step == 0:  # a new canvas
            self.canvas += 1
            self._prev = None
            self._fill_logp = torch.zeros(B, L, device=dev)
        every = torch.ones(B, L, dtype=torch.bool, device=dev)
        lp = torch.log_softmax(logits.float(), dim=-1)  # (B, L, V)
        hidden = self.hidden()
        state = CanvasState(
            x=current_canvas, log_probs=lp, masked=every, hidden=None if hidden is None else hidden.float(),
            step=self.steps, prev_log_probs=self._prev, start_masked=every.clone(), fill_logp=self._fill_logp,
            memory=self.memory, block=torch.full((B,), self.canvas, device=dev),
            block_step=torch.full((B,), block_step, device=dev),
            host_entropy=torch.distributions.Categorical(logits=logits).entropy())  # (B, L)
        out = self.selector(state)
        fill = (out.fill if hasattr(out, "fill") else out).to(dev).bool() & every  # (B, L)
        empty = ~fill.any(-1)
        if empty.any():  # progress, as in mdmi.decode: the most confident position
            best = state.score("confidence").argmax(-1)
            fill[empty, best[empty]] = True
        extra = getattr(out, "extra_passes", None)
        if extra is not None:
            extra = extra.to(dev).long()
            self.extra_passes = extra if self.extra_passes is None else self.extra_passes + extra
        self.accepted_token_mask = fill  # what the inherited renoise_canvas reads
        self.accepted.append(fill)
        self._fill_logp = torch.where(fill, lp.gather(-1, denoiser_canvas[..., None])[..., 0], 0.0)
        if getattr(self.selector, "uses_history", False):
            self._prev = lp
        self.steps += 1
        return torch.where(fill, denoiser_canvas, current_canvas)


class SelectorSampling:
    """``with SelectorSampling(model, selector) as run: model.generate(...)``: inside the
    block every ``generate`` call on ``model`` (a ``DiffusionGemmaForBlockDiffusion``) decides
    its denoising steps with ``selector``; ``run.sampler`` is the last call's
    :class:`SelectorSampler`. Leaving the block restores the model."""

    def __init__(self, model, selector):
        if not callable(selector):
            raise TypeError(f"selector must be callable (an mdmi Selector), got {type(selector).__name__}")
        if not hasattr(model, "_prepare_sampler") or not hasattr(model, "lm_head"):
            raise TypeError(f"expected a DiffusionGemmaForBlockDiffusion, got {type(model).__name__}")
        self.model, self.selector = model, selector
        self.sampler = None
        self._hidden: dict = {}

    def _prepare_sampler(self, generation_config):
        generation_config.disable_compile = True  # see the module docstring, hook 3
        self._hidden.clear()
        self.sampler = SelectorSampler(self.selector, generation_config.sampler_config, self.model.config.canvas_length,
                           self.model.config.text_config.vocab_size, generation_config.max_denoising_steps,
                           hidden=lambda: self._hidden.get("last"))
        return self.sampler

    def _keep_hidden(self, module, args, output):
        self._hidden["last"] = args[0]  # (B, L, D): what lm_head turns into this pass's logits

    def __enter__(self):
        self._before = vars(self.model).get("_prepare_sampler")  # an instance override already there
        self._hook = self.model.lm_head.register_forward_hook(self._keep_hidden)
        self.model._prepare_sampler = self._prepare_sampler
        return self

    def __exit__(self, *exc):
        self._hook.remove()
        if self._before is None:
            del self.model._prepare_sampler
        else:
            self.model._prepare_sampler = self._before
        self._hidden.clear()
        return False


def generate(model, input_ids: torch.Tensor, selector, **generate_kwargs):
    """``model.generate(input_ids, **generate_kwargs)`` with ``selector`` choosing, at each
    denoising step, which canvas positions to accept. Returns what ``generate`` returns
    (``.sequences`` (B, P + new tokens), ``.tokens_per_forward``). Seed with
    ``torch.manual_seed``: the host draws its noise and samples from the global generator."""
    with SelectorSampling(model, selector):
        return model.generate(input_ids, **generate_kwargs)
