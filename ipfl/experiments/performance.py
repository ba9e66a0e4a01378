"""``performance`` (Fig. 2): accuracy against cumulative utility, eight methods, three settings.

Per method x setting x seed: mean over clients of the last-round test accuracy
(``acc``), of the test accuracy at the round of best validation accuracy
(``best_acc``), of the cumulative utility of eq. (1) (``cum_U``: iPFL with its
payments, the baselines on their sharing graph without payments, local training 0),
the number of clients whose cumulative utility is negative, and the welfare yardstick
``sw_share``: the run's social welfare of eq. (3) over its rounds divided by the best
any sharing graph reaches in the same rounds (:func:`ipfl.rescore.rescore_run`; 1 is
the optimum, local training 0). Local training is run as the reference point (utility 0).

Outputs: ``performance.csv`` (one row per run), ``performance.png`` (one scatter per
setting and accuracy reading, mean ± sd over seeds), ``summary.md``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .core import (
    SETTINGS,
    Preset,
    Spec,
    fmt,
    group_by,
    last_round,
    setting_keys,
    write_csv,
    write_summary,
)
from .core import (
    methods as all_methods,
)

NAME = "performance"
TITLE = "Fig. 2: mean accuracy against mean cumulative utility"
#: keys the specs set run by run beyond :data:`~ipfl.experiments.core.PER_RUN` (none)
PER_RUN: tuple[str, ...] = ()


def specs(preset: Preset, seeds: list[int], common: dict[str, Any],
          methods: tuple[str, ...] | None = None,
          settings: tuple[str, ...] = SETTINGS) -> list[Spec]:
    """One run per method (default: every registered one) x setting x seed."""
    from training import Config

    methods = all_methods() if methods is None else methods
    out = []
    for setting in settings:
        for method in methods:
            for seed in seeds:
                cfg = Config.from_dict({**common, **setting_keys(setting, preset),
                                        "algorithm": method, "seed": seed})
                out.append(Spec(f"{setting}-{method}-s{seed}",
                                {"setting": setting, "method": method, "seed": seed}, cfg))
    return out


def welfare_share(run: Path) -> float:
    """Return a run's welfare over the per-round optimum (eq. (3)); nan if it cannot be verified.

    A run finished by an older ipfl, which dropped its hash chain with its checkpoint,
    cannot be verified and so is not rescored.
    """
    from ..rescore import UnverifiedRun, rescore_run

    try:
        return rescore_run(run).welfare_share
    except UnverifiedRun:
        return math.nan


def run_rows(specs_: list[Spec], rows: dict[str, list[dict]],
             runs: Path) -> list[dict[str, Any]]:
    """One CSV row per run: mean accuracies, mean and minimum cumulative utility, sw_share.

    ``runs`` is the folder of the run links (``OUT/runs``).
    """
    out = []
    for s in specs_:
        last = [r for r in last_round(rows[s.label]) if r["role"] != "attacker"]
        n = len(last)
        out.append({**s.keys,
                    "acc": sum(r["acc"] for r in last) / n,
                    "best_acc": sum(r["best_acc"] for r in last) / n,
                    "cum_U": sum(r["cum_U"] for r in last) / n,
                    "min_cum_U": min(r["cum_U"] for r in last),
                    "neg_clients": sum(1 for r in last if r["cum_U"] < -1e-9),
                    "clients": n,
                    "sw_share": welfare_share(runs / s.label)})
    return out


def analyse(out: Path, specs_: list[Spec], rows: dict[str, list[dict]],
            preset: Preset) -> dict[str, Any]:
    """Write performance.csv, performance.png and summary.md."""
    table = run_rows(specs_, rows, out / "runs")
    write_csv(out / "performance.csv", table)
    _figure(out / "performance.png", table)
    lines = [f"# {TITLE}", "", f"Preset `{preset.name}`; mean ± sd over seeds "
             f"{sorted({r['seed'] for r in table})}; accuracies in %; welfare / optimum: "
             "eq. (3) summed over the rounds over the best any graph reaches in them.", "",
             "| setting | method | acc (last round) | acc (best val) | mean cum. U | "
             "clients with cum. U < 0 | welfare / optimum |", "|---|---|---|---|---|---|---|"]
    for (setting, method), g in group_by(table, "setting", "method").items():
        lines.append(f"| {setting} | {method} | {fmt([r['acc'] for r in g], 100)} | "
                     f"{fmt([r['best_acc'] for r in g], 100)} | {fmt([r['cum_U'] for r in g])} | "
                     f"{fmt([r['neg_clients'] for r in g])} | "
                     f"{fmt([r['sw_share'] for r in g], digits=3)} |")
    missing = [s.label for s, r in zip(specs_, table, strict=True) if math.isnan(r["sw_share"])]
    if missing:
        lines += ["", f"welfare / optimum is n/a for {', '.join(missing)}: a run finished by an "
                  "older ipfl cannot be verified (it dropped its hash chain; `ipfl audit-run` "
                  "says so), or no graph had positive welfare (`ipfl rescore` says which)."]
    write_summary(out, lines)
    return {"rows": table}


def _figure(path: Path, table: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    settings = list(dict.fromkeys(r["setting"] for r in table))
    fig, axes = plt.subplots(2, len(settings), figsize=(4.6 * len(settings), 7.5),
                             squeeze=False)
    cmap = plt.get_cmap("tab10")
    methods = list(dict.fromkeys(r["method"] for r in table))
    for row, (col, label) in enumerate((("acc", "last-round"), ("best_acc", "best-validation"))):
        for k, setting in enumerate(settings):
            ax = axes[row][k]
            for j, method in enumerate(methods):
                g = [r for r in table if r["setting"] == setting and r["method"] == method]
                x = 100 * np.array([r[col] for r in g])
                y = np.array([r["cum_U"] for r in g])
                ax.errorbar(x.mean(), y.mean(), xerr=x.std(), yerr=y.std(), fmt="*" if
                            method == "ipfl" else "o", ms=14 if method == "ipfl" else 7,
                            color=cmap(j % 10), label=method, capsize=2)
            ax.set_title(f"{setting}")
            ax.set_xlabel(f"mean test accuracy, {label} (%)")
            ax.set_ylabel("mean cumulative utility")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("Accuracy against utility (mean ± sd over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
