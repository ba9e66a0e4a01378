r"""Markets given by points: Algorithm 2 and eq. (10) without the ``m x m`` matrix.

A :class:`~mechanism.market.Market` built with ``points=X`` (shape ``(m, p)``) has
:math:`d_{ij} = \|x_i - x_j\|^2`. :func:`solve_points` returns the same graph and
payments as the dense path (:func:`~mechanism.graph.greedy_graph`,
:func:`~mechanism.payments.payments` on :meth:`Market.dense`) while looking only at
each importer's nearby points, found by an exact nearest-neighbour index
(scikit-learn's ``BallTree`` by default, or scipy's ``cKDTree``), and carries a
:class:`Certificate` that nothing
it did not look at could have been accepted.

The bound (Algorithm 2, Methods 4.2). Importer ``i`` can accept ``j`` only if
:math:`N^{Th}_{ij} > N_j`, which (see :mod:`mechanism.graph`) needs
:math:`w_{ij} \le g_i(N_j)`, i.e.

.. math:: c_j + \lambda \frac{N_j}{N_i} d_{ij} \le g_i(N_j)
          \iff d_{ij} \le \frac{N_i}{\lambda} \frac{g_i(N_j) - c_j}{N_j}.

So with :math:`\beta_i \ge \max_j (g_i(N_j) - c_j)/N_j` nothing beyond
:math:`R_i = N_i \beta_i / \lambda` can be accepted. :math:`\beta_i` is bounded
without looking at every ``j``: the clients are split into ``BUCKETS`` groups by
data size; in a group with sizes in :math:`[N^{lo}, N^{hi}]` and smallest cost
:math:`c^{lo}`, :math:`(g_i(N_j) - c_j)/N_j \le (g_i(N^{hi}) - c^{lo})/N^{lo}`
(:math:`g_i` is nondecreasing). Margins (``1e-9`` on the gain, ``1e-6`` on costs and
on the radius) make the bound hold for the *computed* test ``w_ij <= g_i(N_j)``,
whose rounding is about ``1e-16`` relative: for :math:`d_{ij} > R_i` the computed
:math:`w_{ij}` exceeds the computed :math:`g_i(N_j)` (docs/scale.md gives the
inequality chain). :math:`\beta_i \le 0` (a pure seller, or costs above every gain)
gives an empty search; :math:`\lambda = 0` an unbounded one (every client).

The search. With ``index = "balltree"`` (the default) one ball query per importer
lists every point within :math:`R_i` (scikit-learn's exact ``BallTree``). With
``index = "kdtree"`` the ``k`` nearest points are asked of scipy's ``cKDTree``
(``k`` a little above the index's count of the points within :math:`R_i`, so that
the ``k``-th lies beyond it; importers with equal ``k`` in one query), and ``k`` is
doubled for the importers whose ``k``-th nearest point is still within
:math:`R_i`; an importer is done when its ``k``-th
distance exceeds :math:`R_i` (then every point not returned is farther still) or
``k = m``. The candidates within :math:`R_i` then go through exactly the dense
path's arithmetic (weights, the closed-form filter, thresholds, the sorted scan),
with :math:`d_{ij}` computed by :func:`pair_distances`, the same doubles as
:func:`pairwise_distances` gives the dense path. Payments (eq. (10)) are computed
per edge, as :func:`~mechanism.payments.payments` does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.spatial import cKDTree

from .graph import VARIANTS, Variant, _pack_and_accept
from .market import Market
from .payments import Payments, _edge_marginals
from .thresholds import row_blocks

__all__ = ["BUCKETS", "INDEXES", "Certificate", "PointsOutcome", "check_certificate",
           "pair_distances", "pairwise_distances", "price_bound", "random_point_market",
           "solve_points"]

#: groups of clients (by data size) in the bound on :math:`\beta_i`
BUCKETS = 64
#: importers per block of the scan (bounds the temporaries with ``BLOCK``)
CHUNK = 8192
#: relative margins of the bound (see the module docstring)
GAIN_RTOL, COST_RTOL, RADIUS_RTOL = 1e-9, 1e-6, 1e-6


def pair_distances(X: NDArray[np.float64], i: NDArray[np.intp],
                   j: NDArray[np.intp]) -> NDArray[np.float64]:
    r"""Return :math:`d_{ij} = \|x_i - x_j\|^2` for the pairs ``(i[e], j[e])``.

    Summed coordinate by coordinate in a fixed order, so that it gives the same
    doubles as :func:`pairwise_distances` for every pair.
    """
    out = np.zeros(np.shape(i))
    for k in range(X.shape[1]):
        diff = X[i, k] - X[j, k]
        out += diff * diff
    return out


def pairwise_distances(X: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""Return the ``m x m`` matrix :math:`\|x_i - x_j\|^2` (the dense path's ``d``).

    Same arithmetic as :func:`pair_distances`, in row blocks.
    """
    X = np.asarray(X, dtype=float)
    m = X.shape[0]
    d = np.zeros((m, m))
    for rows in row_blocks(m):
        for k in range(X.shape[1]):
            diff = X[rows, k][:, None] - X[None, :, k]
            d[rows] += diff * diff
    return d


