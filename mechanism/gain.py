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
    (payments, eq. (10)).
``increment_from(y, n, N, K)``
    :math:`g(y + n) - g(y)`, the same difference given the data ``y \ge 0``
    imported besides the ``n`` points. Subclasses compute it without
    cancellation; callers that know ``y`` as a sum of other clients' data (the
    payments of eq. (10)) use it rather than ``increment``, whose ``x - n``
    rounds away ``y`` when ``n`` dwarfs it.
``threshold(w, n, N, K)``
    the threshold data amount :math:`T \ge n` solving
    :math:`g(T) - g(T - n) = w` (Algorithm 2). Since :math:`g` is concave the
    left side decreases in :math:`T`, so the root is unique in exact arithmetic.
    In floating point the computed increment is a nonincreasing step function
    of ``T`` that may be flat over a whole interval at ``w`` (a plateau: wide
    when the gains are subnormal, or where ``N + T - n`` rounds to ``N``), so
    "the root" is ambiguous. Algorithm 2 imports ``j`` on top of ``x`` other
    points iff the marginal gain strictly exceeds its price,
    :math:`g(x + n) - g(x) > w`, so we return the **smallest root**: the
    smallest double :math:`T^* \ge n` with ``increment(T, n, N, K) <= w``
    (``+inf`` when there is none). Then :math:`x + n < T^*` exactly when the
    computed increment at :math:`x + n` exceeds ``w``, and every solver (the
    closed forms, Newton, the generic bisection, the scalar reference of
    :mod:`mechanism.reference`) returns the same double. By the paper's
    convention the threshold is ``0`` when there is no solution (``w`` exceeds
    :math:`g(n)`, the most the ``n`` points can ever be worth). When ``w <= 0``
    and the gain is not identically zero we set it to ``+inf`` (the collaborator
    is worth taking at any size; the paper is silent). When the gain is
    identically zero (:math:`K_i = 0`, Definition 2: "a pure model seller [who]
    will not buy models") every ``T`` solves a ``w = 0`` equation; we read the
    threshold as ``0``: a client that gains nothing imports nothing.

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

__all__ = ["GAINS", "Gain", "LogGain", "SqrtGain", "check_gain", "get_gain"]

FloatArray = NDArray[np.float64]


class Gain(ABC):
    r"""A concave, increasing gain ``g(x; N, K)`` with ``g(0) = 0``.

    Subclasses must define :meth:`value`; :meth:`increment` and
    :meth:`threshold` have generic (correct but slower) defaults.
    ``Market`` refuses a custom gain that is not ``0`` at ``0``, nondecreasing and
    concave on a grid of data amounts for the market's clients (:func:`check_gain`).

    What each part of the package needs from a gain:

    * Algorithm 2, payments, utilities, ``exact_graph(solver="bruteforce")`` and
      ``"dp"``: :meth:`value` only (plus the generic :meth:`increment` and
      :meth:`threshold`).
    * ``exact_graph(solver="milp")`` / ``"highs"``: also ``derivative(x, N, K)``,
      :math:`g'(x)`, for the tangent cuts of the outer approximation (it must be
      exact: a tangent with a wrong slope may cut off the optimum). ``SqrtGain`` and
      ``LogGain`` have it; without it these solvers refuse with a message.
    * The Theorem 3 check (``proofs_checks``) uses the paper's square-root gain's
      supremum :math:`\sqrt{K_j/N_j}` in its message and bound; it is meant for
      :class:`SqrtGain` markets, which are what the audit draws.
    """

    #: short name used by :func:`get_gain` and in reports
    name: str = "custom"

    @abstractmethod
    def value(self, x: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Return :math:`g(x)` for a client with data size ``N`` and eagerness ``K``."""

    def increment(self, x: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Return :math:`g(x) - g(x - n)`, the gain of the last ``n`` of ``x`` points."""
        n = np.asarray(n, dtype=float)
        return self.increment_from(np.asarray(x, dtype=float) - n, n, N, K)

    def increment_from(self, y: ArrayLike, n: ArrayLike, N: ArrayLike,
                       K: ArrayLike) -> FloatArray:
        """Return :math:`g(y + n) - g(y)`: the gain of ``n`` more points on top of ``y``.

        Generic method: the plain difference. Subclasses override it with a
        cancellation-free formula.
        """
        y, n = np.asarray(y, dtype=float), np.asarray(n, dtype=float)
        return self.value(y + n, N, K) - self.value(y, N, K)

    def threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        r"""Solve :math:`g(T) - g(T - n) = w` for :math:`T \ge n` (Algorithm 2).

        Returns ``0`` where there is no solution (``w > g(n)``) or the gain is
        identically zero, and ``+inf`` where ``w <= 0`` (gain not identically
        zero) or where the increments never fall to ``w`` (a gain with a
        positive slope at infinity). Otherwise the smallest root (the smallest
        double ``T >= n`` whose computed increment is ``<= w``, see the module
        docstring). Generic method: doubling bracket, 60 bisection steps on
        :math:`\log T`, then :meth:`smallest_root`.
        """
        w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, n, N, K)))
        out = np.zeros(w.shape)
        gn = self.value(n, N, K)
        out[(w <= 0) & (gn > 0)] = np.inf
        live = (w > 0) & (gn >= w)
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
        out[live] = self.smallest_root(hi, wl, nl, Nl, Kl)
        return out

    def smallest_root(self, t: ArrayLike, w: ArrayLike, n: ArrayLike, N: ArrayLike,
                      K: ArrayLike) -> FloatArray:
        r"""Step from a root estimate ``t >= n`` to the smallest root :math:`T^*`.

        :math:`T^*` is the smallest double ``T >= n`` with
        ``increment(T, n, N, K) <= w`` (``+inf`` if none): Algorithm 2's
        strict test at ties (see the module docstring). Positive doubles are
        ordered like their bit patterns, so this gallops from ``t`` in steps of
        1, 4, 16, ... units in the last place until ``T^*`` is bracketed, then
        bisects the bit patterns until the bracket is two adjacent doubles.
        When ``t`` is within an ulp (an accurate closed form or Newton off a
        plateau) that costs two increments per entry; on a plateau of width
        ``k`` ulps about ``2 log2 k`` more. Relies on the computed increment being
        nonincreasing in ``T`` (each step of the built-in formulas is a correctly
        rounded monotone operation, ``log1p`` up to its ulp).
        """
        t, w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (t, w, n, N, K)))
        shape = t.shape
        t, w, n, N, K = (a.ravel() for a in (t, w, n, N, K))
        b = np.maximum(t, n).view(np.int64).copy()
        bn = n.view(np.int64)
        b_inf = np.array(np.inf).view(np.int64)

        def below(bits: NDArray[np.int64], idx: NDArray[np.intp] | None) -> NDArray[np.bool_]:
            """Whether the increment at the doubles ``bits`` is ``<= w`` (at ``inf``: yes)."""
            sub = (n, N, K, w) if idx is None else (n[idx], N[idx], K[idx], w[idx])
            with np.errstate(over="ignore", invalid="ignore", under="ignore", divide="ignore"):
                res = np.asarray(self.increment(bits.view(np.float64), *sub[:3]) <= sub[3])
            return res | (bits >= b_inf)

        # invariant: the root lies in (lo, hi]; lo = bits(n) - 1 stands for "below n"
        ok = below(b, None)
        # first step, on whole arrays: the doubles next to t (below if t is a root)
        cand = np.where(ok, np.maximum(b - 1, bn), np.minimum(b + 1, b_inf))
        is_root = below(cand, None)
        hi = np.where(ok, np.where(is_root, cand, b), np.where(is_root, cand, b_inf))
        lo = np.where(ok, np.where(is_root, bn - 1, cand), np.where(is_root, b, cand))
        hi = np.where(ok & (b == bn), bn, hi)  # t = n is a root: the smallest
        lo = np.where(ok & (b == bn), bn - 1, lo)
        down = np.flatnonzero(ok & is_root & (cand > bn))
        up = np.flatnonzero(~ok & ~is_root & (cand < b_inf))
        step = 4
        while down.size or up.size:
            if down.size:  # hi is a root: is the double ``step`` below t still one?
                cand = b[down] - np.minimum(step, b[down] - bn[down])
                is_root = below(cand, down)
                hi[down] = np.where(is_root, cand, hi[down])
                lo[down] = np.where(is_root, bn[down] - 1, cand)
                down = down[is_root & (cand > bn[down])]
            if up.size:  # lo is not a root: is the double ``step`` above t one?
                cand = b[up] + np.minimum(step, b_inf - b[up])
                is_root = below(cand, up)
                lo[up] = np.where(is_root, lo[up], cand)
                hi[up] = np.where(is_root, cand, b_inf)
                up = up[~is_root & (cand < b_inf)]
            step = min(4 * step, np.iinfo(np.int64).max)  # then the clamps above end it
        todo = np.flatnonzero(hi - lo > 1)
        while todo.size:
            mid = lo[todo] + (hi[todo] - lo[todo]) // 2
            is_root = below(mid, todo)
            hi[todo] = np.where(is_root, mid, hi[todo])
            lo[todo] = np.where(is_root, lo[todo], mid)
            todo = todo[hi[todo] - lo[todo] > 1]
        return hi.view(np.float64).reshape(shape)

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

    def increment_from(self, y: ArrayLike, n: ArrayLike, N: ArrayLike,
                       K: ArrayLike) -> FloatArray:
        r"""Return :math:`g(y + n) - g(y)` without cancellation.

        With :math:`s_u = \sqrt{N + y + n}` and :math:`s_v = \sqrt{N + y}`,
        :math:`\sqrt K (1/s_v - 1/s_u) = \sqrt K\, n / (s_u s_v (s_u + s_v))`
        (since :math:`s_u^2 - s_v^2 = n`): only sums of non-negative terms, so
        the relative error is a few ulps whatever the ratio of ``n`` to ``N + y``.
        """
        y, n, N, K = (np.asarray(a, dtype=float) for a in (y, n, N, K))
        v = N + y
        su, sv = np.sqrt(v + n), np.sqrt(v)
        return np.sqrt(K) * n / (su * sv * (su + sv))

    def threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        r"""Solve :math:`\sqrt{K}\,((N+T-n)^{-1/2} - (N+T)^{-1/2}) = w` for ``T``.

        See :meth:`estimate_threshold` (the method) and :meth:`Gain.smallest_root`
        (the last step, to the smallest root).
        """
        return self.estimate_threshold(w, n, N, K, smallest=True)

    def estimate_threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike,
                           smallest: bool = False) -> FloatArray:
        r"""Return the threshold to round-off; with ``smallest=True``, the smallest root.

        ``smallest=False`` may be an ulp, or a plateau, away from the smallest root:
        enough for a guess (the first cut of :func:`mechanism.graph.greedy_graph`).

        With :math:`q = n/(N+T) \in (0, 1)` the equation becomes universal,
        :math:`\varphi(q) = q^{3/2} / (r(1+r)) = \sigma` with :math:`r = \sqrt{1-q}`
        and :math:`\sigma = w\sqrt{n/K}`. A table of :math:`\operatorname{logit} q`
        on a uniform grid of :math:`\log\sigma` gives a start with relative error
        below about ``1e-4`` (asymptotes beyond the table). Newton's method on
        the equation in ``T`` (convex and decreasing there, so it converges from
        any start in :math:`[n, \infty)`) then takes two steps, and more only for
        entries whose last step exceeded ``1e-7`` relative; since the error after
        a step is about :math:`1.25\,(\text{step}/T)^2`, that leaves round-off,
        which :meth:`Gain.smallest_root` removes (``smallest=True``).

        With :math:`s_u = \sqrt{N+T}`, :math:`s_v = \sqrt{N+T-n}`, :math:`P = s_u s_v`,
        :math:`S = s_u + s_v` the increment is :math:`\sqrt K n / (P S)` and its
        derivative :math:`-\tfrac12\sqrt K n (S^2 - P) / (S P^3)`, so a Newton step is
        :math:`T \mathrel{+}= 2 (\sqrt K n - w P S) P^2 / (\sqrt K n (S^2 - P))`:
        two square roots and one division, with no cancellation but the residual's.
        """
        w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, n, N, K)))
        out = np.zeros(w.shape)
        gn = self.value(n, N, K)
        out[(w <= 0) & (gn > 0)] = np.inf
        live = (w > 0) & (gn >= w)
        if not live.any():
            return out
        wl, nl, Nl = w[live], n[live], N[live]
        skn = np.sqrt(K[live]) * nl
        with np.errstate(divide="ignore", under="ignore", over="ignore"):
            log_sigma = np.log(wl * nl * np.sqrt(nl) / skn)  # sigma = w sqrt(n / K)
        bad = ~np.isfinite(log_sigma)  # sigma under- or overflows at the domain's edges
        if bad.any():
            log_sigma[bad] = (np.log(wl[bad]) + 1.5 * np.log(nl[bad]) - np.log(skn[bad]))
        t = np.maximum(nl * (1.0 + np.exp(-_sqrt_logit_q(log_sigma))) - Nl, nl)  # n / q - N

        def newton(t: FloatArray, w: FloatArray, n: FloatArray, N: FloatArray,
                   skn: FloatArray) -> FloatArray:
            su, sv = np.sqrt(N + t), np.sqrt(N + (t - n))  # t - n exact near t = n
            P, S = su * sv, su + sv
            with np.errstate(over="ignore", invalid="ignore"):
                step = 2.0 * (skn - w * P * S) * P * P / (skn * (S * S - P))
                bad = ~np.isfinite(step)
                if bad.any():  # P * P overflows when w is tiny (T near 1e200): reorder
                    Pb, Sb = P[bad], S[bad]
                    step[bad] = (2.0 * (1.0 - w[bad] * Pb * Sb / skn[bad])
                                 * (Pb * (Pb / (Sb * Sb - Pb))))
            return np.maximum(t + step, n)

        t = newton(t, wl, nl, Nl, skn)
        new = newton(t, wl, nl, Nl, skn)
        todo = np.flatnonzero(np.abs(new - t) > 1e-7 * new)
        t = new
        for _ in range(100):  # rare: starts far from the root (outside the table)
            if todo.size == 0:
                break
            old = t[todo]
            t[todo] = newton(old, wl[todo], nl[todo], Nl[todo], skn[todo])
            todo = todo[np.abs(t[todo] - old) > 1e-7 * t[todo]]
            if todo.size == 0:  # one more step past the 1e-7 test: round-off
                break
        out[live] = self.smallest_root(t, wl, nl, Nl, K[live]) if smallest else t
        return out


