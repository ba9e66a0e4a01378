"""``utility`` (Fig. 3): every client's cumulative utility per method, three settings.

Uses exactly the runs of ``performance`` (same configs, so a shared run store trains
them once). Outputs: ``clients.csv`` (one row per client per run: its cumulative
utility of eq. (1) over the run), ``utility.csv`` (per method x setting x seed: the
number of clients with negative cumulative utility, mean and minimum),
``utility.png`` (a strip plot per setting: grey dots are clients of every seed, the
circle the mean), ``summary.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import performance
from .core import Preset, Spec, fmt, group_by, last_round, write_csv, write_summary

NAME = "utility"
TITLE = "Fig. 3: every client's cumulative utility"
specs = performance.specs
PER_RUN = performance.PER_RUN


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write clients.csv, utility.csv, utility.png and summary.md."""
    clients = []
    for s in specs_:
        for r in last_round(rows[s.label]):
            clients.append({**s.keys, "client": r["client"], "role": r["role"],
                            "cum_U": r["cum_U"], "acc": r["acc"]})
    write_csv(out / "clients.csv", clients)
    table = []
    for key, g in group_by(clients, "setting", "method", "seed").items():
        u = [r["cum_U"] for r in g]
        table.append({"setting": key[0], "method": key[1], "seed": key[2],
                      "neg_clients": sum(1 for x in u if x < -1e-9), "clients": len(u),
                      "mean_cum_U": sum(u) / len(u), "min_cum_U": min(u)})
    write_csv(out / "utility.csv", table)
    _figure(out / "utility.png", clients)
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`; per seed, then mean ± sd over seeds.",
             "", "| setting | method | clients with cum. U < 0 (per seed) | mean cum. U | "
             "lowest client's cum. U |", "|---|---|---|---|---|"]
    for (setting, method), g in group_by(table, "setting", "method").items():
        lines.append(f"| {setting} | {method} | {fmt([r['neg_clients'] for r in g])} of "
                     f"{int(g[0]['clients'])} | {fmt([r['mean_cum_U'] for r in g])} | "
                     f"{fmt([r['min_cum_U'] for r in g])} |")
    write_summary(out, lines)
    return {"rows": table}


def _figure(path: Path, clients: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = list(dict.fromkeys(r["setting"] for r in clients))
    methods = list(dict.fromkeys(r["method"] for r in clients))
    fig, axes = plt.subplots(1, len(settings), figsize=(5.2 * len(settings), 4.2),
                             squeeze=False)
    rng = np.random.default_rng(0)
    for ax, setting in zip(axes[0], settings, strict=True):
        for j, method in enumerate(methods):
            u = np.array([r["cum_U"] for r in clients
                          if r["setting"] == setting and r["method"] == method])
            ax.scatter(j + rng.uniform(-0.18, 0.18, u.size), u, s=9, color="#999999",
                       alpha=0.7, zorder=2)
            ax.scatter([j], [u.mean()], s=70, facecolor="none", edgecolor="#d62728",
                       linewidth=1.8, zorder=3)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
        ax.set_title(setting)
        ax.set_ylabel("client's cumulative utility")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Cumulative utility per client (grey: clients of all seeds; circle: mean)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
