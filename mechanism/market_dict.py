r"""Markets as plain dicts (the JSON file schema), parsed and validated without file I/O.

Reading and writing files lives in :mod:`ipfl.market_files`; this module only
turns a decoded document into a :class:`~mechanism.Market` and back, so that
the explorer page, the CLI and the tests share one parser and one set of
error messages.

Schema ``ipfl.market/1``::

    {
      "schema": "ipfl.market/1",          # optional
      "lam": 0.1,                         # optional, default 1 (lambda of eq. (4))
      "gain": "sqrt",                     # optional: "sqrt" (eq. (2)) or "log"
      "clients": [                        # m >= 2 objects
        {"N": 100, "c": 0.1, "K": 400},
        {"N": 250, "c": "inf", "K": 900}  # c = "inf": a pure buyer; K = 0: a pure seller
      ],
      "points": [[0, 0], [1, 0.5]]        # optional: one point per client; d = Euclidean
      # or "d": [[0, 1.1], [1.1, 0]]      #   distances, or an m x m distance matrix
    }

With neither ``points`` nor ``d`` all model distances are 0. Numbers may be
JSON numbers or strings such as ``"inf"`` (JSON has no infinity).

Every error is a :class:`ValueError` naming the field, the client index and the
value, e.g. ``clients[2].N = -5.0 must be finite and > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.distance import cdist

from .gain import GAINS
from .market import Market

__all__ = ["SCHEMA", "market_from_dict", "market_to_dict", "number"]

SCHEMA = "ipfl.market/1"
_TOP_KEYS = {"schema", "lam", "gain", "clients", "points", "d", "description"}
_CLIENT_KEYS = ("N", "c", "K")


def number(value: object, where: str) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` naming ``where`` and the value.

    Examples
    --------
    >>> number("inf", "clients[0].c")
    inf
    >>> number("abc", "clients[0].c")
    Traceback (most recent call last):
    ...
    ValueError: clients[0].c = 'abc' is not a number
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | np.number):
        raise ValueError(f"{where} = {value!r} is not a number")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} = {value!r} is not a number") from None
    if math.isnan(out):
        raise ValueError(f"{where} = {value!r} is not a number")
    return out


def _matrix(value: object, where: str) -> list[list[float]]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"{where} must be a list of lists of numbers, got {value!r}")
    rows = []
    for a, row in enumerate(value):
        if not isinstance(row, Sequence) or isinstance(row, str):
            raise ValueError(f"{where}[{a}] = {row!r} must be a list of numbers")
        rows.append([number(x, f"{where}[{a}][{b}]") for b, x in enumerate(row)])
    return rows


def market_from_dict(doc: Mapping) -> Market:
    """Build a validated :class:`Market` from a document of schema ``ipfl.market/1``.

    Parameters
    ----------
    doc : mapping
        The decoded JSON document (see the module docstring).

    Returns
    -------
    Market

    Raises
    ------
    ValueError
        Naming the field, index and value of the first problem.

    Examples
    --------
    >>> mk = market_from_dict({"lam": 0.5, "clients": [{"N": 100, "c": 0.1, "K": 400},
    ...                        {"N": 300, "c": "inf", "K": 0}], "points": [[0, 0], [3, 4]]})
    >>> mk.roles, float(mk.d[0, 1])
    (('trader', 'buyer'), 5.0)
    """
    if not isinstance(doc, Mapping):
        raise ValueError(f"market document must be a JSON object, got {type(doc).__name__}")
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (allowed: {sorted(_TOP_KEYS)})")
    schema = doc.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise ValueError(f"schema = {schema!r} is not {SCHEMA!r}")
    clients = doc.get("clients")
    if not isinstance(clients, Sequence) or isinstance(clients, str):
        raise ValueError(f"clients must be a list of objects with N, c, K; got {clients!r}")
    if len(clients) < 2:
        raise ValueError(f"clients: a market needs at least 2 clients, got {len(clients)}")
    cols: dict[str, list[float]] = {k: [] for k in _CLIENT_KEYS}
    for i, client in enumerate(clients):
        if not isinstance(client, Mapping):
            raise ValueError(f"clients[{i}] = {client!r} must be an object with N, c, K")
        extra = sorted(set(client) - set(_CLIENT_KEYS) - {"name"})
        if extra:
            raise ValueError(f"clients[{i}] has unknown key {extra[0]!r} (allowed: N, c, K)")
        for k in _CLIENT_KEYS:
            if k not in client:
                raise ValueError(f"clients[{i}] has no {k!r}")
            cols[k].append(number(client[k], f"clients[{i}].{k}"))
    m = len(clients)
    if "points" in doc and "d" in doc:
        raise ValueError("give either 'points' or 'd', not both")
    d = None
    if "points" in doc:
        pts = _matrix(doc["points"], "points")
        if len(pts) != m:
            raise ValueError(f"points has {len(pts)} rows, expected one per client (m = {m})")
        dims = {len(p) for p in pts}
        if len(dims) != 1 or 0 in dims:
            raise ValueError(f"points must all have the same number (>= 1) of coordinates, "
                             f"got lengths {[len(p) for p in pts]}")
        arr = np.array(pts)
        bad = np.argwhere(~np.isfinite(arr))
        if bad.size:
            a, b = bad[0]
            raise ValueError(f"points[{a}][{b}] = {arr[a, b]!r} must be finite")
        d = cdist(arr, arr)
    elif "d" in doc:
        d = _matrix(doc["d"], "d")
        if len(d) != m or any(len(row) != m for row in d):
            raise ValueError(f"d must be an m x m matrix with m = {m}, got rows of lengths "
                             f"{[len(row) for row in d]}")
    lam = number(doc.get("lam", 1.0), "lam")
    gain = doc.get("gain", "sqrt")
    if not isinstance(gain, str) or gain not in GAINS:
        raise ValueError(f"gain = {gain!r} is not one of {sorted(GAINS)}")
    try:
        return Market(N=cols["N"], c=cols["c"], K=cols["K"], d=d, lam=lam, gain=gain)
    except ValueError as exc:
        raise ValueError(_client_message(str(exc))) from None


def _client_message(msg: str) -> str:
    """Rephrase ``Market: N[2] = -5.0 ...`` as ``clients[2].N = -5.0 ...`` (the file's terms)."""
    import re

    msg = msg.removeprefix("Market: ")
    return re.sub(r"^([NcK])\[(\d+)\]", r"clients[\2].\1", msg)


def market_to_dict(market: Market, points: object = None) -> dict:
    """Return the ``ipfl.market/1`` document of ``market`` (inverse of :func:`market_from_dict`).

    ``points``, when given (one row per client), is stored instead of ``d``; the
    caller vouches that its distances are ``market.d``.

    Examples
    --------
    >>> mk = Market(N=[1, 2], c=[0.5, math.inf], K=[3, 0], lam=0.25)
    >>> doc = market_to_dict(mk)
    >>> doc["clients"][1], doc["lam"]
    ({'N': 2.0, 'c': 'inf', 'K': 0.0}, 0.25)
    >>> market_from_dict(doc).c.tolist() == mk.c.tolist()
    True
    """
    def enc(x: float) -> float | str:
        return "inf" if math.isinf(x) else float(x)

    if isinstance(market, Market) and market.d is None:
        # a market given by points has d = squared distance; a file's points mean the
        # Euclidean one (see above): write the matrix
        market = market.dense()
    doc: dict = {"schema": SCHEMA, "lam": float(market.lam),
                 "gain": getattr(market.gain, "name", "sqrt"),
                 "clients": [{"N": enc(n), "c": enc(c), "K": enc(k)}
                             for n, c, k in zip(market.N, market.c, market.K, strict=True)]}
    if doc["gain"] not in GAINS:
        raise ValueError(f"market_to_dict: gain {market.gain!r} has no registered name; "
                         f"a file can only name one of {sorted(GAINS)}")
    if points is not None:
        doc["points"] = np.asarray(points, dtype=float).tolist()
    else:
        doc["d"] = market.d.tolist()
    return doc
