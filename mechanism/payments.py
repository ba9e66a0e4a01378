r"""Payments, utilities, social welfare and the graph objective (eqs. (1), (3), (8), (10)).

Given a market and a graph ``A`` (``A[i, j] = 1``: ``i`` imports ``j``), with
:math:`n_i = \sum_j a_{ij} N_j` the data client ``i`` imports:

* remittance (eq. (10), first line): client ``i`` pays ``j`` the marginal
  benefit of ``j``'s model minus the model-distance term,
  :math:`r_{ij} = a_{ij}\,[g_i(n_i) - g_i(n_i - N_j) - \lambda \frac{N_j}{N_i} d_{ij}]`;
* net payment (Definition 4, eq. (10)): :math:`p_i = \sum_j r_{ij} - \sum_j r_{ji}`;
* utility (eq. (1)): :math:`U_i = g_i(n_i) - c_i \sum_j a_{ji} - p_i`;
* social welfare (eq. (3)): :math:`SW = \sum_i [g_i(n_i) - \mathbf c^\top \mathbf a_i]
  = \sum_i U_i`;
* graph objective (eq. (8)): :math:`\phi_i(\mathbf a_i) = \sum_j a_{ij} w_{ij} - g_i(n_i)`.

Readings of the paper:

* Definition 4 prints :math:`p_i = \sum_j r_{ij} - \sum_j r_{ij}` (identically 0);
  we read :math:`\sum_j r_{ij} - \sum_j r_{ji}`, as in eq. (10)'s first line,
  which makes :math:`\sum_i p_i = 0` (budget balance).
* Eq. (10)'s expanded form sums over ``j: d_ij = 1`` twice; we read
  :math:`a_{ij} = 1` in the first sum and :math:`a_{ji} = 1` in the second.
* Eq. (8) prints the distance sum over ``i``; we read it over ``j``.
* Eq. (10)'s gloss prints ``lambda N_i/N_i d``; we read ``lambda N_j/N_i d_ij``.
* A pure buyer ``i`` (:math:`c_i = \infty`) nobody imports has sharing cost
  :math:`0 \cdot \infty`, which we take as 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .market import Market, require_market

__all__ = [
    "IR_ATOL_PER_TERM",
    "IR_RTOL",
    "Payments",
    "check_graph",
    "imported_data",
    "ir_tolerance",
    "marginal_gains",
    "objective",
    "payments",
    "sharing_costs",
    "social_welfare",
    "utilities",
]


#: Relative rounding tolerance of individual rationality (Theorem 1) inside the
#: numeric domain (:data:`mechanism.market.DOMAIN`); see :func:`ir_tolerance`.
IR_RTOL = 1e-9
#: Absolute rounding tolerance of individual rationality per term of eq. (1): eight
#: units of the smallest subnormal double, :math:`8 \cdot 2^{-1074} \approx 4 \cdot 10^{-323}`.
#: See :func:`ir_tolerance`.
IR_ATOL_PER_TERM = 8 * 2.0**-1074


def ir_tolerance(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return the rounding tolerance :math:`\tau_i` of :math:`U_i \ge -\tau_i` (Theorem 1).

    .. math::

        \tau_i = \text{IR\_RTOL} \, s_i + \text{IR\_ATOL\_PER\_TERM}
                 \, (1 + \textstyle\sum_j a_{ij} + 2 \sum_j a_{ji}),

        s_i = g_i(n_i) + c_i \textstyle\sum_j a_{ji}
              + \sum_j a_{ij} (\mu_{ij} + \ell_{ij}) + \sum_j a_{ji} (\mu_{ji} + \ell_{ji}),

    with :math:`\mu_{ij} = g_i(n_i) - g_i(n_i - N_j)` and :math:`\ell_{ij} = \lambda
    (N_j/N_i) d_{ij}` the two parts of the remittance :math:`r_{ij} = \mu_{ij} -
    \ell_{ij}` (eq. (10)), and the count of the terms of eq. (1) (the gain, one
    remittance per import, income and sharing cost per export). For a graph of
    Algorithm 2 inside the numeric domain, :math:`U_i \ge -\tau_i` (fuzzed:
    ``tests/mechanism/test_domain_fuzz.py``, ``python -m proofs_checks.fuzz``).

    The scale is the magnitudes of the parts, not of :math:`r_{ij}`: the greedy test
    admits ``j`` when the marginal gain exceeds :math:`w_{ij}` and the remittance is
    their difference, which cancels to nothing when the two nearly tie; its rounding
    error is relative to :math:`\mu_{ij}`, not to the tiny result (a review found
    ``U_1 = -4.5e-13`` with :math:`\mu_{01} \approx \ell_{01} \approx 3694` against a
    scale built on :math:`|r_{01}|`). The absolute term is for underflow: the domain
    admits values down to the smallest subnormal (``5e-324``), where each computed
    term may be off by a few units of :math:`2^{-1074}` whatever its size and a
    relative tolerance underflows to 0 (the 10^6-market fuzz found ``U_5 = -9.9e-324``
    with :math:`s_5 = 1.9 \cdot 10^{-322}`: four subnormal remittances whose rounded
    sum exceeded the rounded gain by two units). Eight units per term is an estimate
    from counting operations (a term passes through at most about eight roundings,
    each off by at most half a unit when subnormal: four units), with a factor of
    about two to spare, not a proof; above :math:`s_i \approx 10^{-300}` it is negligible
    against the relative term.
    """
    require_market("ir_tolerance", market)
    A = check_graph(market, A)
    i, j = graph_edges(A)
    parts = _edge_marginals(market, i, j) + _edge_lam_terms(market, i, j)
    m = market.m
    gains = market.gain.value(A @ market.N, market.N, market.K)
    s = (gains + sharing_costs(market, A) + np.bincount(i, weights=parts, minlength=m)
         + np.bincount(j, weights=parts, minlength=m))
    terms = 1 + A.sum(axis=1) + 2 * A.sum(axis=0)
    return IR_RTOL * s + IR_ATOL_PER_TERM * terms


