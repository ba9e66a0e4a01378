r"""A round as a typed record: what the market traded (or a baseline shared) and the metric rows.

Every round ``t >= 1`` with at least two clients in leaves an :class:`Exchange` in
``rounds/NNNN.json``: the clients in, their roles, the market's inputs and outputs.
Two kinds:

* ``"market"`` (iPFL, any algorithm with ``uses_market``): the *reported* profiles
  ``N, c, K``, budgets, the market distances ``d``, ``lam`` and the graph solver as the
  server settled them (:func:`mechanism.settle`), the true profiles when someone lied,
  and the outputs: who stays, the graph ``A``, remittances ``r`` (eq. (10)), net
  payments ``p`` and true-profile utilities ``U`` (eq. (1));
* ``"sharing"`` (a baseline): the true profiles, the distances between the uploads
  (measured as iPFL's market measures them, so the round can be priced at any ``lam``
  afterwards), the graph the algorithm used and eq. (1)'s utilities without payments.

A :class:`RoundRecord` is one committed round: its exchange (None in round 0 or when
fewer than two clients are in) and the metric rows of every client. It is what the
session's ``absorb`` returns and ``commit`` writes, and what every reader reads
(:meth:`training.rundir.RunDir.read_records`): the audit, rescoring, the experiments'
analyses and the figures. ``to_json`` writes exactly the files earlier versions wrote,
so a run directory written before this module resumes, verifies and reads unchanged.

>>> ex = Exchange.sharing(round=1, clients=[0, 1], roles=["trader", "trader"],
...                       N=[10.0, 20.0], c=[0.2, 0.2], K=[1e3, 2e3], A=[[0, 1], [1, 0]],
...                       U=[1.0, 2.0])
>>> Exchange.from_json(ex.to_json()) == ex
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from mechanism import DEFENCES, Market
from mechanism.points import pairwise_distances

__all__ = ["KINDS", "Exchange", "RoundRecord", "json_floats"]

#: the kinds of exchange a round can record
KINDS = ("market", "sharing")


def json_floats(x: ArrayLike) -> list:
    """Return a list with ``inf`` as the string ``"inf"`` (JSON has no infinity)."""
    return ["inf" if math.isinf(v) else float(v) for v in np.asarray(x, dtype=float)]


def _floats(x: Any, what: str) -> NDArray[np.float64]:
    """Return ``x`` as floats, the JSON string ``"inf"`` read as infinity."""
    try:
        return np.asarray([math.inf if isinstance(v, str) and v == "inf" else v for v in x],
                          dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not numeric") from None


def _array(x: Any, what: str, dtype: Any = float) -> NDArray:
    """Return ``x`` as an array of ``dtype``; 0/1 entries only for an int8 graph.

    A graph is read as floats first, so that ``1.5`` or ``300`` is refused instead of
    truncated or wrapped.
    """
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} is not numeric") from None
    if dtype is np.int8:
        bad = np.argwhere(~np.isin(a, (0.0, 1.0)))
        if bad.size:
            at = ", ".join(str(int(v)) for v in bad[0])
            raise ValueError(f"{what}[{at}] = {a[tuple(bad[0])]:g} is not 0 or 1")
        return a.astype(np.int8)
    return a


def _points(x: Any) -> NDArray[np.float64]:
    """Return ``inputs.points`` as a finite (k, p) array; anything else is refused."""
    a = _array(x, "points")
    if a.ndim != 2 or a.shape[1] < 1:
        raise ValueError(f"points has shape {a.shape}, not (k, p)")
    bad = np.argwhere(~np.isfinite(a))
    if bad.size:
        i, j = (int(v) for v in bad[0])
        raise ValueError(f"points[{i}, {j}] = {float(a[i, j])!r} is not finite")
    return a


def _bools(x: Any, what: str) -> NDArray[np.bool_]:
    """Return a list of JSON booleans as a bool array; anything else is refused."""
    if not isinstance(x, list) or not all(isinstance(v, bool) for v in x):
        raise ValueError(f"{what} is not a list of true/false")
    return np.asarray(x, dtype=bool)


def _check_shapes(ex: Exchange) -> Exchange:
    """Return ``ex`` if every array has the shape its ``k`` clients ask for; else ValueError."""
    k = len(ex.clients)
    want = {"N": (k,), "c": (k,), "K": (k,), "U": (k,), "A": (k, k), "d": (k, k),
            "budget": (k,), "stays": (k,), "r": (k, k), "p": (k,), "estimate": (k,),
            "observed": (k,)}
    if ex.points is not None and ex.points.shape[0] != k:
        raise ValueError(f"points has shape {ex.points.shape}, not ({k}, p) for {k} clients")
    for name, shape in want.items():
        a = getattr(ex, name)
        if a is not None and a.shape != shape:
            raise ValueError(f"{name} has shape {a.shape}, not {shape} for {k} clients")
    if ex.kind == "market" and ex.defence not in DEFENCES:
        raise ValueError(f"defence {ex.defence!r} is not one of {sorted(DEFENCES)}")
    if len(ex.roles) not in (0, k):
        raise ValueError(f"roles has {len(ex.roles)} entries, not {k}")
    for name, a in (ex.true or {}).items():
        if a.shape != (k,):
            raise ValueError(f"true {name} has shape {a.shape}, not {(k,)}")
    return ex


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return a is b or (a is not None and b is not None
                          and np.array_equal(np.asarray(a), np.asarray(b)))
    return a == b


@dataclass(frozen=True, eq=False)
class Exchange:
    r"""One round's market (or sharing) inputs and outputs, as ``rounds/NNNN.json`` holds them.

    Attributes
    ----------
    round : int
    clients : tuple of int
        Global ids of the ``k`` clients in the round, ascending.
    roles : tuple of str
    kind : str
        ``"market"`` or ``"sharing"`` (:data:`KINDS`).
    N, c, K : ndarray (k,)
        Market: the *reported* profiles; sharing: the true ones. ``c`` may be ``inf``.
    A : ndarray int8 (k, k)
        The graph used (``A[i, j] = 1``: ``i`` imports ``j``).
    U : ndarray (k,)
        Eq. (1)'s utilities with the true profiles (market: with payments).
    d : ndarray (k, k) or None
        Distances between the uploads as the market sees them (None: an older sharing
        record without them).
    budget, stays, r, p : ndarray or None
        Market only: budgets, who stays after the quit rule, remittances, net payments.
    lam : float or None
        Market only: the price of distance.
    solver : str or None
        Market only: the graph solver (:func:`mechanism.solve_graph`).
    true : dict of ndarray or None
        Market only, when someone lied: the true ``N``, ``c``, ``K``.
    defence : str
        Market only: how the bills were computed (:data:`mechanism.DEFENCES`; ``"none"``,
        the paper's, is not written to the file, so older files read as ``"none"``).
    estimate : ndarray (k,) or None
        Market only, under a defence: the estimated effective data sizes
        (``inputs.estimate``).
    band : float
        Market only, ``defence = "checked"``: the tolerated log-ratio of report to
        estimate (``inputs.band``).
    estimator : str
        Market only, under a defence: where ``estimate`` came from
        (``inputs.estimator``: ``"displacement"`` or ``"oracle"``; ``""`` in a file
        written before the key existed, whose estimate is the simulated oracle's).
    observed : ndarray (k,) or None
        ``estimator = "displacement"``: each client's round-0 displacement
        (``inputs.observed``); ``estimate`` is
        :func:`mechanism.size_from_displacement` of it and the reports, which
        ``ipfl audit-run`` recomputes.
    distance, d_scale : str or None
        Sharing only: how ``d`` was measured and scaled.
    points : ndarray (k, p) or None
        Market only, when the server handed the market points (``[ipfl]
        distance_projection``, docs/scale.md): the projected uploads, with
        :math:`d_{ij} = \|x_i - x_j\|^2`. The file holds ``inputs.points`` instead of
        ``inputs.d``; ``d`` is then derived from them
        (:func:`mechanism.points.pairwise_distances`).
    """

    round: int
    clients: tuple[int, ...]
    roles: tuple[str, ...]
    kind: str
    N: NDArray[np.float64]
    c: NDArray[np.float64]
    K: NDArray[np.float64]
    A: NDArray[np.int8]
    U: NDArray[np.float64]
    d: NDArray[np.float64] | None = None
    budget: NDArray[np.float64] | None = None
    stays: NDArray[np.bool_] | None = None
    r: NDArray[np.float64] | None = None
    p: NDArray[np.float64] | None = None
    lam: float | None = None
    solver: str | None = None
    true: dict[str, NDArray[np.float64]] | None = None
    distance: str | None = None
    d_scale: str | None = None
    defence: str = "none"
    estimate: NDArray[np.float64] | None = None
    band: float = 0.0
    estimator: str = ""
    observed: NDArray[np.float64] | None = None
    points: NDArray[np.float64] | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Exchange):
            return NotImplemented
        return all(_eq(getattr(self, f), getattr(other, f)) for f in self.__dataclass_fields__
                   if f != "true") and _true_eq(self.true, other.true)

    __hash__ = None  # type: ignore[assignment]

    # ----- construction ------------------------------------------------------------------
    @classmethod
    def sharing(cls, *, round: int, clients: ArrayLike, roles: list[str], N: ArrayLike,
                c: ArrayLike, K: ArrayLike, A: ArrayLike, U: ArrayLike,
                d: ArrayLike | None = None, distance: str | None = None,
                d_scale: str | None = None) -> Exchange:
        """Return a baseline's exchange: true profiles, its graph, eq. (1) without payments."""
        return cls(round=int(round), clients=tuple(int(i) for i in clients),
                   roles=tuple(roles), kind="sharing", N=_array(N, "N"), c=_floats(c, "c"),
                   K=_array(K, "K"), A=_array(A, "A", np.int8), U=_array(U, "U"),
                   d=None if d is None else _array(d, "d"), distance=distance, d_scale=d_scale)

    @classmethod
    def market_round(cls, *, round: int, clients: ArrayLike, roles: list[str],
                     market: Market, budget: ArrayLike, solver: str,
                     true: Market | None, settlement: Any, defence: str = "none",
                     estimate: ArrayLike | None = None, band: float = 0.0,
                     estimator: str = "", observed: ArrayLike | None = None) -> Exchange:
        """Return a market round's exchange from its market, budgets and settlement."""
        return cls(round=int(round), clients=tuple(int(i) for i in clients),
                   roles=tuple(roles), kind="market", N=np.asarray(market.N, dtype=float),
                   c=np.asarray(market.c, dtype=float), K=np.asarray(market.K, dtype=float),
                   A=np.asarray(settlement.A, dtype=np.int8),
                   U=np.asarray(settlement.U, dtype=float),
                   d=np.asarray(market.dense().d, dtype=float),
                   budget=np.asarray(budget, dtype=float),
                   stays=np.asarray(settlement.stays, dtype=bool),
                   r=np.asarray(settlement.r, dtype=float),
                   p=np.asarray(settlement.p, dtype=float), lam=float(market.lam),
                   solver=solver,
                   true=None if true is None else {"N": np.asarray(true.N, dtype=float),
                                                   "c": np.asarray(true.c, dtype=float),
                                                   "K": np.asarray(true.K, dtype=float)},
                   defence=str(defence),
                   estimate=None if estimate is None else np.asarray(estimate, dtype=float),
                   band=float(band), estimator=str(estimator),
                   observed=None if observed is None else np.asarray(observed, dtype=float),
                   points=None if market.points is None else np.asarray(market.points,
                                                                        dtype=float))

    # ----- views ---------------------------------------------------------------------------
    @property
    def k(self) -> int:
        """Number of clients in the round."""
        return len(self.clients)

    def market(self) -> Market:
        """Return the market as the server settled it (reported profiles; sharing: true, lam 0)."""
        if self.points is not None:
            return Market(N=self.N, c=self.c, K=self.K, points=self.points,
                          lam=0.0 if self.lam is None else self.lam)
        return Market(N=self.N, c=self.c, K=self.K, d=self.d,
                      lam=0.0 if self.lam is None else self.lam)

    def truth(self) -> Market | None:
        """Return the market with the true profiles when someone lied (market kind), else None."""
        if self.true is None:
            return None
        return self.market().replace(N=self.true["N"], c=self.true["c"], K=self.true["K"])

    def true_profiles(self) -> tuple[NDArray, NDArray, NDArray]:
        """Return the true ``(N, c, K)`` of the clients in the round."""
        if self.true is not None:
            return self.true["N"], self.true["c"], self.true["K"]
        return self.N, self.c, self.K

    # ----- JSON ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Return the dict ``rounds/NNNN.json`` holds (the format every version wrote)."""
        head = {"round": self.round, "clients": list(self.clients), "roles": list(self.roles)}
        if self.kind == "sharing":
            inputs: dict[str, Any] = {"N": self.N.tolist(), "c": json_floats(self.c),
                                      "K": self.K.tolist()}
            if self.d is not None:
                inputs.update(d=self.d.tolist(), distance=self.distance, d_scale=self.d_scale)
            return {**head, "kind": "sharing", "inputs": inputs,
                    "outputs": {"A": self.A.tolist(), "U": self.U.tolist()}}
        inputs = {"N": self.N.tolist(), "c": json_floats(self.c), "K": self.K.tolist(),
                  "budget": json_floats(self.budget), "d": self.d.tolist(), "lam": self.lam,
                  "solver": self.solver}
        if self.points is not None:  # the market's input: d follows from the points
            del inputs["d"]
            inputs["points"] = self.points.tolist()
        if self.true is not None:
            inputs["true"] = {"N": self.true["N"].tolist(), "c": json_floats(self.true["c"]),
                              "K": self.true["K"].tolist()}
        if self.defence != "none":  # the paper's round files stay as every version wrote them
            inputs["defence"] = self.defence
            if self.estimate is not None:
                inputs["estimate"] = self.estimate.tolist()
            if self.band:
                inputs["band"] = self.band
            if self.estimator:
                inputs["estimator"] = self.estimator
            if self.observed is not None:
                inputs["observed"] = self.observed.tolist()
        return {**head, "inputs": inputs,
                "outputs": {"stays": self.stays.tolist(), "A": self.A.tolist(),
                            "r": self.r.tolist(), "p": self.p.tolist(), "U": self.U.tolist()}}

    @classmethod
    def from_json(cls, doc: Any) -> Exchange:
        """Parse a ``rounds/NNNN.json`` dict; :class:`ValueError` naming what is wrong."""
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        try:
            ins, outs = doc["inputs"], doc["outputs"]
            if not isinstance(ins, dict) or not isinstance(outs, dict):
                raise ValueError("inputs / outputs are not objects")
            head = {"round": int(doc["round"]),
                    "clients": tuple(int(i) for i in doc["clients"]),
                    "roles": tuple(str(x) for x in doc.get("roles", ()))}
            kind = doc.get("kind", "market")
            if kind not in KINDS:
                raise ValueError(f"kind {kind!r} is not one of {KINDS}")
            if kind == "sharing":
                ex = cls.sharing(**head, N=ins["N"], c=ins["c"], K=ins["K"], A=outs["A"],
                                 U=outs["U"], d=ins.get("d"), distance=ins.get("distance"),
                                 d_scale=ins.get("d_scale"))
                return _check_shapes(ex)
            true = ins.get("true")
            if ins.get("points") is not None and ins.get("d") is not None:
                raise ValueError("inputs holds both points and d; a market round holds one")
            points = None if ins.get("points") is None else _points(ins["points"])
            d = pairwise_distances(points) if points is not None else _array(ins["d"], "d")
            ex = cls(**head, kind="market", N=_array(ins["N"], "N"),
                     c=_floats(ins["c"], "c"), K=_array(ins["K"], "K"),
                     A=_array(outs["A"], "A", np.int8), U=_array(outs["U"], "U"),
                     d=d, budget=_floats(ins["budget"], "budget"),
                     stays=_bools(outs["stays"], "stays"), r=_array(outs["r"], "r"),
                     p=_array(outs["p"], "p"), lam=float(ins["lam"]),
                     solver=str(ins["solver"]),
                     true=None if true is None else {
                         "N": _array(true["N"], "true N"), "c": _floats(true["c"], "true c"),
                         "K": _array(true["K"], "true K")},
                     defence=str(ins.get("defence", "none")),
                     estimate=None if ins.get("estimate") is None
                     else _array(ins["estimate"], "estimate"),
                     band=float(ins.get("band", 0.0)),
                     estimator=str(ins.get("estimator", "")),
                     observed=None if ins.get("observed") is None
                     else _array(ins["observed"], "observed"), points=points)
            return _check_shapes(ex)
        except KeyError as exc:
            raise ValueError(f"lacks {exc}") from None
        except (TypeError, OverflowError) as exc:
            raise ValueError(f"malformed ({exc})") from None


def _true_eq(a: dict | None, b: dict | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(np.array_equal(a[k], b[k]) for k in ("N", "c", "K"))


@dataclass(frozen=True)
class RoundRecord:
    """One committed round: its exchange (None: round 0, or fewer than two clients in) and rows.

    ``rows`` are the metric rows of every client, as ``metrics.jsonl`` holds them (round,
    client, role, N, accuracies, U, cumulative U, money, degrees, IR, the model's shared
    and total parameter counts, algorithm columns);
    ``drops`` maps each client a remote transport lost in this round to why
    (``"timeout"``, ``"error: ..."``, ``"quit"``), as ``drops.jsonl`` holds them.
    """

    round: int
    exchange: Exchange | None
    rows: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    drops: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return ``{"round", "exchange", "rows", "drops"}`` (the exchange as its file has it)."""
        return {"round": self.round,
                "exchange": None if self.exchange is None else self.exchange.to_json(),
                "rows": [dict(r) for r in self.rows],
                "drops": [{"client": i, "why": why} for i, why in sorted(self.drops.items())]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RoundRecord:
        """Parse :meth:`to_json`'s dict."""
        ex = doc.get("exchange")
        return cls(round=int(doc["round"]), exchange=None if ex is None else
                   Exchange.from_json(ex), rows=tuple(dict(r) for r in doc.get("rows", ())),
                   drops={int(d["client"]): str(d["why"]) for d in doc.get("drops", ())})
