"""The command-line reference, written from the argparse parser that ``mdmi`` itself runs
(:func:`mdmi.cli.build_parser`), so it cannot drift from the code.

    python docs/gen/cli_reference.py                          # print the page
    python docs/gen/cli_reference.py --out docs-cli.md       # write it to a file

During ``mkdocs build`` the page is written as ``reference/cli.md`` by ``docs/gen/pages.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cell(text) -> str:
    """Text safe inside a Markdown table cell."""
    return escape(" ".join(str(text).split())).replace("|", "\\|")


def escape(text: str) -> str:
    """Angle brackets shown as written (``<TAB>``, ``hf:<id>``), not read as HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    names = ", ".join(f"`{s}`" for s in action.option_strings)
    if action.nargs == 0:
        return names
    meta = action.metavar or (action.dest.upper() if action.choices is None else "{" + ",".join(map(str, action.choices)) + "}")
    return f"{names} `{meta}`"


def default(action: argparse.Action) -> str:
    d = action.default
    if action.required or d is None or d is argparse.SUPPRESS or action.nargs == 0:
        return ""
    return f"`{d}`"


def options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = [a for a in parser._actions
            if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    if not rows:
        return []
    out = ["| option | default | meaning |", "|---|---|---|"]
    for a in rows:
        req = " (required)" if a.required and a.option_strings else ""
        out.append(f"| {flags(a)} | {default(a)} | {cell(a.help or '')}{req} |")
    return out


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in a._choices_actions}
            return [(name, helps.get(name, "")) for name in a.choices]
    return []


def render(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole reference as Markdown: one section per command and sub-command, in the
    order ``mdmi --help`` lists them, each with its usage line and every option."""
    from mdmi.cli import build_parser, walk

    parser = parser or build_parser()
    lines = ["# Command line", "",
             "Generated from the parser `mdmi` runs (`mdmi.cli.build_parser`); `mdmi <command> --help` "
             "prints the same. Global options (`--device`, `--dtype`, `--trust-remote-code`) come before "
             "the command: `mdmi --device cuda mi ...`.", ""]
    for q in walk(parser):
        depth = q.prog.count(" ")
        lines += [f"{'#' * min(depth + 2, 4)} `{q.prog}`", ""]
        desc = (q.description or "").strip()
        if desc:
            lines += [escape(desc).replace("``", "`"), ""]
        usage = " ".join(q.format_usage().split())
        lines += ["```", usage, "```", ""]
        subs = subcommands(q)
        if subs:
            lines += ["| command | what it does |", "|---|---|"]
            lines += [f"| `{q.prog} {name}` | {cell(h)} |" for name, h in subs]
            lines.append("")
        table = options_table(q)
        if table:
            lines += table + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write here (default: print)")
    args = ap.parse_args(argv)
    text = render()
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
