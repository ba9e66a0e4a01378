r"""Algorithm 2 (graph topology learning): the greedy threshold rule.

For each client ``i`` independently, Algorithm 2 sorts the candidate
collaborators by threshold :math:`N^{Th}_{ij}` (see :mod:`mechanism.thresholds`),
largest first, and walks down the list keeping a running total ``n`` of
imported data:

* if :math:`n + N_k < N^{Th}_{ik}`, import ``k`` (:math:`a_{ik} = 1`,
  :math:`n \leftarrow n + N_k`);
* otherwise ``break`` (variant ``"paper"``, as printed) or move on to the next
  candidate (variant ``"skip"``, our extension: it can only add collaborators
  that each lower :math:`\phi_i` at the moment they are added).

Readings of the paper: the loop ``k = argmax_j N_i^Th s.t. a_ij = 0`` is read
as "the not-yet-taken candidate with the largest threshold"; ties, on which the
paper is silent, go to the lower index. Sorting makes the cost
:math:`O(m \log m)` per client, not the :math:`O(m)` the text states.

Implementation: variant ``"paper"`` accepts a prefix of the sorted list, so the
whole graph is one ``argsort``, one ``cumsum`` and one comparison per row
block. Variant ``"skip"`` is sequential along the sorted list, so it loops over
list positions, vectorised across all rows of a block.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .market import Market, require_market
from .thresholds import row_blocks, threshold_block

__all__ = ["VARIANTS", "greedy_graph", "greedy_order"]

Variant = Literal["paper", "skip"]
VARIANTS: tuple[str, ...] = ("paper", "skip")


def greedy_order(th: NDArray[np.float64]) -> NDArray[np.intp]:
    """Candidate order of Algorithm 2: by threshold descending, ties by lower index."""
    return np.argsort(-th, axis=1, kind="stable")


def greedy_graph(market: Market, variant: Variant = "paper") -> NDArray[np.int8]:
    """Return the collaboration graph of Algorithm 2.

    Parameters
    ----------
    market : Market
    variant : {"paper", "skip"}
        ``"paper"`` stops at the first candidate that fails the threshold test,
        exactly as printed; ``"skip"`` passes over it and tries the next.

    Returns
    -------
    ndarray of int8, shape (m, m)
        Adjacency ``A`` with ``A[i, j] = 1`` when client ``i`` imports ``j``'s model.

    Examples
    --------
    >>> mk = Market(N=[100, 100, 100], c=[0.2, 0.2, 0.2], K=[400, 400, 400])
    >>> greedy_graph(mk).tolist()
    [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    """
    require_market("greedy_graph", market)
    if variant not in VARIANTS:
        raise ValueError(f"greedy_graph: variant = {variant!r} is not one of {VARIANTS}")
    m, N = market.m, market.N
    A = np.zeros((m, m), dtype=np.int8)
    for rows in row_blocks(m):
        th = threshold_block(market, rows)
        order = greedy_order(th)
        th_sorted = np.take_along_axis(th, order, axis=1)
        n_sorted = N[order]
        if variant == "paper":
            accepted = np.logical_and.accumulate(np.cumsum(n_sorted, axis=1) < th_sorted, axis=1)
        else:
            accepted = _skip_scan(n_sorted, th_sorted)
        r_idx, pos = np.nonzero(accepted)
        A[r_idx + rows.start, order[r_idx, pos]] = 1
    return A


def _skip_scan(n_sorted: NDArray[np.float64], th_sorted: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Variant "skip": walk each sorted row, adding every candidate that still passes."""
    rows, m = n_sorted.shape
    total = np.zeros(rows)
    accepted = np.zeros((rows, m), dtype=bool)
    for pos in range(m):
        th = th_sorted[:, pos]
        if not np.any(th > total):  # sorted descending: nobody later can pass
            break
        ok = total + n_sorted[:, pos] < th
        accepted[:, pos] = ok
        total = np.where(ok, total + n_sorted[:, pos], total)
    return accepted
