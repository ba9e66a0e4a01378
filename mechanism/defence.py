r"""Defences against misreported data sizes: which sizes the market is run on.

The paper's mechanism (``"none"``) runs Algorithm 2 and eq. (10) on the reported data
sizes. Issue 24 measured over-reporting :math:`N_i` paying: importers pay for phantom
data, the liar's own imports are billed on its flatter reported gain curve, and the
importers' graphs are distorted (they import the liar instead of real data).

A defence replaces the reports by the sizes :math:`\tilde N` the market prices, given
the market's estimate :math:`\hat N` of each client's effective data size:

``"estimate"``
    :math:`\tilde N = \hat N`: the report is not used at all.
``"checked"``
    the report when it agrees with the estimate within a factor :math:`e^{b}` (``band``
    :math:`b`), else the smallest size the estimate allows at that band:
    :math:`\tilde N_i = N_i` if :math:`|\ln(N_i / \hat N_i)| \le b`, else
    :math:`\hat N_i e^{-b}`. An honest client is priced at its own report unless the
    estimate's error exceeds the band; a report the estimate refutes is priced low (a
    smaller size raises the client's own bills and lowers what it is paid), so a lie by
    a factor beyond :math:`e^{b}` costs the liar; a lie within the band is not caught
    (it can pay).

The whole round runs on :math:`\tilde N` (Algorithm 2's graph, eq. (10)'s bills, the
quit rule):

.. math::

    r_{ij} = a_{ij}\,\big[\tilde g_i(\tilde n_i) - \tilde g_i(\tilde n_i - \tilde N_j)
             - \lambda \tfrac{\tilde N_j}{\tilde N_i} d_{ij}\big],\qquad
    \tilde n_i = \textstyle\sum_j a_{ij} \tilde N_j,

with :math:`\tilde g_i` the gain of eq. (2) at :math:`\tilde N_i` and the reported
:math:`K_i`, :math:`c_i`; the graph is Algorithm 2's on the same sizes, so Theorem 1's
argument applies to the priced market and the bills sum to zero (eq. (10)). With
:math:`\hat N` equal to the reports both are the paper's mechanism, bit for bit. The
estimate of a client must not depend on that client's report (a ``min(report,
estimate)`` cap would hand an over-reporter the estimate's upside noise); where it comes
from is the caller's business (docs/defence.md: training runs compute it with
:func:`mechanism.size_from_displacement`, which calibrates each client's estimate on the
*other* clients' reports, so a report still moves the others' estimates; or draw it
around the true size with the simulated oracle).

Every defence is a function ``priced(market, estimate, band) -> Market`` in
:data:`DEFENCES`: the market the mechanism runs on; :func:`mechanism.settle` calls it.

References
----------
Zhang et al., "Incentivizing Inclusive Contributions in Model Sharing Markets",
arXiv:2505.02462, Algorithm 2, eqs. (1), (2), (10); issue 24 of this package.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .market import DOMAIN, Market, require_market
from .payments import Payments, payments

__all__ = ["DEFENCES", "NEEDS_ESTIMATE", "check_estimate", "defended_payments",
           "priced_market"]

Priced = Callable[[Market, NDArray[np.float64] | None, float], Market]


def _paper(market: Market, estimate: NDArray[np.float64] | None, band: float) -> Market:
    return market


def _estimate(market: Market, estimate: NDArray[np.float64] | None, band: float) -> Market:
    return market.replace(N=estimate)


def _checked(market: Market, estimate: NDArray[np.float64] | None, band: float) -> Market:
    agrees = np.abs(np.log(market.N) - np.log(estimate)) <= band
    low = np.maximum(estimate * math.exp(-band), DOMAIN["N"][0])
    return market.replace(N=np.where(agrees, market.N, low))


#: defence name -> priced(market, estimate, band): the market Algorithm 2 and eq. (10)
#: run on; ``"none"`` is the paper's (the reports)
DEFENCES: dict[str, Priced] = {"none": _paper, "estimate": _estimate, "checked": _checked}
#: the defences that need an estimate of every client's effective data size
NEEDS_ESTIMATE = frozenset({"estimate", "checked"})


def check_estimate(where: str, defence: str, estimate: ArrayLike | None, m: int,
                   band: float = 0.0) -> NDArray[np.float64] | None:
    """Validate a defence name, its estimate for ``m`` clients and its band; return the estimate.

    Raises
    ------
    ValueError
        An unknown defence, an estimate given to ``"none"`` or missing for a defence
        that needs one, of the wrong shape, an entry outside ``N``'s domain (naming the
        index and the value), or a band that is negative or not finite.
    """
    if defence not in DEFENCES:
        raise ValueError(f"{where}: defence = {defence!r} is not one of {sorted(DEFENCES)}")
    if isinstance(band, bool) or not isinstance(band, int | float) or not (
            band >= 0 and math.isfinite(band)):
        raise ValueError(f"{where}: band = {band!r} must be a finite number >= 0")
    if defence not in NEEDS_ESTIMATE:
        if estimate is not None:
            raise ValueError(f"{where}: defence = {defence!r} takes no estimate")
        return None
    if estimate is None:
        raise ValueError(f"{where}: defence = {defence!r} needs an estimate of the "
                         f"{m} clients' data sizes")
    est = np.asarray(estimate, dtype=float)
    if est.shape != (m,):
        raise ValueError(f"{where}: estimate has shape {est.shape}, expected ({m},)")
    lo, hi = DOMAIN["N"]
    bad = np.flatnonzero(~((est >= lo) & (est <= hi)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{where}: estimate[{i}] = {float(est[i])!r} is outside N's domain "
                         f"[{lo:g}, {hi:g}]")
    return est


def priced_market(market: Market, defence: str = "none", estimate: ArrayLike | None = None,
                  band: float = 0.0) -> Market:
    """Return the market the mechanism runs on under ``defence`` (see the module docstring).

    Examples
    --------
    >>> mk = Market(N=[100, 3000], c=[0.5, 0.5], K=[400, 400])
    >>> priced_market(mk, "estimate", [110, 300]).N.tolist()
    [110.0, 300.0]
    >>> mk_N = priced_market(mk, "checked", [110, 300], band=0.5).N  # 100 agrees with 110
    >>> mk_N.round(1).tolist()  # 3000 does not agree with 300: priced at 300 exp(-0.5)
    [100.0, 182.0]
    """
    require_market("priced_market", market)
    est = check_estimate("priced_market", defence, estimate, market.m, band)
    return DEFENCES[defence](market, est, band)


def defended_payments(market: Market, A: ArrayLike, defence: str = "none",
                      estimate: ArrayLike | None = None, band: float = 0.0) -> Payments:
    r"""Return eq. (10)'s bills of graph ``A`` on the sizes ``defence`` prices.

    Parameters
    ----------
    market : Market
        The reported market.
    A : array_like, (m, m)
        The graph.
    defence : {"none", "estimate", "checked"}
        A key of :data:`DEFENCES`.
    estimate : array_like, (m,), optional
        The estimated effective data sizes (every defence but ``"none"``).
    band : float
        ``"checked"``: the largest :math:`|\ln(N_i/\hat N_i)|` at which the report is
        priced.

    Examples
    --------
    >>> mk = Market(N=[100, 3000], c=[0.5, 0.5], K=[400, 400])
    >>> A = [[0, 1], [0, 0]]  # 0 imports 1, who reports 3,000 points but has 300
    >>> round(float(defended_payments(mk, A).r[0, 1]), 4)  # g_0(3000) - g_0(0)
    1.6408
    >>> float(defended_payments(mk, A, "estimate", [100, 300]).r[0, 1])  # g_0(300)
    1.0
    """
    require_market("defended_payments", market)
    return payments(priced_market(market, defence, estimate, band), A)
