"""Write ``benchmarks/results/README.md``: an index of every result file, made from the
provenance each file records (the command that wrote it and when), never typed by hand.

    python benchmarks/index.py            # rewrite the index
    python benchmarks/index.py --check    # exit 1 when the index is out of date

A JSON result carries ``provenance`` (``{"command", "date", "versions"}`` as ``mdmi``
writes it), either at its top level or on every row of a list. A command recovered from
git history for a file that did not record one carries ``command_recovered_from`` (the
commit and what in it names the command) and ``committed`` (that commit's date) instead of
``date``. A PNG or CSV belongs to the JSON with the same name in the same folder (written
from the same rows). What a file measures is taken from the tool that made it: the
``mdmi`` sub-command's own help, or the first sentence of a benchmark script's docstring.
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
INDEX = RESULTS / "README.md"

# what each folder holds; a folder not listed here is still indexed, under its own name
FOLDERS = {
    "sudoku": "Sudoku with the shipped model and MI head: decoding sweeps (solve rate vs NFE), "
              "exact-MI oracles, step traces, singles depth, sub-additivity of chosen sets.",
    "hmm": "Unconditional sampling from the trained HMM model, scored by the exact HMM.",
    "likelihood": "Likelihood estimators (I-MDCE time-free vs time-integral, coupled ratios) on the "
                  "exact HMM and on real antibody LMs.",
    "exact_mi": "Throughput and truncation error of exact pairwise MI.",
    "estimator": "The neural MI heads: agreement with exact labels and cost next to a model pass.",
    "dependence": "Free dependence signals (DAWN's attention graph, mean-field JS interactions, marginal "
                  "similarity) and the MI head against exact MI on fresh label sets: Spearman, top-pair "
                  "precision, cost.",
    "antibody": "Pretrained antibody LMs (all models): recovery, speed, where their pairwise MI lies.",
    "antibody/sapiens_vh": "Sapiens VH: greedy CDR3 / all-CDR infilling and sampled de novo VH, "
                           "every selector; validation-picked rankings; sub-additivity.",
    "antibody/sapiens_vl": "Sapiens VL: greedy CDR3 infilling and sampled de novo VL, every selector; rankings.",
    "antibody/antiberty": "AntiBERTy: greedy CDR3 infilling and sampled de novo VH, every selector; "
                          "ranking; sub-additivity; MI structure.",
    "text": "The prompted text testbed (add, split, perm): the text dLLM's training curve, exact MI maps of its "
            "answers, the MI head on block-decoding contexts, decoding benchmarks.",
    "device": "The core on each device at hand (CPU, CUDA).",
}


def rows_of(data) -> list:
    """The rows of a result file: the list itself, or the one top-level object."""
    return data if isinstance(data, list) else [data]


def provenances(data) -> list[dict]:
    """The distinct provenance records of a result file, in the order they first appear."""
    out = []
    for r in rows_of(data):
        p = r.get("provenance") if isinstance(r, dict) else None
        if p and p not in out:
            out.append(p)
    return out


def run_date(p: dict) -> str:
    """The run's date (YYYY-MM-DD); for a recovered command, its commit's date, marked."""
    if p.get("date"):
        return p["date"][:10]
    if p.get("committed"):
        return p["committed"][:10] + " (commit)"
    return "unknown"


def words(command: str) -> list[str]:
    """The words of a command's first line ([] for no command)."""
    line = command.splitlines()[0] if command.strip() else ""
    try:
        return shlex.split(line)
    except ValueError:  # an unbalanced quote in a hand-recovered command
        return line.split()


@lru_cache(maxsize=1)
def _cli_help() -> dict:
    """'mdmi bench antibody' -> that sub-command's one-line description."""
    from mdmi.cli import build_parser, walk

    return {q.prog: (q.description or "").strip().split("\n")[0] for q in walk(build_parser())}


def measures(command: str) -> str:
    """What a command measures, in the words of the tool that ran it."""
    w = words(command)
    if w and w[0] == "mdmi":
        helps, prog, i = _cli_help(), "mdmi", 1
        while i < len(w):
            if w[i].startswith("-"):  # global options before the sub-command
                i += 1 if "=" in w[i] or w[i] == "--trust-remote-code" else 2
                continue
            if f"{prog} {w[i]}" not in helps:
                break
            prog = f"{prog} {w[i]}"
            i += 1
        return f"{helps.get(prog, '')} (`{prog}`)".strip()
    script = next((x for x in w if x.endswith(".py")), None)
    if script and (ROOT / script).is_file():
        doc = ast.get_docstring(ast.parse((ROOT / script).read_text())) or ""
        first = " ".join(doc.split("\n\n")[0].split())
        return f"{first.split('. ')[0].rstrip('.')} (`{script}`)"
    return ""


def option(command: str, name: str) -> str | None:
    """The value of ``--name`` in a command, if given."""
    w = words(command)
    for i, x in enumerate(w):
        if x == name and i + 1 < len(w):
            return w[i + 1]
        if x.startswith(name + "="):
            return x.split("=", 1)[1]
    return None


