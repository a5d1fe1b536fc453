"""Output directories that never lose work: one rule for every command that writes one."""

from __future__ import annotations

from pathlib import Path


def claim_dir(out: str | Path, resume: bool = False, overwrite: bool = False, what: str = "output") -> Path:
    """Check that ``out`` may be written, before anything is: a missing or empty directory
    is fine; one holding files is refused unless ``resume`` (continue it) or ``overwrite``
    (replace what is written there) is set. ValueError names the directory and the flags."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; the {what} needs a directory")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not (resume or overwrite):
        shown = ", ".join(held[:4]) + (", ..." if len(held) > 4 else "")
        raise ValueError(f"{out} already holds files ({shown}); nothing was written. Pass --resume to continue "
                         f"it, --overwrite to replace it, or choose another --out")
    return out


def read_safetensors(path: str | Path) -> dict:
    """The tensors of a safetensors file; ValueError (not a library error) for an empty,
    truncated or foreign file."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error type for every malformed file
        raise ValueError(f"{path} is not a readable safetensors file (empty or truncated?): {e}") from None


def read_json(path: str | Path):
    """A JSON file's content; ValueError naming the file when it is not valid JSON."""
    import json

    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
