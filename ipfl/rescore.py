r"""Rescore a finished run offline: eq. (1) utilities, eq. (3) welfare against its optimum.

A run's round records (:mod:`training.rundir`) hold, for every market round ``t >= 1``,
the clients in the round, their profiles and the sharing graph ``A`` the algorithm
used. From them :func:`rescore_run` computes, without retraining,

* per client: the cumulative utility of eq. (1),
  :math:`U_i = g_i(\sum_j a_{ij} N_j) - c_i\,\#\{j : a_{ji} = 1\} - p_i`, over the
  recorded rounds, the rounds with :math:`U_i < 0`, and the mean number of imports;
* per run: the mean cumulative utility, the clients whose cumulative utility is
  negative, the social welfare of eq. (3) summed over rounds,
  :math:`\sum_t SW_t = \sum_t \sum_i [g_i(n_i) - \mathbf c^\top \mathbf a_i]`, its share
  of the optimum :math:`\sum_t SW_t / \sum_t SW^*_t` (:math:`SW^*_t`: the best eq. (3)
  over all graphs of round ``t``'s clients, :func:`mechanism.optimal_social_welfare`),
  and eq. (4)'s *priced* welfare
  :math:`\sum_t [SW_t - \lambda \sum_{ij} a_{ij} \tfrac{N_j}{N_i} d_{ij}]`.

Everything is measured with the clients' *true* profiles (a liar's report only moved
the graph and the bills). Eq. (1) and eq. (3) do not contain :math:`\lambda`; it only
prices the model distances in the last line (and, for iPFL, chose the graph).

Two kinds of run:

* a **baseline** (``"kind": "sharing"`` records, local training included) has no
  payments; its utilities are :func:`mechanism.sharing_utilities` on its recorded
  graph, which does not depend on ``c`` or ``K`` choices, so it can be rescored under
  any ``c``, ``K_per_sample`` or ``lam`` (:data:`OVERRIDES`). The priced welfare needs
  the distances between its uploads, which records written before they were kept lack.
* an **iPFL** run (market records) chose its graph and bills from the reported ``c``,
  ``K`` and ``lam``: it is scored from its records (recorded true utilities, with
  payments; recorded graph) and refuses an override that differs from its own setting;
  a different setting needs a new run.

The run's hash chain is verified first (:meth:`training.RunDir.verify`); a run that
fails is refused (:class:`UnverifiedRun`), pointing to ``ipfl audit-run``.

References
----------
Zhang et al., "Incentivizing Inclusive Contributions in Model Sharing Markets",
arXiv:2505.02462, Methods 4.1, eqs. (1), (3), (4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mechanism import (
    IR_TOL,
    Market,
    check_graph,
    optimal_social_welfare,
    sharing_utilities,
    social_welfare,
)
from mechanism.market import DOMAIN
from training.profiles import parse_roles
from training.records import Exchange
from training.rundir import RunDir, RunDirError

__all__ = ["BASELINE_LAM", "OVERRIDES", "ClientScore", "Rescored", "UnverifiedRun",
           "check_overrides", "parse_overrides", "rescore_run"]

#: override key -> (largest value, meaning); every value is a finite number >= 0
OVERRIDES: dict[str, tuple[float, str]] = {
    "c": (DOMAIN["c"][1], "one sharing cost c_i for every client, whatever its role"),
    "K_per_sample": (DOMAIN["K"][1], "K_i = value * N_i (true N) for every client"),
    "lam": (DOMAIN["lam"][1], "the price of distance in eq. (4)'s welfare line"),
}

#: the lam at which a baseline's priced welfare is reported unless one is given
BASELINE_LAM = 1.0

#: rounds of at most this many clients get their optimum by brute force, larger by MILP
BRUTEFORCE_UP_TO = 12

_ALLOWED = ", ".join(OVERRIDES)


class UnverifiedRun(RunDirError):
    """The run fails its hash-chain verification: it is not rescored."""


@dataclass(frozen=True)
class ClientScore:
    """One client's economics over a run (true profile, overrides applied).

    Attributes
    ----------
    client : int
        Global client index.
    role : str
        ``trader``, ``buyer``, ``seller`` or ``attacker``.
    N, c, K : float
        True data size, and the sharing cost and eagerness used (``nan``: the client
        is in no recorded round).
    cum_U : float
        Eq. (1) summed over the recorded rounds.
    neg_rounds : int
        Recorded rounds with :math:`U_i < 0` (below ``-IR_TOL``).
    mean_imports : float
        Models imported per market round (rounds ``1..T``; 0 when out of a round).
    """

    client: int
    role: str
    N: float
    c: float
    K: float
    cum_U: float
    neg_rounds: int
    mean_imports: float


@dataclass(frozen=True)
class Rescored:
    r"""Result of :func:`rescore_run`: per-client scores and the run's welfare.

    Attributes
    ----------
    run_dir : str
    algorithm : str
    kind : str
        ``"market"`` (iPFL records), ``"sharing"`` (a baseline's) or ``"none"`` (no record).
    rounds : int
        Market rounds ``1..T`` the run committed.
    recorded : int
        Rounds with a record (a round of fewer than two clients has none).
    overrides : dict
        The overrides applied (``c``, ``K_per_sample``, ``lam``).
    clients : tuple of ClientScore
    mean_cum_U : float
        Mean of the clients' cumulative utilities.
    neg_clients : int
        Clients whose cumulative utility is below ``-IR_TOL``.
    welfare : float
        :math:`\sum_t SW_t`, eq. (3) on the recorded graphs.
    optimal_welfare : float
        :math:`\sum_t SW^*_t`, eq. (3)'s optimum per round.
    welfare_share : float
        ``welfare / optimal_welfare``: 1 at the optimum, 0 for no sharing (and for a
        run without records), negative when the graph destroys welfare (sharing costs
        above gains); ``nan`` when the optimum is 0.
    lam : float
        The lam of the priced welfare (``nan`` when the run's own lam changed).
    lam_source : str
        Where ``lam`` comes from, in words.
    priced_welfare : float or None
        Eq. (4)'s :math:`\sum_t [SW_t - \lambda \sum_{ij} a_{ij} (N_j/N_i) d_{ij}]`;
        None when some record lacks the distances.
    notes : tuple of str
        Caveats of this run's numbers.
    """

    run_dir: str
    algorithm: str
    kind: str
    rounds: int
    recorded: int
    overrides: dict[str, float]
    clients: tuple[ClientScore, ...]
    mean_cum_U: float
    neg_clients: int
    welfare: float
    optimal_welfare: float
    welfare_share: float
    lam: float
    lam_source: str
    priced_welfare: float | None
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (``inf`` as ``"inf"``, ``nan`` as null)."""
        out = {k: _jsonable(getattr(self, k)) for k in self.__dataclass_fields__
               if k != "clients"}
        out["clients"] = [{k: _jsonable(getattr(s, k)) for k in s.__dataclass_fields__}
                          for s in self.clients]
        return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, float):
        return None if math.isnan(v) else "inf" if math.isinf(v) else v
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v


# ---------------------------------------------------------------- overrides


def check_overrides(overrides: Mapping[str, object]) -> dict[str, float]:
    """Validate overrides (:data:`OVERRIDES`) and return them as floats.

    Raises
    ------
    ValueError
        One line naming the key and value, and the allowed keys.
    """
    out: dict[str, float] = {}
    for key, value in overrides.items():
        if key not in OVERRIDES:
            raise ValueError(f"rescore: unknown key {key!r} (value {value!r}); "
                             f"allowed keys: {_ALLOWED}")
        hi = OVERRIDES[key][0]
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not 0 <= value <= hi):
            raise ValueError(f"rescore: {key} = {value!r} must be a number in [0, {hi:g}]; "
                             f"allowed keys: {_ALLOWED}")
        out[key] = float(value)
    return out


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Read ``KEY=VALUE`` strings as ``ipfl train --set`` does, then :func:`check_overrides`.

    Examples
    --------
    >>> parse_overrides(["c=0.5", "lam=0"])
    {'c': 0.5, 'lam': 0.0}
    """
    from training.config import parse_override

    pairs = {}
    for item in items:
        try:
            key, value = parse_override(item)
        except ValueError as exc:
            raise ValueError(f"rescore: {exc}; allowed keys: {_ALLOWED}") from None
        pairs[key] = value
    return check_overrides(pairs)


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class _Round:
    """One recorded round: the true market (overrides applied), graph, utilities, distances."""

    t: int
    clients: NDArray[np.intp]
    market: Market
    A: NDArray[np.int8]
    U: NDArray[np.float64]
    d: NDArray[np.float64] | None
    lam: float | None  # the market's lam (iPFL records); None for a baseline


def _read_round(t: int, rec: dict, overrides: dict[str, float]) -> _Round:
    """Parse one record into a :class:`_Round` (true profiles; baseline overrides applied)."""
    try:
        ex = Exchange.from_json(rec)
    except ValueError as exc:
        raise ValueError(f"rescore: round {t}: not a round record ({exc})") from None
    sharing = ex.kind == "sharing"
    N, c, K = ex.true_profiles()
    if not sharing:
        _check_market_override(t, overrides, N, c, K, ex.lam)
    else:
        c = np.full_like(N, overrides["c"]) if "c" in overrides else c
        K = overrides["K_per_sample"] * N if "K_per_sample" in overrides else K
    try:
        clients = np.asarray(ex.clients, dtype=np.intp)
        if clients.shape != N.shape or ex.U.shape != N.shape:
            raise ValueError(f"{clients.size} clients do not fit N of {N.size} and U")
        market = Market(N=N, c=c, K=K)
        A = check_graph(market, ex.A)  # shape (k, k), 0/1, zero diagonal
        U = sharing_utilities(market, A) if sharing else ex.U
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rescore: round {t}: {exc}") from None
    d = ex.d
    if d is not None and (d.shape != A.shape or not np.all(np.isfinite(d)) or np.any(d < 0)):
        raise ValueError(f"rescore: round {t}: d must be a {A.shape} matrix of finite "
                         "distances >= 0")
    return _Round(t=t, clients=clients, market=market, A=A, U=U, d=d, lam=ex.lam)


def _check_market_override(t: int, overrides: dict[str, float], N: NDArray, c: NDArray,
                           K: NDArray, lam: float) -> None:
    """Refuse an override of an iPFL run that differs from the run's own setting."""
    for key, value in overrides.items():
        own = (bool(np.all(c == value)) if key == "c"
               else bool(np.allclose(K, value * N, rtol=1e-12, atol=0.0))
               if key == "K_per_sample" else lam == value)
        if not own:
            train_key = "ipfl.lam" if key == "lam" else key
            raise ValueError(
                f"rescore: an iPFL run cannot be rescored under another {key} ({key} = "
                f"{value:g} differs from the run's own in round {t}): its graph and payments "
                f"depend on it; rerun it instead, e.g. `ipfl train --config CONFIG --set "
                f"{train_key}={value:g}` or `ipfl experiment NAME ... --set {train_key}={value:g}`")


