"""Figures of a run (matplotlib Agg backend; never opens a window)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["plot_curves", "plot_graph"]


def _by_round(rows: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rounds = sorted({r["round"] for r in rows})
    return rounds, [float(np.mean([r[key] for r in rows if r["round"] == t])) for t in rounds]


def plot_curves(runs: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Plot mean accuracy, mean utility and mean cumulative utility per round for each run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, rows in runs.items():
        for ax, key, label in zip(axes, ("acc", "U", "cum_U"),
                                  ("mean test accuracy", "mean utility $U_i^t$ (eq. 1)",
                                   "mean cumulative utility"), strict=True):
            ax.plot(*_by_round(rows, key), marker="o", ms=3, label=name)
            ax.set_xlabel("round")
            ax.set_ylabel(label)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_graph(round_record: str | Path, path: str | Path) -> Path:
    """Draw the collaboration graph of one recorded round with networkx (edge i->j: i imports j)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    rec = json.loads(Path(round_record).read_text())
    clients, A = rec["clients"], np.asarray(rec["outputs"]["A"])
    g = nx.DiGraph()
    g.add_nodes_from(clients)
    g.add_edges_from((clients[a], clients[b]) for a, b in zip(*np.nonzero(A), strict=True))
    fig, ax = plt.subplots(figsize=(6, 6))
    pos = nx.circular_layout(g)
    nx.draw_networkx(g, pos, ax=ax, node_color="#9ecae1", arrowsize=8, node_size=350,
                     font_size=8, edge_color="#555555", width=0.6)
    m = len(clients)
    ax.set_title(f"round {rec['round']}: {int(A.sum())} imports, "
                 f"density {A.sum() / max(1, m * (m - 1)):.2f}")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
