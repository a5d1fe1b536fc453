"""mdmi: dependency structure and MI-guided parallel decoding for masked diffusion models.

Public API:
    ModelOutput, MaskedModel   the model interface (see mdmi.interface)
    load(path)                 a saved model directory -> model
    decode(model, x, selector) the one decoding loop
    make_selector, SELECTORS   the selector registry
"""

from __future__ import annotations

from pathlib import Path

from .decode import DecodeResult, decode
from .files import read_json
from .interface import MaskedModel, ModelOutput
from .selectors import SELECTORS, make_selector

__version__ = "0.1.0"


def load(path: str | Path, **hf_kwargs):
    """Load a model directory (``model.safetensors`` + ``config.json``).

    The ``kind`` recorded in config.json picks the class. ``"antiberty"``, ``"sapiens:vh"``
    and ``"sapiens:vl"`` load pretrained antibody LMs from their pip packages
    (:mod:`mdmi.models.antibody`); ``"hf:<hub id or directory>"``
    (or a directory holding a Hugging Face config) loads a masked LM through
    :class:`mdmi.models.hf.HFMaskedLM` (``hf_kwargs``: allowed, device, dtype,
    trust_remote_code). Raises FileNotFoundError or ValueError with the reason when the
    directory is not a usable checkpoint.
    """
    from .models.antibody import PRETRAINED

    if str(path) in PRETRAINED:
        return PRETRAINED[str(path)](**hf_kwargs)
    if str(path).startswith("hf:"):
        from .models.hf import HFMaskedLM

        return HFMaskedLM.from_pretrained(str(path)[3:], **hf_kwargs)
    path = Path(path)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"{path} is not a model directory (no config.json)")
    meta = read_json(cfg)
    kind = meta.get("kind")
    if kind is None and "model_type" in meta:
        from .models.hf import HFMaskedLM

        return HFMaskedLM.from_pretrained(str(path), **hf_kwargs)
    if kind == "mdmi.MaskedTransformer":
        from .models.transformer import MaskedTransformer

        return MaskedTransformer.load(path)
    raise ValueError(f"{cfg}: unknown model kind {kind!r}")


__all__ = ["ModelOutput", "MaskedModel", "DecodeResult", "decode", "load", "make_selector", "SELECTORS"]
