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


P = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
# every help page ends with examples (a page that sets its own epilog keeps it)
EXAMPLES = {
    "mdmi": "mdmi solve PUZZLE | mdmi mi --model sapiens:vh --fasta my.fasta --mask cdr3 | mdmi selectors",
    "mdmi train": "mdmi train sudoku --out ckpt --steps 2000",
    "mdmi train sudoku": "mdmi train sudoku --out ckpt --steps 20000 --d-model 128 --n-layers 6",
    "mdmi train hmm": "mdmi train hmm --out hmm_ckpt --steps 5000",
    "mdmi train text": "mdmi train text --out text_ckpt --steps 12000 --d-model 128 --n-layers 4",
    "mdmi nll": "mdmi nll --model sudoku --input solutions.txt --samples 64 --json nll.json",
    "mdmi train-estimator": "mdmi train-estimator --model sudoku --labels labels/ --out head/",
    "mdmi eval-estimator": "mdmi eval-estimator --model sudoku --estimator head/ --labels labels/ --json eval.json",
    "mdmi mi": f"mdmi mi {P} --plot mi.png\n  mdmi mi --model sapiens:vh --fasta data/trastuzumab_vh.fasta --mask cdr3 --out mi.json",
    "mdmi bench": "mdmi bench sudoku --puzzles data/valid_34.txt --sweep --json valid.json",
    "mdmi bench sudoku": "mdmi bench sudoku --puzzles data/test_34.txt --selector sequential "
                         "--selector mi_budget:gamma=0.01/0.05 --json test.json --plot test.png",
    "mdmi bench merge": "mdmi bench merge a.json b.json --json all.json --plot all.png",
    "mdmi bench antibody": "mdmi bench antibody --model sapiens:vh --fasta test_vh.fasta --mask cdr3 --limit 20\n"
                           "  mdmi bench antibody --model sapiens:vh --fasta test_vh.fasta --mask after_fr1 --block-length 16 "
                           "--selector threshold:tau=0.7/0.5 --selector mi_budget:gamma=3/10",
    "mdmi bench hmm": "mdmi bench hmm --selector sequential --selector entropy_bound:gamma=1/3 --n 500",
    "mdmi generate": "mdmi generate text --model text_ckpt --prompt '12+30=' --block-length 8",
    "mdmi generate protein": "mdmi generate protein --model sapiens:vh --length 120 --n 8 --out samples.fasta "
                             "--selector mi_budget:gamma=0.3,eta=0",
    "mdmi solve": f"mdmi solve {P} --selector mi_budget:gamma=0.05",
    "mdmi eval": "mdmi eval sudoku --puzzles data/test_34.txt --selector threshold:tau=0.999",
    "mdmi eval sudoku": "mdmi eval sudoku --puzzles data/test_34.txt --limit 100 --selector mi_budget:gamma=0.05 "
                        "--json eval.json",
    "mdmi generate-puzzles": "mdmi generate-puzzles --n 300 --givens 34 --seed 1234 --out puzzles.txt",
    "mdmi label": "mdmi label --model sudoku --out labels/ --contexts 2048\n"
                  "  torchrun --standalone --nproc_per_node 2 -m mdmi.cli label --model sapiens:vh --task antibody "
                  "--contexts 2048 --out labels_vh/",
    "mdmi data": "mdmi data antibodies --chain vh --split test --n 100 --out test_vh.abnativ.fasta",
    "mdmi data antibodies": "mdmi data antibodies --chain vl --split valid --n 100 --out valid_vl.abnativ.fasta",
}


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
        if q.epilog is None and q.prog in EXAMPLES:
            q.epilog = "example" + ("s" if "\n" in EXAMPLES[q.prog] else "") + ":\n  " + EXAMPLES[q.prog]
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
