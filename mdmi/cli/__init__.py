"""The ``mdmi`` command line. Each sub-command is a thin layer over the library.

One module per command group; each has ``add_parsers(sub)``, and :func:`build_parser`
assembles them in the order of ``COMMANDS``. A new command is one new module and one entry.
"""

from __future__ import annotations

import argparse
import importlib

from .common import HF_OPTIONS

COMMANDS = ("train", "nll", "estimator", "mi", "bench", "generate", "sudoku", "label", "data")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mdmi", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="hf: models only: where the model runs (cpu, cuda)")
    p.add_argument("--dtype", help="hf: models only: e.g. bfloat16")
    p.add_argument("--trust-remote-code", action="store_true", help="hf: models only; off unless given")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parsers(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    HF_OPTIONS.clear()
    HF_OPTIONS.update(device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"mdmi {args.cmd}: error: {e}")
