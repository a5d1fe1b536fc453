"""Model specs -> models: the one place that knows what a model name means.

A *spec* is one of

- a shipped name (:data:`SHIPPED`): ``sudoku``, ``hmm`` and ``text`` (weights in ``mdmi/checkpoints``),
  ``sapiens:vh``, ``sapiens:vl`` and ``antiberty`` (weights in their pip packages; their
  MI heads in ``mdmi/checkpoints``);
- ``hf:<hub id or directory>``: a Hugging Face masked LM or diffusion LLM
  (:class:`mdmi.models.hf.HFMaskedLM`);
- a directory: an mdmi checkpoint (``kind`` in its config.json) or a Hugging Face one
  (``model_type``), with its MI head in ``<dir>/estimator`` when there is one.

:func:`resolve` loads a spec into a :class:`Resolved`. What a command must know before it
loads anything (the optional dependencies, the MI head, the provenance string) comes from
:func:`requirements`, :func:`head_dir` and :func:`reference`, which read no weights.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .extras import require
from .files import read_json
from .resources import checkpoint_dir


@dataclass(frozen=True)
class Shipped:
    """A model known by name."""

    directory: str  # its folder under mdmi/checkpoints: the weights (unless pretrained) and estimator/
    task: str  # what it models: the data its commands read
    extras: tuple[str, ...] = ()  # optional dependencies of its loader (names in mdmi.extras.EXTRAS)
    pretrained: bool = False  # weights from a pip package (mdmi.models.antibody.PRETRAINED), not the folder
    chain: str | None = None  # antibody chain it was trained on (vh or vl); None for other models


SHIPPED = {
    "sudoku": Shipped("sudoku", "sudoku"),
    "hmm": Shipped("hmm", "hmm"),
    "text": Shipped("text", "text"),
    "sapiens:vh": Shipped("sapiens_vh", "antibody", ("hf", "sapiens"), pretrained=True, chain="vh"),
    "sapiens:vl": Shipped("sapiens_vl", "antibody", ("hf", "sapiens"), pretrained=True, chain="vl"),
    "antiberty": Shipped("antiberty", "antibody", ("hf", "antiberty"), pretrained=True, chain="vh"),
}
HF_PREFIX = "hf:"


@dataclass(frozen=True)
class Resolved:
    """A loaded model and what results record about it."""

    model: object  # the model (mdmi.interface.MaskedModel)
    ref: str  # provenance: 'sapiens:vh (sapiens==1.0.5)', 'sha256:<weights>' of a checkpoint, the hf: spec
    task: str | None  # what it models ('sudoku', 'hmm', 'text', 'antibody'); None when its files do not say
    head: Path | None  # its MI head directory (shipped, or <dir>/estimator); None when it has none
    spec: str  # the spec it was resolved from
    chain: str | None = None  # antibody chain of a shipped antibody LM


def shipped(spec) -> Shipped | None:
    """The :data:`SHIPPED` entry ``spec`` names, or None. ValueError when a directory of that
    name in the working directory makes the spec ambiguous."""
    entry = SHIPPED.get(str(spec))
    if entry is not None and Path(str(spec)).is_dir():
        raise ValueError(f"model {str(spec)!r} names both the shipped model and the directory ./{spec}; "
                         f"write ./{spec} for the directory")
    return entry


def _is_hf_directory(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        meta = read_json(cfg)
    except ValueError:
        return False  # resolve() reports the broken file
    return isinstance(meta, dict) and meta.get("kind") is None and "model_type" in meta


def requirements(spec) -> tuple[str, ...]:
    """The optional extras (:data:`mdmi.extras.EXTRAS`) loading ``spec`` needs; reads at most
    its config.json."""
    entry = shipped(spec)
    if entry is not None:
        return entry.extras
    if str(spec).startswith(HF_PREFIX) or _is_hf_directory(Path(str(spec))):
        return ("hf",)
    return ()


def require_extras(spec, who: str | None = None) -> None:
    """:class:`mdmi.extras.MissingExtra` (one line, naming ``who``, by default the model)
    when an optional dependency of ``spec`` is missing."""
    require(*requirements(spec), who=who or f"model {str(spec)!r}")


def head_dir(spec) -> Path | None:
    """The MI head that belongs to ``spec``: the shipped one of a name, ``<dir>/estimator``
    of a directory; None when there is none (``hf:`` specs have none)."""
    entry = shipped(spec)
    if entry is not None:
        cand = checkpoint_dir(entry.directory) / "estimator"
    elif str(spec).startswith(HF_PREFIX):
        return None
    else:
        cand = Path(str(spec)) / "estimator"
    return cand if (cand / "config.json").is_file() else None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def reference(spec) -> str:
    """How results and MI heads record ``spec``: a pretrained name with its package version
    (``sapiens:vh (sapiens==1.0.5)``), an ``hf:`` spec as given, a checkpoint by the hash of
    its weights (``sha256:...``, the same on any machine and path), else the absolute path."""
    entry = shipped(spec)
    if entry is not None and entry.pretrained:
        from .models.antibody import pretrained_ref

        return pretrained_ref(str(spec))
    if str(spec).startswith(HF_PREFIX):
        return str(spec)
    path = checkpoint_dir(entry.directory) if entry is not None else Path(str(spec))
    weights = path / "model.safetensors"
    return f"sha256:{_digest(weights)}" if weights.is_file() else str(path.resolve())


def resolve(spec, device=None, **kw) -> Resolved:
    """Load the model ``spec`` names (see the module docstring) on ``device`` (default: cpu).

    ``kw`` go to Hugging Face loaders (allowed, dtype, trust_remote_code: each passed only
    when given); an mdmi checkpoint takes none (ValueError). A missing optional dependency
    raises :class:`mdmi.extras.MissingExtra` before anything loads; a directory that is not
    a usable checkpoint FileNotFoundError or ValueError with the reason."""
    spec = str(spec)
    require_extras(spec)
    kw = {k: v for k, v in kw.items() if v is not None}
    if device is not None:
        kw["device"] = device
    entry = shipped(spec)
    if entry is not None and entry.pretrained:
        from .models.antibody import PRETRAINED

        model = PRETRAINED[spec](**kw)
        return Resolved(model, reference(spec), entry.task, head_dir(spec), spec, entry.chain)
    if spec.startswith(HF_PREFIX):
        from .models.hf import HFMaskedLM

        return Resolved(HFMaskedLM.from_pretrained(spec[len(HF_PREFIX):], **kw), spec, None, None, spec)
    path = checkpoint_dir(entry.directory) if entry is not None else Path(spec)
    cfg = path / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"{path} is not a model directory (no config.json)")
    meta = read_json(cfg)
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind is None and isinstance(meta, dict) and "model_type" in meta:
        from .models.hf import HFMaskedLM

        return Resolved(HFMaskedLM.from_pretrained(str(path), **kw), reference(spec), None, head_dir(spec), spec)
    if kind == "mdmi.MaskedTransformer":
        from .models.transformer import MaskedTransformer

        device = kw.pop("device", None)
        if kw:
            raise ValueError(f"{', '.join(sorted(kw))} apply to Hugging Face models; {spec} is an mdmi checkpoint")
        model = MaskedTransformer.load(path)
        if device is not None:
            model = model.to(device)
        task = entry.task if entry is not None else meta.get("task")
        return Resolved(model, reference(spec), task, head_dir(spec), spec)
    raise ValueError(f"{cfg}: unknown model kind {kind!r}")


def load_estimator(spec, device=None):
    """An MI head: the shipped head of a model name (``load_estimator("sapiens:vh")``), a
    head directory, or the ``estimator/`` of a model directory; on ``device`` when given.
    FileNotFoundError or ValueError with the reason when there is none."""
    from .estimator import WEIGHTS_NAME, Estimator

    entry, path = shipped(spec), Path(str(spec))
    head = path if entry is None and (path / WEIGHTS_NAME).is_file() else head_dir(spec)
    if head is None and entry is not None:
        raise FileNotFoundError(f"mdmi ships no MI head for {spec!r}")
    est = Estimator.load(head if head is not None else path)  # for a bare path, load says what is missing
    return est.to(device) if device is not None else est
