"""Pictures of markets and comparisons (matplotlib, Agg backend; no display needed).

Kept out of :mod:`mechanism`, which never imports matplotlib. Market graphs use
one visual language everywhere (the explorer page too): node area = data size
``N``, colour = role, an arrow ``i -> j`` = "i imports j's model", edge width =
the remittance ``r_ij`` client ``i`` pays ``j`` (eq. (10)), a red ring = a
client whose utility is negative (Theorem 1 fails), and a legend saying so. Where
money moves, only the edges that pay ``r_ij > 0`` are drawn (the legend counts the
others); a run's curves (:func:`plot_curves`) average over the clients that are not
attackers, as the end-of-run table does, and draw the attackers' mean dashed.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from atomicio import atomic_write_bytes  # noqa: E402

__all__ = ["draw_market_graph", "plot_curves", "plot_example", "plot_gap_vs_m", "plot_market",
           "plot_round_graph"]

#: role colours, shared with the explorer page (ipfl/explorer/static/app.js)
ROLE_COLOURS = {"trader": "#4c78a8", "seller": "#f58518", "buyer": "#54a24b",
                "attacker": "#e45756"}
ROLE_LABELS = {"trader": "trader", "seller": "pure seller (K = 0)",
               "buyer": "pure buyer (c = inf)", "attacker": "attacker (poisoned uploads)"}


def _save(fig: plt.Figure, path: Path) -> Path:
    """Save atomically (:mod:`atomicio`), in the format the suffix names (``.png``, ``.svg``)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format=path.suffix.lstrip(".").lower() or None, dpi=120,
                    bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path


def plot_gap_vs_m(rows: list[dict], path: str | os.PathLike) -> Path:
    """Box plot of the relative row gap ``(phi_greedy - phi_opt)/|phi_opt|`` against ``m``.

    Only suboptimal rows are drawn (on a log scale); the share of optimal rows is
    printed above each box.
    """
    variants = sorted({r["variant"] for r in rows})
    sizes = sorted({r["m"] for r in rows})
    width = max(4.5, 0.75 * len(sizes) + 1.5)
    fig, axes = plt.subplots(1, len(variants), figsize=(width * len(variants), 4.0),
                             squeeze=False, sharey=True)
    for ax, variant in zip(axes[0], variants, strict=True):
        data, share = [], []
        for m in sizes:
            sel = [r for r in rows if r["variant"] == variant and r["m"] == m]
            gaps = np.array([r["gap_rel"] for r in sel if not r["optimal"]])
            data.append(gaps if gaps.size else np.array([np.nan]))
            share.append(np.mean([r["optimal"] for r in sel]))
        ax.boxplot([d[np.isfinite(d)] for d in data], positions=range(len(sizes)))
        ax.set_xticks(range(len(sizes)), [str(m) for m in sizes])
        ax.set_yscale("log")
        ax.set_xlabel("clients m")
        ax.set_title(f'Algorithm 2 "{variant}": gap of suboptimal rows', pad=22)
        blended = ax.get_xaxis_transform()
        for k, s_ in enumerate(share):
            ax.text(k, 1.015, f"{100 * s_:.0f}%", transform=blended, ha="center",
                          va="bottom", fontsize=8, color="#444444")
        ax.text(1.0, -0.16, "above each box: rows optimal", transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="#444444")
    axes[0][0].set_ylabel(r"$(\phi_{greedy}-\phi_{opt})/|\phi_{opt}|$")
    fig.tight_layout()
    return _save(fig, Path(path))


def plot_example(example: dict, path: str | os.PathLike) -> Path:
    """Draw one market's greedy ("paper") and optimal graphs side by side (networkx)."""
    A_g, A_o = np.array(example["A_paper"]), np.array(example["A_opt"])
    m = A_g.shape[0]
    pos = nx.circular_layout(range(m))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    for ax, A, title in ((axes[0], A_g, 'Algorithm 2 ("paper")'), (axes[1], A_o, "optimal")):
        G = nx.DiGraph()
        G.add_nodes_from(range(m))
        G.add_edges_from(zip(*np.nonzero(A), strict=True))
        other = A_o if A is A_g else A_g
        colors = ["tab:red" if other[i, j] == 0 else "0.4" for i, j in G.edges]
        labels = {i: f"{i}\nN={example['N'][i]:.0f}" for i in range(m)}
        nx.draw_networkx(G, pos, ax=ax, labels=labels, node_color="#dde8f5", node_size=900,
                         font_size=7, edge_color=colors, arrows=True,
                         connectionstyle="arc3,rad=0.1")
        ax.set_title(title)
        ax.set_axis_off()
    fig.suptitle(f"m = {m}: row {example['row']} differs most")
    fig.text(0.5, 0.01, "arrow i -> j: i imports j's model; red: an edge found in only one "
             "of the two graphs", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, Path(path))


