"""Helpers every command module shares: model loading, dataclass flags, selector building."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

DEFAULT_SUDOKU = Path(__file__).resolve().parent.parent.parent / "checkpoints" / "sudoku"
HF_OPTIONS: dict = {}  # --device / --dtype / --trust-remote-code, for hf: models


def load(path):
    """mdmi.load, passing the Hugging Face options to hf: models."""
    from .. import load as _load

    from ..models.antibody import PRETRAINED

    hf = str(path).startswith("hf:") or str(path) in PRETRAINED
    return _load(path, **HF_OPTIONS) if hf else _load(path)


def add_dataclass_args(p: argparse.ArgumentParser, cls, skip=()):
    """One ``--flag`` per dataclass field, defaulting to the dataclass default."""
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default
        kind = type(default)
        if kind is bool:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: s.lower() in ("1", "true", "yes"),
                           default=default)
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=default)


def pick(args, cls, **override):
    vals = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    vals.update(override)
    return cls(**vals)


def file_digest(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def model_ref(path) -> str:
    """How a model is recorded in specs: hub ids as given, our checkpoints by the hash of
    their weights (so a resumed job on another machine or path still matches)."""
    from ..models.antibody import PRETRAINED, pretrained_ref

    if str(path) in PRETRAINED:
        return pretrained_ref(str(path))
    if str(path).startswith("hf:"):
        return str(path)
    weights = Path(path) / "model.safetensors"
    return f"sha256:{file_digest(weights)}" if weights.is_file() else str(Path(path).resolve())


def default_model(path):
    if path:
        return path
    if not (DEFAULT_SUDOKU / "model.safetensors").is_file():
        raise SystemExit(f"no --model given and no shipped model at {DEFAULT_SUDOKU}")
    return str(DEFAULT_SUDOKU)


def parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def selector_from_args(args, model=None):
    from ..bench import NEEDS_ESTIMATOR, build

    params = {}
    for item in args.param or []:
        if "=" not in item:
            raise ValueError(f"--param must look like key=value, got {item!r}")
        k, v = item.split("=", 1)
        params[k.replace("-", "_")] = parse_value(v)
    estimator = None
    if args.selector in NEEDS_ESTIMATOR:
        from ..estimator import Estimator

        est_dir = default_estimator(getattr(args, "estimator", None), default_model(args.model))
        estimator = Estimator.load(est_dir) if est_dir else None
    return build(args.selector, params, model, estimator)


def add_decode_args(p):
    p.add_argument("--model", help="model directory (default: the shipped checkpoints/sudoku)")
    p.add_argument("--selector", default="sequential", help="selector name (see mdmi.SELECTORS)")
    p.add_argument("--estimator", help="MI head for mi_budget / dependency_bound (default: <model>/estimator)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="selector parameter, repeatable (e.g. --param order=entropy)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0, help="seed for temperature sampling")


def default_estimator(path, model_dir):
    """--estimator, else ``<model>/estimator`` when it exists, else None."""
    if path:
        return path
    cand = Path(model_dir) / "estimator"
    return str(cand) if (cand / "config.json").is_file() else None
