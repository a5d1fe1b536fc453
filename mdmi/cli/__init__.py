"""The ``mdmi`` command line. Each sub-command is a thin layer over the library.

One module per command group; each has ``add_parsers(sub)``, and :func:`build_parser`
assembles them in the order of ``COMMANDS``. A new command is one new module and one entry.
"""

from __future__ import annotations

import argparse
import importlib


COMMANDS = ("train", "nll", "estimator", "mi", "bench", "generate", "sudoku", "label", "data", "selectors", "text")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """One default per option, only where there is one: nothing for required options,
    ``None`` defaults, flags, or help that already says its default; examples kept as written."""

    def _get_help_string(self, action):
        h = action.help or ""
        d = action.default
        if (action.required or d is None or d is argparse.SUPPRESS or d is False or "default" in h
                or action.option_strings == [] or isinstance(action, argparse._StoreTrueAction)):
            return h
        return f"{h} (default: {action.default})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mdmi", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="where the model (and its MI head) runs: cpu, cuda, cuda:1")
    p.add_argument("--dtype", help="hf: models only: e.g. bfloat16")
    p.add_argument("--trust-remote-code", action="store_true", help="hf: models only; off unless given")
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name}", __name__).add_parsers(sub)
    for q in walk(p):
        q.formatter_class = HelpFormatter  # every option shows its one default
    return p


def walk(p: argparse.ArgumentParser):
    """The parser and every sub-command parser under it (a sub-command without a
    description gets its one-line help as one)."""
    yield p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in a._choices_actions}
            for name, child in a.choices.items():
                if child.description is None:
                    child.description = helps.get(name)
                yield from walk(child)


def main(argv=None):
    import shlex
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = ["mdmi"] + [shlex.quote(a) for a in argv]  # recorded in every result file (provenance)
    from ..extras import MissingExtra
    from .common import check_extras, split_selector_spec

    try:  # a bad --selector or a missing optional dependency is a usage error, found before any work
        split_selector_spec(args)
        check_extras(args, " ".join(command_words(parser, argv)))
    except MissingExtra as e:
        parser.exit(2, f"mdmi: error: {e}\n")
    except ValueError as e:
        parser.exit(2, f"mdmi {args.cmd}: error: {e}\n")
    try:
        args.func(args)
    except MissingExtra as e:
        parser.exit(2, f"mdmi: error: {e}\n")
    except (ValueError, OSError) as e:  # OSError: missing file, a directory for a file, no permission
        raise SystemExit(f"mdmi {args.cmd}: error: {e}") from None


def command_words(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``["mdmi", "bench", "antibody"]``: the program and the sub-commands ``argv`` names."""
    words = [parser.prog]
    for token in argv:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            break
        if token in subs[0].choices:
            words.append(token)
            parser = subs[0].choices[token]
    return words
