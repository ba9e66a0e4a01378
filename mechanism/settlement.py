r"""Settlement of one round: the quit-and-recompute loop, bills, true-profile utilities, IR.

This is the one place where a round's money is decided; the training loop, the run
auditor and any distributed transport (a Flower server) call :func:`settle` and
nothing else, so the three can never disagree.

Algorithm 1's last step offers every client its net bill :math:`p_i^t` (eq. (10)):
it pays and receives its prox-centre, or quits and keeps its best model. We read
"accepts" as :math:`p_i^t \le b_i` for a per-round budget :math:`b_i` (``inf``:
always accepts). When somebody quits, the graph it was part of is void (its model is
no longer offered, its bill unpaid), so the market is recomputed among the clients
that remain, until every remaining client accepts: at most ``m`` recomputations, and
the settled payments always sum to zero (budget balance).

Reports and truth. The market is run on what clients *report* (``market``). When a
``true`` market is given (same clients, their true :math:`N, c, K`), the recorded
utility of every client is measured with its true profile, i.e.
:math:`U_i = g_i^{\text{true}}(n_i^{\text{true}}) - c_i^{\text{true}}\,\#\text{importers}_i - p_i`,
with the bills :math:`p_i` computed from the reports. This is how a liar's gain from
lying is measured (Table 2 of the paper).

Defences (issue 24, :mod:`mechanism.defence`). ``defence="estimate"`` runs the whole
round (graph, bills, quits) on an estimate of each client's effective data size instead
of the reports, ``"checked"`` on the reports that agree with the estimate (within a
band) and the estimate elsewhere; utilities are still measured with the true profiles.
``"none"`` (the default) is the paper's mechanism.

Baselines have no market: :func:`sharing_utilities` scores their actual sharing
graph with eq. (1)'s gain and sharing cost and no payments (:math:`p = 0`).

References
----------
Zhang et al., "Incentivizing Inclusive Contributions in Model Sharing Markets",
arXiv:2505.02462, Algorithm 1, eqs. (1), (10), Theorem 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .defence import DEFENCES, check_estimate
from .market import Market, require_market
from .payments import check_graph, payments, sharing_costs
from .solvers import solve_graph

__all__ = ["IR_TOL", "Settlement", "settle", "sharing_utilities", "submarket"]

#: a utility above ``-IR_TOL`` counts as individually rational (floating-point rounding)
IR_TOL = 1e-9


@dataclass(frozen=True)
class Settlement:
    """One settled round over the ``m`` clients of the market passed in.

    Attributes
    ----------
    stays : ndarray of bool, (m,)
        False for clients that refused their bill and quit this round.
    A : ndarray int8, (m, m)
        Graph among the clients that stay (rows and columns of quitters are 0).
    r, p : ndarray
        Remittances (m, m) and net payments (m,) of eq. (10); 0 for quitters.
    U : ndarray, (m,)
        Utilities of eq. (1), measured with the true profiles when given; 0 for quitters.
    N : ndarray, (m,) or None
        The data sizes the round ran on under a defence (the estimate); None: the
        reports (the paper's mechanism).
    """

    stays: NDArray[np.bool_]
    A: NDArray[np.int8]
    r: NDArray[np.float64]
    p: NDArray[np.float64]
    U: NDArray[np.float64]
    N: NDArray[np.float64] | None = None

    @property
    def ir(self) -> NDArray[np.bool_]:
        r"""Individual rationality per client: :math:`U_i \ge -` :data:`IR_TOL`."""
        return self.U >= -IR_TOL


def submarket(market: Market, idx: ArrayLike) -> Market:
    """Return the market of the clients ``idx`` only (distances restricted likewise)."""
    idx = np.asarray(idx, dtype=np.intp)
    return market.replace(N=market.N[idx], c=market.c[idx], K=market.K[idx],
                          d=market.d[np.ix_(idx, idx)])


def _true_utilities(true: Market, A: NDArray, p: NDArray) -> NDArray[np.float64]:
    gains = true.gain.value(A @ true.N, true.N, true.K)
    return gains - sharing_costs(true, A) - p


def settle(market: Market, budget: ArrayLike | None = None, *, solver: str = "paper",
           true: Market | None = None, defence: str = "none",
           estimate: ArrayLike | None = None, band: float = 0.0) -> Settlement:
    r"""Settle one round: graph, bills, quits, utilities (Algorithm 1, eqs. (1), (10)).

    Parameters
    ----------
    market : Market
        The reported profiles and this round's model distances. A market given by
        points (``Market(points=X)``) is settled on its ``m x m`` distances
        (:meth:`Market.dense`); at scale, :func:`mechanism.points.solve_points` gives the
        same graph and payments without them (no quits, no budgets).
    budget : array_like, shape (m,), optional
        Largest net payment each client accepts (``inf``: unlimited, the default).
    solver : str
        Graph solver of :func:`mechanism.solve_graph` (``"paper"``, ``"skip"``, ``"exact"``).
    true : Market, optional
        The same clients' true profiles; utilities are measured with them.
    defence : {"none", "estimate", "checked"}
        Which sizes the round runs on (:data:`mechanism.DEFENCES`): ``"none"``, the
        reports (the paper); ``"estimate"``, ``estimate``; ``"checked"``, each report
        within a factor ``exp(band)`` of its estimate, else the estimate
        (:mod:`mechanism.defence`).
    estimate : array_like, shape (m,), optional
        The estimated effective data sizes (every defence but ``"none"``).
    band : float
        ``"checked"``: the tolerated :math:`|\ln(N_i/\hat N_i)|`.

    Returns
    -------
    Settlement

    Examples
    --------
    >>> mk = Market(N=[100, 300, 100], c=[1.0, 0.25, float("inf")], K=[400, 0, 400],
    ...             d=[[0, .05, 0], [.05, 0, .1], [0, .1, 0]])
    >>> s = settle(mk, budget=[0.5, float("inf"), float("inf")])
    >>> s.stays.tolist(), s.A.tolist()  # client 0's bill 0.95 > 0.5: it quits
    ([False, True, True], [[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    >>> round(float(s.p.sum()), 12)
    0.0
    """
    if isinstance(market, Market) and market.points is not None:
        market = market.dense()  # a market given by points: settled on its distances
    if isinstance(true, Market) and true.points is not None:
        true = true.dense()
    require_market("settle", market)
    m = market.m
    b = np.full(m, np.inf) if budget is None else np.asarray(budget, dtype=float)
    if b.shape != (m,) or np.isnan(b).any():
        raise ValueError(f"settle: budget must be {m} numbers (inf = unlimited), got {budget!r}")
    if true is not None and (not isinstance(true, Market) or true.m != m):
        raise ValueError(f"settle: true must be a Market of the same {m} clients")
    est = check_estimate("settle", defence, estimate, m, band)
    priced = DEFENCES[defence](market, est, band)
    stays = np.ones(m, dtype=bool)
    A = np.zeros((m, m), dtype=np.int8)
    r, p = np.zeros((m, m)), np.zeros(m)
    for _ in range(m):
        idx = np.flatnonzero(stays)
        A[:], r[:], p[:] = 0, 0.0, 0.0
        if len(idx) < 2:
            break
        sub = submarket(priced, idx)
        A_sub = solve_graph(sub, solver)
        pay = payments(sub, A_sub)
        A[np.ix_(idx, idx)], r[np.ix_(idx, idx)], p[idx] = A_sub, pay.r, pay.p
        refuse = pay.p > b[idx]
        if not refuse.any():
            break
        stays[idx[refuse]] = False
    U = _true_utilities(true if true is not None else market, A, p)
    U[~stays] = 0.0
    return Settlement(stays=stays, A=A, r=r, p=p, U=U,
                      N=None if priced is market else priced.N)


def sharing_utilities(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return eq. (1)'s utility of a graph without payments.

    :math:`U_i = g_i(n_i) - c_i \#\text{importers}_i` (no :math:`p_i`).

    This scores a baseline's actual sharing graph (FedAvg: everybody imports
    everybody); such a method can violate individual rationality.

    Examples
    --------
    >>> mk = Market(N=[100, 300], c=[5.0, 0.5], K=[400, 400])
    >>> sharing_utilities(mk, [[0, 1], [1, 0]]).round(3).tolist()  # U_0 = g_0(300) - c_0 = 1 - 5
    [-4.0, -0.345]
    """
    require_market("sharing_utilities", market)
    A = check_graph(market, A)
    return _true_utilities(market, A, np.zeros(market.m))
