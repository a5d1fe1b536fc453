"""mdmi: dependency structure and MI-guided parallel decoding for masked diffusion models.

Public API:
    ModelOutput, MaskedModel   the model interface (see mdmi.interface)
    load(spec)                 a shipped name, hf:<id> or a model directory -> model
    load_estimator(spec)       a model's shipped MI head, or a head directory
    decode(model, x, selector) the one decoding loop
    make_selector, SELECTORS   the selector registry
"""

from __future__ import annotations

from pathlib import Path

from .decode import DecodeResult, decode
from .interface import MaskedModel, ModelOutput
from .selectors import SELECTORS, make_selector

__version__ = "0.1.0"


def load(spec: str | Path, **kwargs):
    """The model ``spec`` names: a shipped name (``"sudoku"``, ``"hmm"``, ``"antiberty"``,
    ``"sapiens:vh"``, ``"sapiens:vl"``), ``"hf:<hub id or directory>"``, or a model directory
    (an mdmi checkpoint, or a Hugging Face one). ``kwargs``: device, and for Hugging Face
    models allowed, dtype, trust_remote_code. See :func:`mdmi.resolve.resolve`, which also
    returns the model's provenance string, task and MI head.

    Raises ImportError (one line: what to install) when an optional dependency is missing,
    before anything loads; FileNotFoundError or ValueError with the reason when the spec
    is not a usable model."""
    from .resolve import resolve

    return resolve(spec, **kwargs).model


def load_estimator(spec: str | Path, device=None):
    """An MI head: a model's shipped head by name (``load_estimator("sapiens:vh")``), a head
    directory, or the ``estimator/`` of a model directory."""
    from .resolve import load_estimator as _load_estimator

    return _load_estimator(spec, device=device)


__all__ = ["ModelOutput", "MaskedModel", "DecodeResult", "decode", "load", "load_estimator", "make_selector", "SELECTORS"]
