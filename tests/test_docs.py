"""The documentation runs: every ```python block of README.md and docs/**/*.md executes
(a page's blocks in order, in one namespace, from the repository root), the generators of
the CLI reference, the results pages and the results index succeed, and, when MkDocs and
its plugins are installed, ``mkdocs build --strict`` passes.

A block that needs a model that cannot be had here (a hub download, a GPU) opts out with
an ``<!-- skip -->`` line right before its fence.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md"] + sorted((ROOT / "docs").rglob("*.md"))
FENCE = re.compile(r"^```(\w*)\s*$")
SKIP = "<!-- skip -->"


def code_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line of the fence, code, skipped) for every ```python block of a Markdown text."""
    lines = text.split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        if lang == "python":
            before = [x for x in lines[:start] if x.strip()]
            out.append((start + 1, "\n".join(lines[start + 1: j]), bool(before) and before[-1].strip() == SKIP))
        i = j + 1
    return out


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_code_blocks_are_found_and_skips_parsed():
    text = "a\n\n```python\nx = 1\n```\n\n<!-- skip -->\n```python\nraise SystemExit\n```\n```bash\nls\n```\n"
    assert code_blocks(text) == [(3, "x = 1", False), (8, "raise SystemExit", True)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_python_blocks_run(page, monkeypatch):
    blocks = [b for b in code_blocks(page.read_text()) if not b[2]]
    if not blocks:
        pytest.skip("no python block to run")
    monkeypatch.chdir(ROOT)  # the examples read data/ as the README's commands do
    namespace = {"__name__": "__docs__"}
    for line, code, _ in blocks:
        exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)


def test_cli_reference_lists_every_command_and_option():
    from mdmi.cli import build_parser, walk

    text = load(ROOT / "docs" / "gen" / "cli_reference.py", "cli_reference").render()
    for q in walk(build_parser()):
        assert f"`{q.prog}`" in text
        for a in q._actions:
            if a.dest == "help":
                continue
            for s in a.option_strings:
                assert f"`{s}`" in text, (q.prog, s)


def test_results_pages_cover_every_result_file():
    pages = load(ROOT / "docs" / "gen" / "results_pages.py", "results_pages").pages()
    results = ROOT / "benchmarks" / "results"
    assert "results/index.md" in pages
    text = "\n".join(v for v in pages.values() if isinstance(v, str))
    for p in results.rglob("*.json"):
        assert f"## {p.name}" in pages[f"results/{p.parent.relative_to(results).as_posix()}.md"]
        data = json.loads(p.read_text())
        for r in data if isinstance(data, list) else [data]:
            assert r["provenance"]["command"] in text  # each table is shown with the command that made it
    for p in results.rglob("*.png"):
        assert f"results/img/{p.relative_to(results).as_posix()}" in pages


def test_results_index_accounts_for_every_file():
    index = load(ROOT / "benchmarks" / "index.py", "results_index")
    assert index.orphans() == []  # every file has a recorded (or recovered) command
    text = index.render()
    for p in (ROOT / "benchmarks" / "results").rglob("*.json"):
        assert f"### {p.relative_to(ROOT / 'benchmarks' / 'results').as_posix()}" in text


def _have(*modules) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(not _have("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_gen_files"),
                    reason="the docs extra is not installed (pip install '.[docs]')")
def test_mkdocs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
    assert (tmp_path / "site" / "results" / "sudoku" / "index.html").is_file()
