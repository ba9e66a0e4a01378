"""Figures for ``ipfl compare`` (matplotlib with the Agg backend; no display needed).

Kept out of :mod:`mechanism`, which never imports matplotlib.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["plot_example", "plot_gap_vs_m"]


def _save(fig: plt.Figure, path: Path) -> Path:
    """Save atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
    return path


def plot_gap_vs_m(rows: list[dict], path: str | os.PathLike) -> Path:
    """Box plot of the relative row gap ``(phi_greedy - phi_opt)/|phi_opt|`` against ``m``.

    Only suboptimal rows are drawn (on a log scale); the share of optimal rows is
    printed above each box.
    """
    variants = sorted({r["variant"] for r in rows})
    sizes = sorted({r["m"] for r in rows})
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 3.6), squeeze=False,
                             sharey=True)
    for ax, variant in zip(axes[0], variants, strict=True):
        data, share = [], []
        for m in sizes:
            sel = [r for r in rows if r["variant"] == variant and r["m"] == m]
            gaps = np.array([r["gap_rel"] for r in sel if not r["optimal"]])
            data.append(gaps if gaps.size else np.array([np.nan]))
            share.append(np.mean([r["optimal"] for r in sel]))
        ax.boxplot([d[np.isfinite(d)] for d in data], positions=range(len(sizes)))
        ax.set_xticks(range(len(sizes)),
                      [f"{m}\n{100 * s:.0f}% rows opt." for m, s in zip(sizes, share, strict=True)])
        ax.set_yscale("log")
        ax.set_xlabel("clients m")
        ax.set_title(f'Algorithm 2 "{variant}": gap of suboptimal rows')
    axes[0][0].set_ylabel(r"$(\phi_{greedy}-\phi_{opt})/|\phi_{opt}|$")
    return _save(fig, Path(path))


def plot_example(example: dict, path: str | os.PathLike) -> Path:
    """Draw one market's greedy ("paper") and optimal graphs side by side (networkx)."""
    A_g, A_o = np.array(example["A_paper"]), np.array(example["A_opt"])
    m = A_g.shape[0]
    pos = nx.circular_layout(range(m))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, A, title in ((axes[0], A_g, 'Algorithm 2 ("paper")'), (axes[1], A_o, "optimal")):
        G = nx.DiGraph()
        G.add_nodes_from(range(m))
        G.add_edges_from(zip(*np.nonzero(A), strict=True))
        other = A_o if A is A_g else A_g
        colors = ["tab:red" if other[i, j] == 0 else "0.4" for i, j in G.edges]
        labels = {i: f"{i}\nN={example['N'][i]:.0f}" for i in range(m)}
        nx.draw_networkx(G, pos, ax=ax, labels=labels, node_color="#dde8f5", node_size=900,
                         font_size=7, edge_color=colors, arrows=True,
                         connectionstyle="arc3,rad=0.1")
        ax.set_title(title + " (red: edge only here)")
        ax.set_axis_off()
    fig.suptitle(f"m = {m}, row {example['row']} differs most (edge i->j: i imports j)")
    return _save(fig, Path(path))
