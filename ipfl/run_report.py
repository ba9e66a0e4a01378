"""What ``ipfl train`` and ``ipfl demo`` print and draw at the end of a run, for any algorithm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["client_table", "ir_summary", "table_legend", "write_plots"]

#: the legend's entries, in the table's column order; ``local`` and ``attacker`` only
#: where the table has them
LEGEND = {
    "local": "local = the same client trained alone, last round",
    "last": "last = test accuracy of the last round's model",
    "best": "best = test accuracy at the round of best validation accuracy (the paper's "
            "protocol: the round is chosen on validation, not test, so best can be below last)",
    "cum U": "cum U = the client's utility of eq. (1) summed over rounds (the progress bar's "
             "U= is this round's mean U)",
    "money": "paid, received = money of eq. (10), summed",
    "in": "in = y if the client still trained in the last round (n: it left the market or was "
          "dropped, and keeps its best model)",
    "attacker": "attacker* rows are left out of the mean, as the dashed attacker curves in "
                "curves.png",
}


def table_legend(rows: list[dict[str, Any]], local: bool = False, width: int = 96) -> str:
    """Return the legend printed under :func:`client_table`, wrapped to ``width`` columns.

    It explains every column the table has (``local`` only with a local run, the
    attacker mark only where there are attackers), and why ``best`` can be below
    ``last``.
    """
    import textwrap

    attackers = any(r["role"] == "attacker" for r in rows)
    keys = [k for k in LEGEND if (k != "local" or local) and (k != "attacker" or attackers)]
    text = "legend: " + "; ".join(LEGEND[k] for k in keys) + "."
    return textwrap.fill(text, width=width, subsequent_indent="  ")


def _last(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    T = max(r["round"] for r in rows)
    return {r["client"]: r for r in rows if r["round"] == T}


def client_table(rows: list[dict[str, Any]], local: list[dict[str, Any]] | None = None) -> str:
    """Return the per-client table of a run: accuracy both ways, utility and money.

    ``last`` is the last round's test accuracy, ``best`` the test accuracy at the round
    of best validation accuracy (the paper's protocol); with ``local`` rows, the local
    run's last-round accuracy is shown beside them. Attackers are marked ``*`` and left
    out of the ``mean`` row; an ``attackers`` row gives theirs. :func:`table_legend`
    explains every column.
    """
    last = _last(rows)
    loc = _last(local) if local else None
    money: dict[int, list[float]] = {}
    for r in rows:
        pr = money.setdefault(r["client"], [0.0, 0.0])
        pr[0] += r["paid"]
        pr[1] += r["received"]
    head = f"{'client':>6} {'role':<8} {'N_i':>5} "
    head += f"{'local':>6} " if loc else ""
    head += f"{'last':>6} {'best':>6} {'cum U':>8} {'paid':>8} {'received':>9} {'in':>3}"
    lines = [head]
    for i in sorted(last):
        r = last[i]
        role = f"{r['role']}*" if r["role"] == "attacker" else r["role"]
        line = f"{i:>6} {role:<9}{r['N']:>5.0f} "
        line += f"{loc[i]['acc']:>6.3f} " if loc else ""
        line += (f"{r['acc']:>6.3f} {r['best_acc']:>6.3f} {r['cum_U']:>8.2f} "
                 f"{money[i][0]:>8.2f} {money[i][1]:>9.2f} {'y' if r['active'] else 'n':>3}")
        lines.append(line)
    benign = [r for r in last.values() if r["role"] != "attacker"]
    bad = [r for r in last.values() if r["role"] == "attacker"]
    for label, group in (("mean", benign), ("attackers", bad)):
        if not group:
            continue
        mean = f"{label:>6} {'':<8} {'':>5} " if label == "mean" else f"{label:<15} {'':>5} "
        if loc:
            mean += f"{np.mean([loc[r['client']]['acc'] for r in group]):>6.3f} "
        mean += (f"{np.mean([r['acc'] for r in group]):>6.3f} "
                 f"{np.mean([r['best_acc'] for r in group]):>6.3f} "
                 f"{np.mean([r['cum_U'] for r in group]):>8.2f}")
        if label == "mean" and bad:
            mean += "   (attackers * excluded)"
        elif label == "attackers":
            mean += "   (their own mean)"
        lines.append(mean)
    return "\n".join(lines)


def ir_summary(rows: list[dict[str, Any]]) -> tuple[str, bool]:
    """Return the individual-rationality line of a run and whether IR held everywhere."""
    live = [r for r in rows if r["round"] > 0 and r["active"]]
    broken = [(r["round"], r["client"], round(r["U"], 4)) for r in live if not r["ir"]]
    if broken:
        shown = broken[:10]
        more = f" ... ({len(broken) - 10} more)" if len(broken) > 10 else ""
        return (f"individual rationality VIOLATED in {len(broken)} of {len(live)} client-rounds "
                f"(round, client, U): {shown}{more}", False)
    return (f"individual rationality (U_i >= 0) held in all {len(live)} recorded "
            "client-rounds", True)


def write_plots(runs: dict[str, list[dict[str, Any]]], run_dir: Path, out: Path) -> list[Path]:
    """Write ``curves.png`` (every run) and ``graph.png`` (``run_dir``'s last recorded round)."""
    from .figures import plot_curves, plot_round_graph

    paths = [plot_curves(runs, out / "curves.png")]
    records = sorted((run_dir / "rounds").glob("*.json"))
    if records:
        paths.append(plot_round_graph(records[-1], out / "graph.png"))
    return paths