class Payments:
    """Outcome of eq. (10): remittances and net payments.

    Stored as the graph's edge list (``edges``: rows, columns and remittances, row-major)
    so that a large market allocates no ``m x m`` array; :attr:`r` builds the dense
    matrix on first use. ``Payments(r=..., p=...)`` from a dense matrix also works.

    Attributes
    ----------
    r : ndarray, shape (m, m)
        ``r[i, j]``: money client ``i`` remits to client ``j`` (0 where ``a_ij = 0``);
        read-only, built on first access.
    p : ndarray, shape (m,)
        Net payment of each client; negative means it is paid.
    edges : tuple of ndarray
        ``(i, j, r_ij)`` of every nonzero remittance slot (every edge of the graph).
    """

    __slots__ = ("_r", "edges", "p")

    def __init__(self, r: ArrayLike | None = None, p: ArrayLike | None = None, *,
                 edges: tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.float64]]
                 | None = None) -> None:
        if p is None or (r is None) == (edges is None):
            raise TypeError("Payments needs p and exactly one of r (dense) or edges")
        self.p = np.asarray(p, dtype=float)
        if r is not None:
            dense = np.asarray(r, dtype=float)
            i, j = np.nonzero(dense)
            self.edges = (i, j, dense[i, j])
            self._r: NDArray[np.float64] | None = dense
        else:
            self.edges = edges
            self._r = None

    @property
    def m(self) -> int:
        """Number of clients."""
        return int(self.p.shape[0])

    @property
    def r(self) -> NDArray[np.float64]:
        """The dense ``(m, m)`` remittance matrix (built once, on first access)."""
        if self._r is None:
            i, j, v = self.edges
            r = np.zeros((self.m, self.m))
            r[i, j] = v
            r.setflags(write=False)
            self._r = r
        return self._r

    @property
    def paid(self) -> NDArray[np.float64]:
        r"""Money each client sends, :math:`\sum_j r_{ij}`."""
        i, _, v = self.edges
        return np.bincount(i, weights=v, minlength=self.m)

    @property
    def received(self) -> NDArray[np.float64]:
        r"""Money each client receives, :math:`\sum_j r_{ji}`."""
        _, j, v = self.edges
        return np.bincount(j, weights=v, minlength=self.m)

    def __repr__(self) -> str:
        return f"Payments(m={self.m}, edges={self.edges[0].size}, p={self.p!r})"


