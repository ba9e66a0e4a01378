"""Plain-text tables of one round of the market, for terminals and teaching."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .market import Market, require_market
from .payments import objective, payments, social_welfare, utilities
from .thresholds import thresholds

__all__ = ["market_details", "market_table", "matrix_table"]


def market_table(market: Market, A: ArrayLike) -> str:
    """Render the market, its graph, payments and utilities as a text table.

    One line per client: role, reported profile, whom it imports, how many
    import it, money paid and received, net payment, utility (eq. (1)) and
    graph objective (eq. (8)); then the totals, budget balance and social welfare.

    Examples
    --------
    >>> from mechanism import Market, greedy_graph
    >>> mk = Market(N=[100, 300], c=[0.5, 0.5], K=[400, 400])
    >>> print(market_table(mk, greedy_graph(mk)).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
      i  role        N       c        K  imports  buyers    paid  received  net pay  utility   phi_i
    """
    require_market("market_table", market)
    A = np.asarray(A)
    pay = payments(market, A)
    U = utilities(market, A)
    phi = objective(market, A)
    head = (f"{'i':>3}  {'role':<7} {'N':>6} {'c':>7} {'K':>8}  {'imports':<7} {'buyers':>6}"
            f" {'paid':>7} {'received':>9} {'net pay':>8} {'utility':>8} {'phi_i':>7}")
    lines = [head, "-" * len(head)]
    for i in range(market.m):
        imports = ",".join(str(j) for j in np.flatnonzero(A[i])) or "-"
        c = "inf" if np.isinf(market.c[i]) else f"{market.c[i]:.3f}"
        lines.append(
            f"{i:>3}  {market.roles[i]:<7} {market.N[i]:>6.0f} {c:>7} {market.K[i]:>8.1f}  "
            f"{imports:<7} {int(A[:, i].sum()):>6} {pay.paid[i]:>7.3f} {pay.received[i]:>9.3f}"
            f" {pay.p[i]:>8.3f} {U[i]:>8.3f} {phi[i]:>7.3f}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"edges {int(A.sum())}, money moved {pay.paid.sum():.4f}, "
        f"sum of net payments {pay.p.sum():.2e} (budget balance), "
        f"social welfare {social_welfare(market, A):.4f}, min utility {U.min():.4f}"
    )
    bad = np.flatnonzero(U < -1e-9 * np.maximum(1.0, np.abs(pay.paid)))
    lines.append("individual rationality (Theorem 1, U_i >= 0): "
                 + (f"holds for all {market.m} clients" if bad.size == 0 else
                    f"VIOLATED for clients {bad.tolist()}"))
    return "\n".join(lines)


def matrix_table(title: str, M: ArrayLike, digits: int = 4) -> str:
    """Render an ``m x m`` matrix with row and column indices; ``inf`` and a blank diagonal.

    Rows are labelled ``row i``, so they never read as client lines of :func:`market_table`.

    Examples
    --------
    >>> print(matrix_table("d", [[0, 1.5], [1.5, 0]]))
    d
                  0       1
    row 0         .     1.5
    row 1       1.5       .
    """
    M = np.asarray(M, dtype=float)
    m = M.shape[0]
    width = max(digits + 4, 5)
    lines = [title, "       " + "".join(f"{j:>{width}}" for j in range(m))]
    for i in range(m):
        cells = []
        for j in range(m):
            x = M[i, j]
            cells.append("." if i == j else "inf" if np.isinf(x) else f"{x:.{digits}g}")
        lines.append(f"row {i:<3}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)


def market_details(market: Market) -> str:
    r"""Render the distances, the prices :math:`w_{ij}` and the thresholds :math:`N^{Th}_{ij}`.

    Row ``i`` is the importing client: ``w[i, j]`` is what importing ``j``
    costs ``i`` in :math:`\phi_i` (eq. (8)); Algorithm 2 imports ``j`` while
    the running total plus :math:`N_j` stays below ``threshold[i, j]``.
    """
    return "\n\n".join([
        matrix_table(f"model distances d_ij (lambda = {market.lam:g}, gain "
                     f"{getattr(market.gain, 'name', market.gain)!s})", market.d),
        matrix_table("prices w_ij = c_j + lambda N_j/N_i d_ij (row i imports column j)",
                     market.weights),
        matrix_table("thresholds N^Th_ij of Algorithm 2 (0: not worth it even alone)",
                     thresholds(market), digits=5),
    ])
