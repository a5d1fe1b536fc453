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


REGION_COLOURS = {"fw": "#d9d9d9", "cdr1": "#4daf4a", "cdr2": "#377eb8", "cdr3": "#e41a1c"}


def residue_mi_map(mats: list[tuple[str, torch.Tensor]], sequence: str, regions: list[str], shown: list[int],
                   path: str | Path, title: str = "", top: list[str] | None = None) -> None:
    """MI among the residues ``shown`` (indices into ``sequence``) on a log colour scale,
    each axis labelled with residue letter and index and a strip coloured by region
    (framework, CDR1/2/3). ``mats``: (name, (R, R) matrix over all residues) panels;
    ``top``: lines (strongest pairs) printed under the picture."""
    plt = _plt()
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Patch

    idx = torch.tensor(shown)
    subs = [(name, m[idx][:, idx].double()) for name, m in mats]
    pos = torch.cat([s[s > 0] for _, s in subs])
    vmax = float(pos.max()) if len(pos) else 1.0
    vmin = max(float(pos.min()) if len(pos) else 1e-4, vmax * 1e-4)
    n = len(shown)
    size = min(9.0, 3.0 + 0.09 * n)
    fig, axes = plt.subplots(1, len(subs), figsize=(size * len(subs) + 1, size + 0.6 + 0.18 * len(top or [])),
                             squeeze=False)
    labels = [f"{sequence[i]}{i}" for i in shown]
    strip = [[plt.matplotlib.colors.to_rgb(REGION_COLOURS.get(regions[i], "#999999")) for i in shown]]
    for ax, (name, s) in zip(axes[0], subs):
        cmap = plt.get_cmap("magma").with_extremes(bad="black")
        im = ax.imshow(s.clamp_min(vmin * 0.5).masked_fill(s <= 0, float("nan")).numpy(), cmap=cmap,
                       norm=LogNorm(vmin=vmin, vmax=vmax), extent=(-0.5, n - 0.5, n - 0.5, -0.5))
        # region strips just outside the matrix
        ax.imshow(strip, extent=(-0.5, n - 0.5, -0.5 - max(1.0, n / 40), -0.5), aspect="auto")
        ax.imshow([[c] for c in strip[0]], extent=(-0.5 - max(1.0, n / 40), -0.5, n - 0.5, -0.5), aspect="auto")
        ax.set_xlim(-0.5 - max(1.0, n / 40), n - 0.5)
        ax.set_ylim(n - 0.5, -0.5 - max(1.0, n / 40))
        fs = 7 if n <= 40 else 5 if n <= 80 else 3.5
        ax.set_xticks(range(n), labels, rotation=90, fontsize=fs)
        ax.set_yticks(range(n), labels, fontsize=fs)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046, label="nats (log scale)")
    present = [r for r in REGION_COLOURS if any(regions[i] == r for i in shown)]
    fig.legend(handles=[Patch(color=REGION_COLOURS[r], label=r.upper() if r != "fw" else "framework")
                        for r in present], loc="upper right", fontsize=7, ncol=len(present))
    if title:
        fig.suptitle(title, fontsize=9, x=0.02, ha="left")
    if top:
        fig.text(0.01, 0.005, "\n".join(top), fontsize=7, family="monospace", va="bottom")
    fig.tight_layout(rect=(0, 0.02 + 0.02 * len(top or []), 1, 0.97))
    fig.savefig(path, dpi=130)
    plt.close(fig)
