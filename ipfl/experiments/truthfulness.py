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

Every lie runs under each market of :data:`DEFENCES` (issue 24, docs/defence.md): the
paper's (``none``) and the defences of :mod:`mechanism.defence`, with the size estimate
of :func:`mechanism.size_from_displacement` (each client's round-0 displacement,
``*-displacement``) or the simulated noisy oracle (the others); a lie's differences
are taken against the all-honest run of the same seed *under the same market*, and
the all-honest run of a defence against the paper's all-honest run (what the defence
costs an honest market).

Outputs: ``truthfulness.csv`` (one row per run: the market (``defence``, ``noise``,
``band``), the liar's last-round and best-validation accuracy, its cumulative true
utility, the honest clients' welfare (``honest_cum_U``) and how many end below zero
(``honest_negative``), and the differences to the honest run of the same seed and
market (``d_liar_cum_U``, ``d_honest_cum_U``)), ``truthfulness.png``, ``summary.md``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .core import Preset, Spec, fmt, group_by, last_round, setting_keys, write_csv, write_summary

NAME = "truthfulness"
#: a utility below ``-NEG_TOL`` counts as negative
NEG_TOL = 1e-9
TITLE = "Table 2: a liar's accuracy and utility over a run"
LIAR = 0
#: keys the specs set run by run: who lies and by how much, under which market
PER_RUN = ("liar", "liar_N", "liar_c", "liar_K", "ipfl.defence", "ipfl.estimator",
           "ipfl.estimate_noise", "ipfl.estimate_band")
LIES = (("honest", 1.0), ("N", 0.1), ("N", 0.5), ("N", 10.0), ("c", 2.0), ("c", 5.0),
        ("c", 10.0))
#: the markets every lie runs under: label -> (defence, estimate noise sigma, band);
#: sigma is the simulated oracle's; fixed in docs/defence.md before the runs
DEFENCES: dict[str, tuple[str, float, float]] = {
    "none": ("none", 0.0, 0.0),
    "estimate": ("estimate", 0.25, 0.0),
    "checked": ("checked", 0.25, 0.5),
    "checked-0.1": ("checked", 0.1, 0.2),
    "estimate-displacement": ("estimate", 0.0, 0.0),
    "checked-displacement": ("checked", 0.0, 0.7),
}


def estimator_of(label: str) -> str:
    """Return the size estimator of market ``label``: ``""`` (none), displacement or oracle."""
    if DEFENCES[label][0] == "none":
        return ""
    return "displacement" if label.endswith("-displacement") else "oracle"


def market_name(label: str) -> str:
    """Return how summaries name market ``label`` (the estimator, its σ, the band)."""
    defence, noise, band = DEFENCES.get(label, ("none", 0.0, 0.0))
    if defence == "none":
        return label
    if estimator_of(label) == "displacement":
        return f"{label} (b {band:g})" if defence == "checked" else label
    return f"{label} (oracle σ {noise:g}, b {band:g})"


def specs(preset: Preset, seeds: list[int], common: dict[str, Any]) -> list[Spec]:
    """One iPFL run per market x lie x seed (client 0 lies)."""
    from training import Config

    out = []
    for label, (defence, noise, band) in DEFENCES.items():
        for what, x in LIES:
            for seed in seeds:
                keys = {**common, **setting_keys("NIID", preset), "algorithm": "ipfl",
                        "seed": seed, **preset.extra.get(NAME, {})}
                if estimator_of(label) == "displacement":
                    keys["ipfl"] = {"defence": defence, "estimator": "displacement",
                                    "estimate_band": band}
                elif defence != "none":  # the oracle's configs as they were written
                    keys["ipfl"] = {"defence": defence, "estimate_noise": noise,
                                    "estimate_band": band}
                if what != "honest":
                    keys.update({"liar": [LIAR], f"liar_{what}": x})
                run = f"{what}x{x:g}-s{seed}"
                out.append(Spec(run if defence == "none" else f"{label}-{run}",
                                {"defence": label, "estimator": estimator_of(label),
                                 "noise": noise, "band": band, "lie": what,
                                 "factor": x, "seed": seed}, Config.from_dict(keys)))
    return out


def liar_measures(rs: list[dict[str, Any]], liar: int) -> dict[str, Any]:
    """Return the liar's and the other (honest) clients' measures of one run's metric rows.

    The liar: last-round and best-validation accuracy, cumulative true utility, money
    paid and received, rounds it stayed in. The honest clients: their summed cumulative
    utility (``honest_welfare``), how many end below zero (``honest_below_zero``) and
    their client-rounds with U < 0 (``honest_rounds_below_zero``): who pays for a lie
    (truthfulness.csv names the first two ``honest_cum_U`` and ``honest_negative``).
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
    """Add ``d_<measure>``: the lie's run minus the honest run of the same seed (and market)."""
    for k in ("liar_acc", "liar_best_acc", "liar_cum_U", "honest_welfare"):
        r["d_" + k] = r[k] - honest[k]


#: the issue's columns first (issue 24), then the rest of a row
FIRST = ("defence", "lie", "factor", "seed", "d_liar_cum_U", "honest_cum_U", "d_honest_cum_U",
         "honest_negative")