def check_graph(market: Market, A: ArrayLike) -> NDArray[np.int8]:
    """Validate a graph for ``market``: shape (m, m), entries 0/1, zero diagonal.

    Raises
    ------
    ValueError
        Naming the offending entry, e.g. ``A[1, 1] = 1: a client cannot import itself``.
    """
    require_market("check_graph", market)
    try:
        arr = np.asarray(A)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"graph A must be an m x m array of 0/1 ({exc})") from None
    m = market.m
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"graph A must be an m x m array of 0/1, got dtype {arr.dtype}")
    if arr.shape != (m, m):
        raise ValueError(f"graph A has shape {arr.shape}, expected ({m}, {m})")
    if arr.dtype == np.int8 or arr.dtype == np.uint8:  # one pass, no temporaries
        clean = arr.size == 0 or int(arr.view(np.uint8).max()) <= 1
    else:
        clean = False
    bad = None if clean else (arr != 0) & (arr != 1)  # NaN too
    if bad is not None and bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"graph A[{i}, {j}] = {arr[i, j].item()!r} must be 0 or 1")
    diag = np.flatnonzero(np.diagonal(arr))
    if diag.size:
        i = int(diag[0])
        raise ValueError(f"graph A[{i}, {i}] = 1: a client cannot import itself")
    return arr.astype(np.int8, copy=False)