def setting(command: str) -> str:
    """The few options that say what a run was on: model, task, data, sample size, temperature."""
    parts = []
    for name in ("--model", "--models", "--task", "--puzzles", "--fasta", "--limit", "--n", "--temperature"):
        v = option(command, name)
        if v is not None:
            parts.append(f"{name.lstrip('-')} {Path(v).name if name in ('--puzzles', '--fasta') else v}")
    return ", ".join(parts)


def rows_summary(data) -> str:
    """'12 rows: sequential 1, topk 3, ...' for selector rows; '' for other files."""
    rows = rows_of(data)
    sel = [r["selector"] for r in rows if isinstance(r, dict) and "selector" in r]
    if not sel:
        return ""
    counts: dict[str, int] = {}
    for s in sel:
        counts[s] = counts.get(s, 0) + 1
    return f"{len(rows)} rows: " + ", ".join(f"{s} {n}" for s, n in counts.items())


def entries(results: Path = RESULTS) -> dict[str, list[dict]]:
    """Folder (relative to ``results``) -> one entry per JSON file, with its companions."""
    out: dict[str, list[dict]] = {f: [] for f in FOLDERS}  # the folders in this order, then any others
    for path in sorted(results.rglob("*.json")):
        data = json.loads(path.read_text())
        provs = provenances(data)
        companions = sorted(p.name for p in path.parent.glob(path.stem + ".*") if p.suffix != ".json")
        sidecar_of = path.name[: -len("_equal_nfe.json")] + ".json" if path.name.endswith("_equal_nfe.json") else None
        first = provs[0]["command"] if provs else ""
        what = (f"equal-NFE comparison (interpolated curves) written beside `{sidecar_of}`"
                if sidecar_of else measures(first))
        folder = str(path.parent.relative_to(results)).replace("\\", "/")
        out.setdefault(folder, []).append({
            "name": path.name, "what": what, "setting": setting(first) if provs else "",
            "rows": rows_summary(data), "provenances": provs, "companions": companions})
    return {f: items for f, items in out.items() if items}


def orphans(results: Path = RESULTS) -> list[str]:
    """Files that no recorded command accounts for: a PNG/CSV without its JSON, a JSON without provenance."""
    bad = []
    for p in sorted(results.rglob("*")):
        if not p.is_file() or p == results / "README.md":
            continue
        if p.suffix == ".json":
            if not provenances(json.loads(p.read_text())):
                bad.append(str(p.relative_to(results)))
        elif not p.with_suffix(".json").exists():
            bad.append(str(p.relative_to(results)))
    return bad


def render(results: Path = RESULTS) -> str:
    groups = entries(results)
    lines = ["# Benchmark results", "",
             "Generated by `python benchmarks/index.py` from the provenance each file records; do not edit.",
             "Each entry gives the command that wrote the file and when. Commands recorded after the fact",
             "from git history are marked *recovered* and say from where. A PNG or CSV listed beside a",
             "JSON was written from the same rows.", "",
             "| folder | files | what |", "|---|---|---|"]
    for folder, items in groups.items():
        lines.append(f"| [`{folder}/`](#{anchor(folder)}) | {len(items)} | {FOLDERS.get(folder, '')} |")
    bad = orphans(results)
    if bad:
        lines += ["", "**Files without provenance:** " + ", ".join(f"`{b}`" for b in bad)]
    for folder, items in groups.items():
        lines += ["", f"## {folder}/", ""]
        if folder in FOLDERS:
            lines += [FOLDERS[folder], ""]
        for e in items:
            link = f"[`{e['name']}`]({folder}/{e['name']})"
            also = "".join(f", [`{c}`]({folder}/{c})" for c in e["companions"])
            lines.append(f"### {folder}/{e['name']}")
            lines.append("")
            what = e["what"][:1].upper() + e["what"][1:]
            lines.append(f"{link}{also}: {what}.")
            facts = [x for x in (e["setting"], e["rows"]) if x]
            if facts:  # curve names such as mi_budget[js](eta=0) must not read as links
                lines += ["", "; ".join(facts).replace("[", "\\[").replace("]", "\\]") + "."]
            for p in e["provenances"]:
                lines += ["", f"Run {run_date(p)}" + (", command *recovered*" if "command_recovered_from" in p else "") + ":",
                          "", "```", p["command"], "```"]
                if "command_recovered_from" in p:
                    lines += ["", f"Recovered from {p['command_recovered_from']}."]
                if p.get("note"):
                    lines += ["", f"Note: {p['note']}."]
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def anchor(folder: str) -> str:
    """The anchor GitHub and MkDocs give the heading '## <folder>/'."""
    return "".join(c for c in folder.lower() if c.isalnum() or c in "-_ ").replace(" ", "-")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="do not write; exit 1 when the index is out of date")
    args = ap.parse_args(argv)
    text = render()
    if args.check:
        if not INDEX.exists() or INDEX.read_text() != text:
            print(f"{INDEX} is out of date: run python benchmarks/index.py", file=sys.stderr)
            return 1
        return 0
    INDEX.write_text(text)
    print(f"wrote {INDEX}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
