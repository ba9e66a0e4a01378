"""``market`` (Fig. 5): an inclusive market of traders, buyers, sellers and an attacker.

12 clients under the Cluster partition: 5 traders, 3 pure buyers (``c = inf``), 3 pure
sellers (``K = 0``) and one attacker uploading a freshly initialised model every round
(``random_init``); traders' and buyers' ``c`` and ``K`` are drawn as in
:mod:`training.profiles`. iPFL runs the preset's market rounds (the paper's 20 for
``repro`` and ``paper``); local training on the same data is the reference.

Outputs: ``market.csv`` (per client and seed: role, money paid and received over the
run, clients importing it, cumulative utility, accuracy under iPFL and local, the
gain), ``money.csv`` (per seed, the money each client paid each other over the run),
``market.png`` (transaction graph of the first seed: edge width = money moved, node
colour = role; and each client's accuracy gain over local training), ``summary.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .core import Preset, Spec, fmt, group_by, last_round, setting_keys, write_csv, write_summary

NAME = "market"
TITLE = "Fig. 5: an inclusive market of four roles"
#: keys the specs set: the market's own clients, rounds, roles and attack
PER_RUN = ("clients", "rounds", "roles", "attack")


def roles_for(m: int) -> str:
    """Return the role mix: 12 clients -> 5 traders, 3 buyers, 3 sellers, 1 attacker."""
    if m == 12:
        return "trader:5,buyer:3,seller:3,attacker:1"
    b = max(1, m // 4)
    return f"trader:{m - 2 * b - 1},buyer:{b},seller:{b},attacker:1"


def specs(preset: Preset, seeds: list[int], common: dict[str, Any]) -> list[Spec]:
    """Return one iPFL and one local-training run per seed."""
    from training import Config

    m = preset.market_clients
    out = []
    for method in ("ipfl", "local"):
        for seed in seeds:
            keys = {**common, **setting_keys("Cluster", preset), "clients": m,
                    "rounds": preset.market_rounds, "roles": roles_for(m),
                    "attack": "random_init", "algorithm": method, "seed": seed}
            out.append(Spec(f"{method}-s{seed}", {"method": method, "seed": seed},
                            Config.from_dict(keys)))
    return out


def money_matrix(run: Path, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (money i paid j summed over rounds, rounds in which i imported j)."""
    from training import RunDir

    money, imports = np.zeros((m, m)), np.zeros((m, m))
    for rec in RunDir(run).read_records().values():
        ex = rec.exchange
        if ex is None:
            continue
        idx = np.asarray(ex.clients)
        if ex.r is not None:
            money[np.ix_(idx, idx)] += ex.r
        imports[np.ix_(idx, idx)] += ex.A
    return money, imports


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write market.csv, money.csv, market.png and summary.md."""
    table, money_rows = [], []
    seeds = [s.keys["seed"] for s in specs_ if s.keys["method"] == "ipfl"]
    graphs = {}
    for seed in seeds:
        rs, loc = rows[f"ipfl-s{seed}"], rows[f"local-s{seed}"]
        last, llast = last_round(rs), {r["client"]: r for r in last_round(loc)}
        m = len(last)
        money, imports = money_matrix(out / "runs" / f"ipfl-s{seed}", m)
        graphs[seed] = (np.array([r["N"] for r in last]), [r["role"] for r in last],
                        imports, money, [r["cum_U"] for r in last])
        for i in range(m):
            for j in range(m):
                if imports[i, j] or money[i, j]:
                    money_rows.append({"seed": seed, "payer": i, "payee": j,
                                       "money": float(money[i, j]),
                                       "rounds_imported": int(imports[i, j])})
        for r in last:
            i = r["client"]
            mine = [x for x in rs if x["client"] == i and x["round"] >= 1]
            table.append({"seed": seed, "client": i, "role": r["role"],
                          "paid": sum(x["paid"] for x in mine),
                          "received": sum(x["received"] for x in mine),
                          "importers_mean": sum(x["importers"] for x in mine) / max(1, len(mine)),
                          "imports_mean": sum(x["imports"] for x in mine) / max(1, len(mine)),
                          "cum_U": r["cum_U"], "acc": r["acc"], "best_acc": r["best_acc"],
                          "local_acc": llast[i]["acc"], "local_best_acc": llast[i]["best_acc"],
                          "gain": r["acc"] - llast[i]["acc"],
                          "best_gain": r["best_acc"] - llast[i]["best_acc"]})
    write_csv(out / "market.csv", table)
    write_csv(out / "money.csv", money_rows)
    _figure(out / "market.png", graphs[seeds[0]], table, seeds[0])
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`, {preset.market_rounds} rounds; per "
             "role, mean ± sd over the role's clients and the seeds; money summed over the run;"
             " gain = iPFL accuracy minus local training's, in percentage points.", "",
             "| role | clients | paid | received | clients importing it per round | "
             "cum. U | gain (last) | gain (best val) |", "|---|---|---|---|---|---|---|---|"]
    for (role,), g in group_by(table, "role").items():
        lines.append(f"| {role} | {len(g) // max(1, len(seeds))} | "
                     f"{fmt([r['paid'] for r in g], digits=2)} | "
                     f"{fmt([r['received'] for r in g], digits=2)} | "
                     f"{fmt([r['importers_mean'] for r in g], digits=2)} | "
                     f"{fmt([r['cum_U'] for r in g], digits=2)} | "
                     f"{fmt([r['gain'] for r in g], 100)} | "
                     f"{fmt([r['best_gain'] for r in g], 100)} |")
    write_summary(out, lines)
    return {"rows": table}


def _figure(path: Path, graph: tuple, table: list[dict[str, Any]], seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..figures import ROLE_COLOURS, draw_market_graph

    N, roles, imports, money, U = graph
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.2), gridspec_kw={"width_ratios": [1.25, 1]})
    draw_market_graph(axes[0], N, roles, imports > 0, money, U=U)
    axes[0].set_title(f"Money over the run (seed {seed}): edge width = money i paid j")
    m = len(roles)
    g = group_by(table, "client")
    gains = [100 * np.mean([r["gain"] for r in g[(i,)]]) for i in range(m)]
    spread = [100 * np.std([r["gain"] for r in g[(i,)]]) for i in range(m)]
    axes[1].bar(range(m), gains, yerr=spread, color=[ROLE_COLOURS[r] for r in roles], capsize=2)
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].set_xticks(range(m), [f"{i}\n{r[:5]}" for i, r in enumerate(roles)], fontsize=7)
    axes[1].set_ylabel("accuracy gain over local training (pp)")
    axes[1].set_title("Last-round accuracy gain (mean ± sd over seeds)")
    axes[1].grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
