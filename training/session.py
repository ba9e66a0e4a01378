r"""One session opens every run for every transport; a round: plan, clients, absorb, commit.

A :class:`Session` is the only place a run is prepared and the only writer of a run
directory's round files. Every transport uses it the same way: the in-process loop
(:func:`training.loop.train`), the Flower server app and the remote coordinator
(:mod:`training.remote`, :mod:`training.flower`)::

    session = Session.open(run_dir, cfg, resume=...)   # config, checkpoint, verification
    session.start(federation)                           # every check, then the first writes
    for t in session.rounds():
        plan = session.plan(t)                          # pure: the server's decisions
        results = ...                                   # the client steps, wherever they run
        record, state = session.absorb(plan, results)   # pure: a typed RoundRecord
        session.commit(record, state)                   # all I/O, in one order

* :meth:`Session.plan` is the server side of round ``t``, a pure function of the run
  state: the algorithm's market (if any), its settlement by :func:`mechanism.settle`
  (called here, never inside an algorithm), the algorithm's server step, and the
  round's :class:`~training.records.Exchange`;
* :meth:`Session.absorb` folds the clients' results into a new :class:`RunState` and
  returns the round's :class:`~training.records.RoundRecord` (exchange and metric rows),
  refusing a round whose numbers are not finite (:class:`NonFiniteRound`);
* :meth:`Session.commit` writes, in this order: the round file, the ledger entries, the
  metric rows, then the checkpoint with its hash-chain entry, the commit point. A run
  killed anywhere in between resumes to identical files (the round is re-run).

The run state is a typed :class:`RunState`; its checkpoint holds the same keys as every
earlier version wrote, so an older run directory resumes, and one whose checkpoint lacks
a key is refused with one line.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mechanism import IR_TOL, Settlement, settle, sharing_utilities

from .algorithms import Algorithm, ServerInput, ServerOutput, get_algorithm
from .algorithms.base import ClientOutput, MarketCall, Message, State
from .batched import check_batching
from .client import derive_seed
from .config import Config, resume_config
from .distance import get_distance
from .federation import Federation, check_market_domain, check_stability
from .ledger import Ledger
from .records import Exchange, RoundRecord
from .rundir import ChainNote, RunDir, RunDirError, is_finite_json, sha256
from .server import market_distances

__all__ = ["SHARING_DISTANCE", "IRViolationWarning", "NonFiniteRound", "Plan", "RunState",
           "Session", "preflight"]

#: how a baseline's exchange measures the distances between the uploads: as iPFL does by
#: default (:class:`training.algorithms.ipfl.IPFL`), so a baseline run can be rescored
#: offline under any ``lam`` (``ipfl rescore``)
SHARING_DISTANCE = ("sqeuclidean_mean", "median")


class IRViolationWarning(UserWarning):
    """A committed round in which some client's utility U_i^t (eq. (1)) is negative under iPFL."""


class NonFiniteRound(ValueError):
    """A round produced NaN or infinity; it was not committed."""


