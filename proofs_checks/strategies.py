r"""Hypothesis strategies for iPFL markets and misreports, valid by construction.

Every draw is a valid :class:`mechanism.Market` without ``assume()`` filtering
(after Axelrod's ``tests/property.py``): each field is built from pieces whose
ranges already satisfy the constraints of Methods 4.1,

* data sizes :math:`N_i = \text{mantissa} \times 10^{e}` with ``e`` in ``0..6``
  (always ``> 0``),
* sharing costs :math:`c_i \in \{0\} \cup [10^{-4}, 10^{3}]`, or ``inf`` for a
  pure buyer (Results 2.3),
* data eagerness :math:`K_i \in \{0\} \cup [10^{-2}, 10^{7}]`, with ``K = 0`` for a
  pure seller,
* :math:`\lambda \in \{0\} \cup [10^{-4}, 10^{2}]`,
* distances :math:`d_{ij} = s\,\lVert x_i - x_j \rVert_2` for integer points
  :math:`x_i \in \{-10..10\}^{\dim}`, ``dim`` in ``1..3``: a real point cloud, so
  ``d`` is symmetric, zero on the diagonal and satisfies the triangle inequality.

Mantissas are integers ``1..9`` first and arbitrary floats in ``[1, 10)`` second,
so Hypothesis shrinks a failing market to small round numbers a reader can check
by hand. The first client is never drawn as a pure buyer or seller (its cost is
finite, though its ``K`` may still be 0), so every market has a finite cost to
misreport.

Misreports (:class:`Misreport`) name the liar ``i``, the field (``"c"``, ``"N"`` or
``"K"``) and the reported value, drawn as a factor of the true value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

from mechanism import Market
from mechanism.gain import get_gain
from mechanism.market import DOMAIN

__all__ = [
    "ESTIMATE_SPREAD",
    "market_and_estimate",
    "MAX_M",
    "TINY",
    "Misreport",
    "decimal_floats",
    "domain_market_kwargs",
    "domain_markets",
    "domain_value",
    "market_and_misreport",
    "market_and_client",
    "markets",
    "point_markets",
    "misreports",
    "outside_domain",
]

#: largest market drawn (the exact solver is run by brute force up to here)
MAX_M = 12

Field = Literal["c", "N", "K"]
Role = Literal["trader", "buyer", "seller"]


@dataclass(frozen=True)
class Misreport:
    """Client ``i`` reports ``value`` for ``field`` instead of its true value.

    Attributes
    ----------
    i : int
        The liar.
    field : {"c", "N", "K"}
        What it lies about.
    value : float
        The reported value (the mechanism sees it; the liar's utility does not).
    factor : float
        ``value / true`` where the true value is positive and finite, else ``nan``.
    """

    i: int
    field: Field
    value: float
    factor: float

    def apply(self, market: Market) -> Market:
        """Return the market as the mechanism sees it under this report."""
        return market.with_report(self.i, **{self.field: self.value})

    def describe(self, market: Market) -> str:
        """One line such as ``client 0 reports c = 2 (true 1)``."""
        true = float(getattr(market, self.field)[self.i])
        return f"client {self.i} reports {self.field} = {self.value:.6g} (true {true:.6g})"


@cache
def decimal_floats(lo_exp: int, hi_exp: int) -> st.SearchStrategy[float]:
    r"""Positive floats :math:`\text{mantissa} \times 10^e`, ``e`` in ``lo_exp..hi_exp``.

    The mantissa is an integer ``1..9`` or a float in ``[1, 10)``; both shrink
    towards ``1`` and the exponent towards ``lo_exp``, so a shrunk value is
    ``10**lo_exp`` unless something larger is needed. Cached: building
    strategies is costly, drawing from them is not.
    """
    mantissa = st.one_of(
        st.integers(1, 9).map(float),
        st.floats(1.0, 10.0, exclude_max=True, allow_nan=False),
    )
    return st.builds(lambda mant, e: float(mant * 10.0**e), mantissa, st.integers(lo_exp, hi_exp))


@cache
def _zero_or(lo_exp: int, hi_exp: int) -> st.SearchStrategy[float]:
    """``0.0`` (the shrink target) or a draw from ``decimal_floats(lo_exp, hi_exp)``."""
    return st.one_of(st.just(0.0), decimal_floats(lo_exp, hi_exp))


_ROLES = st.sampled_from(("trader", "buyer", "seller"))
_SCALES = st.sampled_from((1.0, 0.1, 0.01, 0.001, 10.0))


@cache
def _client(dim: int, roles: bool) -> st.SearchStrategy[tuple]:
    """One client: ``(N, c, K, role, point)``; the point is integer, in ``{-10..10}^dim``."""
    return st.tuples(
        decimal_floats(0, 6),
        _zero_or(-4, 2),
        _zero_or(-2, 6),
        _ROLES if roles else st.just("trader"),
        st.lists(st.integers(-10, 10), min_size=dim, max_size=dim),
    )


@st.composite
def _profiles(draw: st.DrawFn, min_m: int, max_m: int, roles: bool) -> tuple:
    """Draw what :func:`markets` and :func:`point_markets` share, in one order.

    Returns ``(N, c, K, lam, points, scale)``: the clients' profiles (clients ``1..m-1``
    pure buyers or sellers where ``roles``), ``lam``, their integer points and a scale.
    """
    dim = draw(st.integers(1, 3))
    clients = draw(st.lists(_client(dim, roles), min_size=min_m, max_size=max_m))
    N = [cl[0] for cl in clients]
    c = [math.inf if k and cl[3] == "buyer" else cl[1] for k, cl in enumerate(clients)]
    K = [0.0 if k and cl[3] == "seller" else cl[2] for k, cl in enumerate(clients)]
    lam = draw(_zero_or(-4, 1))
    points = np.asarray([cl[4] for cl in clients], dtype=float)
    return N, c, K, lam, points, draw(_SCALES)


@st.composite
def markets(
    draw: st.DrawFn,
    min_m: int = 2,
    max_m: int = MAX_M,
    roles: bool = True,
) -> Market:
    r"""Draw a valid market of ``min_m..max_m`` clients (Methods 4.1).

    Clients are drawn as one list of ``(N, c, K, role, point)`` tuples, so
    Hypothesis can shrink a market by deleting whole clients. The distances are
    ``scale`` times the Euclidean distances of the points (a metric).

    Parameters
    ----------
    min_m, max_m : int
        Range of the number of clients (``2 <= min_m <= max_m``).
    roles : bool
        Whether clients ``1..m-1`` may be pure buyers (``c = inf``) or pure
        sellers (``K = 0``); client 0 keeps its drawn finite ``c`` and ``K``.

    Examples
    --------
    >>> from hypothesis import find
    >>> find(markets(), lambda mk: True).m  # the simplest market
    2
    """
    N, c, K, lam, points, scale = draw(_profiles(min_m, max_m, roles))
    d = scale * cdist(points, points)
    return Market(N=N, c=c, K=K, d=d, lam=lam)


@st.composite
def point_markets(draw: st.DrawFn, min_m: int = 2, max_m: int = MAX_M,
                  roles: bool = True) -> Market:
    r"""Draw a valid market given by points (``Market(points=X)``, docs/scale.md).

    The clients as :func:`markets` draws them; the points are ``scale`` times the
    integer points (so many pairs tie exactly), and :math:`d_{ij} = \lVert x_i -
    x_j \rVert^2` is their squared distance.
    """
    N, c, K, lam, points, scale = draw(_profiles(min_m, max_m, roles))
    return Market(N=N, c=c, K=K, points=scale * points, lam=lam)


def misreports(market: Market, field: Field, direction: str = "any") -> st.SearchStrategy:
    r"""Misreports of ``field`` for a given market, valid by construction.

    Parameters
    ----------
    market : Market
    field : {"c", "N", "K"}
    direction : {"over", "under", "any"}
        ``"over"``: report more than the truth (for ``c`` strictly more, as
        Lemma 1 and Theorem 2 assume :math:`\hat c_i > c_i`); ``"under"``: less.

    Notes
    -----
    The liar is drawn among the clients whose true value can move in the
    requested direction: finite ``c`` for ``"c"`` (client 0 always qualifies),
    every client for ``"N"``, ``K > 0`` for ``"K"`` under-reports (client 0 may
    have ``K = 0``; then its ``K`` is over-reported). The reported value is
    ``true * factor + bump`` with ``factor`` in ``[1, 100]`` (over) or
    ``[0.01, 1)`` (under) and, for ``c`` and ``K`` over-reports, an additive
    ``bump`` so that a true ``0`` can be overstated too. Reported ``N`` stays
    ``> 0`` and finite, reported ``K`` finite and ``>= 0``.
    """
    true = getattr(market, field)
    if field == "c":
        candidates = [k for k in range(market.m) if math.isfinite(true[k])]
        direction = "over" if direction == "any" else direction
    elif field == "K" and direction == "under":
        candidates = [k for k in range(market.m) if true[k] > 0] or [0]
    else:
        candidates = list(range(market.m))

    @st.composite
    def _draw(draw: st.DrawFn) -> Misreport:
        i = draw(st.sampled_from(candidates))
        t = float(true[i])
        way = direction if direction != "any" else draw(_WAYS)
        if field == "K" and t == 0:
            way = "over"
        if way == "over":
            factor = draw(_OVER)
            bump = 0.0
            if field in ("c", "K"):
                bump = draw(_zero_or(-3, 2) if t > 0 else decimal_floats(-3, 2))
                if factor == 1.0 and bump == 0.0:  # strictly more, by construction
                    factor = 2.0
            elif factor == 1.0:
                factor = 2.0
            value = t * factor + bump
        else:
            factor = draw(_UNDER)
            value = t * factor
        ratio = float(value / t) if t > 0 else math.nan
        return Misreport(i=i, field=field, value=float(value), factor=ratio)

    return _draw()


_WAYS = st.sampled_from(("over", "under"))
#: over-report factors: 2 and 10 first (shrink targets), then anything in [1, 100]
_OVER = st.one_of(st.sampled_from((2.0, 10.0)), st.floats(1.0, 100.0))
#: under-report factors: 1/2 and 1/10 first, then anything in [0.01, 1)
_UNDER = st.one_of(st.sampled_from((0.5, 0.1)), st.floats(0.01, 1.0, exclude_max=True))


@st.composite
def market_and_misreport(
    draw: st.DrawFn,
    field: Field,
    direction: str = "any",
    max_m: int = MAX_M,
) -> tuple[Market, Misreport]:
    """Draw a market and a misreport of ``field`` in it (see :func:`misreports`)."""
    mk = draw(markets(max_m=max_m))
    return mk, draw(misreports(mk, field, direction))


#: the largest |ln(estimate / N)| :func:`market_and_estimate` draws (a factor of 1.28)
ESTIMATE_SPREAD = 0.25


@st.composite
def market_and_estimate(draw: st.DrawFn, max_m: int = MAX_M,
                        spread: float = ESTIMATE_SPREAD) -> tuple[Market, np.ndarray]:
    r"""Draw a market and an estimate of its data sizes off by at most a factor :math:`e^{s}`.

    :math:`\hat N_i = N_i e^{u_i}`, :math:`u_i \in [-s, s]` (issue 24's defences); inside
    ``N``'s domain by construction (the default family's ``N`` lies in ``[1, 1e7]``).
    """
    mk = draw(markets(max_m=max_m))
    u = draw(st.lists(st.floats(-spread, spread), min_size=mk.m, max_size=mk.m))
    return mk, mk.N * np.exp(np.asarray(u, dtype=float))


@st.composite
def market_and_client(draw: st.DrawFn, max_m: int = MAX_M) -> tuple[Market, int]:
    """Draw a market and one of its clients (Theorem 3's ``i``)."""
    mk = draw(markets(max_m=max_m))
    return mk, draw(st.integers(0, mk.m - 1))


# ------------------------------------------------------- the numeric domain (issue 12)

#: smallest positive double (subnormal): inside the domain of c, K, lam and d
TINY = 5e-324


@cache
def _in_range(lo: float, hi: float, zero: bool) -> st.SearchStrategy[float]:
    """Draw floats in ``[lo, hi]``.

    The endpoints, 0 and the subnormal ``TINY`` (if ``zero``), log-uniform draws
    over the whole range, and arbitrary floats in it.
    """
    special = [lo, hi] + ([0.0, TINY] if zero else [])
    lo_pos = max(lo, 1e-300)
    log_uniform = st.floats(np.log10(lo_pos), np.log10(hi)).map(
        lambda e: float(min(max(10.0**e, lo), hi)))
    return st.one_of(st.sampled_from(special), log_uniform,
                     st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def domain_value(field: str) -> st.SearchStrategy[float]:
    """Draw one value of ``field`` inside :data:`mechanism.market.DOMAIN`.

    ``field`` is ``"N"``, ``"c"``, ``"K"``, ``"lam"`` or ``"d"``; ``c`` is ``inf``
    (a pure buyer) one time in ten.
    """
    lo, hi = DOMAIN[field]
    inside = _in_range(lo, hi, zero=lo == 0.0)
    if field == "c":
        return st.one_of(inside, inside, inside, inside, inside, inside, inside, inside,
                         inside, st.just(math.inf))
    return inside


@st.composite
def domain_market_kwargs(draw: st.DrawFn, min_m: int = 2, max_m: int = 8) -> dict:
    r"""Keyword arguments of a :class:`mechanism.Market` anywhere in its numeric domain.

    Every entry is drawn independently (``d`` need not be a metric here) from
    :func:`domain_value`, so extreme ratios (``N`` from ``1e-3`` to ``1e12``,
    subnormal costs next to ``1e9``) appear in one market; the gain is the
    paper's or the log gain. Half the markets get a tie: some ``c_j`` set to
    :math:`g_i(N_j)`, so that ``j`` alone is worth exactly its cost to ``i`` (with
    ``lambda d_ij`` small, the threshold equation then sits on a plateau); half get a
    lambda tie: some ``d_ij`` set so that :math:`\lambda (N_j/N_i) d_{ij} = g_i(N_j) -
    c_j` (the remittance of eq. (10) then cancels to about 0).
    """
    m = draw(st.integers(min_m, max_m))
    vec = {f: draw(st.lists(domain_value(f), min_size=m, max_size=m)) for f in ("N", "c", "K")}
    d = np.array(draw(st.lists(domain_value("d"), min_size=m * m, max_size=m * m))).reshape(m, m)
    gain = draw(st.sampled_from(("sqrt", "log")))
    lam = draw(domain_value("lam"))
    if draw(st.booleans()):  # a tie: c_j = g_i(N_j), the price at which j alone breaks even
        i, j = draw(st.permutations(range(m)))[:2]
        g_ij = float(get_gain(gain).value(vec["N"][j], vec["N"][i], vec["K"][i]))
        if g_ij <= DOMAIN["c"][1]:
            vec["c"][j] = g_ij
    if draw(st.booleans()):  # a lambda tie: lambda (N_j/N_i) d_ij = g_i(N_j) - c_j
        i, j = draw(st.permutations(range(m)))[:2]
        rest = float(get_gain(gain).value(vec["N"][j], vec["N"][i], vec["K"][i])) - vec["c"][j]
        scale = lam * (vec["N"][j] / vec["N"][i])  # may underflow to 0
        if scale > 0 and 0 <= rest <= scale * DOMAIN["d"][1]:
            d[i, j] = rest / scale
    return dict(**vec, d=d, lam=lam, gain=gain)


@st.composite
def domain_markets(draw: st.DrawFn, min_m: int = 2, max_m: int = 8) -> Market:
    """Draw a market by :func:`domain_market_kwargs` (valid by construction)."""
    return Market(**draw(domain_market_kwargs(min_m, max_m)))


#: values just outside each field's domain (both sides where the side exists);
#: huge Python ints cannot even become floats
_OUTSIDE = {
    "N": (st.floats(1e-320, 9.999e-4), st.floats(1.0001e12, 1e308), st.just(10**400)),
    "c": (st.floats(1.0001e9, 1e308), st.just(10**400)),
    "K": (st.floats(1.0001e12, 1e308), st.just(-(10**400))),
    "lam": (st.floats(1.0001e6, 1e308), st.just(10**400)),
    "d": (st.floats(1.0001e6, 1e308), st.just(10**400)),
}


@st.composite
def outside_domain(draw: st.DrawFn) -> tuple[dict, str, str]:
    """Draw a domain market's keyword arguments with one entry moved just outside it.

    Returns ``(kwargs, field, where)`` with ``where`` the text the error must
    name, e.g. ``"N[3]"``, ``"d[0, 2]"`` or ``"lam"``.
    """
    kw = draw(domain_market_kwargs())
    field = draw(st.sampled_from(sorted(_OUTSIDE)))
    value = draw(st.one_of(*_OUTSIDE[field]))
    m = len(kw["N"])
    if field == "lam":
        kw["lam"] = value
        return kw, field, "lam"
    if field == "d":
        i = draw(st.integers(0, m - 1))
        j = draw(st.integers(0, m - 2))
        j += j >= i  # off the diagonal
        d = kw["d"].astype(object)
        d[i, j] = value
        kw["d"] = d.tolist()
        return kw, field, f"d[{i}, {j}]"
    i = draw(st.integers(0, m - 1))
    kw[field] = list(kw[field])
    kw[field][i] = value
    return kw, field, f"{field}[{i}]"
