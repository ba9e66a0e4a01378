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
    if type(gain).threshold is SqrtGain.threshold and m >= CUT_MIN_M:
        pre = _Prefilter(market)
        for rows in row_blocks(m):
            _cut_block(A, market, rows, variant, pre)
        return A
    for rows in row_blocks(m):
        w = weight_block(market, rows)
        Ni, Ki = N[rows, None], K[rows, None]
        with np.errstate(invalid="ignore"):
            gn = gain.value(N[None, :], Ni, Ki)  # g_i(N_j): the most j is ever worth to i
            keep = (gn > 0) & (w <= gn)  # exactly the candidates with a threshold > 0
        del gn
        _greedy_rows(A, rows.start, np.arange(w.shape[0]), w, keep, np.zeros(w.shape[0]),
                     market, variant)
    return A


def _cut_block(A: NDArray[np.int8], market: Market, rows: slice, variant: str,
               pre: _Prefilter) -> None:
    """Algorithm 2 on the rows ``rows`` with cuts (square-root gain, ``m >= CUT_MIN_M``)."""
    x = _first_cut(market, rows)
    todo = np.arange(rows.stop - rows.start)
    while todo.size:
        total, settled = _cut_rows(A, rows.start + todo, x[todo], market, variant, pre)
        # not settled: candidates with thresholds <= x(1 + CUT_RTOL) might still pass;
        # lower the cut to the total reached (it cannot fall), which settles every row
        x[todo] = np.where(settled, x[todo], total * (1.0 - 2.0 * CUT_RTOL))
        todo = todo[~settled]
        A[rows.start + todo] = 0


#: relative margin of the cut test (the sqrt threshold is accurate to ~1e-14 relative)
CUT_RTOL = 1e-9
#: columns sampled per row to place the first cut
SAMPLE = 256
#: smallest m using cuts (below it only the threshold > 0 filter: fast enough)
CUT_MIN_M = 4 * SAMPLE


def _first_cut(market: Market, rows: slice) -> NDArray[np.float64]:
    """Guess a first cut per row: the second-largest threshold of ``SAMPLE`` columns.

    Only a guess (about the ``2 m / SAMPLE``-th largest threshold of the row); the
    exactness of :func:`greedy_graph` does not depend on it.
    """
    N, K = market.N, market.K
    cols = np.linspace(0, market.m - 1, SAMPLE).astype(np.intp)
    ii = np.arange(rows.start, rows.stop)[:, None]
    ws = market.c[cols][None, :] + market.lam * (N[cols][None, :] / N[rows, None]) * (
        market.d[rows][:, cols])
    ws[ii == cols[None, :]] = np.inf
    # a guess needs no exact tie-breaking: the estimate, without the smallest-root step
    th = SqrtGain.estimate_threshold(market.gain, ws, N[None, cols], N[rows, None],
                                     K[rows, None])
    second = -np.partition(-th, 1, axis=1)[:, 1]
    return np.where(np.isfinite(second), second, 0.0)


#: entries per chunk of the float32 pre-filter (its temporaries stay in cache)
CHUNK_ENTRIES = 1 << 17
#: relative margin of the float32 pre-filter (its rounding error is below 2e-6)
PRE_RTOL = 1e-5


