"""Saving and loading a module: one directory, the weights in safetensors beside one JSON
config, and one set of checks on the way back in.

    <dir>/config.json         {"kind", "config": the dataclass fields, ...extra,
                               "mdmi_version", "fingerprint"}
    <dir>/<weights_name>      the state dict (model.safetensors unless told otherwise)

The fingerprint is a short hash of what shapes the computation: the config's fields and
the sorted tensor names, shapes and dtypes. It is recorded at save and recomputed from the
files at load, so a config edited afterwards (say ``n_heads``, which no weight shape shows)
is refused instead of giving wrong outputs. A file written before fingerprints existed
loads; one with a fingerprint of another form is left to the caller's ``legacy`` check.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, fields
from pathlib import Path
from typing import Callable

import torch

from .files import read_json, read_safetensors

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
RESERVED = ("kind", "config", "mdmi_version", "fingerprint")  # keys ``extra`` may not set


def fingerprint(config: dict, tensors: dict[str, torch.Tensor]) -> str:
    """16 hex digits of sha256 over the config fields and the sorted (name, shape, dtype)
    of every tensor: equal exactly when the same config describes the same weight layout."""
    spec = {"config": config, "tensors": [[k, list(v.shape), str(v.dtype)] for k, v in sorted(tensors.items())]}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def save_module(path: str | Path, module: torch.nn.Module, config, kind: str, extra: dict | None = None,
                weights_name: str = WEIGHTS_NAME) -> dict:
    """Write ``module``'s weights and ``config`` (a dataclass) to the directory ``path``
    (created if needed), with ``kind``, the mdmi version, the fingerprint and the keys of
    ``extra`` (training metadata, provenance; JSON-serialisable, none of ``RESERVED``).
    Each file is written whole or not at all. Returns what config.json holds."""
    from safetensors.torch import save_file

    from . import __version__

    clash = sorted(set(extra or {}) & set(RESERVED))
    if clash:
        raise ValueError(f"extra may not set {clash}: save_module writes them itself")
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    cfg = asdict(config)
    meta = {"kind": kind, "config": cfg, **(extra or {}), "mdmi_version": __version__,
            "fingerprint": fingerprint(cfg, state)}
    text = json.dumps(meta, indent=2) + "\n"  # serialised before anything is written: a bad extra writes nothing
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / (weights_name + ".tmp")
    save_file(state, str(tmp))
    tmp.replace(path / weights_name)
    tmp = path / (CONFIG_NAME + ".tmp")
    tmp.write_text(text)
    tmp.replace(path / CONFIG_NAME)
    return meta


def load_module(path: str | Path, cls: type, config_cls: type, kind: str, weights_name: str = WEIGHTS_NAME,
                legacy: Callable[[torch.nn.Module, object], bool] | None = None) -> torch.nn.Module:
    """``cls(config_cls(...))`` with the weights of a directory written by
    :func:`save_module`, in eval mode; ``.meta`` holds config.json's content.

    Refused, naming the file and what is wrong: a missing directory or file
    (FileNotFoundError); another ``kind``, config fields the dataclass does not have, or
    lacks with no default, a value the dataclass refuses, missing, unexpected or mis-shaped
    tensors, or a fingerprint that no longer matches (ValueError). Fields the file lacks
    take their defaults (files written before the field existed). A fingerprint that is not
    a string is passed to ``legacy(module, value)``, which returns whether it matches."""
    path = Path(path)
    cfg_file, w_file = path / CONFIG_NAME, path / weights_name
    if not path.exists():
        raise FileNotFoundError(f"{kind} directory {path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is a file; a {kind} is a directory ({CONFIG_NAME} + {weights_name})")
    for f in (cfg_file, w_file):
        if not f.is_file():
            raise FileNotFoundError(f"{kind} directory {path} has no {f.name}")
    meta = read_json(cfg_file)
    got = meta.get("kind") if isinstance(meta, dict) else None
    if got != kind:
        raise ValueError(f"{cfg_file} is not an {kind} config (kind={got!r})")
    stored = meta.get("config")
    if not isinstance(stored, dict):
        raise ValueError(f"{cfg_file} has no 'config' object (the {config_cls.__name__} fields)")
    module = cls(_config(config_cls, stored, cfg_file))
    state = read_safetensors(w_file)
    _check_tensors(module.state_dict(), state, w_file)
    module.load_state_dict(state)
    want = meta.get("fingerprint")
    if want is not None:
        ok = want == fingerprint(stored, state) if isinstance(want, str) else legacy is not None and legacy(module, want)
        if not ok:
            raise ValueError(f"{cfg_file} no longer describes the weights in {w_file.name}: its fingerprint differs "
                             f"from the one recorded at save (was the config edited?)")
    module.meta = meta
    return module.eval()


def _config(config_cls: type, stored: dict, where: Path):
    """The dataclass from a config.json's fields; ValueError naming unknown or missing ones."""
    known = {f.name: f for f in fields(config_cls)}
    unknown = sorted(set(stored) - set(known))
    missing = sorted(k for k, f in known.items()
                     if k not in stored and f.default is MISSING and f.default_factory is MISSING)
    if unknown or missing:
        raise ValueError(f"{where}: config fields do not match {config_cls.__name__}: "
                         + "; ".join([f"unknown {unknown}"] * bool(unknown) + [f"missing {missing}"] * bool(missing)))
    try:
        return config_cls(**stored)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: {e}") from None


def _check_tensors(own: dict, state: dict, where: Path) -> None:
    """ValueError listing every missing, unexpected and mis-shaped tensor of ``state``
    against the freshly built module's ``own``."""
    shaped = [f"{k}: file {tuple(state[k].shape)} vs config {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if shaped or missing or unexpected:
        raise ValueError(f"{where} does not match its config: "
                         + "; ".join(shaped + [f"missing {missing}"] * bool(missing)
                                     + [f"unexpected {unexpected}"] * bool(unexpected)))