# ---------------------------------------------------------------- scoring


class _Optimum:
    """Eq. (3)'s optimum per market, cached on (N, c, K): lam and d do not enter it."""

    def __init__(self) -> None:
        self._cache: dict[bytes, float] = {}

    def __call__(self, mk: Market) -> float:
        key = b"".join(a.tobytes() for a in (mk.N, mk.c, mk.K))
        if key not in self._cache:
            solver = "bruteforce" if mk.m <= BRUTEFORCE_UP_TO else "milp"
            self._cache[key] = optimal_social_welfare(mk, solver=solver)[0]
        return self._cache[key]


def _distance_term(r: _Round) -> float:
    r"""Return :math:`\sum_{ij} a_{ij} (N_j / N_i) d_{ij}` of a round (true N)."""
    N = r.market.N
    return float((r.A * (N[None, :] / N[:, None]) * r.d).sum())


def _verified(rd: RunDir) -> int:
    """Verify the run's hash chain; return its last committed round or raise UnverifiedRun."""
    check = rd.verify()
    if check.problems:
        raise UnverifiedRun(
            f"rescore: {str(rd.path)!r} fails verification: {check.problems[0]} "
            f"({len(check.problems)} problem(s)); `ipfl audit-run {str(rd.path)}` lists them")
    return check.committed


