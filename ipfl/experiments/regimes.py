"""``regimes`` (issue 18): where in (lambda, c) the paper's economic claims hold.

Every verdict of REPRODUCTION.md is measured at one point of the market's price of
distance ``lam`` and the clients' sharing cost ``c``, which the paper leaves to a
supplement we do not have. This experiment measures the claims that turn on them over
the grid ``lam`` x ``c`` = {0, 0.2, 1, 5} x {0.05, 0.2, 1, 5} on NIID. The grid, the runs
and the verdict rules were fixed before any run: ``docs/experiments-regimes.md``.

* Local training and the seven baselines never read ``lam`` or ``c`` while training, so
  each is trained once per seed (the ``performance`` experiment's NIID runs: a shared
  run store trains them once) and rescored at every ``c`` from its round records
  (:func:`ipfl.rescore.rescore_run`). Eq. (1) does not contain ``lam``: a baseline's
  utility is the same in every ``lam`` row.
* iPFL runs once per (``lam``, ``c``, seed): its graph and payments depend on both.
* A liar (client 0) runs once per (``lam``, ``c``, seed) and lie: ``N x10`` and ``c x2``.

Outputs: ``regimes.csv`` (``lam``, ``c``, ``seed``, ``method`` and the measures),
``lies.csv`` (the liars), ``cells.csv`` (per cell and claim: the value mapped and
whether the claim's rule holds), ``regimes.png`` (one heat map per claim),
``summary.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .core import (
    Preset,
    Spec,
    group_by,
    last_round,
    mean_sd,
    setting_keys,
    write_csv,
    write_summary,
)
from .core import (
    methods as all_methods,
)
from .truthfulness import NEG_TOL, add_differences, liar_measures

NAME = "regimes"
TITLE = "Where the verdicts hold: the claims over lam x c (NIID)"
#: iPFL's price of distance (median-scaled distances) and every client's sharing cost
LAMS = (0.0, 0.2, 1.0, 5.0)
CS = (0.05, 0.2, 1.0, 5.0)
#: the lies measured in every cell (client 0 lies)
LIES = (("N", 10.0), ("c", 2.0))
LIAR = 0
#: the accuracy margin of claim 2 (as in the --repro verdict rules)
ACC_MARGIN = 0.02
#: keys the specs set run by run (``--set`` refuses them)
PER_RUN = ("c", "ipfl.lam", "liar", "liar_N", "liar_c", "liar_K")

__all__ = ["CLAIM_RULES", "CS", "FOOTNOTE", "LAMS", "LIES", "NO_TRADE", "analyse", "cell_table",
           "cell_verdicts", "check_methods", "specs", "where"]


def _base(preset: Preset, common: dict[str, Any]) -> dict[str, Any]:
    return {**common, **setting_keys("NIID", preset), **preset.extra.get(NAME, {})}


def _ipfl_keys(base: dict[str, Any], lam: float, c: float, seed: int) -> dict[str, Any]:
    keys = {**base, "algorithm": "ipfl", "seed": seed, "c": c}
    if lam != 1.0:  # the default: (1, 0.2) is the performance experiment's NIID iPFL run
        keys["ipfl"] = {"lam": lam}
    return keys


def specs(preset: Preset, seeds: list[int], common: dict[str, Any],
          methods: tuple[str, ...] | None = None) -> list[Spec]:
    """One run per baseline x seed, per lam x c x seed for iPFL, per lie x lam x c x seed."""
    from training import Config

    methods = all_methods() if methods is None else methods
    base = _base(preset, common)
    out = []
    for method in methods:
        if method == "ipfl":
            continue
        for seed in seeds:
            out.append(Spec(f"{method}-s{seed}", {"method": method, "seed": seed, "lie": ""},
                            Config.from_dict({**base, "algorithm": method, "seed": seed})))
    if "ipfl" not in methods:
        return out
    for lam in LAMS:
        for c in CS:
            for seed in seeds:
                keys = _ipfl_keys(base, lam, c, seed)
                cell = {"lam": lam, "c": c, "seed": seed}
                out.append(Spec(f"ipfl-lam{lam:g}-c{c:g}-s{seed}",
                                {"method": "ipfl", **cell, "lie": ""}, Config.from_dict(keys)))
                for what, x in LIES:
                    lie = {"liar": [LIAR], f"liar_{what}": x}
                    out.append(Spec(f"liar-{what}x{x:g}-lam{lam:g}-c{c:g}-s{seed}",
                                    {"method": "ipfl", **cell, "lie": what, "factor": x},
                                    Config.from_dict({**keys, **lie})))
    return out


def check_methods(methods: tuple[str, ...]) -> None:
    """Refuse, before any run, a method list without iPFL or without a baseline to compare."""
    if "ipfl" not in methods or not set(methods) - {"ipfl", "local"}:
        raise ValueError(f"experiment 'regimes': --methods {','.join(methods)} needs ipfl and at "
                         "least one baseline other than local (the rules compare them)")


def _accuracies(rs: list[dict[str, Any]]) -> dict[str, float]:
    last = last_round(rs)
    return {"acc": float(np.mean([r["acc"] for r in last])),
            "best_acc": float(np.mean([r["best_acc"] for r in last]))}


def _utility_row(cum_U: np.ndarray) -> dict[str, float]:
    return {"mean_cum_U": float(cum_U.mean()), "neg_clients": int((cum_U < -NEG_TOL).sum()),
            "min_cum_U": float(cum_U.min())}


def measure(out: Path, specs_: list[Spec], rows: dict[str, list[dict]]
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Return (regimes rows, lies rows) from the finished runs (baselines rescored per c)."""
    from ..rescore import rescore_run

    table, lies = [], []
    for s in specs_:
        k = s.keys
        run = out / "runs" / s.label
        if k["method"] != "ipfl":
            acc = _accuracies(rows[s.label])
            for c in CS:
                res = rescore_run(run, c=c)
                cum = np.array([cl.cum_U for cl in res.clients], dtype=float)
                for lam in LAMS:  # eq. (1) has no lam: the same numbers in every row
                    table.append({"lam": lam, "c": c, "seed": k["seed"], "method": k["method"],
                                  **_utility_row(cum), **acc,
                                  "sw_share": res.welfare_share})
        elif not k["lie"]:
            last = last_round(rows[s.label])
            cum = np.array([r["cum_U"] for r in last], dtype=float)
            table.append({"lam": k["lam"], "c": k["c"], "seed": k["seed"], "method": "ipfl",
                          **_utility_row(cum), **_accuracies(rows[s.label]),
                          "sw_share": rescore_run(run).welfare_share})
    honest = {(r["lam"], r["c"], r["seed"]): r for r in
              ({"lam": s.keys["lam"], "c": s.keys["c"], "seed": s.keys["seed"],
                **liar_measures(rows[s.label], LIAR)}
               for s in specs_ if s.keys["method"] == "ipfl" and not s.keys["lie"])}
    for s in specs_:
        k = s.keys
        if k["method"] == "ipfl" and k["lie"]:
            r = {"lam": k["lam"], "c": k["c"], "seed": k["seed"], "lie": k["lie"],
                 "factor": k["factor"], **liar_measures(rows[s.label], LIAR)}
            add_differences(r, honest[(k["lam"], k["c"], k["seed"])])
            lies.append(r)
    return table, lies


