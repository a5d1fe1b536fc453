"""Pictures of dependency structure (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path

import torch


def _plt():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plotting needs matplotlib: pip install 'mdmi[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mi_maps(exact: torch.Tensor, predicted: torch.Tensor | None, path: str | Path, cell: int | None = None,
            grid: int = 0, title: str = "") -> None:
    """Exact and (if given) predicted (L, L) MI side by side; for a grid task also a board
    heat map of ``cell``'s MI with every other cell."""
    plt = _plt()
    mats = [("exact MI (nats)", exact)] + ([("predicted MI (nats)", predicted)] if predicted is not None else [])
    boards = grid and cell is not None
    ncol = len(mats) * (2 if boards else 1)
    fig, axes = plt.subplots(1, ncol, figsize=(4.2 * ncol, 4))
    axes = list(axes) if ncol > 1 else [axes]
    vmax = max(float(m.max()) for _, m in mats) or 1.0
    for k, (name, m) in enumerate(mats):
        ax = axes[k]
        im = ax.imshow(m.numpy(), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("position i")
        ax.set_ylabel("position j")
        fig.colorbar(im, ax=ax, fraction=0.046)
        if boards:
            ax = axes[len(mats) + k]
            b = m[cell].reshape(grid, grid).numpy()
            im = ax.imshow(b, cmap="viridis", vmin=0)
            ax.plot(cell % grid, cell // grid, "rx", ms=10)
            step = int(round(grid ** 0.5))
            for t in range(step, grid, step):
                ax.axhline(t - 0.5, color="w", lw=1)
                ax.axvline(t - 0.5, color="w", lw=1)
            ax.set_title(f"{name.split()[0]} MI of cell {cell} (r{cell // grid + 1}c{cell % grid + 1})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