@dataclass
class RunState:
    """Everything a run carries from one round to the next (the checkpoint's content).

    Attributes
    ----------
    round : int
        The last committed round (-1 before round 0).
    uploads : torch.Tensor (m, P)
        The shared parameters each client uploaded last.
    infos : dict of torch.Tensor, each (m, ...)
        The clients' small infos for the next server step (e.g. FedFomo's weights).
    clients : list of State
        Each client's persistent state (its model; Ditto's personal model; an
        attacker's poisoned upload).
    server : State
        The algorithm's server state.
    best_val, test_at_best, cum_U : torch.Tensor (m,) float64
        Each client's best validation accuracy, its test accuracy at that round and its
        cumulative utility.
    active : torch.Tensor (m,) bool
        Who is still in (a client that quit keeps its best-validation model).
    chain : list of dict
        The hash chain (:meth:`training.rundir.RunDir.save_checkpoint`).
    """

    round: int
    uploads: torch.Tensor
    infos: State
    clients: list[State]
    server: State
    best_val: torch.Tensor
    test_at_best: torch.Tensor
    cum_U: torch.Tensor
    active: torch.Tensor
    chain: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def fresh(cls, algo: Algorithm, fed: Federation) -> RunState:
        """Return the state before round 0: every client at the common initial model."""
        m = fed.m
        return cls(round=-1, uploads=fed.theta0[fed.shared].expand(m, -1).clone(), infos={},
                   clients=[algo.init_client_state(i, fed.theta0, fed.buffers0)
                            for i in range(m)],
                   server=algo.init_server_state(m, fed.theta0[fed.shared]),
                   best_val=torch.full((m,), -math.inf, dtype=torch.float64),
                   test_at_best=torch.zeros(m, dtype=torch.float64),
                   cum_U=torch.zeros(m, dtype=torch.float64),
                   active=torch.ones(m, dtype=torch.bool))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """Return the checkpoint's keys (the chain aside)."""
        return tuple(f.name for f in fields(cls) if f.name != "chain")

    def to_checkpoint(self) -> dict[str, Any]:
        """Return the dict :meth:`RunDir.save_checkpoint` saves (the keys every version wrote)."""
        doc = {k: getattr(self, k) for k in self.keys()}
        if self.chain:
            doc["chain"] = self.chain
        return doc

    @classmethod
    def from_checkpoint(cls, doc: dict[str, Any], where: str) -> RunState:
        """Return the state a checkpoint holds; :class:`RunDirError` in one line if not one."""
        missing = [k for k in cls.keys() if k not in doc]
        if missing:
            raise RunDirError(f"{where}: the checkpoint lacks {missing} (written by another "
                              "ipfl version, or edited); this run cannot be resumed")
        return cls(**{k: doc[k] for k in cls.keys()}, chain=list(doc.get("chain", [])))

    def copy(self) -> RunState:
        """Return a copy for the next round, as :meth:`Session.absorb` uses it.

        The per-client tensors (``uploads``, ``infos``, ``best_val``, ``test_at_best``,
        ``cum_U``, ``active``) are cloned and may be written in place. ``clients`` is a new
        list of the *same* state dicts and ``server`` the same dict: replace an entry
        (``new.clients[i] = out.state``, ``new.server = plan.server``), never change one
        in place.
        """
        return RunState(round=self.round, uploads=self.uploads.clone(),
                        infos={k: v.clone() for k, v in self.infos.items()},
                        clients=list(self.clients), server=self.server,
                        best_val=self.best_val.clone(), test_at_best=self.test_at_best.clone(),
                        cum_U=self.cum_U.clone(), active=self.active.clone(),
                        chain=list(self.chain))


@dataclass
class Plan:
    """The server side of round ``t``, as global per-client arrays (the result of a pure step).

    Attributes
    ----------
    t : int
        The round.
    idx : ndarray int (k,)
        Global ids of the ``k`` clients in, ascending.
    out : ServerOutput or None
        The algorithm's server step over the clients in (None: fewer than one in).
    server : State
        The algorithm's new server state (committed with the round).
    settlement : Settlement or None
        The settled market (:func:`mechanism.settle`; market algorithms only).
    exchange : Exchange or None
        The round's record of who traded or shared what (None: round 0, or < 2 in).
    trains : ndarray bool (m,)
        The clients that run their client step this round.
    U, p, paid, received : ndarray (m,)
        Each client's utility (eq. (1), true profiles), net payment, money paid and
        received this round (0 for a client not in).
    imports, importers : ndarray int (m,)
        Out- and in-degree in the round's graph.
    columns : dict of ndarray (m,)
        The algorithm's extra metric columns (NaN: none for that client).
    """

    t: int
    idx: np.ndarray
    out: ServerOutput | None
    server: State
    settlement: Settlement | None
    exchange: Exchange | None
    trains: np.ndarray
    U: np.ndarray
    p: np.ndarray
    paid: np.ndarray
    received: np.ndarray
    imports: np.ndarray
    importers: np.ndarray
    columns: dict[str, np.ndarray]

    def message(self, i: int) -> Message:
        """Return the message to global client ``i`` (one of those in), with its bill.

        Raises
        ------
        ValueError
            Client ``i`` is not in this round.
        """
        local = int(np.searchsorted(self.idx, i))
        if self.out is None or local >= len(self.idx) or self.idx[local] != i:
            raise ValueError(f"round {self.t}: client {i} is not in (clients in: "
                             f"{self.idx.tolist()})")
        bill = 0.0 if self.settlement is None else float(self.settlement.p[local])
        return self.out.message(local, bill)