# ----- the verdict rules of docs/experiments-regimes.md, per cell -----------------------------
def _seed_means(table: list[dict[str, Any]], col: str) -> dict[tuple, float]:
    return {key: float(np.mean([r[col] for r in g]))
            for key, g in group_by(table, "lam", "c", "method").items()}


Cells = dict[tuple[float, float], tuple[float, bool, str]]


def _no_trade(table: list[dict[str, Any]]) -> set[tuple[float, float]]:
    """Return the cells where iPFL traded nothing in any seed (welfare share 0: local training)."""
    return {(lam, c) for (lam, c), g in group_by(
        [r for r in table if r["method"] == "ipfl"], "lam", "c").items()
        if all(r["sw_share"] == 0 for r in g)}


def _margin(m: dict[tuple, float], lam: float, c: float) -> float:
    """Return iPFL's seed mean minus the best baseline's (local excluded) in cell (lam, c)."""
    base = [v for (la, cc, me), v in m.items() if (la, cc) == (lam, c)
            and me not in ("ipfl", "local")]
    return m[(lam, c, "ipfl")] - max(base)


def _utility_margin(table: list[dict], lies: list[dict]) -> Cells:
    u = _seed_means(table, "mean_cum_U")
    idle = _no_trade(table)
    out = {}
    for lam, c in {(k[0], k[1]) for k in u}:
        if (lam, c, "ipfl") in u:
            margin = _margin(u, lam, c)
            out[(lam, c)] = (margin, margin > 0, NO_TRADE if (lam, c) in idle else "")
    return out


