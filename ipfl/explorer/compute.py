r"""Everything the explorer page shows, computed by :mod:`mechanism` and returned as JSON.

:func:`compute` takes the page's form (an ``ipfl.market/1`` document whose
numbers may still be strings, plus the chosen client, variant and misreported
field) and returns either ``{"ok": True, ...}`` with thresholds, prices, the
Algorithm 2 trace, the greedy and exact graphs with payments, utilities and
IR, and the chosen client's misreport curve; or ``{"ok": False, "errors":
[...]}`` where each error carries the mechanism's own message and the form
field it belongs to (``"N-2"``, ``"lam"``, ``"d"``, ...).
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

__all__ = ["MAX_CLIENTS", "compute", "field_of", "misreport_curve"]

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
                    points: int = CURVE_POINTS, defence: str = "none",
                    estimate: np.ndarray | None = None, band: float = 0.0) -> dict:
    r"""Client ``i``'s true utility when it reports another ``c`` or ``N`` (one round).

    Reports range over :math:`[v/4, 4v]` log-spaced around the true value
    ``v`` (``[0, 1]`` linearly when ``v = 0``); the utility is
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
    if true > 0:
        grid = true * np.geomspace(0.25, 4.0, points)
    else:
        grid = np.linspace(0.0, 1.0, points)
    grid = np.unique(np.append(grid, true))
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


def compute(form: Mapping) -> dict:
    """Compute everything the page shows from its form; never raises on bad input.

    Parameters
    ----------
    form : mapping
        ``{"market": <ipfl.market/1 document>, "client": i, "variant": "paper"|"skip",
        "misreport": "c"|"N", "defence": "none"|"estimate"|"checked", "estimate": [N̂_i]
        (optional; default: the market's N, an exact estimate), "band": b}``. The market
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
    defence = form.get("defence", "none")
    if defence not in DEFENCES:
        defence = "none"
    try:
        estimate = (None if defence == "none" else market.N if form.get("estimate") is None
                    else np.asarray([float(x) for x in form["estimate"]], dtype=float))
        band = float(form.get("band", 0.5 if defence == "checked" else 0.0))
        priced = priced_market(market, defence, estimate, band)
    except (TypeError, ValueError) as exc:
        return {"ok": False, "errors": [{"field": "defence", "message": str(exc)}]}
    A_g = greedy_graph(priced, variant)
    opt = exact_graph(market, solver="bruteforce")
    angles = np.pi / 2 - 2 * np.pi * np.arange(market.m) / market.m
    return {
        "ok": True, "m": market.m, "client": i, "variant": variant,
        "roles": list(market.roles), "N": _jsonable(market.N), "c": _jsonable(market.c),
        "K": _jsonable(market.K), "d": _jsonable(market.d),
        "weights": _jsonable(market.weights), "thresholds": _jsonable(thresholds(market)),
        "layout": np.column_stack([np.cos(angles), np.sin(angles)]).tolist(),
        "trace": explain(market, i, variant=variant, defence=defence, estimate=estimate,
                         band=band).to_dict(),
        "greedy": _outcome(market, A_g, None if defence == "none" else priced),
        "exact": _outcome(market, opt.A),
        "exact_status": opt.message, "defence": defence,
        "priced_N": _jsonable(priced.N),
        "misreport": misreport_curve(market, i, field, variant, defence=defence,
                                     estimate=estimate, band=band),
    }