def random_point_market(m: int, seed: int = 0, *, dim: int = 2, lam: float = 1.0,
                        area_per_client: float = 1.4, gain: str | None = None) -> Market:
    r"""Draw a seeded market given by points (the benchmark's, docs/scale.md).

    Profiles as :func:`mechanism.random_market` draws them (log-uniform
    :math:`N \in [50, 5000]` rounded, :math:`c \in [0.01, 1]`,
    :math:`K \in [10^3, 10^5]`); points uniform in the cube of side
    ``(area_per_client * m) ** (1 / dim)``, so the number of clients within a given
    distance of a client does not grow with ``m``.

    Examples
    --------
    >>> random_point_market(100, seed=1).points.shape
    (100, 2)
    """
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 2:
        raise ValueError(f"random_point_market: m = {m!r} must be an integer >= 2")
    rng = np.random.default_rng(seed)
    N = np.round(np.exp(rng.uniform(np.log(50.0), np.log(5000.0), m)))
    c = np.exp(rng.uniform(np.log(0.01), 0.0, m))
    K = np.exp(rng.uniform(np.log(1e3), np.log(1e5), m))
    side = (area_per_client * m) ** (1.0 / dim)
    return Market(N=N, c=c, K=K, points=rng.uniform(0.0, side, (m, dim)), lam=lam, gain=gain)


def _require_points(where: str, market: object) -> Market:
    if not isinstance(market, Market):
        raise TypeError(f"{where}: market must be a Market, got {type(market).__name__}")
    if market.points is None:
        raise ValueError(f"{where}: market has no points (build it with Market(..., points=X))")
    return market


def price_bound(market: Market) -> NDArray[np.float64]:
    r"""Return :math:`R_i`: importer ``i`` can accept no ``j`` with :math:`d_{ij} > R_i`.

    :math:`R_i = (1 + 10^{-6}) N_i \beta_i / \lambda` with :math:`\beta_i` the
    bucket bound of the module docstring; ``-1`` where :math:`\beta_i \le 0`
    (nobody can be accepted), ``inf`` where :math:`\lambda = 0`. Costs ``m x BUCKETS``
    gain evaluations.
    """
    N, K, c, gain = market.N, market.K, market.c, market.gain
    m = market.m
    order = np.argsort(N, kind="stable")
    groups = np.array_split(order, min(BUCKETS, m))
    n_lo = np.array([N[g].min() for g in groups])
    n_hi = np.array([N[g].max() for g in groups])
    c_lo = np.array([c[g].min() for g in groups]) * (1.0 - COST_RTOL)
    beta = np.full(m, -np.inf)
    for rows in row_blocks(m, 1 << 20):
        with np.errstate(invalid="ignore"):
            g = gain.value(n_hi[None, :], N[rows, None], K[rows, None]) * (1.0 + GAIN_RTOL)
            val = (g - c_lo[None, :]) / n_lo[None, :]
        beta[rows] = np.max(np.where(np.isnan(val), -np.inf, val), axis=1)
    positive = (beta > 0) & (K > 0)
    with np.errstate(divide="ignore", over="ignore"):
        R = np.where(positive, (1.0 + RADIUS_RTOL) * N * beta / market.lam if market.lam > 0
                     else np.inf, -1.0)
    return R


