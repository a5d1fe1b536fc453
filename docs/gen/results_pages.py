"""The results pages of the documentation, written from the files in ``benchmarks/results``:
one page per result folder, one section per JSON file with the command that wrote it, when,
what it measures, and its rows as a table; pictures beside their JSON are shown. No number
is typed by hand: every cell comes from a JSON value.

    python docs/gen/results_pages.py --out /tmp/results-pages   # write the pages there

During ``mkdocs build`` the pages are written under ``results/`` by ``docs/gen/pages.py``.
Provenance, what a file measures and the folder descriptions come from
``benchmarks/index.py``, which writes the repository's own index of the same files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
# per-item arrays (one value per puzzle or sequence) and provenance: shown elsewhere or too long for a table
SKIP = {"provenance", "per_seq", "solved_per_puzzle", "nfe_per_puzzle"}
MAX_DEPTH = 3  # nested dicts flattened into dotted column names up to this depth
WIDE = 12  # a table with more columns than this and few rows is shown transposed


def load_index():
    """``benchmarks/index.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("mdmi_results_index", ROOT / "benchmarks" / "index.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
            .replace("[", "\\[").replace("]", "\\]"))  # mi_budget[js](eta=0) is no link


def fmt(v) -> str:
    """One JSON value as a table cell: floats to 4 significant digits, knobs as k=v."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return escape(v)
    if isinstance(v, list):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return ", ".join(f"{k}={fmt(x)}" for k, x in v.items())
    return escape(str(v))


def is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def cells(row: dict, prefix: str = "", depth: int = 1) -> dict[str, str]:
    """A row's values as {column: cell}: scalars, short lists and knob dicts as they are,
    other dicts flattened into ``key.sub`` columns; long arrays and provenance left out."""
    out = {}
    for k, v in row.items():
        name = f"{prefix}{k}"
        if k in SKIP:
            continue
        if is_scalar(v):
            if not (isinstance(v, str) and len(v) > 80):
                out[name] = fmt(v)
        elif isinstance(v, list):
            if len(v) <= 4 and all(is_scalar(x) for x in v):
                out[name] = fmt(v)
        elif isinstance(v, dict):
            if k == "params" or (v and all(is_scalar(x) for x in v.values()) and len(v) <= 3 and depth >= MAX_DEPTH):
                out[name] = fmt(v)
            elif depth < MAX_DEPTH:
                out.update(cells(v, f"{name}.", depth + 1))
    return out


def label(row: dict, i: int) -> str:
    """A column title for a row of a transposed table."""
    for key in ("selector", "model", "method", "name"):
        if isinstance(row.get(key), str):
            extra = [fmt(row[k]) for k in ("params", "mask", "task") if row.get(k)]
            return escape(" ".join([row[key]] + extra))
    return f"row {i + 1}"


def table(rows: list[dict]) -> list[str]:
    """Markdown table of a list of JSON objects (one row each, or transposed when wide)."""
    flat = [cells(r) for r in rows]
    cols: list[str] = []
    for f in flat:
        cols += [c for c in f if c not in cols]
    if not cols:
        return []
    if len(cols) > WIDE and len(rows) <= 8:
        out = ["| field | " + " | ".join(label(r, i) for i, r in enumerate(rows)) + " |",
               "|---|" + "---|" * len(rows)]
        out += [f"| {escape(c)} | " + " | ".join(f.get(c, "") for f in flat) + " |" for c in cols]
        return out
    out = ["| " + " | ".join(escape(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(f.get(c, "") for c in cols) + " |" for f in flat]
    return out


def body(data, level: int = 4) -> list[str]:
    """The tables of one result file: its rows, or for an object its scalar fields first,
    then one sub-section per list of rows or per nested object."""
    if isinstance(data, list):
        return table([r for r in data if isinstance(r, dict)])
    top = {k: v for k, v in data.items() if k not in SKIP and (is_scalar(v) or (isinstance(v, list) and len(v) <= 4
                                                                                and all(map(is_scalar, v))))}
    out = []
    if top:
        out += ["| field | value |", "|---|---|"] + [f"| {escape(k)} | {fmt(v)} |" for k, v in top.items()]
    for k, v in data.items():
        if k in SKIP or k in top:
            continue
        rows = None
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            rows = v
        elif isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            rows = [{"": name, **x} for name, x in v.items()]  # e.g. by mask ratio: one row per bin
        elif isinstance(v, dict) and v:
            rows = [v]
        if rows:
            t = table(rows)
            if t:
                out += ["", f"{'#' * level} {escape(k)}", ""] + t
    return out


def page_path(folder: str) -> str:
    return f"results/{folder}.md"


def pages(results: Path = RESULTS) -> dict[str, str | bytes]:
    """Every results page and picture: {path under docs/: text or PNG bytes}."""
    index = load_index()
    groups = index.entries(results)
    out: dict[str, str | bytes] = {}
    overview = ["# Results", "",
                "Every measurement in this project, one page per folder of `benchmarks/results/`, each table "
                "written from the JSON file named above it by `docs/gen/results_pages.py` when the site is "
                "built. Each file gives the command that made it (commands recorded after the fact from git "
                "history are marked *recovered*). The repository's own index of the same files is "
                "`benchmarks/results/README.md` (`python benchmarks/index.py`).", "",
                "| page | files | what |", "|---|---|---|"]
    for folder, items in groups.items():
        page = page_path(folder)
        rel = os.path.relpath(page, "results")
        overview.append(f"| [{folder}]({rel}) | {len(items)} | {escape(index.FOLDERS.get(folder, ''))} |")
        lines = [f"# {folder}", ""]
        if folder in index.FOLDERS:
            lines += [index.FOLDERS[folder], ""]
        lines += [f"From `benchmarks/results/{folder}/`.", ""]
        for e in items:
            data = json.loads((results / folder / e["name"]).read_text())
            lines += [f"## {e['name']}", "", e["what"][:1].upper() + e["what"][1:] + "."]
            facts = [x for x in (e["setting"], e["rows"]) if x]
            if facts:
                lines += ["", escape("; ".join(facts)) + "."]
            for p in e["provenances"]:
                how = ", command recovered" if "command_recovered_from" in p else ""
                lines += ["", f"Run {index.run_date(p)}{how}:", "", "```bash", p["command"], "```"]
                if "command_recovered_from" in p:
                    lines += ["", f"Recovered from {escape(p['command_recovered_from'])}."]
            for c in e["companions"]:
                if c.endswith(".png"):
                    img = f"results/img/{folder}/{c}"
                    out[img] = (results / folder / c).read_bytes()
                    lines += ["", f"![{c}]({os.path.relpath(img, os.path.dirname(page))})"]
            t = body(data)
            if t:
                lines += [""] + t
            lines.append("")
        out[page] = "\n".join(lines).rstrip("\n") + "\n"
    out["results/index.md"] = "\n".join(overview) + "\n"
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory to write the pages into (as docs/ would hold them)")
    args = ap.parse_args(argv)
    for rel, content in pages().items():
        path = Path(args.out) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    print(f"wrote the results pages under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