def rescore_run(run_dir: str | Path, *, c: float | None = None,
                K_per_sample: float | None = None, lam: float | None = None) -> Rescored:
    r"""Score a finished run's economics from its round records, optionally under overrides.

    Parameters
    ----------
    run_dir : path
        A run directory (:class:`training.RunDir`); its hash chain is verified first.
    c : float, optional
        One sharing cost for every client (baselines only).
    K_per_sample : float, optional
        :math:`K_i = K_{\text{per sample}} N_i` with the true :math:`N_i` (baselines only).
    lam : float, optional
        The lam of the priced welfare. Default: the run's own for iPFL,
        :data:`BASELINE_LAM` for a baseline. An iPFL run accepts only its own value.

    Returns
    -------
    Rescored

    Raises
    ------
    UnverifiedRun
        The run fails verification (a :class:`training.rundir.RunDirError`).
    RunDirError
        Not a run directory, or an unreadable config or record.
    ValueError
        A bad override (naming it and the allowed keys), an override of an iPFL run
        that differs from its setting (pointing to a rerun), or a malformed record.

    Examples
    --------
    >>> from training import Config, train
    >>> import tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "fedavg"
    >>> cfg = Config(algorithm="fedavg", dataset="synthetic", clients=3, rounds=1, epochs=1)
    >>> rows = train(cfg, run, progress=False)
    >>> res = rescore_run(run)
    >>> res.kind, res.rounds, bool(abs(res.welfare - sum(r["U"] for r in rows)) < 1e-9)
    ('sharing', 1, True)
    >>> rescore_run(run, c=100.0).neg_clients  # every import now costs its exporter 100
    3
    """
    given = {k: v for k, v in (("c", c), ("K_per_sample", K_per_sample), ("lam", lam))
             if v is not None}
    overrides = check_overrides(given)
    rd = RunDir(run_dir)
    committed = _verified(rd)
    doc = rd.read_config_doc()
    try:
        m, algorithm = int(doc["clients"]), str(doc["algorithm"])
        roles = parse_roles(str(doc.get("roles", "")), m)
    except (KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"rescore: {str(rd.config)!r} is not a run config ({exc})") from None
    rounds = [_read_round(t, rec, overrides) for t, rec in sorted(rd.read_rounds().items())]
    kinds = {"sharing" if r.lam is None else "market" for r in rounds}
    kind = "none" if not rounds else "market" if "market" in kinds else "sharing"
    T = max(committed, 0)
    notes: list[str] = []

    # per client, in global indices
    cum_U, neg, imports = np.zeros(m), np.zeros(m, dtype=int), np.zeros(m)
    N, cs, Ks = np.full(m, math.nan), np.full(m, math.nan), np.full(m, math.nan)
    for r in reversed(rounds):  # the first record a client is in wins
        N[r.clients], cs[r.clients], Ks[r.clients] = r.market.N, r.market.c, r.market.K
    for r in rounds:
        np.add.at(cum_U, r.clients, r.U)
        np.add.at(neg, r.clients, r.U < -IR_TOL)
        np.add.at(imports, r.clients, r.A.sum(axis=1))
    missing = np.isnan(N)
    if missing.any():
        for row in rd.read_metrics():
            i = row.get("client")
            if isinstance(i, int) and 0 <= i < m and missing[i] and math.isnan(N[i]):
                N[i] = float(row.get("N", math.nan))
    clients = tuple(
        ClientScore(client=i, role=roles[i], N=float(N[i]), c=float(cs[i]), K=float(Ks[i]),
                    cum_U=float(cum_U[i]), neg_rounds=int(neg[i]),
                    mean_imports=float(imports[i] / T) if T else 0.0)
        for i in range(m))

    # welfare and its optimum
    optimum = _Optimum()
    sw = np.array([social_welfare(r.market, r.A) for r in rounds])
    sw_opt = np.array([optimum(r.market) for r in rounds])
    welfare, optimal = float(sw.sum()), float(sw_opt.sum())
    if not rounds:
        share = 0.0
        notes.append("no round records: U = 0 for every client and the welfare share is 0 "
                     "by convention (local training keeps no graph)")
    elif optimal > 0:
        share = welfare / optimal
    else:
        share = math.nan
        notes.append("no graph has positive welfare in any round (SW* = 0): the welfare "
                     "share is undefined")

    # eq. (4)'s priced welfare
    if "lam" in overrides:
        lams = np.full(len(rounds), overrides["lam"])
        lam_source = "given"
    elif kind == "market":
        lams = np.array([r.lam for r in rounds])
        lam_source = "the run's own"
    else:
        lams = np.full(len(rounds), BASELINE_LAM)
        lam_source = f"default {BASELINE_LAM:g} for a baseline, which has no lam"
    distinct = sorted(set(lams.tolist()))
    if "lam" in overrides or not rounds:
        lam_used = overrides.get("lam", BASELINE_LAM)
    else:
        lam_used = distinct[0] if len(distinct) == 1 else math.nan
    if len(distinct) > 1:
        lam_source += f" per round ({', '.join(f'{x:g}' for x in distinct)}: changed on resume)"
    if any(r.d is None for r in rounds):
        priced = None
        notes.append("the records lack the distances 'd' between the uploads (written by an "
                     "older ipfl): no priced welfare")
    else:
        dist = np.array([_distance_term(r) for r in rounds])
        priced = float((sw - lams * dist).sum())

    return Rescored(
        run_dir=str(rd.path), algorithm=algorithm, kind=kind, rounds=T,
        recorded=len(rounds), overrides=overrides, clients=clients,
        mean_cum_U=float(cum_U.mean()), neg_clients=int((cum_U < -IR_TOL).sum()),
        welfare=welfare, optimal_welfare=optimal, welfare_share=share, lam=lam_used,
        lam_source=lam_source, priced_welfare=priced, notes=tuple(notes))