@dataclass(frozen=True)
class Certificate:
    r"""Why no client left out of an importer's candidates could have been accepted.

    For every importer ``i``: the index listed every point ``j`` with
    :math:`d_{ij} < \text{radius2}_i` (its ``searched[i]`` nearest points; ``inf``
    when it listed all), the candidates are those with :math:`d_{ij} \le` ``bound[i]``
    (``candidates`` in CSR form), and ``bound[i]`` is :func:`price_bound`: a ``j``
    with :math:`d_{ij} >` ``bound[i]`` has :math:`w_{ij} > g_i(N_j)` and fails
    Algorithm 2's test whatever else ``i`` imports. The claim holds when
    ``radius2[i] > bound[i]`` and the bound is right; :func:`check_certificate`
    checks both, and the claim itself, against the points.

    Attributes
    ----------
    bound : ndarray, (m,)
        :math:`R_i` (``-1``: nobody can be accepted; ``inf``: no bound, ``lam = 0``).
    radius2 : ndarray, (m,)
        Squared radius searched: every point closer than it was listed.
    searched : ndarray of int, (m,)
        Points the index returned for the importer, itself included (``"kdtree"``: the
        ``k`` of its last query; ``m``: all of them).
    indptr, indices : ndarray of int
        The candidates: ``indices[indptr[i]:indptr[i + 1]]`` (ascending), every ``j``
        within the bound of ``i``.
    """

    bound: NDArray[np.float64]
    radius2: NDArray[np.float64]
    searched: NDArray[np.intp]
    indptr: NDArray[np.intp]
    indices: NDArray[np.intp]

    def candidates(self, i: int) -> NDArray[np.intp]:
        """Client ``i``'s candidates (ascending)."""
        return self.indices[self.indptr[i]:self.indptr[i + 1]]


@dataclass(frozen=True)
class PointsOutcome:
    """Algorithm 2's graph and eq. (10)'s payments of a market given by points.

    Attributes
    ----------
    i, j : ndarray of int
        The graph's edges (``i`` imports ``j``), row-major: the order of
        ``numpy.nonzero`` on the dense graph.
    d : ndarray
        :math:`d_{ij}` of each edge.
    pay : Payments
        Remittances per edge (``pay.edges``) and net payments ``pay.p``.
    certificate : Certificate
    """

    i: NDArray[np.intp]
    j: NDArray[np.intp]
    d: NDArray[np.float64]
    pay: Payments
    certificate: Certificate

    @property
    def m(self) -> int:
        """Number of clients."""
        return self.pay.m

    @property
    def graph(self) -> sparse.csr_array:
        """The graph as a sparse ``(m, m)`` int8 array."""
        data = np.ones(self.i.size, dtype=np.int8)
        return sparse.csr_array((data, (self.i, self.j)), shape=(self.m, self.m))


class _EdgeSink:
    """Collects ``sink[rows, cols] = 1`` as edge lists (``_pack_and_accept`` writes a graph)."""

    def __init__(self) -> None:
        self.rows: list[NDArray[np.intp]] = []
        self.cols: list[NDArray[np.intp]] = []

    def __setitem__(self, key: tuple[NDArray[np.intp], NDArray[np.intp]], value: int) -> None:
        self.rows.append(np.asarray(key[0], dtype=np.intp).ravel())
        self.cols.append(np.asarray(key[1], dtype=np.intp).ravel())


#: entries (rows x k) per query of the index and per block of the scan
BLOCK = 1 << 22
#: margin of the listing test on the index's distances (see ``_search``)
LIST_RTOL = 1e-9


def _k_sizes(counts: NDArray[np.intp], m: int) -> NDArray[np.intp]:
    """``k`` for each importer: above ``counts + 1``, rounded up to a power of 1.25, <= m."""
    k = np.ceil(1.25 ** np.ceil(np.log(counts + 2.0) / np.log(1.25))).astype(np.intp)
    return np.minimum(np.maximum(k, counts + 2), m)


