"""``robustness`` (Fig. 4): one attacker joins a Cluster market; four attacks, two readings.

The federation is the preset's clients plus one more, the last, under the Cluster
partition. In the *honest* run that client is an honest pure seller (``K = 0``,
``c = 0``, the profile the attacker has); in each attack run it is an attacker with
one of the eight attacks of :mod:`training.attacks` (``shuffle``, ``sign_flip``,
``same_value``, ``gauss``; ``_update`` = the paper's wording, ``_weights`` = the
public pFedGraph code). The other clients and their data are the same in every run of
a seed, so the change of their mean accuracy and of the last client's utility is the
attack's effect.

Outputs: ``robustness.csv`` (one row per run with the differences to the honest run
of the same method and seed), ``importers.csv`` (per round, how many clients import
the last client's model), ``robustness.png``, ``importers.png``, ``summary.md``. A run
the mechanism stops on an error (``failed.json``) is reported with its last completed
round and the error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .core import (
    Preset,
    Spec,
    failure,
    fmt,
    group_by,
    last_round,
    setting_keys,
    write_csv,
    write_summary,
)

NAME = "robustness"
TITLE = "Fig. 4: one attacker in a Cluster market"
METHODS = ("ipfl", "ditto", "pfedgraph", "cfl", "fedamp")
#: keys the specs set run by run: one more client than the preset, its role and attack
PER_RUN = ("clients", "roles", "attack")
ATTACKS = ("shuffle_update", "sign_flip_update", "same_value_update", "gauss_update",
           "shuffle_weights", "sign_flip_weights", "same_value_weights", "gauss_weights")


def specs(preset: Preset, seeds: list[int], common: dict[str, Any],
          methods: tuple[str, ...] = METHODS) -> list[Spec]:
    """One run per method x (honest, eight attacks) x seed."""
    from training import Config

    m = int(common["clients"])
    out = []
    for method in methods:
        for attack in ("none", *ATTACKS):
            for seed in seeds:
                keys = {**common, **setting_keys("Cluster", preset), "clients": m + 1,
                        "algorithm": method, "seed": seed}
                if attack == "none":
                    keys["roles"] = f"trader:{m},seller:1"
                else:
                    keys.update(roles=f"trader:{m},attacker:1", attack=attack)
                out.append(Spec(f"{method}-{attack}-s{seed}",
                                {"method": method, "attack": attack, "seed": seed},
                                Config.from_dict(keys)))
    return out


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write robustness.csv, importers.csv, the figures and summary.md."""
    table, imp = [], []
    for s in specs_:
        rs = rows[s.label]
        last = last_round(rs)
        a = max(r["client"] for r in last)
        benign = [r for r in last if r["client"] != a]
        att = next(r for r in last if r["client"] == a)
        per_round = [r["importers"] for r in rs if r["client"] == a and r["round"] >= 1]
        for r in rs:
            if r["client"] == a and r["round"] >= 1:
                imp.append({**s.keys, "round": r["round"], "importers": r["importers"]})
        table.append({**s.keys,
                      "benign_acc": sum(r["acc"] for r in benign) / len(benign),
                      "benign_best_acc": sum(r["best_acc"] for r in benign) / len(benign),
                      "attacker_cum_U": att["cum_U"],
                      "attacker_received": sum(r["received"] for r in rs if r["client"] == a),
                      "importers_mean": sum(per_round) / max(1, len(per_round)),
                      "clients": len(last), "last_round": last[0]["round"],
                      "failed": failure(out / "runs" / s.label)})
    honest = {(r["method"], r["seed"]): r for r in table if r["attack"] == "none"}
    for r in table:
        h = honest[(r["method"], r["seed"])]
        r["d_benign_acc"] = r["benign_acc"] - h["benign_acc"]
        r["d_benign_best_acc"] = r["benign_best_acc"] - h["benign_best_acc"]
        r["d_attacker_cum_U"] = r["attacker_cum_U"] - h["attacker_cum_U"]
    write_csv(out / "robustness.csv", table)
    write_csv(out / "importers.csv", imp)
    _figures(out, table, imp)
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`; mean ± sd over seeds. Δ = attack run "
             "minus the honest run (the last client an honest seller) of the same method and "
             "seed; accuracies in percentage points.", "",
             "| method | attack | Δ benign acc (last) | Δ benign acc (best val) | "
             "last client's cum. U | Δ its cum. U | clients importing it per round |",
             "|---|---|---|---|---|---|---|"]
    for (method, attack), g in group_by(table, "method", "attack").items():
        lines.append(f"| {method} | {attack} | {fmt([r['d_benign_acc'] for r in g], 100)} | "
                     f"{fmt([r['d_benign_best_acc'] for r in g], 100)} | "
                     f"{fmt([r['attacker_cum_U'] for r in g])} | "
                     f"{fmt([r['d_attacker_cum_U'] for r in g])} | "
                     f"{fmt([r['importers_mean'] for r in g], digits=2)} |")
    failed = [r for r in table if r["failed"]]
    if failed:
        lines += ["", f"{len(failed)} of {len(table)} runs stopped on an error; their numbers are "
                  "those of their last completed round:", ""]
        lines += [f"- {r['method']} {r['attack']} seed {r['seed']}: after round "
                  f"{r['last_round']}: {r['failed']}" for r in failed]
    write_summary(out, lines)
    return {"rows": table}


def _figures(out: Path, table: list[dict[str, Any]], imp: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    methods = list(dict.fromkeys(r["method"] for r in table))
    attacks = [a for a in dict.fromkeys(r["attack"] for r in table) if a != "none"]
    cols = min(4, len(attacks))
    nrows = -(-len(attacks) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.8 * nrows), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for k, attack in enumerate(attacks):
        ax = axes[k // cols][k % cols]
        for j, method in enumerate(methods):
            g = [r for r in table if r["method"] == method and r["attack"] == attack]
            x = 100 * np.array([r["d_benign_acc"] for r in g])
            y = np.array([r["attacker_cum_U"] for r in g])
            ax.errorbar(x.mean(), y.mean(), xerr=x.std(), yerr=y.std(),
                        fmt="*" if method == "ipfl" else "o", ms=13 if method == "ipfl" else 7,
                        color=cmap(j), label=method, capsize=2)
        ax.axvline(0, color="black", lw=0.7)
        ax.axhline(0, color="black", lw=0.7)
        ax.set_title(attack, fontsize=10)
        ax.set_xlabel("Δ benign mean accuracy (pp)")
        ax.set_ylabel("attacker's cumulative utility")
        ax.grid(alpha=0.3)
    for k in range(len(attacks), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "robustness.png", dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, attack in enumerate(["none", *attacks]):
        g = group_by([r for r in imp if r["method"] == "ipfl" and r["attack"] == attack],
                     "round")
        if not g:
            continue
        t = [key[0] for key in g]
        ax.plot(t, [np.mean([r["importers"] for r in v]) for v in g.values()],
                marker="o", ms=3, color="black" if attack == "none" else cmap(k % 10),
                lw=2.2 if attack == "none" else 1.2,
                label="honest seller" if attack == "none" else attack)
    ax.set_xlabel("round")
    ax.set_ylabel("clients importing the last client")
    ax.set_title("iPFL: imports of the attacker per round (mean over seeds)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "importers.png", dpi=110)
    plt.close(fig)
