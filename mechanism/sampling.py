"""Seeded random markets for demos, benchmarks and comparisons.

Distances come from a real point cloud (Euclidean distances between random
points), so they are symmetric and satisfy the triangle inequality, as model
distances computed from parameter vectors would.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist

from .gain import Gain
from .market import Market

__all__ = ["random_market"]


def random_market(
    m: int,
    seed: int | np.random.Generator = 0,
    *,
    N_range: tuple[float, float] = (50.0, 5000.0),
    c_range: tuple[float, float] = (0.01, 1.0),
    K_range: tuple[float, float] = (1e3, 1e5),
    lam: float = 0.1,
    dim: int = 2,
    spread: float = 1.0,
    buyers: float = 0.0,
    sellers: float = 0.0,
    gain: str | Gain | None = None,
) -> Market:
    r"""Draw a random market of ``m`` clients.

    Parameters
    ----------
    m : int
        Number of clients (>= 2).
    seed : int or numpy.random.Generator
        The only source of randomness: the same seed gives the same market.
    N_range, c_range, K_range : (low, high)
        Log-uniform ranges of data sizes (rounded to whole points, ``low >= 1``),
        sharing costs and eagerness.
    lam : float
        :math:`\lambda`.
    dim, spread : int, float
        Clients' models are points drawn from ``Normal(0, spread^2 I_dim)``;
        ``d`` is their Euclidean distance matrix.
    buyers, sellers : float
        Fractions of pure buyers (``c = inf``) and pure sellers (``K = 0``).
    gain : str or Gain, optional
        Gain family (default: the paper's).

    Examples
    --------
    >>> random_market(5, seed=1).m
    5
    """
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 2:
        raise ValueError(f"random_market: m = {m!r} must be an integer >= 2")
    rng = np.random.default_rng(seed)

    def loguniform(lo_hi: tuple[float, float], name: str) -> np.ndarray:
        lo, hi = lo_hi
        if not 0 < lo <= hi:
            raise ValueError(f"random_market: {name} = {lo_hi!r} needs 0 < low <= high")
        return np.exp(rng.uniform(np.log(lo), np.log(hi), size=m))

    if not N_range[0] >= 1:
        raise ValueError(f"random_market: N_range = {N_range!r} needs low >= 1 "
                         "(data sizes are whole numbers of points)")
    N = np.round(loguniform(N_range, "N_range"))
    c = loguniform(c_range, "c_range")
    K = loguniform(K_range, "K_range")
    points = rng.normal(scale=spread, size=(m, dim))
    role = rng.uniform(size=m)
    c[role < buyers] = np.inf
    K[(role >= buyers) & (role < buyers + sellers)] = 0.0
    return Market(N=N, c=c, K=K, d=cdist(points, points), lam=lam, gain=gain)