def preflight(cfg: Config, algo: Algorithm, fed: Federation) -> None:
    """Refuse, before any write, a run this federation cannot run; every transport's checks.

    Client batching ``"on"`` with an algorithm or model that cannot be batched (only
    where this process trains the clients: a server's view, without data, never
    batches), an unstable proximal step (:func:`~training.federation.check_stability`),
    profiles outside the market's numeric domain
    (:func:`~training.federation.check_market_domain`).
    """
    if fed.data:
        check_batching(cfg.client_batching, algo, fed.model, cfg.device)
    check_stability(algo, fed)
    check_market_domain(cfg, fed.profiles.true.N)


class Session:
    """An open run: its directory, config, algorithm, federation, state and metric rows.

    Open one with :meth:`open` (holding the run's lock), then :meth:`start` it with the
    federation this process sees. See the module docstring for a round.
    """

    def __init__(self, rd: RunDir, cfg: Config, doc: dict[str, Any] | None,
                 checkpoint: dict[str, Any] | None) -> None:
        self.rd, self.cfg = rd, cfg
        self.algo: Algorithm = get_algorithm(cfg)
        self._doc, self._checkpoint = doc, checkpoint
        self.fed: Federation | None = None
        self.state: RunState | None = None
        self.ledger: Ledger | None = None
        self.rows: list[dict[str, Any]] = []

    # ----- opening ----------------------------------------------------------------------
    @classmethod
    def open(cls, run_dir: str | Path | RunDir, cfg: Config | None = None, *,
             resume: bool = False, overrides: list[str] | tuple[str, ...] = (),
             allow: tuple[str, ...] = ()) -> Session:
        """Open a new run (an empty folder) or resume one (its config, checkpoint, chain).

        A new run needs ``cfg`` and refuses a non-empty folder (``allow``: a transport's
        own entries). A resumed run reads its config (``cfg``, if given, must equal it),
        verifies every artefact against the hash chain and applies ``overrides`` to
        non-structural keys (recorded in the config's history). Nothing is written
        until :meth:`start`. The caller holds the run's lock.
        """
        rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        if not resume:
            if cfg is None:
                raise ValueError("train: cfg is required for a new run")
            if overrides:
                raise ValueError("train: overrides apply to a resumed run; pass a changed "
                                 "cfg instead")
            rd.check_new(allow)
            return cls(rd, cfg, cfg.to_dict(), None)
        current = rd.read_config_doc()
        saved = _config_from(rd, current)
        if cfg is not None and cfg != saved:
            raise ValueError(f"resume: config differs from the one in {str(rd.config)!r}")
        checkpoint = rd.load_checkpoint()  # None: killed before round 0 committed
        check = rd.verify(resuming=True, state=checkpoint)
        if check.problems:
            raise RunDirError(
                f"resume: {str(rd.path)!r} fails verification: {check.problems[0]} "
                f"({len(check.problems)} problem(s); `ipfl audit-run {str(rd.path)}` lists "
                "them); it is not extended")
        for note in check.notes:  # an unkeyed (older) chain: resumable, said once
            warnings.warn(f"{str(rd.path)!r}: {note}", ChainNote, stacklevel=2)
        doc = None
        if overrides:
            saved, doc = resume_config(current, list(overrides), check.committed + 1,
                                       sha256(rd.read_config_bytes()))
        return cls(rd, saved, doc, checkpoint)

    def start(self, fed: Federation) -> None:
        """Check everything against ``fed``, then write the config and create the run's files.

        ``fed`` is the federation this process sees: with the clients' data
        (:func:`training.federation.prepare`) or the server's view
        (:func:`training.federation.server_view`).
        """
        preflight(self.cfg, self.algo, fed)
        state = None
        if self._checkpoint is not None:
            state = RunState.from_checkpoint(self._checkpoint, str(self.rd.checkpoint))
            if state.uploads.shape[1] != int(fed.shared.sum()):
                raise ValueError(f"resume: the checkpoint holds {state.uploads.shape[1]} shared "
                                 f"parameters per client, the model has {int(fed.shared.sum())}"
                                 "; pass the model the run was started with")
        committed = -1 if state is None else state.round
        self.rd.signing_key([] if state is None else state.chain)  # no key: refused unwritten
        if self._doc is not None and self._checkpoint is not None and self.rd.ledger.is_file():
            booked = [t for t in Ledger(self.rd.ledger, create=False).rounds() if t > committed]
            if booked:  # the ledger is append-only: a changed round could not be re-booked
                raise RunDirError(
                    f"{str(self.rd.path)!r}: round {booked[0]} was booked in the ledger by an "
                    "interrupted attempt; resume it once without --set, then change the config")
        if self._doc is not None:
            self.rd.write_config(self._doc)  # a new run's first write, or a resume change
        self.rd.create()
        self.ledger = Ledger(self.rd.ledger) if self.algo.uses_market else None
        self.state = state or RunState.fresh(self.algo, fed)
        self.rows = [r for t, rec in self.rd.read_records().items() if t <= self.state.round
                     for r in rec.rows]
        self.fed = fed
        #: (shared, total) parameters of the model: every metric row records them
        self.params = (int(fed.shared.sum()), sum(int(q.numel()) for q in fed.model.parameters()))

    @property
    def next_round(self) -> int:
        """The first round not yet committed."""
        return self.state.round + 1

    def rounds(self) -> Iterator[int]:
        """Return the rounds left to run: ``next_round .. cfg.rounds``."""
        return iter(range(self.next_round, self.cfg.rounds + 1))

    # ----- plan (pure) ---------------------------------------------------------------------
    def plan(self, t: int) -> Plan:
        """Return round ``t``'s server side: market and settlement, server step, exchange.

        Uses only what a server knows (profiles, uploads, states), never the clients'
        data, and changes nothing: the session's state moves on at :meth:`commit`.
        """
        fed, state = self.fed, self.state
        m = fed.m
        active = state.active.numpy().copy()
        idx = np.flatnonzero(active)
        z = np.zeros(m)
        plan = Plan(t=t, idx=idx, out=None, server=state.server, settlement=None,
                    exchange=None, trains=active.copy(), U=z.copy(), p=z.copy(),
                    paid=z.copy(), received=z.copy(), imports=np.zeros(m, dtype=int),
                    importers=np.zeros(m, dtype=int), columns={})
        if len(idx) == 0:
            return plan
        if t == 0:  # theta0 for all: no upload mixed in
            plan.out = ServerOutput.plain(fed.theta0[fed.shared].expand(len(idx), -1).clone(),
                                          own=0.0)
            return plan
        inp = self._server_input(t, idx)
        call = self.algo.market(inp, state.server)
        s = None if call is None else settle(call.market, call.budget, solver=call.solver,
                                             true=call.truth, defence=call.defence,
                                             estimate=call.estimate, band=call.band)
        out, plan.server = self.algo.server_step(inp, state.server, s)
        plan.out, plan.settlement = out, s
        plan.imports[idx], plan.importers[idx] = out.A.sum(axis=1), out.A.sum(axis=0)
        if s is not None:
            plan.U[idx], plan.p[idx] = s.U, s.p
            plan.paid[idx], plan.received[idx] = s.r.sum(axis=1), s.r.sum(axis=0)
            plan.trains[idx[~s.stays]] = False
        elif len(idx) >= 2:
            plan.U[idx] = sharing_utilities(inp.true.market(), out.A)
        for key, col in out.columns.items():
            plan.columns[key] = np.full(m, np.nan)
            plan.columns[key][idx] = col
        plan.exchange = self._exchange(t, idx, inp, call, s, out, plan.U[idx])
        return plan

    def _server_input(self, t: int, idx: np.ndarray) -> ServerInput:
        fed, state = self.fed, self.state
        ix = torch.as_tensor(idx, dtype=torch.long)
        return ServerInput(
            round=t, clients=idx, m=fed.m, reports=fed.profiles.reported.take(idx),
            true=fed.profiles.true.take(idx), uploads=state.uploads[ix],
            infos={k: v[ix] for k, v in state.infos.items()}, theta0=fed.theta0[fed.shared],
            seed=derive_seed(self.cfg.seed, 500 + t))

    def _exchange(self, t: int, idx: np.ndarray, inp: ServerInput, call: MarketCall | None,
                  s: Settlement | None, out: ServerOutput, U: np.ndarray) -> Exchange | None:
        roles = [self.fed.profiles.roles[i] for i in idx]
        if s is not None:
            return Exchange.market_round(round=t, clients=idx, roles=roles, market=call.market,
                                         budget=call.budget, solver=call.solver,
                                         true=call.truth, settlement=s,
                                         defence=call.defence, estimate=call.estimate,
                                         band=call.band, estimator=call.estimator,
                                         observed=call.observed)
        if len(idx) < 2:
            return None
        name, scale = SHARING_DISTANCE
        d = market_distances(get_distance(name).pairwise(
            inp.uploads.detach().to(torch.float64)).numpy(), scale)
        return Exchange.sharing(round=t, clients=idx, roles=roles, N=inp.true.N, c=inp.true.c,
                                K=inp.true.K, A=out.A, U=U, d=d, distance=name, d_scale=scale)

    # ----- absorb (pure) -------------------------------------------------------------------
    def absorb(self, plan: Plan, results: Mapping[int, tuple[ClientOutput, dict[str, float]]],
               drops: Mapping[int, str] | None = None) -> tuple[RoundRecord, RunState]:
        """Fold the client steps' results into the next state; return the round's record.

        ``results[i]`` is client ``i``'s output and metrics; ``drops`` names the clients
        that were to train but left (a remote transport: ``"timeout"``, an error): they
        are out from this round on, keep their best-validation model, and get a
        ``dropped`` column. A client that quits (the market's quit rule) keeps its
        best-validation model too.

        Raises
        ------
        ValueError
            A client that was to train has neither a result nor a drop.
        NonFiniteRound
            An upload, a state, a metric or the exchange holds NaN or infinity: nothing of
            the round is committed.
        """
        t, m = plan.t, self.fed.m
        drops = dict(drops or {})
        trains = plan.trains.copy()
        columns = dict(plan.columns)
        if drops:
            trains[list(drops)] = False
            columns["dropped"] = np.where(np.isin(np.arange(m), list(drops)), 1.0, np.nan)
        lost = [i for i in np.flatnonzero(trains).tolist() if i not in results]
        if lost:
            raise ValueError(f"round {t}: no result from clients {lost}")
        new = self.state.copy()
        new.server, new.round = plan.server, t
        for i in sorted(i for i in results if trains[i]):
            out, _ = results[i]
            new.clients[i] = out.state
            new.uploads[i] = out.upload
            for key, v in out.info.items():
                if key not in new.infos:
                    new.infos[key] = torch.zeros((m, *v.shape), dtype=v.dtype)
                new.infos[key][i] = v
        rows = []
        for i in range(m):
            if trains[i]:
                mt = results[i][1]
                if mt["val_acc"] > new.best_val[i]:  # selection on validation only, never test
                    new.best_val[i] = mt["val_acc"]
                    new.test_at_best[i] = mt["acc"]
                acc, val_acc = mt["acc"], mt["val_acc"]
            else:  # quit or dropped, now or earlier: keeps its best-validation model
                acc, val_acc = float(new.test_at_best[i]), float(new.best_val[i])
            new.cum_U[i] += plan.U[i]
            row = {
                "round": t, "client": i, "role": self.fed.profiles.roles[i],
                "N": float(self.fed.profiles.reported.N[i]), "active": bool(trains[i]),
                "group": None if self.fed.groups is None else int(self.fed.groups[i]),
                "acc": acc, "val_acc": val_acc, "best_acc": float(new.test_at_best[i]),
                "U": float(plan.U[i]), "cum_U": float(new.cum_U[i]), "p": float(plan.p[i]),
                "paid": float(plan.paid[i]), "received": float(plan.received[i]),
                "imports": int(plan.imports[i]), "importers": int(plan.importers[i]),
                "ir": bool(plan.U[i] >= -IR_TOL),
                "shared_params": self.params[0], "total_params": self.params[1],
            }
            for key, col in columns.items():
                row[key] = None if math.isnan(col[i]) else float(col[i])
            rows.append(row)
        new.active = torch.as_tensor(trains)
        record = RoundRecord(round=t, exchange=plan.exchange, rows=tuple(rows), drops=drops)
        _check_finite(record, new, self.rd)
        return record, new

    # ----- commit (all I/O) --------------------------------------------------------------
    def commit(self, record: RoundRecord, state: RunState) -> None:
        """Write round ``record.round``: round file, ledger, metric rows, drops, checkpoint.

        The checkpoint and its hash-chain entry are the commit point; everything before it
        is re-written identically when a killed round is re-run on resume.

        Raises
        ------
        ValueError
            ``record`` or ``state`` is not the next round (:attr:`next_round`).
        """
        t, ex = record.round, record.exchange
        if not t == state.round == self.next_round:
            raise ValueError(f"commit: the record is of round {t} and the state of round "
                             f"{state.round}; the next round is {self.next_round}")
        if ex is not None:
            self.rd.write_round(t, ex.to_json())
            if ex.kind == "market" and self.ledger is not None:
                self.ledger.book(t, ex.r, list(ex.clients))
                total = self.ledger.round_sum(t)
                if abs(total) > 1e-9:
                    raise RuntimeError(f"ledger: round {t} sums to {total!r}, not zero")
        self.rows = [r for r in self.rows if r["round"] < t] + list(record.rows)
        self.rd.write_metrics(self.rows)
        self.rd.write_drops(t, record.drops)
        doc = state.to_checkpoint()
        self.rd.save_checkpoint(doc)
        state.chain = doc["chain"]
        self.state = state
        if self.algo.uses_market:
            broken = [r for r in record.rows if not r["ir"]]  # U < 0: the client was in
            if broken:
                warnings.warn(
                    f"round {t}: individual rationality (Theorem 1) violated, U_i < 0 for "
                    f"clients {[r['client'] for r in broken]}: "
                    + ", ".join(f"U_{r['client']} = {r['U']:.6g}" for r in broken),
                    IRViolationWarning, stacklevel=2)


