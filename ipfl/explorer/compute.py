r"""Everything the explorer page shows, computed by :mod:`mechanism` and returned as JSON.

:func:`compute` takes the page's form (an ``ipfl.market/1`` document whose
numbers may still be strings, plus the chosen client, variant, misreported
field and optionally a liar) and returns either ``{"ok": True, ...}`` with
thresholds, prices, the Algorithm 2 trace and its step-through, the greedy and
exact graphs with payments, utilities and IR, the chosen client's misreport
curve and the liar's true utility; or ``{"ok": False, "errors": [...]}`` where
each error carries the mechanism's own message and the form field it belongs
to (``"N-2"``, ``"lam"``, ``"d"``, ``"liar-N"``, ...).

With a liar (``{"client": i, "N": x}``: client ``i`` reports ``x`` times its
true ``N``, as the training config's ``liar`` and ``liar_N``; ``"c"`` and
``"K"`` factors likewise) the form's market holds the *true* profiles, and
everything the mechanism computes (graphs, prices, thresholds, bills, the
trace) uses the *reported* market, as in a run; only the liar box and the
misreport curve use the truth.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from mechanism import (
    DEFENCES,
    Market,
    exact_graph,
    explain,
    greedy_graph,
    payments,
    priced_market,
    sharing_costs,
    social_welfare,
    thresholds,
    utilities,
)
from mechanism.market_dict import market_from_dict
from proofs_checks.properties import defended_outcome, liar_utility, mechanism_for

__all__ = ["MAX_CLIENTS", "compute", "field_of", "liar_report", "misreport_curve",
           "step_through"]

#: the page is for small teaching markets (the exact graph is a brute force)
MAX_CLIENTS = 8
#: reports tried for the misreport curve (factors of the true value, log-spaced)
CURVE_POINTS = 41


def field_of(message: str) -> str:
    """Return the form field an error message names (``clients[2].N`` -> ``"N-2"``).

    Examples
    --------
    >>> field_of("clients[2].N = -5.0 must be finite and > 0")
    'N-2'
    >>> field_of("points[1][0] = 'a' is not a number")
    'x-1'
    >>> field_of("lam = 'x' is not a number")
    'lam'
    """
    if hit := re.match(r"clients\[(\d+)\]\.(\w+)", message):
        return f"{hit.group(2)}-{hit.group(1)}"
    if hit := re.match(r"points\[(\d+)\]\[(\d+)\]", message):
        return f"{'xy'[min(int(hit.group(2)), 1)]}-{hit.group(1)}"
    if hit := re.match(r"liar\.(\w+)", message):
        return f"liar-{hit.group(1)}"
    for name in ("lam", "gain", "points", "d", "clients"):
        if message.startswith(name):
            return {"points": "x-0"}.get(name, name)
    return "market"


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _jsonable(a: object) -> object:
    arr = np.asarray(a, dtype=float)
    return [_jsonable(r) for r in arr] if arr.ndim else _num(float(arr))


def _outcome(market: Market, A: np.ndarray, priced: Market | None = None) -> dict:
    """Bills of ``A`` on the ``priced`` market (default: ``market``), U on ``market``."""
    pay = payments(market if priced is None else priced, A)
    U = utilities(market, A) if priced is None else (
        market.gain.value(A @ market.N, market.N, market.K) - sharing_costs(market, A) - pay.p)
    return {"A": A.astype(int).tolist(), "r": _jsonable(pay.r), "p": _jsonable(pay.p),
            "paid": _jsonable(pay.paid), "received": _jsonable(pay.received),
            "U": _jsonable(U), "ir": [bool(u >= -1e-9) for u in U],
            "welfare": social_welfare(market, A), "edges": int(A.sum())}


def misreport_curve(market: Market, i: int, field: str, variant: str = "paper",
                    points: int = CURVE_POINTS, include: float | None = None,
                    defence: str = "none", estimate: np.ndarray | None = None,
                    band: float = 0.0) -> dict:
    r"""Client ``i``'s true utility when it reports another ``c`` or ``N`` (one round).

    Reports range over :math:`[v/4, 4v]` log-spaced around the true value
    ``v`` (``[0, 1]`` linearly when ``v = 0``), widened to take in ``include``
    (a liar's report) when given; the utility is
    :func:`proofs_checks.liar_utility`: the true gain and sharing cost under
    the graph and bill computed from the report. Under a defence the round runs on the
    sizes it prices given ``estimate`` (default: the true sizes, an exact estimate), as
    :func:`proofs_checks.properties.defended_outcome` has it.

    Returns
    -------
    dict
        ``reports``, ``U`` (lists), ``truth`` (the true value) and ``U_truth``.
    """
    if field not in ("c", "N"):
        raise ValueError(f"misreport field = {field!r} is not 'c' or 'N'")
    true = float(getattr(market, field)[i])
    if math.isinf(true):
        return {"field": field, "truth": "inf", "reports": [], "U": [], "U_truth": None,
                "note": f"client {i} is a pure buyer (c = inf): nobody imports it"}
    extra = [] if include is None or not math.isfinite(include) else [float(include)]
    if true > 0:
        lo = min([0.25, *(x / true for x in extra if x > 0)])
        hi = max([4.0, *(x / true for x in extra)])
        grid = true * np.geomspace(lo, hi, points)
    else:
        grid = np.linspace(0.0, max([1.0, *extra]), points)
    grid = np.unique(np.append(grid, [true, *extra]))
    U = []
    est = market.N if estimate is None else estimate
    for v in grid:
        lie = market.with_report(i, **{field: float(v)})
        if defence == "none":
            U.append(liar_utility(market, lie, i, greedy_graph(lie, variant))["U"])
        else:
            U.append(float(defended_outcome(lie, mechanism_for(variant), defence, est, band,
                                            true=market)["U"][i]))
    U_truth = U[int(np.flatnonzero(grid == true)[0])]
    return {"field": field, "truth": true, "reports": grid.tolist(), "U": U,
            "U_truth": U_truth}


def _g(x: float) -> str:
    """Format a number for a sentence: 4 significant digits, ``inf`` spelled out."""
    return "inf" if math.isinf(x) else f"{x:.4g}"


def step_through(market: Market, i: int, variant: str = "paper") -> list[dict]:
    r"""Algorithm 2 for client ``i``, one frame per candidate, with the numbers of each test.

    The frames follow :func:`mechanism.explain` (the greedy rule's order: threshold
    :math:`N^{Th}_{ij}` descending, ties to the lower index); each adds the sentences
    the page shows, written here so that the page does no arithmetic:

    * ``price``: :math:`w_{ij} = c_j + \lambda \frac{N_j}{N_i} d_{ij}` (eqs. (4), (8))
      with its numbers;
    * ``test``: the threshold test :math:`n + N_j < N^{Th}_{ij}` with its numbers
      (``n`` the data imported so far);
    * ``gain``: the same test read as marginal gain against price,
      :math:`g_i(n + N_j) - g_i(n) > w_{ij}`;
    * ``before`` and ``after``: the candidates accepted before and after the frame.

    Returns
    -------
    list of dict
        One per candidate: the :class:`mechanism.explain.Step` fields plus ``price``,
        ``test``, ``gain``, ``passed`` (bool, ``None`` when not tried), ``before``,
        ``after``.

    Examples
    --------
    >>> mk = Market(N=[100, 300, 50], c=[0.5, 0.5, 5.0], K=[400, 400, 400])
    >>> [f["test"] for f in step_through(mk, 0)]
    ['n + N_1 = 0 + 300 = 300 < N^Th_01 = 407.8', 'n + N_2 = 300 + 50 = 350 >= N^Th_02 = 0']
    """
    ex = explain(market, i, variant=variant)
    c, N, d, lam = market.c, market.N, market.d, market.lam
    frames, taken = [], []
    for s in ex.steps:
        j = s.j
        if math.isinf(c[j]):
            price = f"w_{i}{j} = inf: client {j} is a pure buyer (c_{j} = inf) and sells to nobody"
        else:
            price = (f"w_{i}{j} = c_{j} + lambda N_{j}/N_{i} d_{i}{j} = {_g(c[j])} + "
                     f"{_g(lam)} x {_g(N[j])}/{_g(N[i])} x {_g(d[i, j])} = {_g(s.w)}")
        before = list(taken)
        if s.action == "not tried":
            test, gain, passed = "not tested: Algorithm 2 stopped at an earlier candidate", "", None
        else:
            passed = s.action == "accept"
            rel, grel = ("<", ">") if passed else (">=", "<=")
            test = (f"n + N_{j} = {s.total_before:g} + {s.N_j:g} = {s.total_before + s.N_j:g} "
                    f"{rel} N^Th_{i}{j} = {_g(s.threshold)}")
            gain = (f"g_{i}(n + N_{j}) - g_{i}(n) = {_g(s.marginal_gain)} {grel} "
                    f"w_{i}{j} = {_g(s.w)}")
            if passed:
                taken.append(j)
        frames.append({**s.to_dict(), "price": price, "test": test, "gain": gain,
                       "passed": passed, "before": before, "after": list(taken)})
    return frames


def liar_report(market: Market, liar: Mapping) -> tuple[Market, int, dict[str, float]]:
    """Return the market the mechanism sees when ``liar["client"]`` misreports.

    ``liar`` is ``{"client": i, "N": x, "c": y, "K": z}`` (each factor optional,
    default 1): client ``i`` reports ``x`` times its true ``N`` and so on, as the
    training config's ``liar_N``, ``liar_c``, ``liar_K`` (:mod:`training.profiles`).

    Returns
    -------
    (Market, int, dict)
        The reported market, the liar's index and the factors used.

    Raises
    ------
    ValueError
        Naming the field and value (``liar.client = 9 is not a client index ...``,
        ``liar.N = -1.0 must be finite and > 0``).
    """
    from mechanism.market_dict import number

    raw = liar.get("client")
    i = None
    if isinstance(raw, int | np.integer) and not isinstance(raw, bool):
        i = int(raw)
    elif isinstance(raw, str) and raw.strip().isdigit():
        i = int(raw)
    if i is None or not 0 <= i < market.m:
        raise ValueError(f"liar.client = {raw!r} is not a client index (0 <= i < {market.m})")
    factors: dict[str, float] = {}
    for f in ("N", "c", "K"):
        if liar.get(f) in (None, ""):
            continue
        x = number(liar[f], f"liar.{f}")
        if not math.isfinite(x) or x <= 0:
            raise ValueError(f"liar.{f} = {x!r} must be finite and > 0 (a factor of the truth)")
        factors[f] = x
    report = {f: float(getattr(market, f)[i]) * x for f, x in factors.items()}
    try:
        return market.with_report(i, **report), i, factors
    except ValueError as exc:
        raise ValueError(f"liar: the report is not a valid market ({exc})") from None


def _liar_box(true: Market, seen: Market, i: int, factors: dict[str, float],
              variant: str, defence: str = "none", estimate: np.ndarray | None = None,
              band: float = 0.0) -> dict:
    """Return the liar's true utility lying (graph and bill from ``seen``) and truthful.

    Under a defence both rounds run as :func:`proofs_checks.properties.defended_outcome`
    has it: graph and bills on the market the defence prices given ``estimate`` (the
    true sizes, before the liar's report, by default), utility on the true profiles.
    """
    if defence == "none":
        A_lie, A_true = greedy_graph(seen, variant), greedy_graph(true, variant)
        lying = liar_utility(true, seen, i, A_lie)
        truthful = liar_utility(true, true, i, A_true)
    else:
        est = true.N if estimate is None else estimate
        outs = [defended_outcome(m, mechanism_for(variant), defence, est, band, true=true)
                for m in (seen, true)]
        A_lie, A_true = outs[0]["A"], outs[1]["A"]
        lying, truthful = ({k: float(o[k][i]) for k in ("gain", "cost", "p", "U")}
                           for o in outs)
    return {"client": i, "factors": factors,
            "true": {f: _num(float(getattr(true, f)[i])) for f in ("N", "c", "K")},
            "reported": {f: _num(float(getattr(seen, f)[i])) for f in ("N", "c", "K")},
            "lying": lying, "truthful": truthful,
            "believed_U": float(utilities(seen, A_lie)[i]),
            "imports_lying": np.flatnonzero(A_lie[i]).tolist(),
            "imports_truthful": np.flatnonzero(A_true[i]).tolist(),
            "importers_lying": np.flatnonzero(A_lie[:, i]).tolist(),
            "importers_truthful": np.flatnonzero(A_true[:, i]).tolist(),
            "gain_from_lying": lying["U"] - truthful["U"],
            "pays": bool(lying["U"] > truthful["U"] + 1e-9 * max(1.0, abs(truthful["U"])))}


def compute(form: Mapping) -> dict:
    """Compute everything the page shows from its form; never raises on bad input.

    Parameters
    ----------
    form : mapping
        ``{"market": <ipfl.market/1 document>, "client": i, "variant": "paper"|"skip",
        "misreport": "c"|"N", "defence": "none"|"estimate"|"checked", "estimate": [N̂_i]
        (optional; default: the true N, before a liar's report: an exact estimate),
        "band": b}``. The market
        document holds the true profiles; under a defence they are also the reports (the
        misreport curve varies one of them).
    """
    doc = form.get("market") if isinstance(form, Mapping) else None
    if not isinstance(doc, Mapping):
        return {"ok": False, "errors": [{"field": "market", "message": "no market given"}]}
    clients = doc.get("clients")
    if isinstance(clients, list) and len(clients) > MAX_CLIENTS:
        return {"ok": False, "errors": [{
            "field": "clients",
            "message": f"clients: the explorer takes 2-{MAX_CLIENTS} clients, got {len(clients)}"
        }]}
    try:
        market = market_from_dict(doc)
    except ValueError as exc:
        return {"ok": False, "errors": [{"field": field_of(str(exc)), "message": str(exc)}]}
    variant = form.get("variant", "paper")
    if variant not in ("paper", "skip"):
        variant = "paper"
    try:
        i = int(form.get("client", 0))
    except (TypeError, ValueError):
        i = 0
    i = min(max(i, 0), market.m - 1)
    field = form.get("misreport", "c") if form.get("misreport") in ("c", "N") else "c"
    true, lie = market, None
    if isinstance(form.get("liar"), Mapping):
        try:
            market, li, factors = liar_report(true, form["liar"])
        except ValueError as exc:
            return {"ok": False, "errors": [{"field": field_of(str(exc)), "message": str(exc)}]}
    defence = form.get("defence", "none")
    if defence not in DEFENCES:
        defence = "none"
    try:
        estimate = (None if defence == "none" else true.N if form.get("estimate") is None
                    else np.asarray([float(x) for x in form["estimate"]], dtype=float))
        band = float(form.get("band", 0.5 if defence == "checked" else 0.0))
        priced = priced_market(market, defence, estimate, band)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "errors": [{"field": "defence", "message": str(exc)}]}
    if market is not true:
        lie = _liar_box(true, market, li, factors, variant, defence, estimate, band)
    A_g = greedy_graph(priced, variant)
    opt = exact_graph(market, solver="bruteforce")
    angles = np.pi / 2 - 2 * np.pi * np.arange(market.m) / market.m
    report = None
    if lie is not None and lie["client"] == i and field in lie["factors"]:
        report = float(getattr(market, field)[i])
    curve = misreport_curve(true, i, field, variant, include=report, defence=defence,
                            estimate=estimate, band=band)
    if report is not None:
        curve["report"] = _num(report)
    return {
        "ok": True, "m": market.m, "client": i, "variant": variant,
        "roles": list(market.roles), "N": _jsonable(market.N), "c": _jsonable(market.c),
        "K": _jsonable(market.K), "d": _jsonable(market.d),
        "weights": _jsonable(market.weights), "thresholds": _jsonable(thresholds(market)),
        "layout": np.column_stack([np.cos(angles), np.sin(angles)]).tolist(),
        "trace": explain(market, i, variant=variant, defence=defence, estimate=estimate,
                         band=band).to_dict(),
        "steps": step_through(priced, i, variant),
        "greedy": _outcome(market, A_g, None if defence == "none" else priced),
        "exact": _outcome(market, opt.A),
        "exact_status": opt.message, "defence": defence,
        "priced_N": _jsonable(priced.N),
        "misreport": curve, "liar": lie,
    }
