r"""The market: every client's reported profile, the model distances and lambda.

A :class:`Market` is the complete input of one round of the mechanism
(Methods 4.1): for each client ``i`` its data size :math:`N_i`, sharing cost
:math:`c_i` (Definition 3) and data eagerness :math:`K_i` (eq. (2)); the
pairwise model distances :math:`d_{ij} = d(\theta_i, \theta_j)`; the weight
:math:`\lambda` of model distance in eq. (4); and the gain family.

It is immutable and validated on construction, so every function of the
mechanism can take it as trusted input. From it derive the import weights

.. math:: w_{ij} = c_j + \lambda \frac{N_j}{N_i} d_{ij},

the per-import price client ``i`` pays in its objective :math:`\phi_i` (eq. (8)).
The diagonal of ``w`` is ``+inf``: a client never imports itself.

Roles (Results 2.3): ``c_i = math.inf`` is a pure buyer (nobody may import its
model); ``K_i = 0`` is a pure seller (it gains nothing from imports).

Numeric domain. The guarantees of the mechanism (finite outputs, budget
balance to ``1e-9`` relative, individual rationality up to the rounding
tolerance of :func:`mechanism.payments.ir_tolerance`, graphs equal to the scalar
reference) are checked for markets with

=========  =======================================================
field      domain (:data:`DOMAIN`)
=========  =======================================================
``N_i``    ``[1e-3, 1e12]`` (any ratio between clients)
``c_i``    ``[0, 1e9]``, or ``math.inf`` (pure buyer)
``K_i``    ``[0, 1e12]``
``lam``    ``[0, 1e6]``
``d_ij``   ``[0, 1e6]`` off the diagonal (the diagonal is ignored)
=========  =======================================================

and :class:`Market` refuses anything outside it with a ``ValueError`` naming
the field, the index and the value. Beyond it double precision runs out: a
data ratio of ``2**53`` makes ``N_i + N_j == N_j``, ``K = 1e300`` overflows
the threshold equation, subnormal ``N`` makes ``K/N`` infinite.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .gain import Gain, LogGain, SqrtGain, check_gain, get_gain

__all__ = ["DOMAIN", "Market", "require_market"]

#: closed interval of each field inside which the mechanism's guarantees hold;
#: ``c`` may also be ``math.inf`` (a pure buyer), the diagonal of ``d`` is ignored
DOMAIN: dict[str, tuple[float, float]] = {
    "N": (1e-3, 1e12),
    "c": (0.0, 1e9),
    "K": (0.0, 1e12),
    "lam": (0.0, 1e6),
    "d": (0.0, 1e6),
}


@dataclass(frozen=True, eq=False)
class Market:
    r"""Reported profiles of ``m >= 2`` clients plus distances: one round's input.

    Parameters
    ----------
    N : array_like, shape (m,)
        Data sizes :math:`N_i \in [10^{-3}, 10^{12}]` (the numeric domain, see
        :data:`DOMAIN`).
    c : array_like, shape (m,)
        Sharing costs :math:`c_i \in [0, 10^9]`; ``math.inf`` marks a pure buyer.
    K : array_like, shape (m,)
        Data eagerness :math:`K_i \in [0, 10^{12}]`; ``0`` marks a pure seller.
    d : array_like, shape (m, m), optional
        Model distances :math:`d_{ij} \in [0, 10^6]`. The diagonal is ignored
        (stored as 0). Default: all zero.
    lam : float, optional
        :math:`\lambda \in [0, 10^6]`, weight of the model distance (eq. (4)).
        Default 1.
    gain : str or Gain, optional
        ``"sqrt"`` (the paper's eq. (2), default), ``"log"``, or a :class:`Gain`.
    points : array_like, shape (m, p), optional
        Instead of ``d``: one point :math:`x_i \in \mathbb R^p` per client, with
        :math:`d_{ij} = \|x_i - x_j\|^2` (:func:`mechanism.points.pair_distances`),
        never materialised as a matrix; ``d`` is then ``None``. Such a market is
        solved by :func:`mechanism.points.solve_points` (a nearest-neighbour index,
        see ``docs/scale.md``); the dense functions refuse it unless it is first
        made dense with :meth:`dense`. The points must be finite and their bounding
        box's squared diagonal inside the domain of ``d`` (a sufficient condition
        for every :math:`d_{ij} \le 10^6`).

    Raises
    ------
    ValueError
        On any invalid field or one outside the numeric domain, naming the
        field, the client index and the value (also for Python integers too
        large for a float).

    Examples
    --------
    >>> mk = Market(N=[100, 200, 300], c=[0.1, 0.2, math.inf], K=[400, 0, 900])
    >>> mk.m
    3
    >>> mk.roles
    ('trader', 'seller', 'buyer')
    """

    N: NDArray[np.float64]
    c: NDArray[np.float64]
    K: NDArray[np.float64]
    d: NDArray[np.float64] | None = None
    lam: float = 1.0
    gain: Gain | str | None = field(default=None)
    points: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        points = None
        if self.points is not None:
            if self.d is not None:
                raise ValueError("Market: give d or points, not both")
            points = _points(self.points, np.asarray(self.N).shape)
        N, c, K, d, lam, gain = _validate(self.N, self.c, self.K, self.d, self.lam, self.gain,
                                          points=points is not None)
        for name, value in (("N", N), ("c", c), ("K", K), ("d", d), ("lam", lam), ("gain", gain),
                            ("points", points)):
            object.__setattr__(self, name, value)

    def dense(self) -> Market:
        """Return this market with the ``m x m`` matrix ``d`` (from :attr:`points` if given).

        The distances are :func:`mechanism.points.pairwise_distances` of the points,
        the same doubles :func:`mechanism.points.solve_points` computes pair by pair.
        """
        if self.points is None:
            return self
        from .points import pairwise_distances  # points imports market

        return dataclasses.replace(self, d=pairwise_distances(self.points), points=None)

    @property
    def m(self) -> int:
        """Number of clients."""
        return int(self.N.shape[0])

    @cached_property
    def weights(self) -> NDArray[np.float64]:
        r"""Import weights :math:`w_{ij} = c_j + \lambda (N_j/N_i) d_{ij}`; ``inf`` on the diagonal.

        This is the per-import term of :math:`\phi_i` in eq. (8) and the right-hand
        side of the threshold equation of Algorithm 2. The paper prints the ratio as
        ``N_i/N_i`` in Algorithm 2's text and in eq. (10)'s gloss; we read
        ``N_j/N_i`` as in eqs. (4), (5), (8) and (10).
        """
        require_market("Market.weights", self)
        w = self.c[None, :] + self.lam * (self.N[None, :] / self.N[:, None]) * self.d
        np.fill_diagonal(w, np.inf)
        w.setflags(write=False)
        return w

    @property
    def roles(self) -> tuple[str, ...]:
        """Each client's role: ``'buyer'`` (c = inf), ``'seller'`` (K = 0), ``'trader'``."""
        return tuple(
            "buyer" if math.isinf(ci) else "seller" if ki == 0 else "trader"
            for ci, ki in zip(self.c, self.K, strict=True)
        )

    def replace(self, **changes: object) -> Market:
        """Return a validated copy with whole fields replaced, e.g. ``mk.replace(lam=0.5)``."""
        return dataclasses.replace(self, **changes)

    def with_report(self, i: int, **report: float) -> Market:
        """Return the market in which client ``i`` reports other values of ``N``, ``c`` or ``K``.

        Examples
        --------
        >>> mk = Market(N=[100, 200], c=[0.1, 0.2], K=[400, 400])
        >>> mk.with_report(0, c=0.5).c.tolist()
        [0.5, 0.2]
        """
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < self.m:
            raise ValueError(f"with_report: i = {i!r} is not a client index (0 <= i < {self.m})")
        changes = {}
        for name, value in report.items():
            if name not in ("N", "c", "K"):
                raise ValueError(f"with_report: field {name!r} is not one of 'N', 'c', 'K'")
            arr = getattr(self, name).copy()
            arr[i] = value
            changes[name] = arr
        return self.replace(**changes)

    def __repr__(self) -> str:
        return f"Market(m={self.m}, lam={self.lam}, gain={self.gain!r})"