#: truthfulness.csv's names of liar_measures' honest-side measures
RENAMED = {"honest_welfare": "honest_cum_U", "d_honest_welfare": "d_honest_cum_U",
           "honest_below_zero": "honest_negative"}


VS_PAPER = "d_honest_cum_U_vs_paper"


def table_rows(specs_: list[Spec], rows: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """Return truthfulness.csv's rows: each run's measures and its differences.

    A lie is compared with the all-honest run of the same seed under the same market
    (``d_*``); every row also carries ``d_honest_cum_U_vs_paper``, its honest clients'
    welfare minus that of the paper's all-honest run of the same seed (for an all-honest
    row of a defence: what the defence costs an honest market).
    """
    table = [{**s.keys, **liar_measures(rows[s.label], LIAR)} for s in specs_]
    honest = {(r.get("defence", "none"), r["seed"]): r for r in table if r["lie"] == "honest"}
    out = []
    for r in table:
        add_differences(r, honest[(r.get("defence", "none"), r["seed"])])
        paper = honest.get(("none", r["seed"]))
        r = {RENAMED.get(k, k): v for k, v in r.items()}
        if paper is not None:
            r["d_honest_cum_U_vs_paper"] = r["honest_cum_U"] - paper["honest_welfare"]
        out.append({**{k: r[k] for k in FIRST if k in r},
                    **{k: v for k, v in r.items() if k not in FIRST}})
    return out


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write truthfulness.csv, truthfulness.png and summary.md."""
    table = table_rows(specs_, rows)
    write_csv(out / "truthfulness.csv", table)
    _figure(out / "truthfulness.png", [r for r in table if r.get("defence", "none") == "none"])
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`, NIID, iPFL, client {LIAR} lies; mean ± "
             "sd over seeds; Δ = lie minus the honest run of the same seed under the same "
             "market; accuracies in %. Markets: `none` is the paper's; the others are the "
             "defences of docs/defence.md (size estimate: `displacement`, from each client's "
             "round-0 displacement, or the simulated oracle of log-normal error σ; b: the "
             "band).", "",
             "| market | lie | factor | liar's acc (last) | liar's cum. U (true profile) | "
             "Δ cum. U | seeds where lying paid | honest clients' welfare | Δ honest "
             "clients' welfare | vs the paper's all-honest | honest clients ending < 0 | "
             "honest client-rounds < 0 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (market, lie, x), g in group_by(table, "defence", "lie", "factor").items():
        paid = sum(1 for r in g if r["d_liar_cum_U"] > NEG_TOL)
        name = market_name(market)
        lines.append(f"| {name} | {lie} | {x:g} | {fmt([r['liar_acc'] for r in g], 100)} | "
                     f"{fmt([r['liar_cum_U'] for r in g], digits=2)} | "
                     f"{fmt([r['d_liar_cum_U'] for r in g], digits=2)} | {paid} of {len(g)} | "
                     f"{fmt([r['honest_cum_U'] for r in g], digits=1)} | "
                     f"{fmt([r['d_honest_cum_U'] for r in g], digits=1)} | "
                     f"{fmt([r.get(VS_PAPER, math.nan) for r in g], digits=1)} | "
                     f"{fmt([r['honest_negative'] for r in g])} | "
                     f"{fmt([r['honest_rounds_below_zero'] for r in g])} |")
    lines += ["", *defence_targets(table)]
    write_summary(out, lines)
    return {"rows": table}


def defence_targets(table: list[dict[str, Any]]) -> list[str]:
    """Return issue 24's three targets per defended market, met or not, with the figures.

    1. over-reporting N x10 pays in no seed; 2. under it, the honest clients keep at least
    95 % of their all-honest welfare (same seed, same market); 3. the defence costs an
    all-honest market's honest clients at most 2 % (against the paper's, same seed).
    """
    lines = ["## Issue 24's targets per defended market (docs/defence.md)", ""]
    honest = {(r["defence"], r["seed"]): r for r in table if r["lie"] == "honest"}
    for market in dict.fromkeys(r.get("defence", "none") for r in table):
        if market == "none":
            continue
        over = [r for r in table if r["defence"] == market and r["lie"] == "N"
                and r["factor"] == 10.0]
        if not over:
            continue
        paid = [r["seed"] for r in over if r["d_liar_cum_U"] > NEG_TOL]
        keep = [r["honest_cum_U"] / honest[(market, r["seed"])]["honest_cum_U"] for r in over]
        cost = [1 - honest[(market, s)]["honest_cum_U"] / honest[("none", s)]["honest_cum_U"]
                for s in sorted({r["seed"] for r in over}) if ("none", s) in honest]
        gains = ", ".join(f"{r['d_liar_cum_U']:+.2f}" for r in over)
        lines += [
            f"**{market}**: (1) N x10 paid in {len(paid)} of {len(over)} seeds "
            f"(Δ cum. U {gains}): "
            f"{'met' if not paid else 'not met'}; (2) honest clients keep "
            f"{', '.join(f'{100 * k:.1f} %' for k in keep)} of their all-honest welfare: "
            f"{'met' if min(keep) >= 0.95 else 'not met'}; (3) all-honest cost "
            f"{', '.join(f'{100 * c:+.1f} %' for c in cost)}: "
            f"{'met' if cost and max(cost) <= 0.02 else 'not met'}.", ""]
    return lines


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
