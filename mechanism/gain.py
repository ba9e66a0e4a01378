r"""Collaboration-gain functions g_i: a small pluggable family (Definition 2, eq. (2)).

A client's gain depends only on the amount of data it imports,
:math:`G_i(\mathbf a_i) = g_i(\sum_j a_{ij} N_j)`, where :math:`g_i` is concave,
increasing and :math:`g_i(0) = 0`. Every gain here is parametrised by the client's
own data size :math:`N_i` and eagerness :math:`K_i \ge 0`; all methods broadcast
over numpy arrays, so one call evaluates all clients (or all client pairs) at once.

Three operations matter to the mechanism:

``value(x, N, K)``
    :math:`g(x)`.
``increment(x, n, N, K)``
    :math:`g(x) - g(x - n)`, the marginal benefit of the last ``n`` data points
    (payments, eq. (10)). Subclasses compute it without cancellation.
``threshold(w, n, N, K)``
    the threshold data amount :math:`T \ge n` solving
    :math:`g(T) - g(T - n) = w` (Algorithm 2). Since :math:`g` is concave the
    left side decreases in :math:`T`, so the root is unique. By the paper's
    convention the threshold is ``0`` when there is no solution (``w`` exceeds
    :math:`g(n)`, the most the ``n`` points can ever be worth), and we set it to
    ``+inf`` when ``w <= 0`` (the collaborator is worth taking at any size; the
    paper is silent here).

``SqrtGain`` is the paper's gain (eq. (2)) and the default. ``LogGain`` is a
second closed-form family. Any other concave increasing ``g`` with ``g(0) = 0``
plugs in by subclassing :class:`Gain` and defining ``value``; the generic
``threshold`` then solves the root by a vectorised bracketing bisection.

References
----------
Zhang, Chai, Ye, Wang, Chen, "Incentivizing Inclusive Contributions in Model
Sharing Markets", arXiv:2505.02462, Definition 2 and eq. (2).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["GAINS", "Gain", "LogGain", "SqrtGain", "get_gain"]

FloatArray = NDArray[np.float64]


class Gain(ABC):
    """A concave, increasing gain ``g(x; N, K)`` with ``g(0) = 0``.

    Subclasses must define :meth:`value`; :meth:`increment` and
    :meth:`threshold` have generic (correct but slower) defaults.
    """

    #: short name used by :func:`get_gain` and in reports
    name: str = "custom"

    @abstractmethod
    def value(self, x: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Return :math:`g(x)` for a client with data size ``N`` and eagerness ``K``."""

    def increment(self, x: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Return :math:`g(x) - g(x - n)`, the gain of the last ``n`` of ``x`` points."""
        x = np.asarray(x, dtype=float)
        return self.value(x, N, K) - self.value(x - np.asarray(n, dtype=float), N, K)

    def threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        r"""Solve :math:`g(T) - g(T - n) = w` for :math:`T \ge n` (Algorithm 2).

        Returns ``0`` where there is no solution (``w > g(n)``) and ``+inf``
        where ``w <= 0``, or where the increments never fall to ``w`` (a gain
        with a positive slope at infinity). Generic method: doubling bracket,
        then 60 bisection steps on :math:`\log T`, which leaves a relative
        error below ``1e-12``.
        """
        w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, n, N, K)))
        out = np.zeros(w.shape)
        out[w <= 0] = np.inf
        live = (w > 0) & (self.value(n, N, K) >= w)
        if not live.any():
            return out
        wl, nl, Nl, Kl = w[live], n[live], N[live], K[live]

        def excess(t: FloatArray) -> FloatArray:
            return self.increment(t, nl, Nl, Kl) - wl

        lo = nl.copy()
        hi = 2.0 * nl
        grow = excess(hi) > 0
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(1100):  # 2**1100 overflows: such rows have no finite root
                if not grow.any():
                    break
                lo = np.where(grow, hi, lo)
                hi = np.where(grow, 2.0 * hi, hi)
                grow = np.isfinite(hi) & (excess(hi) > 0)
        for _ in range(60):
            mid = np.sqrt(lo * hi)
            pos = excess(mid) > 0
            lo = np.where(pos, mid, lo)
            hi = np.where(pos, hi, mid)
        out[live] = np.where(np.isfinite(hi), 0.5 * (lo + hi), np.inf)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SqrtGain(Gain):
    r"""The paper's gain, eq. (2): :math:`g(x) = \sqrt{K/N} - \sqrt{K/(N + x)}`.

    Examples
    --------
    >>> g = SqrtGain()
    >>> float(g.value(300.0, N=100.0, K=400.0))  # sqrt(4) - sqrt(1)
    1.0
    >>> float(g.threshold(1.0, n=300.0, N=100.0, K=400.0))  # g(300) - g(0) = 1
    300.0
    """

    name = "sqrt"

    def value(self, x: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Return :math:`g(x)`, written without cancellation for small ``x``."""
        # sqrt(K/N) - sqrt(K/(N+x)) = sqrt(K) x / (sqrt(N) sqrt(N+x) (sqrt(N) + sqrt(N+x)))
        x, N, K = (np.asarray(a, dtype=float) for a in (x, N, K))
        sN, sNx = np.sqrt(N), np.sqrt(N + x)
        return np.sqrt(K) * x / (sN * sNx * (sN + sNx))

    def increment(self, x: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Return :math:`g(x) - g(x - n)` without cancellation."""
        # with u = N + x: sqrt(K) (1/sqrt(u-n) - 1/sqrt(u)), written without cancellation
        x, n, N, K = (np.asarray(a, dtype=float) for a in (x, n, N, K))
        su, sv = np.sqrt(N + x), np.sqrt(N + x - n)
        return np.sqrt(K) * n / (su * sv * (su + sv))

    def threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        r"""Solve :math:`\sqrt{K}\,((N+T-n)^{-1/2} - (N+T)^{-1/2}) = w` for ``T``.

        With :math:`q = n/(N+T) \in (0, 1)` the equation becomes universal,
        :math:`\varphi(q) = q^{3/2} / (r(1+r)) = \sigma` with :math:`r = \sqrt{1-q}`
        and :math:`\sigma = w\sqrt{n/K}`. A precomputed table of
        :math:`\log\varphi` against :math:`\operatorname{logit} q` gives a start
        with relative error about ``1e-5``; Newton's method on the
        cancellation-free increment in ``T`` (convex and decreasing, so it
        converges from any start in :math:`[n, \infty)`) then runs until the
        relative step is below ``1e-11``, plus one step (three or four in all;
        the last leaves only round-off).
        """
        w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, n, N, K)))
        out = np.zeros(w.shape)
        out[w <= 0] = np.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            live = (w > 0) & (K > 0) & (self.value(n, N, K) >= w)
        if not live.any():
            return out
        wl, nl, Nl, sK = w[live], n[live], N[live], np.sqrt(K[live])
        log_sigma = np.log(wl * np.sqrt(nl) / sK)
        z = np.interp(log_sigma, _SQRT_LOG_PHI, _SQRT_LOGIT_Q)
        # beyond the table, the asymptotes q ~ (2 sigma)^(2/3) (q -> 0), 1 - q ~ sigma^-2 (q -> 1)
        z = np.where(log_sigma < _SQRT_LOG_PHI[0], (2.0 / 3.0) * (np.log(2.0) + log_sigma), z)
        z = np.where(log_sigma > _SQRT_LOG_PHI[-1], 2.0 * log_sigma, z)
        t = np.maximum(nl * (1.0 + np.exp(-z)) - Nl, nl)  # n / q - N
        converged = False
        for _ in range(50):
            su, sv = np.sqrt(Nl + t), np.sqrt(Nl + t - nl)
            excess = sK * nl / (su * sv * (su + sv)) - wl
            # d/dT = (sK/2)(su^-3 - sv^-3), with su - sv = n / (su + sv) taken out exactly
            cube_gap = nl * (su * su + su * sv + sv * sv) / (su + sv)
            slope = -0.5 * sK * cube_gap / (su * su * su * sv * sv * sv)  # < 0
            new = np.maximum(t - excess / slope, nl)
            if converged:  # one step past 1e-11 is quadratic: at round-off level
                t = new
                break
            converged = bool(np.all(np.abs(new - t) <= 1e-11 * new))
            t = new
        out[live] = t
        return out


def _sqrt_gain_table(points: int = 4001) -> tuple[FloatArray, FloatArray]:
    r"""Tabulate :math:`\log\varphi(q)` against :math:`z = \operatorname{logit} q` (SqrtGain)."""
    z = np.linspace(-70.0, 40.0, points)
    q = 1.0 / (1.0 + np.exp(-z))
    r = np.sqrt(1.0 / (1.0 + np.exp(z)))  # sqrt(1 - q) without cancellation
    log_phi = 1.5 * np.log(q) - np.log(r) - np.log1p(r)
    return log_phi, z


_SQRT_LOG_PHI, _SQRT_LOGIT_Q = _sqrt_gain_table()


class LogGain(Gain):
    r"""A logarithmic gain :math:`g(x) = K \log(1 + x/N)`.

    Concave, increasing, ``g(0) = 0``; unbounded, unlike :class:`SqrtGain`.
    Its threshold has the closed form
    :math:`T = n / (1 - e^{-w/K}) - N` whenever :math:`0 < w \le g(n)`.

    Examples
    --------
    >>> g = LogGain()
    >>> round(float(g.value(100.0, N=100.0, K=2.0)), 12)  # 2 log 2
    1.38629436112
    """

    name = "log"

    def value(self, x: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        r"""Return :math:`K \log(1 + x/N)`."""
        x, N, K = (np.asarray(a, dtype=float) for a in (x, N, K))
        return K * np.log1p(x / N)

    def increment(self, x: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        r"""Return :math:`K \log(1 + n/(N + x - n))`."""
        x, n, N, K = (np.asarray(a, dtype=float) for a in (x, n, N, K))
        return K * np.log1p(n / (N + x - n))

    def threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Solve in closed form: T = n / (1 - exp(-w/K)) - N; 0 if none, inf if ``w <= 0``."""
        w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, n, N, K)))
        out = np.zeros(w.shape)
        out[w <= 0] = np.inf
        with np.errstate(divide="ignore", invalid="ignore"):
            live = (w > 0) & (K > 0) & (self.value(n, N, K) >= w)
        wl, nl, Nl, Kl = w[live], n[live], N[live], K[live]
        out[live] = np.maximum(nl / -np.expm1(-wl / Kl) - Nl, nl)
        return out


#: registry of named gains accepted by ``Market(gain=...)``
GAINS: dict[str, type[Gain]] = {"sqrt": SqrtGain, "paper": SqrtGain, "log": LogGain}


def get_gain(gain: str | Gain | None) -> Gain:
    """Return a :class:`Gain` from a name in :data:`GAINS`, an instance, or ``None`` (paper's)."""
    if gain is None:
        return SqrtGain()
    if isinstance(gain, Gain):
        return gain
    if isinstance(gain, str) and gain in GAINS:
        return GAINS[gain]()
    raise ValueError(
        f"Market: gain = {gain!r} is not a Gain instance or one of {sorted(GAINS)}"
    )