class _Prefilter:
    r"""Float32 pre-filter of the cut test for the square-root gain.

    For a cut :math:`x_i > 0` and a candidate with :math:`N_j < x_i`, the threshold
    is below :math:`x_i` exactly when :math:`g_i(x_i) - g_i(x_i - N_j) < w_{ij}`; with
    :math:`\alpha_i = \sqrt{K_i / (N_i + x_i)}` this reads, without square roots,

    .. math:: (w_{ij} + \alpha_i)^2 (N_i + x_i - N_j) > K_i .

    The pre-filter evaluates the left side in float32 (a few cache-sized passes) with
    :math:`N_i + x_i` lowered by a safe slack and :math:`K_i` raised by ``PRE_RTOL``,
    far more than float32's rounding (below ``2e-6`` relative for the row scales it
    accepts), so that it drops only candidates whose threshold is certainly below
    :math:`x_i`; the survivors' thresholds are then solved in float64 as before.
    A NaN (an overflowed product times 0) keeps the candidate. Rows outside the scales
    it accepts (:math:`x_i = 0`, :math:`K_i < 10^{-30}`, :math:`N_i + x_i > 10^{30}`)
    use the float64 test on the whole row.
    """

    def __init__(self, market: Market) -> None:
        N = market.N
        self.N32 = N.astype(np.float32)
        self.lamN = market.lam * N  # float64: d * lamN rounds once, to float32
        self.c32 = market.c.astype(np.float32)
        self.order = np.argsort(N, kind="stable")
        self.N_sorted = N[self.order]

    def eligible(self, market: Market, gi: NDArray[np.intp],
                 x: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Rows (global ids ``gi``, cuts ``x``) whose float32 pre-filter is safe."""
        K, N = market.K[gi], market.N[gi]
        return (x > 0) & (K >= 1e-30) & (N + x <= 1e30)

    def candidates(self, market: Market, gi: NDArray[np.intp], x: NDArray[np.float64]
                   ) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
        """Pairs ``(r, j)`` (``r`` indexes ``gi``) that may have a threshold above ``x``.

        ``gi`` are eligible rows; pairs come row-major, ``j`` ascending within a row.
        """
        m = market.m
        Ni, Ki = market.N[gi], market.K[gi]
        alpha = np.sqrt(Ki / (Ni + x)).astype(np.float32)
        B = ((Ni + x) * (1.0 - 4e-7)).astype(np.float32)
        Kthr = (Ki * (1.0 + PRE_RTOL)).astype(np.float32)
        invN = (1.0 / Ni).astype(np.float32)
        step = max(1, CHUNK_ENTRIES // m)
        rs, js = [np.zeros(0, np.intp)], [np.zeros(0, np.intp)]
        contiguous = gi.size > 0 and gi[-1] - gi[0] == gi.size - 1
        u = np.empty((min(step, gi.size), m), dtype=np.float32)
        t = np.empty_like(u)
        ok = np.empty(u.shape, dtype=bool)
        for s in range(0, gi.size, step):
            e = min(s + step, gi.size)
            n = e - s
            d = market.d[gi[s]:gi[s] + n] if contiguous else market.d[gi[s:e]]
            uu, tt, kk = u[:n], t[:n], ok[:n]
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                np.multiply(d, self.lamN[None, :], out=uu, casting="unsafe")
                uu *= invN[s:e, None]
                uu += self.c32[None, :]
                uu += alpha[s:e, None]
                uu *= uu
                np.subtract(B[s:e, None], self.N32[None, :], out=tt)
                uu *= tt
                np.greater(uu, Kthr[s:e, None], out=kk)
            np.logical_not(kk, out=kk)
            r, j = np.nonzero(kk)
            rs.append(r + s)
            js.append(j)
        r = np.concatenate(rs)
        j = np.concatenate(js)
        low = market.N[j] < x[r]  # N_j >= x_i: the cut says nothing, listed below
        r, j = r[low], j[low]
        # every N_j >= x_i, from the sorted data sizes
        first = np.searchsorted(self.N_sorted, x, side="left")
        counts = m - first
        if counts.sum():
            r2 = np.repeat(np.arange(gi.size), counts)
            offs = np.arange(r2.size) - np.repeat(np.cumsum(counts) - counts, counts)
            j2 = self.order[first[r2] + offs]
            r, j = np.concatenate([r, r2]), np.concatenate([j, j2])
            key = np.sort(r.astype(np.int64) * m + j)
            r, j = key // m, key % m
        return r.astype(np.intp), j.astype(np.intp)


def _cut_rows(A: NDArray[np.int8], gi: NDArray[np.intp], x: NDArray[np.float64],
              market: Market, variant: str, pre: _Prefilter
              ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Algorithm 2 on the rows ``gi`` (global ids) above the cuts ``x`` (see ``_greedy_rows``).

    Candidates come from the float32 pre-filter (:class:`_Prefilter`) for eligible rows
    and from the float64 test of ``_greedy_rows`` on the whole row for the others; their
    weights and thresholds are then computed in float64, bit for bit as in
    :func:`~mechanism.thresholds.weight_block`.
    """
    N, K, gain = market.N, market.K, market.gain
    total = np.zeros(gi.size)
    settled = np.ones(gi.size, dtype=bool)
    live = K[gi] > 0  # a pure seller's row is empty (g = 0)
    fast = live & pre.eligible(market, gi, x)
    slow = np.flatnonzero(live & ~fast)
    if slow.size:
        w = market.c[None, :] + market.lam * (N[None, :] / N[gi[slow], None]) * market.d[gi[slow]]
        w[np.arange(slow.size), gi[slow]] = np.inf
        with np.errstate(invalid="ignore"):
            gn = gain.value(N[None, :], N[gi[slow], None], K[gi[slow], None])
            keep = (gn > 0) & (w <= gn)
        del gn
        total[slow], settled[slow] = _greedy_rows(A, 0, gi[slow], w, keep, x[slow], market,
                                                  variant)
        del w, keep
    idx = np.flatnonzero(fast)
    if idx.size == 0:
        return total, settled
    r_idx, j_idx = pre.candidates(market, gi[idx], x[idx])
    i_glob = gi[idx][r_idx]
    w = market.c[j_idx] + market.lam * (N[j_idx] / N[i_glob]) * market.d[i_glob, j_idx]
    w[i_glob == j_idx] = np.inf
    th = gain.threshold(w, N[j_idx], N[i_glob], K[i_glob])
    total[idx], settled[idx] = _pack_and_accept(A, gi[idx], r_idx, j_idx, th, x[idx], N,
                                                variant)
    return total, settled


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
    if np.any(x > 0):
        xc = x[:, None]
        with np.errstate(invalid="ignore", over="ignore"):
            inc = gain.increment_from(np.maximum(xc - N[None, :], 0.0), N[None, :], Ni, Ki)
            keep = keep & ((N[None, :] >= xc) | (inc >= w * (1.0 - CUT_RTOL)))
        del inc
    r_idx, j_idx = np.nonzero(keep)
    th = gain.threshold(w[r_idx, j_idx], N[j_idx], Ni[r_idx, 0], Ki[r_idx, 0])
    return _pack_and_accept(A, start + rows, r_idx, j_idx, th, x, N, variant)


def _pack_and_accept(A: NDArray[np.int8], gi: NDArray[np.intp], r_idx: NDArray[np.intp],
                     j_idx: NDArray[np.intp], th: NDArray[np.float64], x: NDArray[np.float64],
                     N: NDArray[np.float64], variant: str
                     ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Run Algorithm 2's loop on rows ``gi`` over the candidates above the cuts.

    Keeps the candidates ``(r_idx, j_idx)`` whose thresholds ``th`` exceed
    ``x (1 + CUT_RTOL)`` and packs them left per row (``j`` ascending).
    """
    x_hi = x * (1.0 + CUT_RTOL)
    above = th > x_hi[r_idx]
    r_idx, j_idx, th = r_idx[above], j_idx[above], th[above]
    counts = np.bincount(r_idx, minlength=gi.size)
    if r_idx.size == 0:
        return np.zeros(gi.size), x_hi <= 0
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    col = np.arange(r_idx.size) - starts[r_idx]  # position within the row, j ascending
    width = int(counts.max())
    th_pad = np.full((gi.size, width), -1.0)  # padding fails every test, sorts last
    j_pad = np.zeros((gi.size, width), dtype=np.intp)
    th_pad[r_idx, col] = th
    j_pad[r_idx, col] = j_idx
    return _accept_rows(A, gi, th_pad, j_pad, counts, x_hi, N, variant)


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
