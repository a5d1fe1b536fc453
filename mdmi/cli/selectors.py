"""``mdmi selectors``: every selector with its knobs, defaults, what it does and its source."""

from __future__ import annotations


def cmd_selectors(args):
    from ..selectors import NAMES, describe

    names = args.names or list(NAMES)
    print("\n\n".join(describe(n) for n in names))
    if not args.names:
        print("\nUse a selector as --selector name:knob=value,knob2=value (a sweep in 'bench': knob=v1/v2).")


def add_parsers(sub) -> None:
    p = sub.add_parser("selectors", help="list the selectors, their knobs, defaults and sources",
                       epilog="examples:\n  mdmi selectors\n  mdmi selectors mi_budget threshold")
    p.add_argument("names", nargs="*", help="only these selectors (default: all)")
    p.set_defaults(func=cmd_selectors)
