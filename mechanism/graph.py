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

Implementation. A candidate ``j`` can be accepted by client ``i`` only if
:math:`N^{Th}_{ij} > N_j` (the test :math:`n + N_j < N^{Th}_{ij}` has
:math:`n \ge 0`), and :math:`N^{Th}_{ij} = 0` exactly when
:math:`w_{ij} > g_i(N_j)` or :math:`g_i(N_j) = 0` (see :mod:`mechanism.thresholds`):
a closed-form comparison. Such candidates sort last (thresholds are
``>= 0``) and fail every test, so dropping them changes neither variant's
result. Per row block, :func:`greedy_graph` therefore solves the threshold
equation only for the survivors :math:`0 < g_i(N_j),\ w_{ij} \le g_i(N_j)`,
packs them left in a ``(rows, width)`` array (``width`` = the block's most
survivors in a row, padded with threshold ``-1``), sorts and scans that.
Variant ``"paper"`` accepts a prefix of the sorted list: one ``argsort``, one
``cumsum`` and one comparison per block. Variant ``"skip"`` is sequential
along the sorted list, so it loops over list positions, vectorised across the
rows of a block. The unfiltered computation (all ``m - 1`` candidates per row)
is kept as ``_greedy_graph_unfiltered`` for the tests and the benchmark.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .gain import SqrtGain
from .market import Market, require_market
from .thresholds import row_blocks, threshold_block, weight_block

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
    m, N, K, gain = market.m, market.N, market.K, market.gain
    A = np.zeros((m, m), dtype=np.int8)
    cut_ok = type(gain).threshold is SqrtGain.threshold and m >= CUT_MIN_M
    for rows in row_blocks(m):
        w = weight_block(market, rows)
        Ni, Ki = N[rows, None], K[rows, None]
        with np.errstate(invalid="ignore"):
            gn = gain.value(N[None, :], Ni, Ki)  # g_i(N_j): the most j is ever worth to i
            keep = (gn > 0) & (w <= gn)  # exactly the candidates with a threshold > 0
        del gn
        x = _first_cut(market, rows, w, keep) if cut_ok else np.zeros(w.shape[0])
        todo = np.arange(w.shape[0])
        while todo.size:
            total, settled = _greedy_rows(A, rows.start, todo, w[todo], keep[todo], x[todo],
                                          market, variant)
            # not settled: candidates with thresholds <= x(1 + CUT_RTOL) might still pass;
            # lower the cut to the total reached (it cannot fall), which settles every row
            x[todo] = np.where(settled, x[todo], total * (1.0 - 2.0 * CUT_RTOL))
            todo = todo[~settled]
            A[rows.start + todo] = 0
    return A


#: relative margin of the cut test (the sqrt threshold is accurate to ~1e-14 relative)
CUT_RTOL = 1e-9
#: columns sampled per row to place the first cut
SAMPLE = 256
#: smallest m using cuts (below it only the threshold > 0 filter: fast enough)
CUT_MIN_M = 4 * SAMPLE