def _roles(c: np.ndarray, K: np.ndarray) -> list[str]:
    return ["buyer" if np.isinf(ci) else "seller" if ki == 0 else "trader"
            for ci, ki in zip(c, K, strict=True)]


#: above this density a graph without payments is not drawn edge by edge (a hairball)
DENSE = 0.5


def draw_market_graph(ax: plt.Axes, N: np.ndarray, roles: list[str], A: np.ndarray,
                      r: np.ndarray, U: np.ndarray | None = None,
                      names: list | None = None, legend: bool = True) -> int:
    """Draw one market graph on ``ax`` (circular layout; see the module docstring).

    Where any payment is positive, an import ``i -> j`` is drawn only if it pays
    ``r_ij > 0``, with a width linear in ``r_ij`` between the smallest and largest
    payment drawn. Without payments (a baseline's sharing graph) every import is drawn
    alike, unless more than :data:`DENSE` of all pairs import: then none is, and the
    legend says so. Nodes shrink as ``10/m`` beyond ten clients, so twenty stay apart.

    Returns
    -------
    int
        The number of edges drawn.
    """
    N, A, r = np.asarray(N, float), np.asarray(A), np.asarray(r, float)
    m = len(N)
    names = list(range(m)) if names is None else list(names)
    pos = {k: (np.sin(2 * np.pi * k / m), np.cos(2 * np.pi * k / m)) for k in range(m)}
    sizes = (120 + 900 * np.sqrt(N / N.max())) * min(1.0, 10 / m)
    G = nx.DiGraph()
    G.add_nodes_from(range(m))
    imports = [(int(i), int(j)) for i, j in zip(*np.nonzero(A), strict=True)]
    paying = any(r[i, j] > 0 for i, j in imports)
    density = len(imports) / max(1, m * (m - 1))
    if paying:
        edges = [(i, j) for i, j in imports if r[i, j] > 0]
    else:
        edges = imports if density <= DENSE else []
    hidden = len(imports) - len(edges)
    G.add_edges_from(edges)
    money = np.array([max(r[i, j], 0.0) for i, j in edges])
    rmin, rmax = (float(money.min()), float(money.max())) if edges else (0.0, 1.0)

    def width(v: float) -> float:  # the spread of payments, not their level, sets the width
        return 0.25 + 3.5 * (v - rmin) / (rmax - rmin) if rmax > rmin else 1.2

    order = np.argsort(money, kind="stable")  # thick edges drawn last, on top
    edges = [edges[k] for k in order]
    widths = [width(money[k]) for k in order]
    alpha = 0.7 if len(edges) <= 30 else 0.45
    if edges:
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=edges, width=widths,
                               edge_color="#333333", alpha=alpha, arrows=True,
                               arrowstyle="-|>", arrowsize=9, node_size=list(sizes),
                               connectionstyle="arc3,rad=0.12")
    bad = np.zeros(m, bool) if U is None else np.asarray(U) < -1e-9
    nx.draw_networkx_nodes(G, pos, ax=ax, node_size=list(sizes),
                           node_color=[ROLE_COLOURS[x] for x in roles],
                           edgecolors=["#d00000" if b else "#222222" for b in bad],
                           linewidths=[2.5 if b else 0.6 for b in bad])
    nx.draw_networkx_labels(G, pos, ax=ax, labels={k: str(names[k]) for k in range(m)},
                            font_size=8, font_color="white", font_weight="bold")
    ax.set_xlim(-1.25, 1.25)
    ax.set_ylim(-1.25, 1.25)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if not legend:
        return len(edges)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="o", ls="", ms=9, color=ROLE_COLOURS[k], label=ROLE_LABELS[k])
               for k in ROLE_COLOURS if k in roles]
    if edges and paying:
        handles += [Line2D([], [], color="#333333", alpha=0.7, lw=width(v),
                           label=f"i -> j pays r_ij = {v:.3g}")
                    for v in dict.fromkeys((rmax, (rmin + rmax) / 2, rmin))]
    handles.append(Line2D([], [], ls="", label="arrow i -> j: i imports j's model"))
    if hidden and paying:
        handles.append(Line2D([], [], ls="", label=f"{hidden} imports paying r_ij = 0 not drawn"))
    elif hidden:
        handles.append(Line2D([], [], ls="", label=f"no payments; {len(imports)} imports "
                              f"(density {density:.2f} > {DENSE}) not drawn"))
    elif not paying and edges:
        handles.append(Line2D([], [], ls="", label="no payments: every import drawn alike"))
    handles.append(Line2D([], [], ls="", label=f"node area: data N ({N.min():.0f}-{N.max():.0f})"))
    if bad.any():
        handles.append(Line2D([], [], marker="o", ls="", ms=9, mfc="white", mec="#d00000",
                              mew=2.5, label="U_i < 0 (IR fails)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
              frameon=False)
    return len(edges)


def plot_market(market: object, A: object, path: str | os.PathLike,
                title: str | None = None) -> Path:
    """Draw ``market``'s graph ``A`` with payments and utilities from :mod:`mechanism`."""
    from mechanism import payments, utilities

    A = np.asarray(A)
    fig, ax = plt.subplots(figsize=(8.5, 6))
    draw_market_graph(ax, market.N, list(market.roles), A, payments(market, A).r,
                      utilities(market, A))
    ax.set_title(title or f"{market.m} clients, {int(A.sum())} imports")
    return _save(fig, Path(path))


def plot_round_graph(round_record: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Draw the graph of one recorded training round (``rounds/NNNN.json`` of a run)."""
    from training.records import Exchange
    from training.safeio import CAPS, read_regular

    ex = Exchange.from_json(json.loads(read_regular(round_record, CAPS["record"],
                                                    "round record").decode("utf-8")))
    A = ex.A
    r = ex.r if ex.r is not None else np.zeros(A.shape)  # baselines: no money
    fig, ax = plt.subplots(figsize=(9, 6.5))
    roles = list(ex.roles) or _roles(ex.c, ex.K)  # training records name each client's role
    draw_market_graph(ax, ex.N, roles, A, r, ex.U, names=list(ex.clients))
    m = ex.k
    money = f"money moved {r.sum():.3g}" if ex.r is not None else "no payments"
    ax.set_title(f"Who imports whose model in round {ex.round}\n{int(A.sum())} imports among "
                 f"{m} clients (density {A.sum() / max(1, m * (m - 1)):.2f}), {money}")
    return _save(fig, Path(path))


def _mean_by_round(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    rounds = sorted({r["round"] for r in rows})
    return rounds, [float(np.mean([r[key] for r in rows if r["round"] == t])) for t in rounds]


#: the three panels of :func:`plot_curves`: metric key, y label, title
CURVES = (("acc", "test accuracy", "Mean test accuracy (last model)"),
          ("U", "utility $U_i^t$ (eq. (1))", "Mean utility per round"),
          ("cum_U", "cumulative utility", "Mean cumulative utility"))


def plot_curves(runs: dict[str, list[dict]], path: str | os.PathLike) -> Path:
    """Plot per round the mean test accuracy, utility and cumulative utility of each run.

    The solid line of a run is the mean over the clients that are not attackers (the
    ``mean`` row of the end-of-run table); where a run has attackers, their own mean is
    the dashed line of the same colour (the table's ``attackers`` row).
    """
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    any_bad = False
    for k, (name, rows) in enumerate(runs.items()):
        colour = f"C{k}"
        benign = [r for r in rows if r.get("role") != "attacker"]
        bad = [r for r in rows if r.get("role") == "attacker"]
        any_bad |= bool(bad)
        for ax, (key, ylabel, title) in zip(axes, CURVES, strict=True):
            if benign:
                ax.plot(*_mean_by_round(benign, key), marker="o", ms=3, color=colour,
                        label=f"{name}" + (" (attackers excluded)" if bad else ""))
            if bad:
                ax.plot(*_mean_by_round(bad, key), ls="--", marker="x", ms=4, color=colour,
                        label=f"{name}: attackers*")
            ax.set_xlabel("round")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(ylabel)
            ax.set_title(title)
    axes[0].legend(fontsize=8)
    fig.suptitle("Means over clients" + (", attackers (*) dashed and excluded from the solid "
                                         "lines" if any_bad else ""))
    fig.tight_layout()
    return _save(fig, Path(path))
