"""Figures of a run (matplotlib Agg backend; never opens a window)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from atomicio import atomic_write_bytes

__all__ = ["plot_curves"]


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
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=Path(path).suffix.lstrip(".").lower() or "png", dpi=120)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())  # whole or nothing; mode from the umask
    return Path(path)
