r"""Certified optimal graphs: each row of eq. (8) solved exactly, three ways.

For every client ``i`` we solve the per-client graph problem of eq. (8),

.. math:: \min_{\mathbf a_i \in \{0,1\}^{m-1}} \phi_i(\mathbf a_i)
          = \sum_j a_{ij} w_{ij} - g_i\Big(\sum_j a_{ij} N_j\Big),
          \qquad w_{ij} = c_j + \lambda \tfrac{N_j}{N_i} d_{ij},

which the paper calls NP-hard and approximates by Algorithm 2. Three exact
solvers, independent of each other, are offered:

``"milp"`` (default) and ``"highs"``
    Outer approximation (Kelley / Duran-Grossmann) modelled in PuLP and solved
    by CBC (bundled with PuLP) or HiGHS (needs ``highspy``). Because
    :math:`g_i` is concave, every tangent overestimates it, so the master MILP

    .. math:: \min_{\mathbf a, t}\ \mathbf w^\top \mathbf a - t \quad
              \text{s.t.}\quad t \le g(x_k) + g'(x_k)(\mathbf N^\top\mathbf a - x_k)
              \ \ \forall k

    is a relaxation: its optimum is a lower bound on :math:`\min\phi_i`. The
    loop adds the tangent at each master solution's data amount until the
    bound meets the best set seen (the incumbent, started from Algorithm 2).
    The local-optimality conditions of eq. (9) hold at every minimal optimum,
    so they are added as big-M rows (:math:`a_j = 1 \Rightarrow x \le
    N^{Th}_{ij}`, :math:`a_j = 0 \Rightarrow x + N_j \ge N^{Th}_{ij}`) to
    tighten the master without cutting off the optimum.
``"bruteforce"``
    Every subset, vectorised with bit masks (``m <= 16``).
``"dp"``
    A 0/1 knapsack dynamic programme over the integer total of imported data
    ``n``: ``cost(n)`` = least :math:`\sum w` with :math:`\sum N = n`; then
    :math:`\min_n \mathrm{cost}(n) - g_i(n)`. Exact whenever every
    :math:`N_j` is an integer.

Pruning facts used by ``"milp"`` (and proved in :func:`prune_row`): a
candidate with :math:`w_{ij} > g_i(N_j)` is never in an optimal set, and one
with :math:`w_{ij} \le 0` is in every optimal set when :math:`K_i > 0`.

Trust. The objective of a returned row is always re-evaluated in numpy from
the 0/1 row, never read from a solver. The lower bound of ``"milp"`` is the
master's value at the master's (rounded) solution, again evaluated in numpy;
it is a valid bound to the extent that the MILP solver's proof of optimality
of the master (run with zero relative and absolute gap and tightened
tolerances) is. A row is reported ``"optimal"`` only when
:math:`(\phi - \text{bound}) / \max(|\phi|, |\text{bound}|) \le 10^{-9}`.

Ties. When several sets attain the optimum each solver breaks ties
deterministically but not identically, so compare solvers on objective
values. ``"bruteforce"`` returns, among sets within ``1e-12`` (relative) of
the minimum, the one with the fewest imports, then the lexicographically
smallest index set; ``"dp"`` the one with the least imported data;
``"milp"`` prunes its optimum to be inclusion-minimal (drops, in index order,
any member whose removal does not raise :math:`\phi_i`). A pure seller
(:math:`K_i = 0`) has :math:`\phi_i = \sum_j a_{ij} w_{ij} \ge 0`; every
solver returns the empty row for it, even when some :math:`w_{ij} = 0`.

References
----------
Zhang, Chai, Ye, Wang, Chen, "Incentivizing Inclusive Contributions in Model
Sharing Markets", arXiv:2505.02462, Methods 4.2, eqs. (8)-(9), Algorithm 2.
Duran and Grossmann, "An outer-approximation algorithm for a class of
mixed-integer nonlinear programs", Math. Programming 36 (1986).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import OptimizeResult

from .gain import Gain, LogGain, SqrtGain
from .graph import greedy_graph
from .market import Market, require_market

__all__ = [
    "BRUTEFORCE_MAX_M",
    "EXACT_SOLVERS",
    "ExactResult",
    "RowResult",
    "exact_graph",
    "exact_row",
    "optimal_social_welfare",
    "prune_row",
]

#: solver names accepted by :func:`exact_graph`
EXACT_SOLVERS: tuple[str, ...] = ("milp", "highs", "bruteforce", "dp")
#: the brute force enumerates 2**(m-1) subsets per row
BRUTEFORCE_MAX_M = 16
#: the DP table has (#candidates) x (total candidate data + 1) cells
DP_MAX_CELLS = 50_000_000
#: relative gap below which a row is reported "optimal"
OPTIMAL_GAP = 1e-9
#: relative window inside which the brute force and DP treat sets as tied
TIE_RTOL = 1e-12

_STATUS_ORDER = ("optimal", "gap_limit", "iteration_limit", "stalled", "time_limit")


class ExactResult(OptimizeResult):
    r"""Result of :func:`exact_graph`, a :class:`scipy.optimize.OptimizeResult`.

    Attributes
    ----------
    A : ndarray of int8, shape (m, m)
        The graph; row ``i`` is the best set found for client ``i``.
    objective : ndarray, shape (m,)
        :math:`\\phi_i(\\mathbf a_i)` of eq. (8), re-evaluated in numpy.
    bound : ndarray, shape (m,)
        A lower bound on :math:`\\min \\phi_i`.
    gap : ndarray, shape (m,)
        ``(objective - bound) / max(|objective|, |bound|)`` (0 when both are 0).
    row_status : tuple of str
        Per row: ``"optimal"``, ``"gap_limit"``, ``"iteration_limit"``,
        ``"stalled"`` (solver round-off stopped the cut loop) or ``"time_limit"``.
    status : str
        The worst row status.
    success : bool
        ``True`` when every row is ``"optimal"``.
    message : str
        A sentence saying how far the solver got.
    solver : str
    wall_time : float
        Seconds for the whole graph.
    row_time : ndarray, shape (m,)
        Seconds per row.
    iterations : ndarray of int, shape (m,)
        Master MILP solves per row (0 for the brute force, DP and trivial rows).
    """


@dataclass
class RowResult:
    """Solution of one row of eq. (8): see :func:`exact_row`."""

    a: NDArray[np.int8]
    objective: float
    bound: float
    gap: float
    status: str
    iterations: int = 0
    time: float = 0.0
    message: str = ""
    history: list[tuple[float, float]] = field(default_factory=list)


# ---------------------------------------------------------------- validation


def _exact_iv(
    market: Market, solver: str, time_limit: float | None, gap: float, max_iter: int
) -> None:
    if not isinstance(market, Market):
        raise TypeError(f"exact_graph: market must be a Market, got {type(market).__name__}")
    if solver not in EXACT_SOLVERS:
        raise ValueError(f"exact_graph: solver = {solver!r} is not one of {EXACT_SOLVERS}")
    if time_limit is not None and not (time_limit > 0 and math.isfinite(time_limit)):
        raise ValueError(f"exact_graph: time_limit = {time_limit!r} must be a positive number")
    if not (0.0 <= gap < 1.0):
        raise ValueError(f"exact_graph: gap = {gap!r} must be in [0, 1)")
    if int(max_iter) != max_iter or max_iter < 1:
        raise ValueError(f"exact_graph: max_iter = {max_iter!r} must be a positive integer")
    if solver == "bruteforce" and market.m > BRUTEFORCE_MAX_M:
        raise ValueError(
            f"exact_graph: solver='bruteforce' enumerates 2**(m-1) subsets per row and is "
            f"limited to m <= {BRUTEFORCE_MAX_M}; got m = {market.m} (use 'milp')"
        )
    if solver == "dp":
        bad = np.nonzero(market.N != np.round(market.N))[0]
        if bad.size:
            raise ValueError(
                f"exact_graph: solver='dp' needs integer data sizes; "
                f"N[{bad[0]}] = {float(market.N[bad[0]])!r} (use 'milp' or 'bruteforce')"
            )
        cells = (market.m - 1) * (float(market.N.sum()) + 1)
        if cells > DP_MAX_CELLS:
            raise ValueError(
                f"exact_graph: solver='dp' would need a {market.m - 1} x "
                f"{int(market.N.sum()) + 1} table (> {DP_MAX_CELLS} cells); use 'milp'"
            )
    if solver in ("milp", "highs"):
        _slope_fn(market.gain)  # raises for a gain without a derivative
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            _backend(solver, 1.0)  # raises when the MILP solver is missing


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Silence file descriptor 1 (C-level prints such as HiGHS's banner) for the block."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # no real stdout (e.g. captured)
        fd = 1
    sys.stdout.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _backend(solver: str, time_limit: float) -> object:
    """Return the PuLP solver object, or raise naming what to install."""
    import pulp

    if solver == "highs":
        if importlib.util.find_spec("highspy") is None:
            raise RuntimeError(
                "exact_graph: solver='highs' needs the HiGHS Python bindings; install them "
                "with `pip install highspy` (or use solver='milp', PuLP's bundled CBC)"
            )
        return pulp.HiGHS(msg=False, timeLimit=time_limit, gapRel=0.0, gapAbs=0.0)
    cbc = pulp.PULP_CBC_CMD(
        msg=False,
        timeLimit=time_limit,
        gapRel=0.0,
        gapAbs=0.0,
        warmStart=True,
        options=["primalT 1e-9", "integerT 1e-9", "dualT 1e-9"],
    )
    if not cbc.available():
        raise RuntimeError(
            "exact_graph: solver='milp' needs PuLP's CBC binary, which is not available "
            "here; reinstall pulp (`pip install --force-reinstall pulp`) or use 'highs'"
        )
    return cbc


def _slope_fn(gain: Gain):  # noqa: ANN202 (private)
    """Return ``g'(x; N, K)`` for the tangent cuts (analytic; no finite differences)."""
    if isinstance(gain, SqrtGain):
        return lambda x, N, K: 0.5 * np.sqrt(K) * (N + x) ** -1.5
    if isinstance(gain, LogGain):
        return lambda x, N, K: K / (N + x)
    derivative = getattr(gain, "derivative", None)
    if callable(derivative):
        return derivative
    raise ValueError(
        f"exact_graph: solver='milp' needs the derivative of gain {gain!r} for its tangent "
        "cuts; give the Gain a derivative(x, N, K) method or use 'bruteforce'/'dp'"
    )