def _search(market: Market, bound: NDArray[np.float64], k0: int | None
            ) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp],
                       NDArray[np.intp]]:
    """List the nearest points of every importer, up to past its bound.

    Returns ``(radius2, searched, indptr, indices)``: the certificate's fields. A point
    is listed when its index distance squared is ``<= bound (1 + LIST_RTOL)``, and an
    importer is done when its ``k``-th distance squared exceeds that, so a point left
    out is farther than the bound in :func:`pair_distances`' rounding too (the two
    computations differ by a few ulps). ``k`` is sized from the index's count of the
    points within the bound (``k0 = None``) or starts at ``k0``; either way it is
    doubled for any importer not yet done.
    """
    X, m = market.points, market.m
    tree = cKDTree(X)
    radius2 = np.zeros(m)  # a negative bound: nothing searched, nobody can be accepted
    searched = np.zeros(m, dtype=np.intp)
    counts = np.zeros(m, dtype=np.intp)
    parts: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]] = []
    todo = np.flatnonzero(bound >= 0)
    limit = bound * (1.0 + LIST_RTOL)
    if k0 is None:
        k = np.zeros(m, dtype=np.intp)
        finite = todo[np.isfinite(limit[todo])]
        k[todo] = m
        if finite.size:
            inside = tree.query_ball_point(X[finite], np.sqrt(limit[finite]), workers=-1,
                                           return_length=True)
            k[finite] = _k_sizes(np.asarray(inside, dtype=np.intp), m)
    else:
        k = np.full(m, min(max(k0, 2), m), dtype=np.intp)
    while todo.size:
        order = todo[np.argsort(k[todo], kind="stable")]
        ks, first = np.unique(k[order], return_index=True)
        not_done = []
        for kk, group in zip(ks, np.split(order, first[1:]), strict=True):
            step = max(1, BLOCK // int(kk))
            for s in range(0, group.size, step):
                rows = group[s:s + step]
                dist, idx = tree.query(X[rows], k=int(kk), workers=-1)
                dist, idx = dist.reshape(rows.size, -1), idx.reshape(rows.size, -1)
                d2 = dist * dist
                lim = limit[rows, None]
                ok = (d2[:, -1] > lim[:, 0]) | (kk >= m)
                not_done.append(rows[~ok])
                rows, d2, idx = rows[ok], d2[ok], idx[ok]
                listed = (d2 <= lim[ok]) & (idx != rows[:, None])
                cnt = listed.sum(axis=1)
                width = int(cnt.max()) if cnt.size else 0
                js = np.sort(np.where(listed, idx, m), axis=1)[:, :width]
                parts.append((rows, cnt, js[np.arange(width)[None, :] < cnt[:, None]]))
                counts[rows] = cnt
                radius2[rows] = np.inf if kk >= m else d2[:, -1]
                searched[rows] = kk
        todo = np.concatenate(not_done) if not_done else np.zeros(0, np.intp)
        k[todo] = np.minimum(2 * k[todo], m)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.intp)
    indices = np.empty(int(indptr[-1]), dtype=np.intp)
    for rows, cnt, flat in parts:
        offs = np.arange(flat.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        indices[np.repeat(indptr[rows], cnt) + offs] = flat
    return radius2, searched, indptr, indices


def _ball_search(market: Market, bound: NDArray[np.float64]
                 ) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp],
                            NDArray[np.intp]]:
    """List every point within ``sqrt(bound (1 + LIST_RTOL))`` of each importer (ball tree).

    scikit-learn's ``BallTree.query_radius`` (exact). The squared radius searched is the
    next double above ``bound (1 + LIST_RTOL)``: a point left out is farther than that
    in the tree's arithmetic, so farther than the bound in :func:`pair_distances`' too.
    ``lam = 0`` (no bound): every point. Returns ``(radius2, searched, indptr, indices)``.
    """
    from sklearn.neighbors import BallTree  # imported on first use (about 0.5 s)

    X, m = market.points, market.m
    radius2 = np.zeros(m)
    counts = np.zeros(m, dtype=np.intp)
    parts: list[tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]] = []
    live = np.flatnonzero(bound >= 0)
    every = live[~np.isfinite(bound[live])]
    live = live[np.isfinite(bound[live])]
    r2 = np.nextafter(bound[live] * (1.0 + LIST_RTOL), np.inf)
    radius2[live] = r2
    radius2[every] = np.inf
    if live.size:
        tree = BallTree(X)
        for s in range(0, live.size, CHUNK):
            rows = live[s:s + CHUNK]
            found = tree.query_radius(X[rows], np.sqrt(r2[s:s + CHUNK]))
            cnt = np.fromiter((a.size for a in found), dtype=np.intp, count=rows.size)
            flat = np.concatenate(found) if rows.size else np.zeros(0, np.intp)
            local = np.repeat(np.arange(rows.size, dtype=np.int64), cnt)
            key = local * m + flat  # row by row (rows ascending), then j ascending
            key = np.sort(key[flat != rows[local]])
            local, flat = key // m, (key % m).astype(np.intp)
            cnt = np.bincount(local, minlength=rows.size).astype(np.intp)
            parts.append((rows, cnt, flat))
            counts[rows] = cnt
    for i in every:  # lam = 0: nothing is priced by distance, every client is a candidate
        others = np.delete(np.arange(m), i)
        parts.append((np.array([i]), np.array([m - 1]), others))
        counts[i] = m - 1
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.intp)
    indices = np.empty(int(indptr[-1]), dtype=np.intp)
    for rows, cnt, flat in parts:
        offs = np.arange(flat.size) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        indices[np.repeat(indptr[rows], cnt) + offs] = flat
    searched = np.where(bound >= 0, counts + 1, 0)
    searched[every] = m
    return radius2, searched.astype(np.intp), indptr, indices