def _first_cut(market: Market, rows: slice, w: NDArray[np.float64],
               keep: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Guess a first cut per row: the second-largest threshold of ``SAMPLE`` columns.

    Only a guess (about the ``2 m / SAMPLE``-th largest threshold of the row); the
    exactness of :func:`greedy_graph` does not depend on it.
    """
    N, K = market.N, market.K
    cols = np.linspace(0, market.m - 1, SAMPLE).astype(np.intp)
    ws = np.where(keep[:, cols], w[:, cols], np.inf)
    th = market.gain.threshold(ws, N[None, cols], N[rows, None], K[rows, None])
    second = -np.partition(-th, 1, axis=1)[:, 1]
    return np.where(np.isfinite(second), second, 0.0)


def _greedy_rows(A: NDArray[np.int8], start: int, rows: NDArray[np.intp], w: NDArray[np.float64],
                 keep: NDArray[np.bool_], x: NDArray[np.float64], market: Market,
                 variant: str) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    r"""Algorithm 2 on ``rows`` (block-relative), looking only at thresholds above ``x``.

    The candidates whose threshold may exceed the cut ``x_i`` are found in closed
    form: :math:`N_j \ge x_i` or :math:`g_i(x_i) - g_i(x_i - N_j) \ge w_{ij}(1 - \delta)`
    (the increment falls in :math:`T`, so any other has :math:`N^{Th}_{ij} < x_i`).
    Their thresholds are solved and those above :math:`x_i^+ = x_i (1 + \delta)`
    kept; every other candidate's threshold is :math:`\le x_i^+` and sorts after them.
    The row is settled (equal to the unfiltered algorithm) if the ``"paper"`` loop
    breaks among the kept candidates, or the total reaches :math:`x_i^+`: then every
    later candidate fails :math:`n + N_k < N^{Th}_{ik}`. With ``x = 0`` every row is
    settled. Returns each row's total imported data and whether it is settled.
    """
    N, K, gain = market.N, market.K, market.gain
    Ni, Ki = N[start + rows, None], K[start + rows, None]
    x_hi = x * (1.0 + CUT_RTOL)
    if np.any(x > 0):
        xc = x[:, None]
        with np.errstate(invalid="ignore", over="ignore"):
            inc = gain.increment_from(np.maximum(xc - N[None, :], 0.0), N[None, :], Ni, Ki)
            keep = keep & ((N[None, :] >= xc) | (inc >= w * (1.0 - CUT_RTOL)))
        del inc
    r_idx, j_idx = np.nonzero(keep)
    th = gain.threshold(w[r_idx, j_idx], N[j_idx], Ni[r_idx, 0], Ki[r_idx, 0])
    above = th > x_hi[r_idx]
    r_idx, j_idx, th = r_idx[above], j_idx[above], th[above]
    counts = np.bincount(r_idx, minlength=rows.size)
    if r_idx.size == 0:
        return np.zeros(rows.size), x_hi <= 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    col = np.arange(r_idx.size) - starts[r_idx]  # position within the row, j ascending
    width = int(counts.max())
    th_pad = np.full((rows.size, width), -1.0)  # padding fails every test, sorts last
    j_pad = np.zeros((rows.size, width), dtype=np.intp)
    th_pad[r_idx, col] = th
    j_pad[r_idx, col] = j_idx
    return _accept_rows(A, start + rows, th_pad, j_pad, counts, x_hi, N, variant)


def _accept_rows(A: NDArray[np.int8], rows: NDArray[np.intp], th: NDArray[np.float64],
                 cand: NDArray[np.intp], counts: NDArray[np.intp], x_hi: NDArray[np.float64],
                 N: NDArray[np.float64], variant: str
                 ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Algorithm 2's loop on ``rows`` given candidates ``cand`` and thresholds ``th``.

    ``cand[r]`` lists row ``r``'s first ``counts[r]`` candidates in ascending index
    order (so the stable sort breaks ties by lower index); padding has threshold
    ``-1`` and never passes. Returns totals and settled flags (see ``_greedy_rows``).
    """
    order = greedy_order(th)
    th_sorted = np.take_along_axis(th, order, axis=1)
    cand_sorted = np.take_along_axis(cand, order, axis=1)
    n_sorted = np.where(th_sorted > 0, N[cand_sorted], 0.0)
    if variant == "paper":
        accepted = np.logical_and.accumulate(np.cumsum(n_sorted, axis=1) < th_sorted, axis=1)
    else:
        accepted = _skip_scan(n_sorted, th_sorted)
    r_idx, pos = np.nonzero(accepted)
    A[rows[r_idx], cand_sorted[r_idx, pos]] = 1
    total = np.where(accepted, n_sorted, 0.0).sum(axis=1) if variant == "skip" else (
        np.cumsum(n_sorted, axis=1)[np.arange(rows.size), np.maximum(accepted.sum(1) - 1, 0)]
        * (accepted.sum(1) > 0))
    broke = (accepted.sum(axis=1) < counts) if variant == "paper" else np.zeros(rows.size, bool)
    return total, broke | (total >= x_hi)


def _greedy_graph_unfiltered(market: Market, variant: Variant = "paper") -> NDArray[np.int8]:
    """Algorithm 2 with every candidate's threshold solved (no closed-form filter).

    The implementation before the filter of :func:`greedy_graph`; kept for the
    property test that the filter is exact and for the benchmark's ratio.
    """
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
