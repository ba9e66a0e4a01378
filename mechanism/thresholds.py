r"""Threshold data amounts of Algorithm 2, for all client pairs at once.

For client ``i`` and candidate collaborator ``j``, Algorithm 2 computes the
threshold :math:`N^{Th}_{ij}` solving

.. math:: g_i(N^{Th}_{ij}) - g_i(N^{Th}_{ij} - N_j) = w_{ij}
          = c_j + \lambda \frac{N_j}{N_i} d_{ij}.

Because :math:`g_i` is concave, the left side falls as the total imported data
grows, so importing ``j`` on top of ``n`` other points lowers :math:`\phi_i`
(eq. (8)) exactly when :math:`n + N_j < N^{Th}_{ij}`.

Readings of the paper (Algorithm 2 and the paragraph before eq. (9)):

* The weight is printed ``lambda N_i/N_i d``; we read ``lambda N_j/N_i d_ij``,
  as in eqs. (4), (8) and (10).
* The threshold is indexed ``N_j^Th`` but depends on the pair: it is
  :math:`N^{Th}_{ij}`, row ``i`` of an ``m x m`` matrix.
* "If no solution then set 0": there is no root with :math:`T \ge N_j` when
  :math:`w_{ij} > g_i(N_j)` (``j`` is not worth its price even alone), e.g.
  for a pure buyer ``j`` (:math:`c_j = \infty`). When :math:`w_{ij} \le 0` the
  left side exceeds :math:`w_{ij}` for every finite ``T``; the paper is silent
  and we set :math:`+\infty` (always worth importing). A pure seller ``i``
  (:math:`K_i = 0`) has :math:`g_i \equiv 0`; Definition 2 says it "will not buy
  models from any other client", so its whole row is 0, even where
  :math:`w_{ij} = 0`. The diagonal is 0.
* Ties. The computed left side is a step function of ``T`` and can equal
  :math:`w_{ij}` on a whole interval (subnormal gains, or
  :math:`N_i + T - N_j` rounding to :math:`N_i`). Algorithm 2 imports only when
  the marginal gain strictly exceeds the price, so the threshold is the
  smallest root: the smallest double :math:`T \ge N_j` at which the computed
  increment is :math:`\le w_{ij}` (:meth:`mechanism.gain.Gain.smallest_root`).
  Then :math:`n + N_j < N^{Th}_{ij}` holds exactly when the computed marginal
  gain at :math:`n + N_j` exceeds :math:`w_{ij}`, and the vectorised solvers and
  the scalar reference (:mod:`mechanism.reference`) return the same double.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .market import Market, require_market

__all__ = ["thresholds"]

#: entries per block: bounds the temporaries of the vectorised solver (~16 MB each)
BLOCK_ENTRIES = 1 << 21


def row_blocks(m: int, entries: int = BLOCK_ENTRIES) -> list[slice]:
    """Split rows ``0..m-1`` into slices of about ``entries / m`` rows each."""
    step = max(1, entries // max(m, 1))
    return [slice(s, min(s + step, m)) for s in range(0, m, step)]


def weight_block(market: Market, rows: slice) -> NDArray[np.float64]:
    r"""Rows ``rows`` of :attr:`Market.weights`, bit for bit, without the ``m x m`` matrix.

    :math:`w_{ij} = c_j + \lambda (N_j / N_i) d_{ij}`, ``inf`` on the diagonal.
    """
    N = market.N
    w = market.c[None, :] + market.lam * (N[None, :] / N[rows, None]) * market.d[rows]
    r = np.arange(w.shape[0])
    w[r, r + rows.start] = np.inf
    return w


def threshold_block(market: Market, rows: slice) -> NDArray[np.float64]:
    """Thresholds :math:`N^{Th}_{ij}` for ``i`` in ``rows`` and every ``j``: shape (len, m)."""
    N, K = market.N, market.K
    w = weight_block(market, rows)
    return market.gain.threshold(w, N[None, :], N[rows, None], K[rows, None])


def thresholds(market: Market) -> NDArray[np.float64]:
    r"""Return the ``m x m`` matrix of threshold data amounts of Algorithm 2.

    Parameters
    ----------
    market : Market

    Returns
    -------
    ndarray, shape (m, m)
        ``T[i, j]`` solves :math:`g_i(T) - g_i(T - N_j) = w_{ij}` with
        :math:`T \ge N_j`; ``0`` where no solution exists and in a pure
        seller's row, ``+inf`` where :math:`w_{ij} \le 0` otherwise, ``0`` on
        the diagonal.

    Notes
    -----
    Vectorised over all pairs (no Python loop over pairs), in row blocks so
    that the temporaries stay small at ``m`` in the thousands.

    Examples
    --------
    >>> mk = Market(N=[100, 300], c=[1.0, 1.0], K=[400, 400])
    >>> thresholds(mk)[0, 1]  # sqrt(400/100) - sqrt(400/400) = 1 = c_1
    np.float64(300.0)
    """
    require_market("thresholds", market)
    out = np.empty((market.m, market.m))
    for rows in row_blocks(market.m):
        out[rows] = threshold_block(market, rows)
    return out
