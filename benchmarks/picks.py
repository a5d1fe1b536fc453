"""Record in each shipped MI head the decoder settings picked on the validation split.

Reads the ranking files of the antibody benchmarks (written by ``benchmarks/ranking.py``,
which picks each selector's setting on the valid split and reports it on test) and writes
them into the head's ``config.json`` under ``"picked"``: per task, the ``[selector, knobs]``
pairs, the source file and the command that picked them. ``mdmi bench antibody`` without
``--sweep`` then runs those settings (the defaults that show the method) instead of each
selector's first sweep value.

    python benchmarks/picks.py
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from mdmi.resources import checkpoint_dir

RESULTS = Path(__file__).resolve().parent / "results" / "antibody"
# (shipped head, task, temperature) -> the ranking file that picked on validation
SOURCES = {
    ("sapiens_vh", "cdr3", 0.0): "sapiens_vh/ranking_cdr3.json",
    ("sapiens_vh", "cdrs", 0.0): "sapiens_vh/ranking_cdrs.json",
    ("sapiens_vh", "denovo", 1.0): "sapiens_vh/ranking_denovo_sampled.json",
    ("sapiens_vl", "cdr3", 0.0): "sapiens_vl/ranking_cdr3.json",
    ("antiberty", "cdr3", 0.0): "antiberty/ranking_cdr3.json",
}


def picks_of(path: Path) -> list:
    """``[[selector, knobs], ...]`` of a ranking file (``mi_budget(eta=0)`` is ``mi_budget``)."""
    rows = json.loads(path.read_text())
    return [[r["selector"].split("(")[0].split("[")[0], r["params"]] for r in rows if r["selector"] != "sequential"]


def main():
    command = " ".join(["python"] + [shlex.quote(a) for a in sys.argv])
    by_head: dict[str, dict] = {}
    for (head, task, temperature), rel in SOURCES.items():
        src = RESULTS / rel
        rows = json.loads(src.read_text())
        by_head.setdefault(head, {})[task] = {
            "temperature": temperature, "settings": picks_of(src), "source": f"benchmarks/results/antibody/{rel}",
            "picked_by": (rows[0].get("provenance") or {}).get("command", "benchmarks/ranking.py"),
        }
    for head, picked in by_head.items():
        cfg = Path(checkpoint_dir(head)) / "estimator" / "config.json"
        meta = json.loads(cfg.read_text())
        meta["picked"] = {**picked, "recorded_by": command}
        cfg.write_text(json.dumps(meta, indent=2) + "\n")
        tasks = ", ".join(f"{t} ({len(p['settings'])} settings)" for t, p in picked.items())
        print(f"{cfg}: {tasks}")


if __name__ == "__main__":
    main()