#: the nearest-neighbour searches :func:`solve_points` can use (docs/scale.md)
INDEXES = ("balltree", "kdtree")


def solve_points(market: Market, variant: Variant = "paper", *,
                 index: str = "balltree", k0: int | None = None) -> PointsOutcome:
    r"""Algorithm 2 and eq. (10) on a market given by points, with a certificate.

    Parameters
    ----------
    market : Market
        Built with ``points=X``.
    variant : {"paper", "skip"}
        As :func:`~mechanism.graph.greedy_graph`.
    index : {"balltree", "kdtree"}
        ``"balltree"`` (default): scikit-learn's ``BallTree`` lists every point within
        each importer's bound in one ball query. ``"kdtree"``: scipy's ``cKDTree``,
        the ``k`` nearest points with ``k`` grown until the ``k``-th lies beyond the
        bound. Both are exact; the index changes the time and the certificate's
        ``searched``, never the graph or the payments.
    k0 : int, optional
        ``"kdtree"`` only: neighbours asked per importer at first, doubled until
        certified. Default: sized per importer from the index's count within its bound.

    Returns
    -------
    PointsOutcome
        Equal to the dense path: ``greedy_graph(market.dense(), variant)`` has exactly
        these edges, and ``payments`` the same remittances and net payments (the same
        arithmetic on the same doubles; ``tests/mechanism/test_points.py``).

    Examples
    --------
    >>> mk = Market(N=[100, 100, 100], c=[0.2, 0.2, 0.2], K=[400, 400, 400],
    ...             points=[[0.0], [0.1], [9.0]], lam=1.0)
    >>> out = solve_points(mk)
    >>> list(zip(out.i.tolist(), out.j.tolist()))
    [(0, 1), (1, 0)]
    >>> out.certificate.candidates(2).tolist()
    []
    """
    market = _require_points("solve_points", market)
    if variant not in VARIANTS:
        raise ValueError(f"solve_points: variant = {variant!r} is not one of {VARIANTS}")
    if k0 is not None and (isinstance(k0, bool) or not isinstance(k0, int | np.integer)
                           or k0 < 1):
        raise ValueError(f"solve_points: k0 = {k0!r} must be an integer >= 1")
    m, N, K, c, lam, gain = market.m, market.N, market.K, market.c, market.lam, market.gain
    bound = price_bound(market)
    if index not in INDEXES:
        raise ValueError(f"solve_points: index = {index!r} is not one of {INDEXES}")
    if index == "balltree":
        radius2, searched, indptr, cj = _ball_search(market, bound)
    else:
        radius2, searched, indptr, cj = _search(market, bound, None if k0 is None else int(k0))
    cert = Certificate(bound=bound, radius2=radius2, searched=searched, indptr=indptr,
                       indices=cj)
    counts = np.diff(indptr)
    sink = _EdgeSink()
    s = 0
    while s < m:  # blocks of rows whose padded width x rows stays within BLOCK
        e = min(s + CHUNK, m)
        e = min(e, s + max(1, BLOCK // max(1, int(counts[s:e].max()))))
        lo, hi = indptr[s], indptr[e]
        i, j = np.repeat(np.arange(s, e), counts[s:e]), cj[lo:hi]
        s, start = e, s
        if i.size == 0:
            continue
        d = pair_distances(market.points, i, j)
        w = c[j] + lam * (N[j] / N[i]) * d  # the dense path's weight, same operations
        with np.errstate(invalid="ignore"):
            gn = gain.value(N[j], N[i], K[i])
            keep = (gn > 0) & (w <= gn)
        i, j, w = i[keep], j[keep], w[keep]
        th = gain.threshold(w, N[j], N[i], K[i])
        gi = np.arange(start, e)
        _pack_and_accept(sink, gi, i - start, j, th, np.zeros(gi.size), N,  # type: ignore[arg-type]
                         variant)
    ei = np.concatenate(sink.rows) if sink.rows else np.zeros(0, np.intp)
    ej = np.concatenate(sink.cols) if sink.cols else np.zeros(0, np.intp)
    key = np.sort(ei.astype(np.int64) * m + ej)
    ei, ej = (key // m).astype(np.intp), (key % m).astype(np.intp)
    d = pair_distances(market.points, ei, ej)
    re = _edge_marginals(market, ei, ej) - lam * (N[ej] / N[ei]) * d
    p = np.bincount(ei, weights=re, minlength=m) - np.bincount(ej, weights=re, minlength=m)
    return PointsOutcome(i=ei, j=ej, d=d, pay=Payments(p=p, edges=(ei, ej, re)),
                         certificate=cert)


def check_certificate(market: Market, cert: Certificate,
                      rows: NDArray[np.intp] | None = None) -> None:
    r"""Check a :class:`Certificate` against the points; raise ``ValueError`` if wrong.

    Independently of the index, for each importer ``i`` in ``rows`` (default all):

    1. ``bound[i]`` is at least :func:`price_bound` recomputed;
    2. ``radius2[i] > bound[i]`` (the search went past the bound) unless all ``m``
       points were listed;
    3. the candidates include every ``j != i`` with :math:`d_{ij} \le` ``bound[i]``
       (by brute force over all ``j``: ``O(m)`` per importer, in blocks);
    4. every ``j`` left out fails the dense path's closed-form test:
       :math:`w_{ij} > g_i(N_j)` or :math:`g_i(N_j) = 0` (it can never be accepted).

    The message names the importer, the rule and the client.
    """
    market = _require_points("check_certificate", market)
    m, N, K, c, lam, gain, X = (market.m, market.N, market.K, market.c, market.lam,
                                market.gain, market.points)
    rows = np.arange(m) if rows is None else np.asarray(rows, dtype=np.intp)
    for name in ("bound", "radius2", "searched"):
        if np.shape(getattr(cert, name)) != (m,):
            raise ValueError(f"certificate: {name} has shape {np.shape(getattr(cert, name))}, "
                             f"expected ({m},)")
    if np.shape(cert.indptr) != (m + 1,) or cert.indptr[-1] != len(cert.indices):
        raise ValueError("certificate: indptr does not index the candidates")
    true_bound = price_bound(market)
    low = np.flatnonzero(cert.bound[rows] < true_bound[rows])
    if low.size:
        i = int(rows[low[0]])
        raise ValueError(f"certificate: importer {i}: bound {cert.bound[i]!r} is below the "
                         f"price bound {true_bound[i]!r}")
    short = np.flatnonzero(~(cert.radius2[rows] > cert.bound[rows])
                           & (cert.searched[rows] < m) & (cert.bound[rows] >= 0))
    if short.size:
        i = int(rows[short[0]])
        raise ValueError(f"certificate: importer {i}: searched radius^2 {cert.radius2[i]!r} "
                         f"does not exceed its bound {cert.bound[i]!r}")
    for block in range(0, rows.size, max(1, (1 << 20) // m)):
        gi = rows[block:block + max(1, (1 << 20) // m)]
        r = np.repeat(np.arange(gi.size), m)
        i, j = gi[r], np.tile(np.arange(m), gi.size)
        d = pair_distances(X, i, j).reshape(gi.size, m)
        listed = np.zeros((gi.size, m), dtype=bool)
        for k, ii in enumerate(gi):
            listed[k, cert.candidates(int(ii))] = True
        within = (d <= cert.bound[gi, None]) & (np.arange(m)[None, :] != gi[:, None])
        bad = within & ~listed
        if bad.any():
            k, jb = np.argwhere(bad)[0]
            raise ValueError(f"certificate: importer {int(gi[k])}: client {int(jb)} at d = "
                             f"{d[k, jb]!r} <= bound {cert.bound[gi[k]]!r} is not a candidate")
        w = c[None, :] + lam * (N[None, :] / N[gi, None]) * d
        with np.errstate(invalid="ignore"):
            gn = gain.value(N[None, :], N[gi, None], K[gi, None])
            could = (gn > 0) & (w <= gn) & (np.arange(m)[None, :] != gi[:, None])
        bad = could & ~listed
        if bad.any():
            k, jb = np.argwhere(bad)[0]
            raise ValueError(f"certificate: importer {int(gi[k])}: client {int(jb)} is left out "
                             f"but passes w_ij <= g_i(N_j) ({w[k, jb]!r} <= {gn[k, jb]!r})")