# ---------------------------------------------------------------- helpers


def _phi(a: NDArray, w: NDArray, N: NDArray, gain: Gain, Ni: float, Ki: float) -> float:
    r"""Exact :math:`\phi_i` of a 0/1 row (same arithmetic as ``payments.objective``)."""
    on = a == 1
    cost = np.where(on, w, 0.0).sum()
    return float(cost - gain.value(on @ N, Ni, Ki))


def _rel_gap(obj: float, bound: float) -> float:
    diff = obj - bound
    if diff <= 0:
        return 0.0
    return diff / max(abs(obj), abs(bound))


def prune_row(market: Market, i: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    r"""Candidates of row ``i`` that are never / always in an optimal set.

    Returns ``(excluded, forced)`` boolean masks of length ``m``.

    * ``excluded``: :math:`j = i`, :math:`w_{ij} = \infty`, or
      :math:`w_{ij} > g_i(N_j)`. Removing such a ``j`` from any set with total
      ``x`` changes :math:`\phi_i` by
      :math:`-w_{ij} + g_i(x) - g_i(x - N_j) \le -w_{ij} + g_i(N_j) < 0`
      (concavity), so no optimal set contains it. For a pure seller
      (:math:`K_i = 0`) every candidate is excluded (our tie rule: empty row).
    * ``forced`` (only when :math:`K_i > 0`): :math:`w_{ij} \le 0`. Adding
      ``j`` changes :math:`\phi_i` by
      :math:`w_{ij} - (g_i(x + N_j) - g_i(x)) < 0` since :math:`g_i` is
      strictly increasing, so every optimal set contains it.
    """
    require_market("prune_row", market)
    w, N, Ni, Ki = market.weights[i], market.N, market.N[i], market.K[i]
    excluded = ~np.isfinite(w)
    if Ki == 0:
        return np.ones_like(excluded), np.zeros_like(excluded)
    with np.errstate(invalid="ignore"):
        excluded |= w > market.gain.value(N, Ni, Ki)
    forced = ~excluded & (w <= 0)
    return excluded, forced


def _minimal(a: NDArray[np.int8], w, N, gain, Ni, Ki) -> tuple[NDArray[np.int8], float]:  # noqa: ANN001
    """Drop, in index order, members whose removal does not raise phi (tie rule of "milp")."""
    a = a.copy()
    best = _phi(a, w, N, gain, Ni, Ki)
    for j in np.nonzero(a)[0]:
        a[j] = 0
        val = _phi(a, w, N, gain, Ni, Ki)
        if val <= best:
            best = val
        else:
            a[j] = 1
    return a, best


# ---------------------------------------------------------------- brute force and DP


def _bruteforce_row(market: Market, i: int) -> RowResult:
    m, w, N, gain = market.m, market.weights[i], market.N, market.gain
    Ni, Ki = market.N[i], market.K[i]
    cand = np.nonzero(np.isfinite(w))[0]  # only j = i and pure buyers are left out
    k = cand.size
    masks = np.arange(1 << k, dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(k)) & 1).astype(bool)
    cost = np.where(bits, w[cand], 0.0).sum(axis=1)
    phi = cost - gain.value(bits @ N[cand], Ni, Ki)
    best = phi.min()
    tied = np.nonzero(phi <= best + TIE_RTOL * max(abs(best), 1e-300))[0]
    # fewest imports, then lexicographically smallest sorted index tuple
    keys = [(int(bits[t].sum()), tuple(cand[bits[t]])) for t in tied]
    pick = tied[min(range(len(tied)), key=keys.__getitem__)]
    a = np.zeros(m, dtype=np.int8)
    a[cand[bits[pick]]] = 1
    obj = _phi(a, w, N, gain, Ni, Ki)
    return RowResult(a=a, objective=obj, bound=obj, gap=0.0, status="optimal",
                     message=f"enumerated {1 << k} subsets")