def _accuracy_margin(table: list[dict], lies: list[dict]) -> Cells:
    a, b = _seed_means(table, "acc"), _seed_means(table, "best_acc")
    idle = _no_trade(table)
    out = {}
    for lam, c in {(k[0], k[1]) for k in a}:
        if (lam, c, "ipfl") in a:
            last, best = _margin(a, lam, c), _margin(b, lam, c)
            out[(lam, c)] = (100 * last, last >= -ACC_MARGIN and best >= -ACC_MARGIN,
                             NO_TRADE if (lam, c) in idle else "")
    return out


def _ir(table: list[dict], lies: list[dict]) -> Cells:
    out = {}
    for (lam, c), g in group_by(table, "lam", "c").items():
        ipfl = sum(r["neg_clients"] for r in g if r["method"] == "ipfl")
        base = sum(r["neg_clients"] for r in g if r["method"] not in ("ipfl", "local"))
        if any(r["method"] == "ipfl" for r in g):
            out[(lam, c)] = (float(ipfl), ipfl == 0 and base > 0, f"baselines {base}")
    return out


def _lie(what: str) -> Callable[[list[dict], list[dict]], Cells]:
    def rule(table: list[dict], lies: list[dict]) -> Cells:
        idle = _no_trade(table)
        out = {}
        for (lam, c), g in group_by([r for r in lies if r["lie"] == what], "lam", "c").items():
            gain, _ = mean_sd(r["d_liar_cum_U"] for r in g)
            out[(lam, c)] = (gain, gain <= NEG_TOL, NO_TRADE if (lam, c) in idle else "")
        return out
    return rule


#: the note of a cell where the honest iPFL run traded nothing in every seed: there iPFL
#: is local training, so a claim that "holds" holds vacuously
NO_TRADE = "no trade"

#: claim -> (REPRODUCTION row, what the map shows, rule); the rules of
#: docs/experiments-regimes.md, each returning {(lam, c): (value mapped, holds, note)}
CLAIM_RULES: dict[str, tuple[str, str, Callable[..., Cells]]] = {
    "utility": ("1", "iPFL's mean cum. U minus the best baseline's", _utility_margin),
    "accuracy": ("2", "iPFL's last-round accuracy minus the best baseline's, points",
                 _accuracy_margin),
    "ir": ("3", "iPFL clients with cum. U < 0 (all seeds)", _ir),
    "lie_N": ("5", "the liar's gain, N x10", _lie("N")),
    "lie_c": ("6", "the liar's gain, c x2", _lie("c")),
}


def cell_verdicts(table: list[dict], lies: list[dict]) -> list[dict[str, Any]]:
    """Return one row per claim and cell: ``claim``, ``lam``, ``c``, ``value``, ``holds``, ``note``.

    ``note`` is :data:`NO_TRADE` where iPFL traded nothing (the rule then holds or fails
    vacuously: iPFL is local training there), the baselines' count for claim 3, else "".
    """
    out = []
    for claim, (_, _, rule) in CLAIM_RULES.items():
        for (lam, c), (value, holds, note) in sorted(rule(table, lies).items()):
            out.append({"claim": claim, "lam": lam, "c": c, "value": value, "holds": holds,
                        "note": note})
    return out


def where(cells: list[dict[str, Any]]) -> str:
    """Describe where a claim holds: per ``c``, the ``lam`` values, as ``lam <= x`` when a prefix.

    Cells noted :data:`NO_TRADE` are counted and named: a claim holds there vacuously.

    Examples
    --------
    >>> cells = [{"lam": lam, "c": 1.0, "holds": lam <= 0.2} for lam in (0, 0.2, 1, 5)]
    >>> where(cells)
    'in 2 of 4 cells: c = 1: lam <= 0.2'
    >>> where([{"lam": 0, "c": 1, "holds": True}])
    'in every cell'
    >>> where([{"lam": 0, "c": 1, "holds": True, "note": "no trade"}])
    'in every cell (1 of them with no trade: iPFL is local training there)'
    """
    if not cells:
        return "in no cell measured"
    n = sum(1 for r in cells if r["holds"])
    idle = sum(1 for r in cells if r["holds"] and r.get("note") == NO_TRADE)
    vacuous = f" ({idle} of them with no trade: iPFL is local training there)" if idle else ""
    if n == len(cells):
        return "in every cell" + vacuous
    if n == 0:
        return "in no cell"
    parts = []
    for (c,), g in sorted(group_by(cells, "c").items()):
        lams = sorted(r["lam"] for r in g)
        ok = [r["lam"] for r in sorted(g, key=lambda r: r["lam"]) if r["holds"]]
        if not ok:
            text = "no lam"
        elif ok == lams:
            text = "every lam"
        elif ok == lams[:len(ok)]:
            text = f"lam <= {ok[-1]:g}"
        elif ok == lams[-len(ok):]:
            text = f"lam >= {ok[0]:g}"
        else:
            text = "lam in {" + ", ".join(f"{x:g}" for x in ok) + "}"
        parts.append(f"c = {c:g}: {text}")
    return f"in {n} of {len(cells)} cells{vacuous}: " + "; ".join(parts)


