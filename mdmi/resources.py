"""Files shipped inside the package: the trained checkpoints under ``mdmi/checkpoints``.

Found through :mod:`importlib.resources`, so they resolve from any working directory and
for an installed wheel as for the source tree.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def checkpoint_dir(name: str) -> Path:
    """The shipped checkpoint directory ``name`` (``"sudoku"``, ``"sapiens_vh/estimator"``).

    FileNotFoundError when the package holds no such directory (an install without its
    data files)."""
    root = files("mdmi") / "checkpoints"
    if not isinstance(root, Path):  # a zipped install: no directory to hand to safetensors
        raise FileNotFoundError(f"mdmi's checkpoints are not on the file system ({root}); install mdmi unzipped")
    path = root.joinpath(*name.split("/"))
    if not path.is_dir():
        raise FileNotFoundError(f"mdmi ships no checkpoint {name!r} (looked in {path})")
    return path