def _dp_row(market: Market, i: int) -> RowResult:
    m, w, N, gain = market.m, market.weights[i], market.N, market.gain
    Ni, Ki = market.N[i], market.K[i]
    cand = np.nonzero(np.isfinite(w))[0]
    sizes = N[cand].astype(np.int64)
    total = int(sizes.sum())
    cost = np.full(total + 1, np.inf)
    cost[0] = 0.0
    take = np.zeros((cand.size, total + 1), dtype=bool)
    for k, (j, nj) in enumerate(zip(cand, sizes, strict=True)):
        new = cost[: total + 1 - nj] + w[j]  # evaluated before cost changes: 0/1 items
        better = new < cost[nj:]
        take[k, nj:] = better
        cost[nj:] = np.where(better, new, cost[nj:])
    n = np.arange(total + 1, dtype=float)
    reach = np.isfinite(cost)
    phi = np.where(reach, cost - gain.value(n, Ni, Ki), np.inf)
    best = phi.min()
    size = int(np.nonzero(phi <= best + TIE_RTOL * max(abs(best), 1e-300))[0][0])
    a = np.zeros(m, dtype=np.int8)
    rest = size
    for k in range(cand.size - 1, -1, -1):
        if take[k, rest]:
            a[cand[k]] = 1
            rest -= int(sizes[k])
    assert rest == 0, "DP backtrack did not reach n = 0"  # noqa: S101 (internal invariant)
    obj = _phi(a, w, N, gain, Ni, Ki)
    return RowResult(a=a, objective=obj, bound=obj, gap=0.0, status="optimal",
                     message=f"DP over n = 0..{total}")