def _build_sqrt_table(points: int = 8001) -> tuple[float, float, FloatArray]:
    r"""Tabulate :math:`\operatorname{logit} q` on a uniform grid of :math:`\log\varphi(q)`."""
    z = np.linspace(-75.0, 45.0, 40 * points)
    q = 1.0 / (1.0 + np.exp(-z))
    r = np.sqrt(1.0 / (1.0 + np.exp(z)))  # sqrt(1 - q) without cancellation
    log_phi = 1.5 * np.log(q) - np.log(r) - np.log1p(r)
    grid = np.linspace(log_phi[0], log_phi[-1], points)
    return float(grid[0]), float(grid[1] - grid[0]), np.interp(grid, log_phi, z)


_SQRT_LS0, _SQRT_STEP, _SQRT_Z = _build_sqrt_table()


def _sqrt_logit_q(log_sigma: FloatArray) -> FloatArray:
    r"""Start :math:`\operatorname{logit} q` from :math:`\log\sigma` (SqrtGain.threshold).

    Linear interpolation in the uniform table; beyond it the asymptotes
    :math:`q \approx (2\sigma)^{2/3}` as :math:`q \to 0` and
    :math:`1 - q \approx \sigma^{-2}` as :math:`q \to 1`.
    """
    pos = (log_sigma - _SQRT_LS0) / _SQRT_STEP
    k = np.clip(pos.astype(np.int64), 0, _SQRT_Z.size - 2)
    frac = np.clip(pos - k, 0.0, 1.0)
    z = _SQRT_Z[k] + frac * (_SQRT_Z[k + 1] - _SQRT_Z[k])
    z = np.where(pos < 0, (2.0 / 3.0) * (np.log(2.0) + log_sigma), z)
    return np.where(pos > _SQRT_Z.size - 1, 2.0 * log_sigma, z)


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

    def increment_from(self, y: ArrayLike, n: ArrayLike, N: ArrayLike,
                       K: ArrayLike) -> FloatArray:
        r"""Return :math:`g(y + n) - g(y) = K \log(1 + n/(N + y))` without cancellation."""
        y, n, N, K = (np.asarray(a, dtype=float) for a in (y, n, N, K))
        return K * np.log1p(n / (N + y))

    def threshold(self, w: ArrayLike, n: ArrayLike, N: ArrayLike, K: ArrayLike) -> FloatArray:
        """Solve in closed form, T = n / (1 - exp(-w/K)) - N, then step to the smallest root.

        The closed form is within a few ulps of :math:`N` of the root (``- N``
        cancels); :meth:`Gain.smallest_root` then moves it to the smallest double
        whose computed increment is ``<= w`` (conventions as in :class:`Gain`).
        """
        w, n, N, K = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (w, n, N, K)))
        out = np.zeros(w.shape)
        gn = self.value(n, N, K)
        out[(w <= 0) & (gn > 0)] = np.inf
        live = (w > 0) & (gn >= w)
        wl, nl, Nl, Kl = w[live], n[live], N[live], K[live]
        with np.errstate(divide="ignore", under="ignore", over="ignore"):  # w/K -> 0: T = inf
            t = np.maximum(nl / -np.expm1(-wl / Kl) - Nl, nl)
        out[live] = self.smallest_root(t, wl, nl, Nl, Kl)
        return out