def require_market(where: str, market: object) -> None:
    """Raise ``TypeError`` unless ``market`` is a :class:`Market` (public entry points).

    A market given by points (``d is None``) is refused with a ``ValueError``: the
    dense functions need the matrix; :mod:`mechanism.points` solves it without.
    """
    if not isinstance(market, Market):
        raise TypeError(f"{where}: market must be a Market, got {type(market).__name__} "
                        f"{market!r:.60}")
    if market.d is None:
        raise ValueError(f"{where}: this market is given by points (m = {market.m}); solve it "
                         "with mechanism.points.solve_points, or call market.dense() first")


def _points(value: ArrayLike, n_shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Validate ``points``: shape (m, p), finite, bounding box inside the domain of ``d``."""
    try:
        X = np.array(value, dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"Market: points must be an m x p array of numbers ({exc})") from None
    m = n_shape[0] if len(n_shape) == 1 else -1
    if X.ndim != 2 or X.shape[0] != m or X.shape[1] < 1:
        raise ValueError(f"Market: points has shape {X.shape}, expected ({m}, p) with p >= 1")
    _first_bad("points", X, ~np.isfinite(X), "must be finite")
    span = float(np.sum((X.max(axis=0) - X.min(axis=0)) ** 2)) if m else 0.0
    hi = DOMAIN["d"][1]
    if span > hi:
        raise ValueError(f"Market: points span a squared bounding-box diagonal of {span:g}, "
                         f"outside the numeric domain of d [0, {hi:g}]")
    X.setflags(write=False)
    return X


def _huge(value: object) -> str:
    """Print a number too large for a float (a Python int) as ``~1e+400``."""
    try:
        sign = "-" if value < 0 else ""  # type: ignore[operator]
        return f"~{sign}1e+{int(math.log10(abs(value)))}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{value!r:.60}"


def _overflow(name: str, value: ArrayLike) -> ValueError:
    """Name the first entry of ``value`` that does not fit a float (huge Python ints)."""
    arr = np.array(value, dtype=object)
    for idx in np.ndindex(arr.shape):
        try:
            float(arr[idx])
        except OverflowError:
            where = f"{name}[{', '.join(map(str, idx))}]" if arr.ndim else name
            lo, hi = DOMAIN[name]
            return ValueError(f"Market: {where} = {_huge(arr[idx])} is too large for a float "
                              f"(the domain is [{lo:g}, {hi:g}])")
        except (TypeError, ValueError):
            continue
    return ValueError(f"Market: {name} does not fit in floats")


def _vector(name: str, value: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.array(value, dtype=float)
    except OverflowError:
        raise _overflow(name, value) from None
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Market: {name} must be an array of numbers ({exc})") from None
    if arr.ndim != 1:
        raise ValueError(f"Market: {name} must be 1-dimensional, got shape {arr.shape}")
    return arr


def _first_bad(name: str, arr: NDArray[np.float64], bad: NDArray[np.bool_], rule: str) -> None:
    """Raise naming the first offending entry, e.g. ``Market: N[2] = -1.0 must be > 0``."""
    if bad.any():
        idx = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"Market: {name}[{', '.join(map(str, idx))}] = {float(arr[idx])!r} {rule}")


def _validate(N, c, K, d, lam, gain, points=False):  # noqa: ANN001, ANN202 (private)
    N, c, K = _vector("N", N), _vector("c", c), _vector("K", K)
    m = N.shape[0]
    if m < 2:
        raise ValueError(f"Market: needs at least 2 clients, got N of length {m}")
    for name, arr in (("c", c), ("K", K)):
        if arr.shape[0] != m:
            raise ValueError(f"Market: {name} has length {arr.shape[0]}, expected m = {m} (len(N))")
    if points:
        d = np.zeros((0, 0))  # distances come from the points; nothing to check here
    elif d is None:
        d = np.zeros((m, m))
    else:
        try:
            d = np.array(d, dtype=float)
        except OverflowError:
            raise _overflow("d", d) from None
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Market: d must be an m x m array of numbers ({exc})") from None
        if d.shape != (m, m):
            raise ValueError(f"Market: d has shape {d.shape}, expected ({m}, {m})")
    # a d inside the domain everywhere (the usual case) passes every d rule: two
    # reductions instead of several (m, m) boolean temporaries
    d_clean = points or (bool(d.min() >= DOMAIN["d"][0]) and bool(d.max() <= DOMAIN["d"][1]))
    fields = (("N", N), ("c", c), ("K", K)) + ((("d", d),) if not d_clean else ())
    for name, arr in fields:
        _first_bad(name, arr, np.isnan(arr), "is NaN")
    _first_bad("N", N, ~(N > 0) | ~np.isfinite(N), "must be finite and > 0")
    _first_bad("c", c, c < 0, "must be >= 0 (math.inf marks a pure buyer)")
    _first_bad("K", K, (K < 0) | ~np.isfinite(K), "must be finite and >= 0 (0 marks a pure seller)")
    if not d_clean:
        off = ~np.eye(m, dtype=bool)
        _first_bad("d", d, off & ((d < 0) | ~np.isfinite(d)), "must be finite and >= 0")
    if points:
        d = None
    else:
        np.fill_diagonal(d, 0.0)
    for name, arr in fields:
        lo, hi = DOMAIN[name]
        out = (arr < lo) | (arr > hi)
        if name == "c":
            out &= ~np.isposinf(arr)
        _first_bad(name, arr, out, f"is outside the numeric domain [{lo:g}, {hi:g}]"
                   + (" (or inf)" if name == "c" else ""))
    try:
        lam = float(lam)
    except OverflowError:
        raise _overflow("lam", lam) from None
    except (TypeError, ValueError):
        raise ValueError(f"Market: lam = {lam!r} must be a number") from None
    if not (lam >= 0 and math.isfinite(lam)):
        raise ValueError(f"Market: lam = {lam!r} must be finite and >= 0")
    lo, hi = DOMAIN["lam"]
    if lam > hi:
        raise ValueError(f"Market: lam = {lam!r} is outside the numeric domain [{lo:g}, {hi:g}]")
    gain = get_gain(gain)
    if type(gain) not in (SqrtGain, LogGain):  # the built-in gains are proven; check others
        check_gain(gain, N, K)
    for arr in (N, c, K) + ((d,) if d is not None else ()):
        arr.setflags(write=False)
    return N, c, K, d, lam, gain