# ---------------------------------------------------------------- outer approximation


def _oa_row(
    market: Market,
    i: int,
    *,
    solver: str,
    initial: NDArray[np.int8] | None,
    time_limit: float | None,
    gap: float,
    max_iter: int,
    eq9_cuts: bool,
    grid: int,
) -> RowResult:
    import pulp

    t0 = time.perf_counter()
    m, w, N, gain = market.m, market.weights[i], market.N, market.gain
    Ni, Ki = market.N[i], market.K[i]
    slope = _slope_fn(gain)
    excluded, forced = prune_row(market, i)
    free = np.nonzero(~excluded & ~forced)[0]
    base = np.zeros(m, dtype=np.int8)
    base[forced] = 1
    if free.size == 0:  # pruning alone decides the row
        obj = _phi(base, w, N, gain, Ni, Ki)
        return RowResult(a=base, objective=obj, bound=obj, gap=0.0, status="optimal",
                         time=time.perf_counter() - t0, message="decided by pruning")

    xf = float(N[forced].sum())  # data imported by forced candidates
    wf = float(w[forced].sum())
    Nf, wfree = N[free], w[free]
    Y = float(Nf.sum())

    def g(y: NDArray | float) -> NDArray:
        return gain.value(xf + np.asarray(y, dtype=float), Ni, Ki)

    # incumbent: the best of the given rows restricted to free candidates, and base
    incumbent, inc_obj = base.copy(), _phi(base, w, N, gain, Ni, Ki)
    for row in ([] if initial is None else [initial]):
        trial = base.copy()
        trial[free] = np.asarray(row)[free]
        val = _phi(trial, w, N, gain, Ni, Ki)
        if val < inc_obj:
            incumbent, inc_obj = trial, val
    bound = wf - float(g(Y))  # w >= 0 on free candidates and g increasing
    history: list[tuple[float, float]] = [(inc_obj, bound)]

    prob = pulp.LpProblem(f"eq8_row_{i}", pulp.LpMinimize)
    a_var = [pulp.LpVariable(f"a{j}", cat="Binary") for j in free]
    t_var = pulp.LpVariable("t", upBound=float(g(Y)))
    y_expr = pulp.lpSum(float(n) * v for n, v in zip(Nf, a_var, strict=True))
    prob += pulp.lpSum(float(c) * v for c, v in zip(wfree, a_var, strict=True)) - t_var
    if eq9_cuts:  # eq. (9) holds at every inclusion-minimal optimum (module docstring)
        th = gain.threshold(wfree, Nf, Ni, Ki)
        for k, v in enumerate(a_var):
            hi = th[k] * (1 + 1e-9) + 1e-9 - xf  # a_j = 1 => y <= Th_j - xf
            if hi < Y:
                prob += y_expr <= hi + (Y - hi) * (1 - v), f"eq9_keep_{k}"
            lo = th[k] * (1 - 1e-9) - 1e-9 - xf - Nf[k]  # a_j = 0 => y >= Th_j - N_j - xf
            if lo > 0:
                prob += y_expr >= lo * (1 - v), f"eq9_add_{k}"

    cuts: list[float] = []
    alpha: list[float] = []
    beta: list[float] = []

    def add_cut(y0: float) -> None:
        if y0 in cuts:
            return
        s = float(slope(xf + y0, Ni, Ki))
        cuts.append(y0)
        alpha.append(float(g(y0)) - s * y0)
        beta.append(s)
        prob.addConstraint(t_var - s * y_expr <= alpha[-1], f"oa_{len(cuts)}")

    for y0 in np.unique(np.concatenate([[0.0, Y], Y * np.linspace(0, 1, grid) ** 2,
                                        [float(Nf @ incumbent[free])]])):
        add_cut(float(y0))

    status, message, it = "iteration_limit", "", 0
    for it in range(1, max_iter + 1):  # noqa: B007 (it is reported)
        left = None if time_limit is None else time_limit - (time.perf_counter() - t0)
        if left is not None and left <= 0.05:
            status = "time_limit"
            break
        for v, val in zip(a_var, incumbent[free], strict=True):
            v.setInitialValue(int(val))
        backend = _backend(solver, None if left is None else max(left, 0.1))
        with _quiet_stdout():  # HiGHS prints its banner to fd 1 even with msg=False
            prob.solve(backend)
        if prob.sol_status != pulp.LpSolutionOptimal:
            if left is not None and time.perf_counter() - t0 >= 0.95 * time_limit:
                status = "time_limit"
                break
            raise RuntimeError(
                f"exact_graph: {solver} failed on row {i} (status "
                f"{pulp.LpStatus[prob.status]!r}, solution status {prob.sol_status})"
            )
        sel = np.array([round(v.value() or 0.0) for v in a_var], dtype=np.int8)
        y = float(Nf @ sel)
        master = float(wfree @ sel) + wf - min(a + b * y for a, b in zip(alpha, beta, strict=True))
        bound = max(bound, master)
        trial = base.copy()
        trial[free] = sel
        val = _phi(trial, w, N, gain, Ni, Ki)
        if val < inc_obj:
            incumbent, inc_obj = trial, val
        bound = min(bound, inc_obj)
        history.append((inc_obj, bound))
        rel = _rel_gap(inc_obj, bound)
        if rel <= OPTIMAL_GAP:
            status = "optimal"
            break
        if rel <= gap:
            status = "gap_limit"
            break
        if y in cuts:  # the master's point is already cut: only round-off can be left
            status = "stalled"
            message = "the master returned a point already cut (solver round-off)"
            break
        add_cut(y)
    else:
        it = max_iter

    a, obj = _minimal(incumbent, w, N, gain, Ni, Ki)
    rel = _rel_gap(obj, min(bound, obj))
    return RowResult(a=a, objective=obj, bound=min(bound, obj), gap=rel, status=status,
                     iterations=it, time=time.perf_counter() - t0, message=message,
                     history=history)