def _check_finite(record: RoundRecord, state: RunState, rd: RunDir) -> None:
    """Refuse round ``record.round`` if an upload, a state, a metric or the exchange is not finite.

    Raises :class:`NonFiniteRound` naming the first offender; the last committed round
    stays the commit point, so the run resumes with a changed setting.
    """
    t = record.round
    bad = None
    if not torch.isfinite(state.uploads).all():
        who = torch.nonzero(~torch.isfinite(state.uploads).all(dim=1)).flatten().tolist()
        bad = f"the uploaded models of clients {who}"
    for i, cs in enumerate(state.clients):
        if bad is None and not _finite_tensors(cs):
            bad = f"client {i}'s state"
    for r in record.rows:
        for key in ("acc", "best_acc", "U", "cum_U", "p", "paid", "received"):
            if bad is None and not math.isfinite(r[key]):
                bad = f"{key} of client {r['client']} ({r[key]!r})"
    if bad is None and record.exchange is not None and not is_finite_json(
            json.dumps(record.exchange.to_json())):
        bad = f"the round record of round {t}"
    if bad is not None:
        raise NonFiniteRound(
            f"round {t}: {bad} holds NaN or infinity; round {t} is not committed, the run "
            f"stays at round {t - 1}. Change the setting that diverged (e.g. a smaller lr) "
            f"and continue: ipfl train --resume {str(rd.path)} --set lr=...")


def _finite_tensors(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, dict):
        return all(_finite_tensors(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite_tensors(v) for v in obj)
    return True


def _config_from(rd: RunDir, doc: dict[str, Any]) -> Config:
    try:
        return Config.from_dict({k: v for k, v in doc.items() if k != "history"})
    except ValueError as exc:
        raise RunDirError(f"{str(rd.config)!r}: {exc} (the file was edited; restore the "
                          "one the run wrote)") from None
