"""``similarity`` (not in the paper): do iPFL's imports stay within the true clusters.

Eq. (4) prices a model by its distance, on the premise that a nearby model is one
trained on similar data. On the Cluster partition each client's true group is known,
so per round we count the share of imports (edges ``i -> j`` of the graph) with ``j``
in ``i``'s group, against the share a uniformly random import would have (chance).
A sweep of iPFL's distance price ``lam`` (0, 0.2, 1 = default, 5) shows the trade-off
between accuracy, utility and similarity; local training is the accuracy reference.

Outputs: ``similarity.csv`` (one row per run), ``within.csv`` (per run and round),
``similarity.png``, ``summary.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .core import Preset, Spec, fmt, group_by, last_round, setting_keys, write_csv, write_summary

NAME = "similarity"
TITLE = "Similarity: do imports stay within a client's true cluster?"
LAMBDAS = (0.0, 0.2, 1.0, 5.0)
#: keys the specs set run by run: iPFL's lam
PER_RUN = ("ipfl.lam",)


def specs(preset: Preset, seeds: list[int], common: dict[str, Any]) -> list[Spec]:
    """Return one iPFL run per lam x seed on Cluster, plus local training per seed."""
    from training import Config

    out = []
    base = {**common, **setting_keys("Cluster", preset)}
    for seed in seeds:
        out.append(Spec(f"local-s{seed}", {"method": "local", "lam": float("nan"), "seed": seed},
                        Config.from_dict({**base, "algorithm": "local", "seed": seed})))
    for lam in LAMBDAS:
        for seed in seeds:
            keys = {**base, "algorithm": "ipfl", "seed": seed}
            if lam != 1.0:  # the default: the same run as performance's Cluster iPFL run
                keys["ipfl"] = {"lam": lam}
            out.append(Spec(f"ipfl-lam{lam:g}-s{seed}", {"method": "ipfl", "lam": lam,
                                                        "seed": seed}, Config.from_dict(keys)))
    return out


def within_by_round(run: Path, groups: dict[int, int]) -> list[tuple[int, int, int]]:
    """Per recorded round: (round, imports within the importer's group, all imports)."""
    from training import RunDir

    out = []
    for t, rec in RunDir(run).read_records().items():
        if rec.exchange is None:
            continue
        A = rec.exchange.A
        g = np.array([groups[c] for c in rec.exchange.clients])
        out.append((t, int((A * (g[:, None] == g[None, :])).sum()), int(A.sum())))
    return out


def chance_share(groups: dict[int, int]) -> float:
    """Share of a client's possible imports inside its own group, averaged over clients."""
    g = np.array(list(groups.values()))
    return float(np.mean([(np.sum(g == gi) - 1) / (len(g) - 1) for gi in g]))


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write similarity.csv, within.csv, similarity.png and summary.md."""
    table, per_round = [], []
    local = {s.keys["seed"]: last_round(rows[s.label]) for s in specs_
             if s.keys["method"] == "local"}
    for s in specs_:
        if s.keys["method"] != "ipfl":
            continue
        rs = rows[s.label]
        last = last_round(rs)
        groups = {r["client"]: r["group"] for r in rs if r["round"] == 0}
        chance = chance_share(groups)
        wr = within_by_round(out / "runs" / s.label, groups)
        for t, same, tot in wr:
            per_round.append({**s.keys, "round": t, "within": same, "imports": tot,
                              "share": same / tot if tot else float("nan"), "chance": chance})
        same, tot = sum(x[1] for x in wr), sum(x[2] for x in wr)
        m = len(last)
        loc = local[s.keys["seed"]]
        table.append({**s.keys, "acc": np.mean([r["acc"] for r in last]),
                      "best_acc": np.mean([r["best_acc"] for r in last]),
                      "local_acc": np.mean([r["acc"] for r in loc]),
                      "cum_U": np.mean([r["cum_U"] for r in last]),
                      "share": same / tot if tot else float("nan"), "chance": chance,
                      "imports_per_round": tot / max(1, len(wr)) / m})
    table = [{k: float(v) if isinstance(v, np.floating) else v for k, v in r.items()}
             for r in table]
    write_csv(out / "similarity.csv", table)
    write_csv(out / "within.csv", per_round)
    _figure(out / "similarity.png", table, per_round)
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`, Cluster, iPFL; mean ± sd over seeds. "
             "Share = imports within the importer's true group / all imports, over all rounds; "
             "chance = the share of uniformly random imports.", "",
             "| lam | within-cluster share | chance | imports per client and round | acc (last) "
             "| acc (best val) | local acc | mean cum. U |", "|---|---|---|---|---|---|---|---|"]
    for (lam,), g in group_by(table, "lam").items():
        lines.append(f"| {lam:g} | {fmt([r['share'] for r in g], digits=2)} | "
                     f"{fmt([r['chance'] for r in g], digits=2)} | "
                     f"{fmt([r['imports_per_round'] for r in g], digits=2)} | "
                     f"{fmt([r['acc'] for r in g], 100)} | {fmt([r['best_acc'] for r in g], 100)}"
                     f" | {fmt([r['local_acc'] for r in g], 100)} | "
                     f"{fmt([r['cum_U'] for r in g], digits=2)} |")
    write_summary(out, lines)
    return {"rows": table}


def _figure(path: Path, table: list[dict[str, Any]], per_round: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    cmap = plt.get_cmap("viridis")
    lams = list(dict.fromkeys(r["lam"] for r in table))
    for k, lam in enumerate(lams):
        g = group_by([r for r in per_round if r["lam"] == lam], "round")
        t = [key[0] for key in g]
        axes[0].plot(t, [np.nanmean([r["share"] for r in v]) for v in g.values()], marker="o",
                     ms=3, color=cmap(k / max(1, len(lams) - 1)), label=f"lam = {lam:g}")
    chance = np.mean([r["chance"] for r in table])
    axes[0].axhline(chance, color="black", ls="--", lw=1, label=f"chance ({chance:.2f})")
    axes[0].set_ylim(-0.02, 1.02)
    axes[0].set_xlabel("round")
    axes[0].set_ylabel("share of imports within the true cluster")
    axes[0].legend(fontsize=8)
    axes[0].grid(alpha=0.3)
    for k, lam in enumerate(lams):
        g = [r for r in table if r["lam"] == lam]
        axes[1].scatter([100 * r["acc"] for r in g], [r["cum_U"] for r in g],
                        s=30 + 200 * np.nan_to_num([r["share"] for r in g]),
                        color=cmap(k / max(1, len(lams) - 1)), label=f"lam = {lam:g}", alpha=0.8)
    axes[1].set_xlabel("mean last-round accuracy (%)")
    axes[1].set_ylabel("mean cumulative utility")
    axes[1].set_title("marker area = within-cluster share")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