# ---------------------------------------------------------------- public API


def pulp_error() -> type[Exception]:
    """PuLP's own error class (``PulpError``), or a stand-in when PuLP is absent."""
    try:
        from pulp.constants import PulpError
    except ImportError:  # pragma: no cover - PuLP is a dependency
        return RuntimeError
    return PulpError


def exact_row(
    market: Market,
    i: int,
    *,
    solver: str = "milp",
    initial: NDArray[np.int8] | None = None,
    time_limit: float | None = None,
    gap: float = 0.0,
    max_iter: int = 200,
    eq9_cuts: bool = True,
    grid: int = 16,
) -> RowResult:
    """Solve row ``i`` of eq. (8); see :func:`exact_graph` for the options.

    ``initial`` is a 0/1 row used as the first incumbent (``"milp"`` only).
    """
    require_market("exact_row", market)
    _exact_iv(market, solver, time_limit, gap, max_iter)
    if not 0 <= i < market.m:
        raise ValueError(f"exact_row: i = {i!r} is not a client index (m = {market.m})")
    t0 = time.perf_counter()
    if solver == "bruteforce":
        res = _bruteforce_row(market, i)
    elif solver == "dp":
        res = _dp_row(market, i)
    else:
        with warnings.catch_warnings():  # PuLP 3.x announces its 4.0 API on every call
            warnings.simplefilter("ignore", DeprecationWarning)
            options = {"solver": solver, "initial": initial, "time_limit": time_limit,
                       "gap": gap, "max_iter": max_iter, "grid": grid}
            try:
                try:
                    res = _oa_row(market, i, eq9_cuts=eq9_cuts, **options)
                except RuntimeError as exc:
                    if not eq9_cuts:
                        raise
                    # The eq. (9) rows are big-M constraints that only speed the search
                    # up; CBC has been seen to call a feasible row infeasible with them
                    # at our tight tolerances. Solve again without them, and say so.
                    res = _oa_row(market, i, eq9_cuts=False, **options)
                    res.message = f"{res.message} (retried without eq. (9) cuts after: {exc})"
            except (RuntimeError, ArithmeticError, pulp_error()) as exc:
                # At the numeric domain's extremes (data ratios near 1e15, thresholds
                # near 1e200) CBC's tolerances or the tangent cuts fail; a row small
                # enough is then solved by brute force, and says so.
                if market.m > BRUTEFORCE_MAX_M:
                    raise
                res = _bruteforce_row(market, i)
                res.message = f"{res.message} (brute force after milp failed: {exc})"
    res.time = time.perf_counter() - t0
    return res


