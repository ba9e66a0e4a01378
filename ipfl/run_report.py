"""What ``ipfl train`` and ``ipfl demo`` print and draw at the end of a run, for any algorithm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["client_table", "ir_summary", "write_plots"]


def _last(rows: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    T = max(r["round"] for r in rows)
    return {r["client"]: r for r in rows if r["round"] == T}


def client_table(rows: list[dict[str, Any]], local: list[dict[str, Any]] | None = None) -> str:
    """Return the per-client table of a run: accuracy both ways, utility and money.

    ``acc`` is the last round's test accuracy, ``best`` the test accuracy at the round
    of best validation accuracy (the paper's protocol); with ``local`` rows, the local
    run's last-round accuracy is shown beside them.
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
    head += f"{'acc':>6} {'best':>6} {'cum U':>8} {'paid':>8} {'received':>9} {'in':>3}"
    lines = [head]
    for i in sorted(last):
        r = last[i]
        line = f"{i:>6} {r['role']:<8} {r['N']:>5.0f} "
        line += f"{loc[i]['acc']:>6.3f} " if loc else ""
        line += (f"{r['acc']:>6.3f} {r['best_acc']:>6.3f} {r['cum_U']:>8.2f} "
                 f"{money[i][0]:>8.2f} {money[i][1]:>9.2f} {'y' if r['active'] else 'n':>3}")
        lines.append(line)
    benign = [r for r in last.values() if r["role"] != "attacker"]
    mean = f"{'mean':>6} {'':<8} {'':>5} "
    if loc:
        mean += f"{np.mean([loc[r['client']]['acc'] for r in benign]):>6.3f} "
    mean += (f"{np.mean([r['acc'] for r in benign]):>6.3f} "
             f"{np.mean([r['best_acc'] for r in benign]):>6.3f} "
             f"{np.mean([r['cum_U'] for r in benign]):>8.2f}")
    lines.append(mean + ("   (attackers excluded)" if len(benign) < len(last) else ""))
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
    from training.plots import plot_curves

    from .figures import plot_round_graph

    paths = [plot_curves(runs, out / "curves.png")]
    records = sorted((run_dir / "rounds").glob("*.json"))
    if records:
        paths.append(plot_round_graph(records[-1], out / "graph.png"))
    return paths
