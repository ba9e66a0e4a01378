"""Plain-text tables of one round of the market, for terminals and teaching."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .market import Market, require_market
from .payments import objective, payments, social_welfare, utilities

__all__ = ["market_table"]


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
    return "\n".join(lines)
