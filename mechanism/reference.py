"""A straightforward scalar implementation of Algorithm 2 and eq. (10), for cross-checks.

Everything here follows the paper's pseudo-code line by line: one
:func:`scipy.optimize.brentq` root per client pair, Python loops over pairs,
no vectorisation. It is slow on purpose. The tests compare the vectorised
mechanism (:mod:`mechanism.thresholds`, :mod:`mechanism.graph`,
:mod:`mechanism.payments`) against it, and the benchmark quotes the speed ratio.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from .market import Market

__all__ = ["reference_graph", "reference_payments", "reference_threshold", "reference_thresholds"]


def _bits(x: float) -> int:
    """Return the bit pattern of a double ``x >= 0`` (ordered like the doubles)."""
    return struct.unpack("<q", struct.pack("<d", x))[0]


def _double(b: int) -> float:
    """Return the double with bit pattern ``b`` (inverse of ``_bits``)."""
    return struct.unpack("<d", struct.pack("<q", b))[0]


def reference_threshold(market: Market, i: int, j: int) -> float:
    r"""Threshold :math:`N^{Th}_{ij}` by bracketing and :func:`scipy.optimize.brentq`.

    The smallest root (our reading of Algorithm 2 at ties, see
    :mod:`mechanism.gain`): the smallest double ``T >= N_j`` at which the computed
    increment :math:`g_i(T) - g_i(T - N_j)` is ``<= w_ij``, ``+inf`` if none.
    ``brentq`` finds a root; a scalar bisection on the bit patterns of the doubles
    next to it then walks down the plateau of equal increments it may have
    landed on (subnormal gains, or ``N_i + T - N_j`` rounding to ``N_i``).
    """
    if i == j:
        return 0.0
    g, Ni, Ki, Nj = market.gain, float(market.N[i]), float(market.K[i]), float(market.N[j])
    # w_ij bit for bit as Market.weights (the order matters for subnormal lambda)
    w = float(market.c[j] + market.lam * (Nj / Ni) * market.d[i, j])
    gain_of_j = float(g.value(Nj, Ni, Ki)) - float(g.value(0.0, Ni, Ki))
    if gain_of_j <= 0:  # g_i identically zero (K_i = 0): a pure seller buys nothing
        return 0.0
    if w <= 0:
        return math.inf
    if not gain_of_j >= w:  # no T >= N_j solves it
        return 0.0

    def excess(t: float) -> float:
        # the gain's own cancellation-free difference g(t) - g(t - N_j): plain
        # differences of g lose every digit once the increment falls below
        # g's ulp (thresholds beyond ~1e8 at N_i = 1e-3, K_i = 1e12)
        if math.isinf(t):
            return -w
        return float(g.increment(t, Nj, Ni, Ki)) - w

    with np.errstate(over="ignore", under="ignore"):  # once per pair, not per evaluation
        return _smallest_root(excess, Nj)


def _smallest_root(excess: Callable[[float], float], Nj: float) -> float:
    """Return the smallest double ``T >= N_j`` with ``excess(T) <= 0`` (``+inf`` if none)."""
    # a bracket growing 1024-fold per step (thresholds span up to ~300 decades)
    lo, hi = Nj, 1024.0 * Nj
    while excess(hi) > 0:
        lo, hi = hi, 1024.0 * hi
        if math.isinf(hi):
            break
    root = hi if math.isinf(hi) or excess(lo) <= 0 else brentq(
        excess, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    # the smallest root: bracket it as (b_lo, b_hi] in bit patterns, then bisect
    b_n, b = _bits(Nj), _bits(root)
    if excess(root) <= 0:
        b_hi, step = b, 1
        while True:
            cand = max(b - step, b_n)
            if excess(_double(cand)) > 0:
                b_lo = cand
                break
            b_hi = cand
            if cand == b_n:
                return Nj
            step *= 4
    else:
        b_lo, step = b, 1
        while True:
            cand = min(b + step, _bits(math.inf))
            if excess(_double(cand)) <= 0:
                b_hi = cand
                break
            b_lo = cand
            step *= 4
    while b_hi - b_lo > 1:
        mid = (b_lo + b_hi) // 2
        if excess(_double(mid)) <= 0:
            b_hi = mid
        else:
            b_lo = mid
    return _double(b_hi)


def reference_thresholds(market: Market) -> list[list[float]]:
    """All thresholds ``[i][j]`` by :func:`reference_threshold` (0 on the diagonal)."""
    return [[reference_threshold(market, i, j) for j in range(market.m)] for i in range(market.m)]


def reference_graph(market: Market, variant: str = "paper",
                    thresholds: list[list[float]] | None = None) -> NDArray[np.int8]:
    """Algorithm 2 as printed: per client, thresholds, then the greedy loop.

    ``thresholds`` (from :func:`reference_thresholds`) saves recomputing them when
    both variants are checked on one market.
    """
    m = market.m
    if thresholds is None:
        thresholds = reference_thresholds(market)
    A = np.zeros((m, m), dtype=np.int8)
    for i in range(m):
        th = list(thresholds[i])
        th[i] = -math.inf  # never a candidate
        n = 0.0
        for _ in range(m - 1):
            # k = argmax_j N^Th_j s.t. a_ij = 0 (ties: lower index; the skipped stay out)
            k = max((j for j in range(m) if th[j] > -math.inf), key=lambda j: (th[j], -j))
            if n + market.N[k] < th[k]:
                A[i, k] = 1
                n += market.N[k]
            elif variant == "paper":
                break
            th[k] = -math.inf
    return A


def reference_payments(market: Market, A: NDArray[np.int8]) -> tuple[NDArray, NDArray]:
    """Remittances and net payments of eq. (10), one pair at a time."""
    m, g = market.m, market.gain
    r = np.zeros((m, m))
    for i in range(m):
        n = sum(market.N[j] for j in range(m) if A[i, j])
        for j in range(m):
            if A[i, j]:
                marginal = g.value(n, market.N[i], market.K[i]) - g.value(
                    n - market.N[j], market.N[i], market.K[i]
                )
                r[i, j] = marginal - market.lam * (market.N[j] / market.N[i]) * market.d[i, j]
    p = np.array([sum(r[i, j] for j in range(m)) - sum(r[j, i] for j in range(m))
                  for i in range(m)])
    return r, p
