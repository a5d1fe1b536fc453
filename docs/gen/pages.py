"""Run by the mkdocs-gen-files plugin during ``mkdocs build`` (see ``mkdocs.yml``): writes the
generated pages into the build (nothing lands in the source tree): ``reference/cli.md``
from the ``mdmi`` parser, ``reference/selectors.md`` from the selector registry (the prose
in ``selectors_template.md``, the table from the knob specs) and ``results/*`` from
``benchmarks/results``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mkdocs_gen_files

HERE = Path(__file__).resolve().parent


def generator(name: str):
    """A generator script of this folder, as a module (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"mdmi_docs_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


with mkdocs_gen_files.open("reference/cli.md", "w") as f:
    f.write(generator("cli_reference").render())

with mkdocs_gen_files.open("reference/selectors.md", "w") as f:
    from mdmi.selectors.registry import markdown_table

    f.write((HERE / "selectors_template.md").read_text().replace("{{SELECTOR_TABLE}}", markdown_table()))

for path, content in generator("results_pages").pages().items():
    with mkdocs_gen_files.open(path, "wb" if isinstance(content, bytes) else "w") as f:
        f.write(content)
