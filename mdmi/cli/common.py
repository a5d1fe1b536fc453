"""Helpers every command module shares: model loading, dataclass flags, selector building."""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import math
import re
from dataclasses import fields
from pathlib import Path

from ..resolve import SHIPPED, head_dir, reference as model_ref

DEFAULT_MODEL = "sudoku"  # the shipped model of the commands whose --model is optional


def provenance(args=None) -> dict:
    """What a result file records so that it can be reproduced from itself: the full
    command (``args.argv``, set by :func:`mdmi.cli.main`), package versions, when, and with
    a ``--model``, its reference (``sha256:`` of a checkpoint's weights, a pretrained name
    with its version: :func:`mdmi.resolve.reference`)."""
    import platform
    import sys
    import time

    from .. import __version__

    versions = {"mdmi": __version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "sapiens", "antiberty"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    argv = getattr(args, "argv", None) or ["mdmi"] + sys.argv[1:]
    out = {"command": " ".join(argv), "versions": versions,
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    spec = getattr(args, "model", None)
    if isinstance(spec, (str, Path)):  # which weights ran, whatever path the command named
        try:
            out["model"] = model_ref(spec)
        except (OSError, ValueError):
            pass  # the command still says; a model that cannot be referenced did not load either
    return out


def script_provenance(model=None) -> dict:
    """:func:`provenance` for a script run as ``python SCRIPT ARGS`` (the benchmarks): the
    command as typed (shell-quoted), versions, when, and with ``model`` (a spec or a
    directory) the reference of the weights that ran."""
    import shlex
    import sys
    from types import SimpleNamespace

    return provenance(SimpleNamespace(argv=["python", *map(shlex.quote, sys.argv)], model=model))


def hf_options(args) -> dict:
    """``--device`` / ``--dtype`` / ``--trust-remote-code`` of this run (defaults without args)."""
    return {"device": getattr(args, "device", None) or "cpu", "dtype": getattr(args, "dtype", None),
            "trust_remote_code": bool(getattr(args, "trust_remote_code", False))}


def resolve_model(spec, args=None):
    """:func:`mdmi.resolve.resolve` on this run's ``--device`` (decoding, exact MI and labels
    then run where the model is), with ``--dtype`` and ``--trust-remote-code`` passed only
    when given (they apply to Hugging Face models)."""
    from ..resolve import resolve

    opts = hf_options(args)
    kw = {k: opts[k] for k in ("dtype", "trust_remote_code") if opts[k]}
    return resolve(spec, device=opts["device"], **kw)


def load(spec, args=None):
    """The model of :func:`resolve_model`."""
    return resolve_model(spec, args).model


def require_protein(model, what: str):
    """``model`` when it reads residue strings (:class:`mdmi.interface.ProteinModel`), else
    ValueError saying that ``what`` needs one."""
    from ..interface import ProteinModel

    if not isinstance(model, ProteinModel):
        names = ", ".join(n for n, s in SHIPPED.items() if s.task == "antibody")
        raise ValueError(f"{what} needs a protein masked LM (--model {names} or hf:<id or dir>)")
    return model


def check_extras(args, command: str) -> None:
    """:class:`mdmi.extras.MissingExtra` (one line, naming ``command`` and the option) when an
    option given needs an optional dependency that is not installed: the loader of
    ``--model``, matplotlib for ``--plot``. Run before any work."""
    from ..extras import require
    from ..resolve import require_extras

    model = getattr(args, "model", None)
    if model:
        require_extras(model, who=f"{command} --model {model}")
    if getattr(args, "plot", None):
        require("plot", who=f"{command} --plot")


def field_help(cls) -> dict[str, str]:
    """The comment after each field of a config dataclass (house style: one per field)."""
    out = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"\s+(\w+)\s*:[^#]*#\s*(.+)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes"):
        return True
    if s.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def finite(kind):
    """An argparse type: ``kind`` (int or float) that refuses nan and inf."""
    def convert(s: str):
        try:
            v = kind(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {s!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {s!r}")
        return v

    convert.__name__ = kind.__name__
    return convert


def nonnegative(s: str) -> int:
    """An argparse type: an integer >= 0 (``--limit``: 0 means all)."""
    v = finite(int)(s)
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 (0 = all), got {s!r}")
    return v


MODEL_HELP = ("a shipped model (" + ", ".join(SHIPPED) + "), hf:<id or dir>, or a model directory "
              f"(default: {DEFAULT_MODEL})")
ESTIMATOR_DEFAULT = "the model's shipped MI head, or <model dir>/estimator"


def add_selector_arg(p: argparse.ArgumentParser) -> None:
    """The repeatable ``--selector SPEC`` of the benchmarks (the one spec language:
    ``mi_budget:gamma=0.1/0.3,eta=0``); joins ``--selectors``."""
    p.add_argument("--selector", action="append", dest="selector_specs", metavar="SPEC",
                   help="a selector, or name:knob=v,knob2=v1/v2 (a sweep); repeatable; see 'mdmi selectors'")


def selector_list(args) -> list[str]:
    """The selectors a benchmark runs: ``--selectors a,b`` and every ``--selector SPEC``."""
    return (args.selectors.split(",") if getattr(args, "selectors", None) else []) + list(
        getattr(args, "selector_specs", None) or [])


def add_sweep_args(p: argparse.ArgumentParser, unit: str, batch_size: int) -> None:
    """The flags every ``bench`` over a file shares: which selectors, sweep, limit, batch."""
    p.add_argument("--selectors", help="comma-separated subset (default: all that can run but the oracles); "
                   "name:knob=v1/v2 runs those knob values, +knob=v fixes another, e.g. mi_budget:gamma=0.1/1+eta=0")
    add_selector_arg(p)
    p.add_argument("--sweep", action="store_true", help="sweep each selector's knob (else its first setting)")
    p.add_argument("--limit", type=nonnegative, default=0, help=f"use only the first N {unit} (0 = all)")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"{unit} decoded together")


def add_dataclass_args(p: argparse.ArgumentParser, cls, skip=()):
    """One ``--flag`` per dataclass field, defaulting to the dataclass default, with the
    field's comment as its help. Values are checked by the dataclass itself."""
    helps = field_help(cls)
    for f in fields(cls):
        if f.name in skip:
            continue
        default = f.default
        kind = type(default)
        conv = _bool if kind is bool else finite(kind) if kind in (int, float) else kind
        p.add_argument(f"--{f.name.replace('_', '-')}", type=conv, default=default,
                       help=helps.get(f.name, f"{cls.__name__}.{f.name}"))


def pick(args, cls, **override):
    vals = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    vals.update(override)
    return cls(**vals)


def file_digest(path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def default_model(spec):
    """``--model``, else the shipped :data:`DEFAULT_MODEL`."""
    return spec or DEFAULT_MODEL


def check_positive(args, *names) -> None:
    """ValueError naming the flag when an integer argument is < 1."""
    for name in names:
        v = getattr(args, name)
        if v is not None and v < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {v}")


def estimator_used(args) -> str | None:
    """The estimator directory an MI-guided --selector reads (None for the others)."""
    from ..selectors import needs

    from ..selectors import parse_knob_list

    if needs(args.selector, parse_knob_list(args.selector, args.param or [])) != "pairwise":
        return None
    return default_estimator(getattr(args, "estimator", None), default_model(args.model))


def selector_from_args(args, model=None):
    """The --selector with its --param knobs (checked before anything loads)."""
    from ..bench import build
    from ..selectors import needs, parse_knob_list

    params = parse_knob_list(args.selector, args.param or [])  # checked before any estimator or model work
    estimator = None
    if needs(args.selector, params) == "pairwise":
        est_dir = default_estimator(getattr(args, "estimator", None), default_model(args.model))
        estimator = load_estimator(est_dir, default_model(args.model), args) if est_dir else None
    return build(args.selector, params, model, estimator)


def split_selector_spec(args) -> None:
    """``--selector name:knob=v,...`` -> ``args.selector = name`` and the knobs appended to
    ``args.param`` (one language for every command); a sweep or a knob given twice is an error."""
    from ..selectors import knob_specs, parse_spec

    spec = getattr(args, "selector", None)
    if not isinstance(spec, str):
        return
    name = spec.partition(":")[0]
    knob_specs(name)  # ValueError naming the known selectors
    if ":" not in spec:
        return
    jobs = parse_spec(spec)
    if len(jobs) != 1:
        raise ValueError(f"--selector {spec!r} is a sweep ({len(jobs)} settings); this command runs one setting")
    given = {item.partition("=")[0].strip().replace("-", "_") for item in args.param or []}
    twice = sorted(given & set(jobs[0][1]))
    if twice:
        raise ValueError(f"knob {', '.join(twice)} given both in --selector and --param")
    args.selector = name
    args.param = list(args.param or []) + [f"{k}={v}" for k, v in jobs[0][1].items()]


def add_block_args(p) -> None:
    """The diffusion-LLM decoding flags shared by the text commands."""
    p.add_argument("--block-length", type=int, help="semi-autoregressive block length (default: one block)")
    p.add_argument("--prefix-cache", action="store_true",
                   help="reuse the finished prefix's keys and values within a block (approximate; mdmi models)")


def require_model(p, help: str) -> None:
    """Make ``--model`` (from :func:`add_decode_args`) required, with its own help."""
    for a in p._actions:
        if a.dest == "model":
            a.required, a.help = True, help


def add_decode_args(p):
    p.add_argument("--model", help=MODEL_HELP)
    from ..selectors import NAMES

    p.add_argument("--selector", default="sequential", metavar="SPEC",
                   help="name or name:knob=v,knob2=v (see 'mdmi selectors'): " + ", ".join(NAMES))
    p.add_argument("--estimator", help="MI head for mi_budget / dependency_bound (default: " + ESTIMATOR_DEFAULT + ")")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="selector parameter, repeatable (e.g. --param order=entropy)")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    p.add_argument("--seed", type=int, default=0, help="seed for temperature sampling")


def default_estimator(path, model):
    """--estimator, else the MI head that belongs to ``model`` (the shipped head of a name
    such as ``sapiens:vh``, ``<dir>/estimator`` of a directory) when it has one, else None."""
    if path:
        return path
    head = head_dir(model)
    return None if head is None else str(head)


def check_same_model(recorded, model_dir, what: str) -> None:
    """ValueError when ``what`` records another model than ``model_dir`` (by weight hash,
    pretrained name and version, or hub id)."""
    if recorded and recorded != model_ref(model_dir):
        raise ValueError(f"{what} belong(s) to model {recorded}, not to --model {model_dir} ({model_ref(model_dir)})")


def load_estimator(est_dir, model_dir, args=None):
    """An MI head, refused (ValueError) when it was trained for another model than
    ``model_dir``; on ``--device`` when given."""
    from ..estimator import Estimator

    est = Estimator.load(est_dir)
    check_same_model(est.meta.get("model"), model_dir, f"{est_dir} (estimator)")
    device = hf_options(args)["device"]
    return est.to(device) if device != "cpu" else est