def exact_graph(
    market: Market,
    *,
    solver: str = "milp",
    time_limit: float | None = None,
    gap: float = 0.0,
    max_iter: int = 200,
    eq9_cuts: bool = True,
    grid: int = 16,
) -> ExactResult:
    r"""Return a certified optimal graph: every row minimises :math:`\phi_i` (eq. (8)).

    Parameters
    ----------
    market : Market
    solver : {"milp", "highs", "bruteforce", "dp"}
        ``"milp"``: outer approximation with PuLP's bundled CBC; ``"highs"``:
        the same with HiGHS (``pip install highspy``); ``"bruteforce"``: all
        subsets (``m <= 16``); ``"dp"``: knapsack DP over integer data sizes.
    time_limit : float, optional
        Seconds per row (``"milp"``/``"highs"``); the row stops with status
        ``"time_limit"`` and its best set and bound so far.
    gap : float
        Relative gap at which a row may stop early (status ``"gap_limit"``);
        the default 0 runs to ``"optimal"`` (gap <= 1e-9).
    max_iter : int
        Most master MILP solves per row (status ``"iteration_limit"``).
    eq9_cuts : bool
        Add the local-optimality conditions of eq. (9) as big-M rows.
    grid : int
        Tangent cuts placed up front on a quadratic grid of data amounts.

    Returns
    -------
    ExactResult
        ``A``, per-row ``objective``, ``bound``, ``gap``, ``row_status``,
        ``iterations``, ``row_time``; ``status``, ``success``, ``message``,
        ``wall_time``.

    Raises
    ------
    ValueError
        Unknown solver, bad option, ``m`` too large for ``"bruteforce"``,
        non-integer ``N`` or a too-large table for ``"dp"``.
    RuntimeError
        The MILP solver is missing or fails.

    Examples
    --------
    >>> from mechanism import random_market
    >>> mk = random_market(6, seed=3)
    >>> res = exact_graph(mk)
    >>> res.success, res.status
    (True, 'optimal')
    >>> bool(np.allclose(res.objective, exact_graph(mk, solver="bruteforce").objective))
    True
    """
    require_market("exact_graph", market)
    _exact_iv(market, solver, time_limit, gap, max_iter)
    t0 = time.perf_counter()
    m = market.m
    initial = None
    if solver in ("milp", "highs"):
        from .payments import objective

        paper, skip = greedy_graph(market, "paper"), greedy_graph(market, "skip")
        initial = np.where((objective(market, skip) <= objective(market, paper))[:, None],
                           skip, paper)
    rows = [
        exact_row(market, i, solver=solver, initial=None if initial is None else initial[i],
                  time_limit=time_limit, gap=gap, max_iter=max_iter, eq9_cuts=eq9_cuts,
                  grid=grid)
        for i in range(m)
    ]
    A = np.array([r.a for r in rows], dtype=np.int8).reshape(m, m)
    statuses = tuple(r.status for r in rows)
    worst = max(statuses, key=_STATUS_ORDER.index)
    n_opt = statuses.count("optimal")
    gaps = np.array([r.gap for r in rows])
    message = (
        f"{solver}: all {m} rows certified optimal (relative gap <= {OPTIMAL_GAP:g})"
        if n_opt == m
        else f"{solver}: {n_opt}/{m} rows certified optimal; worst row status {worst!r}, "
        f"largest relative gap {gaps.max():.3g}"
    )
    return ExactResult(
        A=A,
        objective=np.array([r.objective for r in rows]),
        bound=np.array([r.bound for r in rows]),
        gap=gaps,
        row_status=statuses,
        status=worst,
        success=n_opt == m,
        message=message,
        solver=solver,
        wall_time=time.perf_counter() - t0,
        row_time=np.array([r.time for r in rows]),
        iterations=np.array([r.iterations for r in rows], dtype=int),
    )


