r"""Why client ``i`` imports whom: Algorithm 2's trace, candidate by candidate.

:func:`explain` replays Algorithm 2 for one client and records, for every
candidate in the order tried (threshold descending, ties to the lower index,
as :func:`mechanism.greedy_graph`), its price
:math:`w_{ij} = c_j + \lambda \frac{N_j}{N_i} d_{ij}`, its threshold
:math:`N^{Th}_{ij}`, the running total ``n`` of imported data before and
after, and what happened:

``accept``
    :math:`n + N_j < N^{Th}_{ij}`: the marginal gain
    :math:`g_i(n + N_j) - g_i(n)` exceeds :math:`w_{ij}`, so importing ``j``
    lowers :math:`\phi_i` (eq. (8)).
``stop``
    the test fails and variant ``"paper"`` breaks out of the loop.
``skip``
    the test fails and variant ``"skip"`` passes over ``j``.
``not tried``
    after a ``stop``.

Optionally the certified optimum of row ``i`` of eq. (8)
(:func:`mechanism.exact.exact_row`) is computed beside it. The same trace
drives the examples, ``ipfl market --explain`` and ``ipfl explore``.

The trace is checked against :func:`mechanism.greedy_graph` by the tests: the
accepted candidates are exactly row ``i`` of the greedy graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .defence import priced_market
from .graph import VARIANTS, greedy_order
from .market import Market, require_market
from .thresholds import thresholds

__all__ = ["Explanation", "Step", "explain"]


@dataclass(frozen=True)
class Step:
    """One candidate of Algorithm 2's loop for client ``i``.

    Attributes
    ----------
    position : int
        0-based place in the order tried.
    j : int
        The candidate.
    N_j, w, threshold : float
        Its data size, price :math:`w_{ij}` and threshold :math:`N^{Th}_{ij}`.
    total_before, total_after : float
        Imported data ``n`` before and after this step.
    marginal_gain : float
        :math:`g_i(n + N_j) - g_i(n)` with ``n = total_before``.
    action : {"accept", "stop", "skip", "not tried"}
    reason : str
        One sentence saying why.
    """

    position: int
    j: int
    N_j: float
    w: float
    threshold: float
    total_before: float
    total_after: float
    marginal_gain: float
    action: str
    reason: str

    def to_dict(self) -> dict:
        """Return the step as a JSON-friendly dict (``inf`` as the string ``"inf"``)."""
        return {k: _num(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Explanation:
    r"""Algorithm 2's trace for one client, with the exact optimum when asked.

    Attributes
    ----------
    market : Market
    i : int
    variant : str
    steps : tuple of Step
    imports : tuple of int
        The candidates Algorithm 2 accepted (row ``i`` of the greedy graph).
    phi : float
        :math:`\phi_i` of that row (eq. (8)); lower is better.
    exact_imports : tuple of int or None
        Row ``i`` of the exact optimum, when ``exact=True``.
    exact_phi : float or None
        Its objective.
    exact_status : str or None
        The exact solver's status (``"optimal"`` when certified).
    defence : str
        The defence the round runs under (:data:`mechanism.DEFENCES`; ``"none"``: the
        paper's). Under a defence ``market`` is the priced market (:func:`priced_market`).
    reported : tuple of float or None
        Under a defence: the reported data sizes the priced ones replaced.
    """

    market: Market
    i: int
    variant: str
    steps: tuple[Step, ...]
    imports: tuple[int, ...]
    phi: float
    exact_imports: tuple[int, ...] | None = None
    exact_phi: float | None = None
    exact_status: str | None = None
    defence: str = "none"
    reported: tuple[float, ...] | None = None

    def text(self) -> str:
        """Render the trace as a plain-text table with one line per candidate."""
        mk, i = self.market, self.i
        lines = [] if self.reported is None else [
            f"defence '{self.defence}' (issue 24): the round runs on the priced data sizes "
            f"N = [{', '.join(f'{x:g}' for x in mk.N)}], not the reports "
            f"[{', '.join(f'{x:g}' for x in self.reported)}]; the trace below uses them."]
        lines += [
            f"Algorithm 2 (variant '{self.variant}') for client {i}: N_{i} = {mk.N[i]:g}, "
            f"K_{i} = {mk.K[i]:g}, role {mk.roles[i]}; candidates by threshold, largest first.",
            f"{'step':>4} {'j':>3} {'N_j':>8} {'w_ij':>9} {'threshold':>10} {'n before':>9} "
            f"{'n after':>9}  {'action':<9} reason",
        ]
        for s in self.steps:
            lines.append(
                f"{s.position:>4} {s.j:>3} {s.N_j:>8g} {_fmt(s.w):>9} {_fmt(s.threshold):>10} "
                f"{s.total_before:>9g} {s.total_after:>9g}  {s.action:<9} {s.reason}"
            )
        lines.append(f"client {i} imports {_set(self.imports)}; phi_{i} = {self.phi:.6g}")
        if self.exact_imports is not None:
            same = "same as" if set(self.exact_imports) == set(self.imports) else "differs from"
            lines.append(
                f"exact optimum of eq. (8) ({self.exact_status}): {_set(self.exact_imports)}, "
                f"phi_{i} = {self.exact_phi:.6g} ({same} Algorithm 2)"
            )
        return "\n".join(lines)

    __str__ = text

    def to_dict(self) -> dict:
        """Return the trace as a JSON-friendly dict."""
        return {
            "i": self.i, "variant": self.variant,
            "steps": [s.to_dict() for s in self.steps],
            "imports": list(self.imports), "phi": self.phi,
            "exact_imports": None if self.exact_imports is None else list(self.exact_imports),
            "exact_phi": self.exact_phi, "exact_status": self.exact_status,
            "defence": self.defence,
            "reported": None if self.reported is None else list(self.reported),
            "priced": None if self.reported is None else self.market.N.tolist(),
        }


def explain(market: Market, i: int, *, variant: str = "paper", exact: bool = False,
            exact_solver: str = "bruteforce", defence: str = "none",
            estimate: ArrayLike | None = None, band: float = 0.0) -> Explanation:
    r"""Return Algorithm 2's trace for client ``i`` (and the exact optimum if asked).

    Parameters
    ----------
    market : Market
    i : int
        The importing client, ``0 <= i < m``.
    variant : {"paper", "skip"}
        As in :func:`mechanism.greedy_graph`.
    exact : bool
        Also solve row ``i`` of eq. (8) exactly.
    exact_solver : str
        Solver for :func:`mechanism.exact.exact_row` (``"bruteforce"`` for
        ``m <= 16``, else use ``"milp"``).
    defence, estimate, band
        As in :func:`mechanism.settle`: under a defence the trace runs on the priced
        market (:func:`mechanism.priced_market`), whose sizes replace the reports.

    Returns
    -------
    Explanation

    Raises
    ------
    ValueError
        When ``i`` is not a client index or ``variant`` is unknown.

    Examples
    --------
    >>> mk = Market(N=[100, 300, 50], c=[0.5, 0.5, 5.0], K=[400, 400, 400])
    >>> ex = explain(mk, 0)
    >>> [(s.j, s.action) for s in ex.steps]
    [(1, 'accept'), (2, 'stop')]
    >>> ex.imports
    (1,)

    Under the defence ``"checked"``, client 1's report of 300 disagrees with an estimate
    of 30 and is priced at :math:`30 e^{-0.5}`:

    >>> ex = explain(mk, 0, defence="checked", estimate=[100, 30, 50], band=0.5)
    >>> round(float(ex.market.N[1]), 2), ex.imports
    (18.2, ())
    """
    require_market("explain", market)
    if not isinstance(market, Market):
        raise TypeError(f"explain: market must be a Market, got {type(market).__name__}")
    if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < market.m:
        raise ValueError(f"explain: i = {i!r} is not a client index (0 <= i < {market.m})")
    if variant not in VARIANTS:
        raise ValueError(f"explain: variant = {variant!r} is not one of {VARIANTS}")
    reported = market.N
    market = priced_market(market, defence, estimate, band)
    i = int(i)
    th = thresholds(market)[i]
    w = market.weights[i]
    order = [int(j) for j in greedy_order(th[None, :])[0] if j != i]
    N, K, gain = market.N, market.K, market.gain
    total, stopped, steps, taken = 0.0, False, [], []
    for pos, j in enumerate(order):
        mg = float(gain.increment(total + N[j], N[j], N[i], K[i]))
        if stopped:
            steps.append(Step(pos, j, float(N[j]), float(w[j]), float(th[j]), total, total, mg,
                              "not tried", "Algorithm 2 stopped before this candidate"))
            continue
        if total + N[j] < th[j]:
            steps.append(Step(pos, j, float(N[j]), float(w[j]), float(th[j]), total,
                              total + N[j], mg, "accept",
                              f"n + N_j = {total + N[j]:g} < threshold: gain "
                              f"{mg:.4g} > price {_fmt(w[j])}, phi_{i} falls by "
                              f"{_fmt(mg - w[j])}"))
            taken.append(j)
            total += float(N[j])
            continue
        action = "stop" if variant == "paper" else "skip"
        steps.append(Step(pos, j, float(N[j]), float(w[j]), float(th[j]), total, total, mg,
                          action, _why_not(market, i, j, total, th[j], mg, w[j], variant)))
        stopped = variant == "paper"
    a = np.zeros(market.m, dtype=np.int8)
    a[taken] = 1
    phi = _phi(market, i, a)
    out = {"imports": tuple(sorted(taken)), "phi": phi}
    if exact:
        from .exact import exact_row

        row = exact_row(market, i, solver=exact_solver)
        out |= {"exact_imports": tuple(int(j) for j in np.flatnonzero(row.a)),
                "exact_phi": float(row.objective), "exact_status": row.status}
    if defence != "none":
        out |= {"defence": defence, "reported": tuple(float(x) for x in reported)}
    return Explanation(market, i, variant, tuple(steps), **out)


def _why_not(market: Market, i: int, j: int, n: float, T: float, mg: float, w: float,
             variant: str) -> str:
    then = "Algorithm 2 stops here" if variant == "paper" else "passed over (variant 'skip')"
    if market.K[i] == 0:
        return f"K_{i} = 0: a pure seller gains nothing and imports nothing; {then}"
    if math.isinf(market.c[j]):
        return f"client {j} is a pure buyer (c_{j} = inf): nobody may import it; {then}"
    if T == 0:
        return (f"price {_fmt(w)} exceeds g_{i}(N_{j}) = "
                f"{float(market.gain.value(market.N[j], market.N[i], market.K[i])):.4g}: "
                f"not worth it even alone (threshold 0); {then}")
    return (f"n + N_j = {n + market.N[j]:g} >= threshold: gain {mg:.4g} <= price "
            f"{_fmt(w)}; {then}")


def _phi(market: Market, i: int, a: np.ndarray) -> float:
    cost = float(np.where(a == 1, market.weights[i], 0.0).sum())
    return cost - float(market.gain.value(float(a @ market.N), market.N[i], market.K[i]))


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.4g}"


def _set(js: tuple[int, ...]) -> str:
    return "{" + ", ".join(map(str, js)) + "}" if js else "nobody"


def _num(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else "-inf"
    return v