def check_gain(gain: Gain, N: ArrayLike, K: ArrayLike, points: int = 40) -> None:
    """Refuse a gain that is not ``0`` at ``0``, nondecreasing and concave.

    Checked numerically for every client on ``x = 0`` and ``N_i * 10**t`` for
    ``t`` in ``[-3, 4]`` (``points`` values), to a relative tolerance of ``1e-9``.

    Raises
    ------
    ValueError
        Naming the gain, the client and the property that fails.

    Examples
    --------
    >>> class Convex(Gain):
    ...     def value(self, x, N, K):
    ...         return np.asarray(K, float) * np.asarray(x, float) ** 2
    >>> check_gain(Convex(), [1.0, 2.0], [1.0, 1.0])
    Traceback (most recent call last):
    ...
    ValueError: Market: gain Convex() is not concave for client 0 (slopes rise near x = 0.492)
    """
    N = np.asarray(N, dtype=float)[:, None]
    K = np.asarray(K, dtype=float)[:, None]
    x = np.concatenate([[0.0], np.logspace(-3, 4, points)])[None, :] * N
    with np.errstate(all="ignore"):
        g = np.asarray(gain.value(x, N, K), dtype=float) * np.ones_like(x)
    scale = np.maximum(np.abs(g).max(axis=1, keepdims=True), 1e-300)
    bad = ~np.isfinite(g)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"Market: gain {gain!r} is not finite for client {i} at x = {x[i, k]:.3g}")
    tol = 1e-9 * scale
    if (np.abs(g[:, 0:1]) > tol).any():
        i = int(np.flatnonzero(np.abs(g[:, 0]) > tol[:, 0])[0])
        raise ValueError(f"Market: gain {gain!r} has g(0) = {g[i, 0]:.6g} for client {i}; "
                         "a gain must be 0 when nothing is imported")
    dg = np.diff(g, axis=1)
    if (dg < -tol).any():
        i, k = np.argwhere(dg < -tol)[0]
        raise ValueError(f"Market: gain {gain!r} decreases for client {i} near x = "
                         f"{x[i, k + 1]:.3g}; a gain must be increasing")
    slope = dg / np.diff(x, axis=1)
    rise = np.diff(slope, axis=1) * np.diff(x, axis=1)[:, 1:] > tol
    if rise.any():
        i, k = np.argwhere(rise)[0]
        raise ValueError(f"Market: gain {gain!r} is not concave for client {i} (slopes rise "
                         f"near x = {x[i, k + 1]:.3g})")


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