def optimal_social_welfare(market: Market, *, solver: str = "milp",
                           **options: object) -> tuple[float, NDArray[np.int8]]:
    r"""Return the largest social welfare of eq. (3) over all graphs, and a graph attaining it.

    .. math:: SW^* = \max_{A} \sum_i \big[g_i(n_i) - \mathbf c^\top \mathbf a_i\big]
              = -\sum_i \min_{\mathbf a_i} \phi_i(\mathbf a_i)\big|_{\lambda = 0}.

    Eq. (3) is separable by rows and has no distance term, and with
    :math:`\lambda = 0` eq. (8)'s :math:`\phi_i = \sum_j a_{ij} c_j - g_i(n_i)` is
    minus row ``i``'s share of it; so the optimum is :func:`exact_graph` on
    ``market.replace(lam=0)``. Payments cancel (budget balance), so this is also the
    largest :math:`\sum_i U_i` of eq. (1). A pure buyer (``c_j = inf``) is never
    imported; a pure seller (``K_i = 0``) imports nobody (its gain is 0); the market's
    ``d`` and ``lam`` are ignored.

    Parameters
    ----------
    market : Market
    solver : {"milp", "highs", "bruteforce", "dp"}
        The exact solver of :func:`exact_graph`.
    **options
        Passed to :func:`exact_graph` (``time_limit``, ``max_iter``, ...).

    Returns
    -------
    welfare : float
        :math:`SW^*`, re-evaluated in numpy by :func:`mechanism.social_welfare`.
    A : ndarray of int8, shape (m, m)
        A graph attaining it (ties broken as ``solver`` breaks them).

    Raises
    ------
    ValueError
        As :func:`exact_graph` (unknown solver, bad option).
    RuntimeError
        When the solver cannot certify every row optimal (a time, gap or iteration
        limit), naming its message.

    References
    ----------
    Zhang et al., arXiv:2505.02462, Methods 4.1, eqs. (1), (3), (8).

    Examples
    --------
    >>> mk = Market(N=[100, 100], c=[0.1, 0.1], K=[400, 400], d=[[0, 10], [10, 0]])
    >>> from mechanism import greedy_graph
    >>> greedy_graph(mk).tolist()  # lam = 1 prices the distance: nobody imports
    [[0, 0], [0, 0]]
    >>> sw, A = optimal_social_welfare(mk)  # eq. (3) has no distance term
    >>> round(sw, 6), A.tolist()  # 2 * (g(100) - 0.1), g(100) = 2 - 20 / sqrt(200)
    (0.971573, [[0, 1], [1, 0]])
    """
    require_market("optimal_social_welfare", market)
    res = exact_graph(market.replace(lam=0.0), solver=solver, **options)
    if not res.success:
        raise RuntimeError(f"optimal_social_welfare: the optimum is not certified ({res.message})")
    from .payments import social_welfare

    return social_welfare(market, res.A), res.A

