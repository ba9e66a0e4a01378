"""``truthfulness`` (Table 2): does misreporting N or c pay over a whole run.

NIID setting (Table 2's), iPFL. Client 0 reports ``x`` times its true data size
(``x`` = 0.1, 0.5, 10) or its true cost (``x`` = 2, 5, 10); its training uses its true
data and its recorded utility is measured with its *true* profile
(:func:`mechanism.settle`). The honest run is the same seed with no liar. Presets
may lower the learning rate for all of this experiment's runs (``quick``: 0.05), as a
tenfold over-report of N can otherwise make eq. (7)'s proximal step unstable for the
liar's peers. The
one-round audit (CLAIMS.md) found that over-reporting N can pay in a single round;
this experiment measures the whole run.

Who pays for a lie: the other clients' summed cumulative utility, how many of them end
below zero and their client-rounds below zero are measured too (a lie about N makes
them pay for data that does not exist).

Outputs: ``truthfulness.csv`` (one row per run: the liar's last-round and
best-validation accuracy, its cumulative true utility, the honest clients' welfare and
how many are below zero, and the differences to the honest run of the same seed),
``truthfulness.png``, ``summary.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core import Preset, Spec, fmt, group_by, last_round, setting_keys, write_csv, write_summary

NAME = "truthfulness"
#: a utility below ``-NEG_TOL`` counts as negative
NEG_TOL = 1e-9
TITLE = "Table 2: a liar's accuracy and utility over a run"
LIAR = 0
#: keys the specs set run by run: who lies and by how much
PER_RUN = ("liar", "liar_N", "liar_c", "liar_K")
LIES = (("honest", 1.0), ("N", 0.1), ("N", 0.5), ("N", 10.0), ("c", 2.0), ("c", 5.0),
        ("c", 10.0))


def specs(preset: Preset, seeds: list[int], common: dict[str, Any]) -> list[Spec]:
    """One iPFL run per lie x seed (client 0 lies)."""
    from training import Config

    out = []
    for what, x in LIES:
        for seed in seeds:
            keys = {**common, **setting_keys("NIID", preset), "algorithm": "ipfl", "seed": seed,
                    **preset.extra.get(NAME, {})}
            if what != "honest":
                keys.update({"liar": [LIAR], f"liar_{what}": x})
            out.append(Spec(f"{what}x{x:g}-s{seed}", {"lie": what, "factor": x, "seed": seed},
                            Config.from_dict(keys)))
    return out


def liar_measures(rs: list[dict[str, Any]], liar: int) -> dict[str, Any]:
    """Return the liar's and the other (honest) clients' measures of one run's metric rows.

    The liar: last-round and best-validation accuracy, cumulative true utility, money
    paid and received, rounds it stayed in. The honest clients: their summed cumulative
    utility (``honest_welfare``), how many end below zero (``honest_below_zero``) and
    their client-rounds with U < 0 (``honest_rounds_below_zero``): who pays for a lie.
    """
    last = last_round(rs)
    me = next(r for r in last if r["client"] == liar)
    others = [r for r in last if r["client"] != liar]
    return {"liar_acc": me["acc"], "liar_best_acc": me["best_acc"], "liar_cum_U": me["cum_U"],
            "liar_paid": sum(r["paid"] for r in rs if r["client"] == liar),
            "liar_received": sum(r["received"] for r in rs if r["client"] == liar),
            "liar_active_rounds": sum(1 for r in rs if r["client"] == liar and r["round"] >= 1
                                      and r["active"]),
            "honest_welfare": sum(r["cum_U"] for r in others),
            "honest_below_zero": sum(1 for r in others if r["cum_U"] < -NEG_TOL),
            "honest_rounds_below_zero": sum(1 for r in rs if r["client"] != liar
                                            and r["round"] >= 1 and r["U"] < -NEG_TOL)}


def add_differences(r: dict[str, Any], honest: dict[str, Any]) -> None:
    """Add ``d_<measure>``: the lie's run minus the honest run of the same seed."""
    for k in ("liar_acc", "liar_best_acc", "liar_cum_U", "honest_welfare"):
        r["d_" + k] = r[k] - honest[k]


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write truthfulness.csv, truthfulness.png and summary.md."""
    table = [{**s.keys, **liar_measures(rows[s.label], LIAR)} for s in specs_]
    honest = {r["seed"]: r for r in table if r["lie"] == "honest"}
    for r in table:
        add_differences(r, honest[r["seed"]])
    write_csv(out / "truthfulness.csv", table)
    _figure(out / "truthfulness.png", table)
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`, NIID, iPFL, client {LIAR} lies; mean ± "
             "sd over seeds; Δ = lie minus the honest run of the same seed; accuracies in %.", "",
             "| lie | factor | liar's acc (last) | liar's acc (best val) | liar's cum. U (true "
             "profile) | Δ cum. U | seeds where lying paid | Δ honest clients' welfare | "
             "honest clients ending < 0 | honest client-rounds < 0 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (lie, x), g in group_by(table, "lie", "factor").items():
        paid = sum(1 for r in g if r["d_liar_cum_U"] > NEG_TOL)
        lines.append(f"| {lie} | {x:g} | {fmt([r['liar_acc'] for r in g], 100)} | "
                     f"{fmt([r['liar_best_acc'] for r in g], 100)} | "
                     f"{fmt([r['liar_cum_U'] for r in g], digits=2)} | "
                     f"{fmt([r['d_liar_cum_U'] for r in g], digits=2)} | {paid} of {len(g)} | "
                     f"{fmt([r['d_honest_welfare'] for r in g], digits=1)} | "
                     f"{fmt([r['honest_below_zero'] for r in g])} | "
                     f"{fmt([r['honest_rounds_below_zero'] for r in g])} |")
    write_summary(out, lines)
    return {"rows": table}


def _figure(path: Path, table: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = list(dict.fromkeys((r["lie"], r["factor"]) for r in table))
    names = ["honest" if k[0] == "honest" else f"{k[0]} x{k[1]:g}" for k in keys]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, col, label, scale in ((axes[0], "liar_acc", "liar's last-round accuracy (%)", 100),
                                  (axes[1], "liar_cum_U", "liar's cumulative true utility", 1)):
        for j, k in enumerate(keys):
            v = scale * np.array([r[col] for r in table if (r["lie"], r["factor"]) == k])
            ax.scatter(np.full(v.size, j), v, s=14, color="#999999", zorder=2)
            ax.bar(j, v.mean(), color="#4c78a8" if k[0] == "honest" else "#f58518", alpha=0.6)
        ax.set_xticks(range(len(keys)), names, rotation=30, ha="right")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle("Misreporting N or c under iPFL (bars: mean over seeds; dots: seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