def imported_data(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return :math:`n_i = \sum_j a_{ij} N_j`, the data each client imports."""
    require_market("imported_data", market)
    return check_graph(market, A) @ market.N


def marginal_gains(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return the matrix :math:`a_{ij}\,[g_i(n_i) - g_i(n_i - N_j)]` (eq. (10)).

    Computed as :math:`g_i(y_{ij} + N_j) - g_i(y_{ij})` with
    :math:`y_{ij} = \sum_{k \ne j} a_{ik} N_k` (:meth:`Gain.increment_from`),
    where :func:`other_data` gives :math:`y_{ij}` without cancellation.
    """
    require_market("marginal_gains", market)
    A = check_graph(market, A)
    i, j = np.nonzero(A)
    out = np.zeros((market.m, market.m))
    out[i, j] = _edge_marginals(market, i, j)
    return out


def _edge_marginals(market: Market, i: NDArray[np.intp], j: NDArray[np.intp]) -> NDArray:
    """Marginal gains :math:`g_i(n_i) - g_i(n_i - N_j)` of the edges ``(i[e], j[e])``."""
    N = market.N
    y = other_data(N, i, j)
    return market.gain.increment_from(y, N[j], N[i], market.K[i])


def other_data(N: NDArray[np.float64], i: NDArray[np.intp],
               j: NDArray[np.intp]) -> NDArray[np.float64]:
    r"""Return :math:`y_{ij} = \sum_{k \ne j} a_{ik} N_k` for the edges ``(i[e], j[e])``.

    The edges are the graph's nonzeros in row-major order (:func:`numpy.nonzero`).
    ``n_i - N_j`` loses :math:`y_{ij}` to rounding when :math:`N_j` dwarfs the
    rest of row ``i`` (a data ratio of ``1e9`` leaves about 7 digits, ``2**53``
    none). Only the largest import of a row can exceed half the row's total; for
    every other edge :math:`N_j \le n_i / 2`, so ``n_i - N_j`` is accurate to a
    few ulps relative. For the row's largest import (ties: the first) the sum is
    taken directly over the other imports, a sum of non-negative terms.
    """
    if i.size == 0:
        return np.zeros(0)
    m = N.shape[0]
    Nj = N[j]
    n = np.bincount(i, weights=Nj, minlength=m)
    big = np.full(m, -1.0)
    np.maximum.at(big, i, Nj)
    cand = np.flatnonzero(Nj == big[i])
    _, first = np.unique(i[cand], return_index=True)
    top = np.zeros(i.size, dtype=bool)
    top[cand[first]] = True
    rest = np.bincount(i, weights=np.where(top, 0.0, Nj), minlength=m)
    y = np.where(top, rest[i], n[i] - Nj)
    return np.maximum(y, 0.0)


def payments(market: Market, A: ArrayLike) -> Payments:
    """Return the remittances :math:`r_{ij}` and net payments :math:`p_i` of eq. (10).

    Examples
    --------
    >>> mk = Market(N=[100, 300], c=[0.5, 0.5], K=[400, 400])
    >>> pay = payments(mk, [[0, 1], [0, 0]])
    >>> float(pay.r[0, 1]), pay.p.tolist()  # g_0(300) - g_0(0) = 2 - 1
    (1.0, [1.0, -1.0])
    """
    require_market("payments", market)
    A = check_graph(market, A)
    i, j = graph_edges(A)
    m = market.m
    re = _edge_marginals(market, i, j) - _edge_lam_terms(market, i, j)
    p = np.bincount(i, weights=re, minlength=m) - np.bincount(j, weights=re, minlength=m)
    return Payments(p=p, edges=(i, j, re))


def _edge_lam_terms(market: Market, i: NDArray[np.intp], j: NDArray[np.intp]) -> NDArray:
    r""":math:`\lambda (N_j/N_i) d_{ij}` of the edges, rounded exactly as :attr:`Market.weights`.

    The same doubles as the threshold test's ``w_ij - c_j``: with ``c_j = 0`` a
    remittance is then the difference of the two numbers that test compared.
    """
    return market.lam * (market.N[j] / market.N[i]) * market.d[i, j]


def graph_edges(A: NDArray[np.int8]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Return ``np.nonzero(A)`` of a 0/1 int8 graph, row-major, reading it 8 bytes at a time.

    A sparse graph's words are mostly zero: only the nonzero 8-byte words are
    expanded to their bytes.
    """
    flat = np.ascontiguousarray(A).reshape(-1)
    if flat.dtype.itemsize != 1 or flat.size % 8:
        return np.nonzero(A)
    words = np.flatnonzero(flat.view(np.uint64))
    cand = (words[:, None] * 8 + np.arange(8)).reshape(-1)
    idx = cand[flat[cand] != 0]
    m = A.shape[1]
    return idx // m, idx % m


def sharing_costs(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return :math:`c_i \sum_j a_{ji}`, each client's cost of being imported (Definition 3)."""
    require_market("sharing_costs", market)
    importers = check_graph(market, A).sum(axis=0)
    return importers * np.where(importers > 0, market.c, 0.0)  # 0 * inf is 0 here


def utilities(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return one round's utilities :math:`U_i = g_i(n_i) - c_i \sum_j a_{ji} - p_i` (eq. (1))."""
    require_market("utilities", market)
    A = check_graph(market, A)
    gains = market.gain.value(A @ market.N, market.N, market.K)
    return gains - sharing_costs(market, A) - payments(market, A).p


def social_welfare(market: Market, A: ArrayLike) -> float:
    r"""Return :math:`SW = \sum_i [g_i(n_i) - \mathbf c^\top \mathbf a_i]` (eq. (3)).

    Payments cancel (budget balance), so this equals ``utilities(market, A).sum()``.
    """
    require_market("social_welfare", market)
    A = check_graph(market, A)
    gains = market.gain.value(A @ market.N, market.N, market.K)
    return float(gains.sum() - sharing_costs(market, A).sum())


def objective(market: Market, A: ArrayLike) -> NDArray[np.float64]:
    r"""Return each row's graph objective :math:`\phi_i(\mathbf a_i)` (eq. (8)).

    .. math:: \phi_i(\mathbf a_i) = \sum_j a_{ij} w_{ij} - g_i(\textstyle\sum_j a_{ij} N_j),
              \qquad w_{ij} = c_j + \lambda \tfrac{N_j}{N_i} d_{ij}.

    Lower is better; the empty row has :math:`\phi_i = 0`.
    """
    require_market("objective", market)
    A = check_graph(market, A)
    cost = np.where(A == 1, market.weights, 0.0).sum(axis=1)
    return cost - market.gain.value(A @ market.N, market.N, market.K)