def _cell_text(r: dict[str, Any]) -> str:
    note = r.get("note") or ""
    mark = " ✓" if r["holds"] else ""
    if note == NO_TRADE:
        return f"{r['value']:.3g}{mark}°"
    return f"{r['value']:.3g}{mark}" + (f" ({note})" if note else "")


#: the footnote of every regime table
FOOTNOTE = ("✓: the claim's rule holds in that cell; °: iPFL traded nothing there in any "
            "seed (it is local training, so the rule holds or fails vacuously).")


def cell_table(cells: list[dict[str, Any]]) -> list[str]:
    """Return one claim's cells as a Markdown table: lam rows, c columns, ✓ where it holds."""
    by = {(r["lam"], r["c"]): r for r in cells}
    lines = ["| lam \\ c | " + " | ".join(f"{c:g}" for c in CS) + " |",
             "|---|" + "---|" * len(CS)]
    for lam in LAMS:
        text = ["n/a" if (lam, c) not in by else _cell_text(by[(lam, c)]) for c in CS]
        lines.append(f"| {lam:g} | " + " | ".join(text) + " |")
    return lines


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write regimes.csv, lies.csv, cells.csv, regimes.png and summary.md."""
    table, lies = measure(out, specs_, rows)
    write_csv(out / "regimes.csv", table)
    write_csv(out / "lies.csv", lies)
    cells = cell_verdicts(table, lies)
    write_csv(out / "cells.csv", cells)
    _figure(out / "regimes.png", cells)
    seeds = sorted({r["seed"] for r in table})
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`, NIID, seeds {seeds}; rules fixed "
             "before the runs (docs/experiments-regimes.md). Baselines are trained once per "
             "seed and rescored at each c; eq. (1) has no lam, so their numbers are the same "
             "in every lam row.", ""]
    for claim, (row, shows, _) in CLAIM_RULES.items():
        g = [r for r in cells if r["claim"] == claim]
        lines += [f"## Claim {row} ({claim}): holds {where(g)}", "", f"Map: {shows}.", "",
                  *cell_table(g), ""]
    lines.append(FOOTNOTE)
    write_summary(out, lines)
    return {"rows": table, "lies": lies, "cells": cells}


def _figure(path: Path, cells: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    claims = [c for c in CLAIM_RULES if any(r["claim"] == c for r in cells)]
    fig, axes = plt.subplots(1, len(claims), figsize=(4.1 * len(claims), 3.9), squeeze=False)
    for ax, claim in zip(axes[0], claims, strict=True):
        row, shows, _ = CLAIM_RULES[claim]
        by = {(r["lam"], r["c"]): r for r in cells if r["claim"] == claim}
        V = np.array([[by[(lam, c)]["value"] if (lam, c) in by else math.nan for c in CS]
                      for lam in LAMS])
        finite = V[np.isfinite(V)]
        span = float(np.abs(finite).max()) if finite.size else 1.0
        if claim == "ir":
            im = ax.imshow(V, cmap="Reds", vmin=0, vmax=max(span, 1.0))
        else:  # a margin for iPFL is good (green), a liar's gain is bad (red)
            im = ax.imshow(V, cmap="RdYlGn_r" if claim.startswith("lie") else "RdYlGn",
                           norm=TwoSlopeNorm(0.0, -max(span, 1e-9), max(span, 1e-9)))
        for a, lam in enumerate(LAMS):
            for b, c in enumerate(CS):
                r = by.get((lam, c))
                if r is not None:
                    ax.text(b, a, f"{r['value']:.3g}" + ("\n✓" if r["holds"] else "")
                            + ("\nno trade" if r.get("note") == NO_TRADE else ""),
                            ha="center", va="center", fontsize=7.5)
        ax.set_xticks(range(len(CS)), [f"{c:g}" for c in CS])
        ax.set_yticks(range(len(LAMS)), [f"{lam:g}" for lam in LAMS])
        ax.set_xlabel("c (sharing cost)")
        ax.set_ylabel("lam (price of distance)")
        ax.set_title(f"claim {row}: {shows}", fontsize=8.5)
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.suptitle("Where the verdicts hold (✓: the rule holds; no trade: iPFL is local training "
                 "there; seed means)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
