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
            grid: int = 0, title: str = "", pairs: torch.Tensor | None = None) -> None:
    """Exact and (if given) predicted (L, L) MI side by side on one colour scale (the
    diagonal kept out of it); for a grid task also a board heat map of ``cell``'s MI with
    every other cell. ``pairs`` (L, L) bool: the masked pairs the head's Spearman is
    computed over (written on the plot); default every off-diagonal pair."""
    plt = _plt()
    mats = [("exact MI (nats)", exact)] + ([("predicted MI (nats)", predicted)] if predicted is not None else [])
    boards = grid and cell is not None
    ncol = len(mats) * (2 if boards else 1)
    fig, axes = plt.subplots(1, ncol, figsize=(4.2 * ncol, 4))
    axes = list(axes) if ncol > 1 else [axes]
    off = ~torch.eye(exact.shape[-1], dtype=torch.bool)  # the diagonal is no pair: kept out of the scale
    vmax = max(float(m[off].max()) for _, m in mats) or 1.0
    if predicted is not None:  # the statistic the head is judged by, on the plot itself
        from .stats import spearman

        sel = off if pairs is None else pairs & off
        rho = spearman(exact[sel].double(), predicted[sel].double())
        title = (title + "  " if title else "") + f"head vs exact: Spearman {rho:.3f} over {int(sel.sum())} masked pairs"
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


# One colour and marker per selector, the same in every plot. Colours: the Okabe-Ito palette
# (colour-blind safe); a colour repeats only with another marker. An oracle (``*_oracle``,
# exact MI) takes its selector's style with open markers and a dashed line.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
             "grey": "#999999"}
SELECTOR_STYLES = {
    "sequential": (OKABE_ITO["black"], "*"),
    "mi_budget": (OKABE_ITO["vermillion"], "o"),
    "mi_budget(eta=0)": (OKABE_ITO["vermillion"], "v"),
    "mi_budget(eta=0,distinct)": (OKABE_ITO["vermillion"], "D"),
    "mi_budget(distinct)": (OKABE_ITO["vermillion"], "d"),
    "entropy_bound": (OKABE_ITO["blue"], "s"),
    "threshold": (OKABE_ITO["sky"], "^"),
    "factor": (OKABE_ITO["green"], "D"),
    "topk": (OKABE_ITO["orange"], "P"),
    "dependency_bound": (OKABE_ITO["purple"], "X"),
    "mi_gate": (OKABE_ITO["purple"], "h"),
    "klass": (OKABE_ITO["sky"], "<"),
    "dilated": (OKABE_ITO["green"], ">"),
    "pc_sampler": (OKABE_ITO["orange"], "p"),
    "info_gain": (OKABE_ITO["blue"], "d"),
    "remask": (OKABE_ITO["grey"], "H"),
    "dawn": (OKABE_ITO["yellow"], "s"),
    "mean_field": (OKABE_ITO["yellow"], "o"),
    "sched": (OKABE_ITO["grey"], "*"),
}
_SPARE_MARKERS = "o^sDv<>ph"


def selector_style(name: str) -> dict:
    """matplotlib keywords (colour, marker, fill, line style) of selector ``name``: its entry
    of :data:`SELECTOR_STYLES` (an oracle: its selector's, hollow and dashed); a name not in
    the table gets grey and a marker fixed by its name."""
    import zlib

    rule, _, signal = name.partition("[")  # mi_budget[js](eta=0): the rule on a free signal
    base = (rule + signal.partition("]")[2] if signal else name).removesuffix("_oracle")
    colour, marker = SELECTOR_STYLES.get(base, (OKABE_ITO["grey"],
                                                _SPARE_MARKERS[zlib.crc32(base.encode()) % len(_SPARE_MARKERS)]))
    if signal:  # a free signal: the rule's colour, a marker per signal, hollow, dash-dot
        marker = {"attention]": "^", "js]": "s", "similarity]": "D"}.get(signal.split("(")[0], marker)
    oracle = base != name.partition("[")[0] + (name.partition("]")[2] if signal else "") or bool(signal)
    return {"color": colour, "marker": marker,
            "linestyle": "-." if signal else "--" if oracle else ":" if name.endswith("(eta=0)") else "-",
            "markerfacecolor": "none" if oracle else colour, "markeredgecolor": colour}


def pareto_plot(rows, path: str | Path, metric: str, ylabel: str, xlabel: str, title: str = "",
                scale: float = 1.0) -> None:
    """Quality (``scale`` * the rows' ``metric``) vs mean NFE on a log axis, one curve per
    selector (:class:`mdmi.bench.BenchRow` rows) in its fixed style (:func:`selector_style`);
    a selector with one setting is one larger marker, no line."""
    plt = _plt()
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name in dict.fromkeys(r.selector for r in rows):
        pts = sorted((r.mean_nfe, scale * r.get(metric)) for r in rows if r.selector == name and r.mean_nfe > 0)
        if not pts:
            continue  # e.g. the HMM's own samples (no model passes): no place on a log axis
        style = selector_style(name)
        if len(pts) == 1:
            style["linestyle"] = "none"
        ax.plot(*zip(*pts), label=name, ms=4 if len(pts) > 1 else 11, lw=1.2, **style)
    ax.set_xscale("log")
    # plain numbers on the log axis (2, 5, 10, 20, ...), not 2x10^0
    plain = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "125" else "")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
