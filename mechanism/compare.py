r"""Algorithm 2 against the exact optimum of eq. (8), over seeded random markets.

The paper settles for Algorithm 2 and claims its output is a local optimum
(eq. (9)). :func:`compare` measures, on a seeded family of random markets
(:func:`mechanism.random_market`), how far each greedy variant (``"paper"``,
``"skip"``) is from the certified optimum of :func:`mechanism.exact_graph`:

* per row ``i``: :math:`\phi_i(\text{greedy}) - \phi_i(\text{opt})` absolute
  and relative to :math:`|\phi_i(\text{opt})|`; whether greedy is optimal; the
  number of violations of each half of eq. (9); the Jaccard overlap of the
  greedy and optimal import sets;
* per market: the social-welfare gap (eq. (3)), whether every row is optimal,
  wall time of each method.

Pure numpy (plus the exact solver), no file I/O: :func:`ipfl.compare_files.write_outputs`
writes the results, plotting lives in :mod:`ipfl.figures`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .exact import EXACT_SOLVERS, exact_graph
from .graph import VARIANTS, greedy_graph
from .market import Market, require_market
from .payments import check_graph, objective, social_welfare
from .sampling import random_market

__all__ = [
    "CompareResult",
    "compare",
    "compare_market",
    "eq9_violations",
    "jaccard_rows",
]

#: relative tolerance under which a greedy row counts as optimal
OPT_RTOL = 1e-9


def eq9_violations(market: Market, A: ArrayLike) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    r"""Pairs ``(i, j)`` that break each half of the local-optimality claim, eq. (9).

    First half: :math:`a_{ij} = 1 \Rightarrow \phi_i(\mathbf a_i - \mathbf e_j) >
    \phi_i(\mathbf a_i)`; it fails where removing ``j`` does not raise
    :math:`\phi_i`, i.e. :math:`g_i(x_i) - g_i(x_i - N_j) \le w_{ij}`.
    Second half: :math:`a_{ij} = 0 \Rightarrow \phi_i(\mathbf a_i + \mathbf e_j)
    \ge \phi_i(\mathbf a_i)`; it fails where adding ``j`` lowers :math:`\phi_i`,
    i.e. :math:`g_i(x_i + N_j) - g_i(x_i) > w_{ij}`. Differences are computed
    with the gain's cancellation-free ``increment``.

    Returns
    -------
    (first, second) : two boolean (m, m) arrays
    """
    require_market("eq9_violations", market)
    A = check_graph(market, A)
    N, K, w, gain = market.N, market.K, market.weights, market.gain
    x = (A @ N)[:, None]
    Ni, Ki = N[:, None], K[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        remove = gain.increment(x, N[None, :], Ni, Ki) - w  # phi(a - e_j) - phi(a)
        add = w - gain.increment(x + N[None, :], N[None, :], Ni, Ki)  # phi(a + e_j) - phi(a)
    off = ~np.eye(market.m, dtype=bool)
    first = (A == 1) & off & (remove <= 0)
    second = (A == 0) & off & np.isfinite(w) & (add < 0)
    return first, second


def jaccard_rows(A: ArrayLike, B: ArrayLike) -> NDArray[np.float64]:
    """Per-row Jaccard overlap ``|A_i & B_i| / |A_i | B_i|`` (1 when both rows are empty)."""
    A, B = np.asarray(A, dtype=bool), np.asarray(B, dtype=bool)
    inter, union = (A & B).sum(axis=1), (A | B).sum(axis=1)
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def compare_market(market: Market, *, solver: str = "milp", time_limit: float | None = None,
                   exact: object | None = None) -> dict:
    """Compare Algorithm 2's variants with the exact graph on one market.

    Returns a dict with ``exact`` (the :class:`~mechanism.exact.ExactResult`), and
    per variant a dict of per-row arrays (``phi``, ``gap_abs``, ``gap_rel``,
    ``optimal``, ``eq9_first``, ``eq9_second``, ``jaccard``) and market scalars
    (``sw``, ``sw_gap``, ``sw_gap_rel``, ``time``, ``A``).
    """
    require_market("compare_market", market)
    if exact is None:
        exact = exact_graph(market, solver=solver, time_limit=time_limit)
    phi_opt = exact.objective
    sw_opt = social_welfare(market, exact.A)
    out: dict = {"exact": exact, "sw_opt": sw_opt}
    for variant in VARIANTS:
        t0 = time.perf_counter()
        A = greedy_graph(market, variant)
        elapsed = time.perf_counter() - t0
        phi = objective(market, A)
        gap_abs = phi - phi_opt
        scale = np.abs(phi_opt)
        gap_rel = np.where(scale > 0, gap_abs / np.where(scale > 0, scale, 1.0), 0.0)
        first, second = eq9_violations(market, A)
        sw = social_welfare(market, A)
        out[variant] = {
            "A": A,
            "time": elapsed,
            "phi": phi,
            "gap_abs": gap_abs,
            "gap_rel": gap_rel,
            "optimal": gap_abs <= OPT_RTOL * np.maximum(scale, 1e-300),
            "eq9_first": first.sum(axis=1),
            "eq9_second": second.sum(axis=1),
            "jaccard": jaccard_rows(A, exact.A),
            "sw": sw,
            "sw_gap": sw_opt - sw,
            "sw_gap_rel": (sw_opt - sw) / abs(sw_opt) if sw_opt != 0 else 0.0,
        }
    return out


@dataclass
class CompareResult:
    """Everything :func:`compare` measured.

    Attributes
    ----------
    options : dict
        The family's parameters (enough to reproduce it).
    markets : list of dict
        One flat record per (market, variant): sizes, gaps, counts, times.
    rows : list of dict
        One record per (market, row, variant): ``m``, ``gap_abs``, ``gap_rel``, ...
    summary : dict
        Aggregates per variant (all markets) and per (variant, m).
    example : dict or None
        The smallest market where ``"paper"`` missed the optimum: its market
        fields and both graphs, for drawing.
    """

    options: dict
    markets: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    example: dict | None = None

    def table(self) -> str:
        """Return a plain-text table of the summary per variant and size ``m``."""
        head = (f"{'variant':8} {'m':>5} {'rows':>6} {'row opt%':>9} {'mkt opt%':>9} "
                f"{'mean rel gap':>13} {'max rel gap':>12} {'eq9-1 rows%':>12} "
                f"{'eq9-2 rows%':>12} {'jaccard':>8} {'SW gap%':>8} {'t_greedy s':>11} "
                f"{'t_exact s':>10}")
        lines = [head, "-" * len(head)]
        for key, s in self.summary["by_m"].items():
            variant, m = key.split(":")
            lines.append(
                f"{variant:8} {m:>5} {s['rows']:>6d} {100 * s['row_optimal']:>9.2f} "
                f"{100 * s['market_optimal']:>9.2f} {s['mean_gap_rel']:>13.3e} "
                f"{s['max_gap_rel']:>12.3e} {100 * s['eq9_first_rows']:>12.2f} "
                f"{100 * s['eq9_second_rows']:>12.2f} {s['mean_jaccard']:>8.3f} "
                f"{100 * s['mean_sw_gap_rel']:>8.3f} {s['time_greedy']:>11.4f} "
                f"{s['time_exact']:>10.3f}"
            )
        ex = self.summary["exact"]
        lines.append(f"exact ({self.options['solver']}): {ex['certified_rows']}/{ex['rows']} rows "
                     f"certified optimal, {ex['time']:.2f} s in all")
        return "\n".join(lines)


def _iv(sizes, markets, c_range, K_range, N_range, lam, spread, buyers, sellers, solver,
        time_limit):  # noqa: ANN001, ANN202 (private)
    sizes = [int(s) for s in sizes]
    if not sizes or any(s < 2 for s in sizes):
        raise ValueError(f"compare: sizes = {sizes!r} must be a non-empty list of integers >= 2")
    if solver not in EXACT_SOLVERS:
        raise ValueError(f"compare: solver = {solver!r} is not one of {EXACT_SOLVERS}")
    if solver == "bruteforce" and max(sizes) > 16:
        raise ValueError(f"compare: solver='bruteforce' needs m <= 16, got sizes {sizes}")
    if int(markets) != markets or markets < 1:
        raise ValueError(f"compare: markets = {markets!r} must be a positive integer")
    for name, rng in (("c_range", c_range), ("K_range", K_range), ("N_range", N_range)):
        lo, hi = rng
        if not 0 < lo <= hi < math.inf:
            raise ValueError(f"compare: {name} = {tuple(rng)!r} needs 0 < low <= high < inf")
    lams = [float(v) for v in np.atleast_1d(lam)]
    if any(not (v >= 0 and math.isfinite(v)) for v in lams):
        raise ValueError(f"compare: lam = {lam!r} must be finite and >= 0")
    if not (spread >= 0 and math.isfinite(spread)):
        raise ValueError(f"compare: spread = {spread!r} must be finite and >= 0")
    if not (0 <= buyers and 0 <= sellers and buyers + sellers <= 1):
        raise ValueError(f"compare: buyers = {buyers!r}, sellers = {sellers!r} need to be "
                         "fractions with buyers + sellers <= 1")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"compare: time_limit = {time_limit!r} must be positive")
    return sizes, int(markets), lams


def compare(
    *,
    sizes: Sequence[int] = (4, 6, 8, 12),
    markets: int = 25,
    seed: int = 0,
    c_range: tuple[float, float] = (0.01, 1.0),
    K_range: tuple[float, float] = (1e3, 1e5),
    N_range: tuple[float, float] = (50.0, 5000.0),
    lam: float | Sequence[float] = 0.1,
    spread: float = 1.0,
    buyers: float = 0.0,
    sellers: float = 0.0,
    solver: str = "milp",
    time_limit: float | None = None,
) -> CompareResult:
    r"""Run greedy (both variants) and the exact solver over a seeded market family.

    Market ``k`` of size ``m`` is ``random_market(m, numpy.random.default_rng([seed,
    m, k]), ...)`` with ``lam`` cycling through the given values, so the same
    options always give the same markets.

    Parameters
    ----------
    sizes : sequence of int
        Client counts ``m``.
    markets : int
        Markets per size.
    seed : int
    c_range, K_range, N_range : (low, high)
        Log-uniform spreads of costs, eagerness, data sizes.
    lam : float or sequence of float
        :math:`\lambda` (cycled over markets when a sequence).
    spread : float
        Spread of the model points, hence of the distances.
    buyers, sellers : float
        Fractions of pure buyers and pure sellers.
    solver : str
        Exact solver (see :func:`mechanism.exact_graph`).
    time_limit : float, optional
        Seconds per row for the exact solver.

    Returns
    -------
    CompareResult

    Raises
    ------
    ValueError
        On any bad option, before any work.
    """
    sizes, markets, lams = _iv(sizes, markets, c_range, K_range, N_range, lam, spread, buyers,
                               sellers, solver, time_limit)
    options = {"sizes": sizes, "markets": markets, "seed": seed, "c_range": list(c_range),
               "K_range": list(K_range), "N_range": list(N_range), "lam": lams,
               "spread": spread, "buyers": buyers, "sellers": sellers, "solver": solver,
               "time_limit": time_limit}
    res = CompareResult(options=options)
    for m in sizes:
        for k in range(markets):
            mk = random_market(m, np.random.default_rng([seed, m, k]), c_range=c_range,
                               K_range=K_range, N_range=N_range, lam=lams[k % len(lams)],
                               spread=spread, buyers=buyers, sellers=sellers)
            out = compare_market(mk, solver=solver, time_limit=time_limit)
            ex = out["exact"]
            for variant in VARIANTS:
                o = out[variant]
                res.markets.append({
                    "m": m, "market": k, "lam": mk.lam, "variant": variant,
                    "rows_optimal": int(o["optimal"].sum()),
                    "market_optimal": bool(o["optimal"].all()),
                    "sum_gap_abs": float(o["gap_abs"].sum()),
                    "max_gap_rel": float(o["gap_rel"].max()),
                    "eq9_first_pairs": int(o["eq9_first"].sum()),
                    "eq9_second_pairs": int(o["eq9_second"].sum()),
                    "mean_jaccard": float(o["jaccard"].mean()),
                    "sw_opt": float(out["sw_opt"]), "sw_greedy": float(o["sw"]),
                    "sw_gap": float(o["sw_gap"]), "sw_gap_rel": float(o["sw_gap_rel"]),
                    "time_greedy": o["time"], "time_exact": float(ex.wall_time),
                    "exact_certified_rows": int(sum(s == "optimal" for s in ex.row_status)),
                })
                for i in range(m):
                    res.rows.append({
                        "m": m, "market": k, "row": i, "variant": variant,
                        "phi_greedy": float(o["phi"][i]), "phi_opt": float(ex.objective[i]),
                        "gap_abs": float(o["gap_abs"][i]), "gap_rel": float(o["gap_rel"][i]),
                        "optimal": bool(o["optimal"][i]),
                        "eq9_first": int(o["eq9_first"][i]),
                        "eq9_second": int(o["eq9_second"][i]),
                        "jaccard": float(o["jaccard"][i]),
                    })
            paper = out["paper"]
            if not paper["optimal"].all() and (res.example is None or m < res.example["m"]):
                i = int(np.argmax(paper["gap_abs"]))
                res.example = {"m": m, "market": k, "row": i, "N": mk.N.tolist(),
                               "c": mk.c.tolist(), "K": mk.K.tolist(), "d": mk.d.tolist(),
                               "lam": mk.lam, "A_paper": paper["A"].tolist(),
                               "A_skip": out["skip"]["A"].tolist(), "A_opt": ex.A.tolist()}
    res.summary = _summarise(res)
    return res


def _agg(markets: list[dict], rows: list[dict]) -> dict:
    gap_rel = np.array([r["gap_rel"] for r in rows])
    return {
        "rows": len(rows),
        "markets": len(markets),
        "row_optimal": float(np.mean([r["optimal"] for r in rows])),
        "market_optimal": float(np.mean([mk["market_optimal"] for mk in markets])),
        "mean_gap_abs": float(np.mean([r["gap_abs"] for r in rows])),
        "mean_gap_rel": float(gap_rel.mean()),
        "median_gap_rel_suboptimal": float(np.median(gap_rel[gap_rel > OPT_RTOL]))
        if (gap_rel > OPT_RTOL).any() else 0.0,
        "max_gap_rel": float(gap_rel.max()),
        "eq9_first_rows": float(np.mean([r["eq9_first"] > 0 for r in rows])),
        "eq9_second_rows": float(np.mean([r["eq9_second"] > 0 for r in rows])),
        "eq9_first_markets": float(np.mean([mk["eq9_first_pairs"] > 0 for mk in markets])),
        "eq9_second_markets": float(np.mean([mk["eq9_second_pairs"] > 0 for mk in markets])),
        "mean_jaccard": float(np.mean([r["jaccard"] for r in rows])),
        "mean_sw_gap": float(np.mean([mk["sw_gap"] for mk in markets])),
        "mean_sw_gap_rel": float(np.mean([mk["sw_gap_rel"] for mk in markets])),
        "time_greedy": float(np.sum([mk["time_greedy"] for mk in markets])),
        "time_exact": float(np.sum([mk["time_exact"] for mk in markets])),
    }


def _summarise(res: CompareResult) -> dict:
    summary: dict = {"by_variant": {}, "by_m": {}}
    for variant in VARIANTS:
        mks = [r for r in res.markets if r["variant"] == variant]
        rws = [r for r in res.rows if r["variant"] == variant]
        summary["by_variant"][variant] = _agg(mks, rws)
        for m in res.options["sizes"]:
            summary["by_m"][f"{variant}:{m}"] = _agg([r for r in mks if r["m"] == m],
                                                     [r for r in rws if r["m"] == m])
    first = [r for r in res.markets if r["variant"] == VARIANTS[0]]
    summary["exact"] = {"rows": int(sum(r["m"] for r in first)),
                        "certified_rows": int(sum(r["exact_certified_rows"] for r in first)),
                        "time": float(sum(r["time_exact"] for r in first))}
    return summary
