r"""The in-process transport: Algorithm 1's rounds over the server and client steps.

This module only moves messages: it never decides anything an algorithm decides.
Round 0: every client trains from the common initial model :math:`\theta^0` without a
proximal term (Algorithm 1's round-0 centre is :math:`\theta^0` itself) and reports its
profile. Rounds ``t = 1 .. rounds``: the algorithm's server step sees the uploads of the
clients still in and returns their messages; the clients whose bill is accepted run
their client step (:func:`training.client.run_client`); the others quit and keep
their best model so far, best by their own *validation* accuracy.

Records: per round and client one metric row (test accuracy of this round's model,
validation accuracy, test accuracy at the round of best validation accuracy, the
utility of eq. (1), money, graph degrees); for a market algorithm the round's market
record (``rounds/NNNN.json``) and its ledger entries. Baselines get the same utility
columns, scored on their sharing graph without payments (:func:`mechanism.sharing_utilities`).

Determinism and resume: data split, initial model and every random draw come from
generators seeded by ``(seed, round, client, purpose)``; the checkpoint (all client
and server states) is written last in a round and is the commit point; the round's
market record, ledger entries and metrics written before it are idempotent when the
round is re-run, so a run killed at any moment resumes to identical metrics.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mechanism import IR_TOL, sharing_utilities

from .algorithms import Algorithm, ServerInput, ServerOutput, get_algorithm
from .algorithms.base import ClientOutput, Message
from .batched import check_batching, run_clients_batched
from .client import ClientContext, LocalData, derive_seed, run_client
from .config import Config
from .data import Dataset, load_dataset
from .ledger import Ledger
from .models import build_model, get_flat, shared_mask
from .partition import client_splits, partition
from .profiles import Profiles, Reports, build_profiles
from .rundir import RunDir, atomic_write_text

__all__ = ["Federation", "IRViolationWarning", "ServerPhase", "collect", "finish_round",
           "prepare", "run_round", "server_phase", "train"]


class IRViolationWarning(UserWarning):
    """A recorded round in which some client's utility U_i^t (eq. (1)) is negative under iPFL."""


@dataclass
class Federation:
    """Everything fixed for a run: the clients' data, the model template, the profiles."""

    cfg: Config
    model: nn.Module
    data: list[LocalData]
    profiles: Profiles
    theta0: torch.Tensor
    buffers0: torch.Tensor
    shared: torch.Tensor
    groups: np.ndarray | None = None

    @property
    def m(self) -> int:
        """Number of clients."""
        return len(self.data)

    def context(self, i: int, t: int) -> ClientContext:
        """Return client ``i``'s context for round ``t``."""
        cfg = self.cfg
        return ClientContext(model=self.model, shared=self.shared, client=i, round=t,
                             seed=cfg.seed, epochs=cfg.epochs, batch_size=cfg.batch_size,
                             lr=cfg.lr, role=self.profiles.roles[i], attack=cfg.attack)


def _pool(cfg: Config, data: Dataset | None) -> Dataset:
    ds = data if data is not None else load_dataset(cfg.dataset, cfg.data_dir)
    if cfg.max_samples and cfg.max_samples < len(ds):
        perm = np.random.default_rng(derive_seed(cfg.seed, 1)).permutation(len(ds))
        keep = np.sort(perm[:cfg.max_samples])
        ds = Dataset(X=ds.X[keep], y=ds.y[keep], n_classes=ds.n_classes, name=ds.name)
    return ds


def prepare(cfg: Config, model: nn.Module | None = None, data: Any = None) -> Federation:
    r"""Load and split the data, build the model and the profiles; all validation first.

    ``model``, when given, is any :class:`torch.nn.Module` mapping a batch of the inputs
    to ``n_classes`` logits; it is deep-copied, so its current parameters are the common
    initial model :math:`\theta^0`. ``data``, when given, replaces ``cfg.dataset``: a
    :class:`~training.data.Dataset` (split by ``cfg.partition``), or one ``(X, y)`` pair
    or torch dataset per client (see :func:`training.userdata.as_client_pools`).
    """
    from .userdata import as_client_pools

    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(derive_seed(cfg.seed, 2))
    pools = as_client_pools(data, cfg.clients)
    if pools is None:
        ds = _pool(cfg, data if isinstance(data, Dataset) else None)
        if cfg.clients > len(ds):
            raise ValueError(f"config: clients = {cfg.clients} exceeds the {len(ds)} samples "
                             f"of dataset {ds.name!r}")
        parts = partition(cfg.partition, ds.y, cfg.clients, rng, beta=cfg.beta,
                          groups=cfg.groups, beta_between=cfg.beta_between,
                          beta_within=cfg.beta_within,
                          classes_per_client=cfg.classes_per_client)
    else:
        ds, parts = pools
    splits = client_splits(parts, cfg.test_frac, rng, val_frac=cfg.val_frac)
    X, y = torch.from_numpy(ds.X), torch.from_numpy(ds.y)
    local = [LocalData(X[s.train], y[s.train], X[s.val], y[s.val], X[s.test], y[s.test])
             for s in splits]
    torch.manual_seed(derive_seed(cfg.seed, 3))
    if model is None:
        model = build_model(cfg.model, tuple(ds.X.shape[1:]), ds.n_classes, cfg.hidden)
    else:
        model = _check_model(copy.deepcopy(model), X[:2], ds.n_classes)
    theta0, buffers0 = get_flat(model)
    shared = shared_mask(model, cfg.share)
    N = np.array([d.n_train for d in local], dtype=float)
    profiles = build_profiles(
        N, c=cfg.per_client("c"), K_per_sample=cfg.per_client("K_per_sample"),
        budget=cfg.per_client("budget"), roles=cfg.role_list, liars=list(cfg.liar),
        liar_N=cfg.liar_N, liar_c=cfg.liar_c, liar_K=cfg.liar_K,
        rng=np.random.default_rng(derive_seed(cfg.seed, 4)))
    groups = getattr(parts, "groups", None)
    return Federation(cfg, model, local, profiles, theta0, buffers0, shared, groups)


def _check_model(model: nn.Module, batch: torch.Tensor, n_classes: int) -> nn.Module:
    """Fail early, with the shapes, when a user's module does not fit the data."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model = {type(model).__name__} is not a torch.nn.Module")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"model = {type(model).__name__} has no trainable parameters")
    try:
        with torch.no_grad():
            out = model(batch)
    except Exception as exc:  # noqa: BLE001 (reported with the input shape)
        raise ValueError(f"model = {type(model).__name__} fails on a batch of shape "
                         f"{tuple(batch.shape)}: {exc}") from None
    if tuple(out.shape) != (len(batch), n_classes):
        raise ValueError(f"model = {type(model).__name__} maps a batch of shape "
                         f"{tuple(batch.shape)} to {tuple(out.shape)}, expected "
                         f"({len(batch)}, {n_classes}) logits")
    return model


def check_stability(algo: Algorithm, fed: Federation) -> None:
    """Refuse a run whose proximal step would make local SGD overshoot (``lr * mu > 1``)."""
    mu = algo.max_prox(fed.profiles.reported, fed.theta0[fed.shared])
    if fed.cfg.lr * mu > 1.0:
        raise ValueError(
            f"config: unstable proximal step: lr x proximal weight = {fed.cfg.lr:g} x {mu:.4g} "
            f"= {fed.cfg.lr * mu:.4g} > 1 for some client (worst case over the graph); "
            f"SGD would overshoot the centre. Lower lr below {1.0 / mu:.4g} or the "
            f"algorithm's proximal weight")


def _fresh_state(algo: Algorithm, fed: Federation) -> dict[str, Any]:
    m = fed.m
    return {
        "round": -1,
        "uploads": fed.theta0[fed.shared].expand(m, -1).clone(),
        "infos": {},
        "clients": [algo.init_client_state(i, fed.theta0, fed.buffers0) for i in range(m)],
        "server": algo.init_server_state(m, fed.theta0[fed.shared]),
        "best_val": torch.full((m,), -math.inf, dtype=torch.float64),
        "test_at_best": torch.zeros(m, dtype=torch.float64),
        "cum_U": torch.zeros(m, dtype=torch.float64),
        "active": torch.ones(m, dtype=torch.bool),
    }


def train(cfg: Config | None, run_dir: str | Path, *, resume: bool = False,
          progress: bool = True, model: nn.Module | None = None,
          data: Any = None) -> list[dict[str, Any]]:
    """Run (or resume) a training run in ``run_dir`` and return all metric rows.

    Parameters
    ----------
    cfg : Config or None
        The configuration; on ``resume`` it is read from ``run_dir/config.json`` and
        ``cfg`` must be None or equal to it.
    run_dir : path
        The run directory (created if needed; a new run refuses a non-empty one).
    resume : bool
        Continue from the last checkpoint.
    progress : bool
        Show a tqdm bar with mean accuracy and mean utility.
    model : torch.nn.Module, optional
        Any module producing ``n_classes`` logits (see :func:`prepare`); on resume, pass
        the same architecture again (its parameter count is checked).
    data : optional
        Your own data instead of ``cfg.dataset`` (see :func:`prepare`).
    """
    rd = RunDir(run_dir)
    if resume:
        saved = Config.from_dict(rd.read_config())
        if cfg is not None and cfg != saved:
            raise ValueError(f"resume: config differs from the one in {str(rd.config)!r}")
        cfg = saved
    elif cfg is None:
        raise ValueError("train: cfg is required for a new run")
    elif rd.path.exists() and any(rd.path.iterdir()):
        raise ValueError(f"run_dir = {str(rd.path)!r} is not empty; use --resume to continue it")
    algo = get_algorithm(cfg)
    fed = prepare(cfg, model, data)
    check_stability(algo, fed)
    state = rd.load_checkpoint() if resume else None
    if state is not None and state["uploads"].shape[1] != int(fed.shared.sum()):
        raise ValueError(f"resume: the checkpoint holds {state['uploads'].shape[1]} shared "
                         f"parameters per client, the model has {int(fed.shared.sum())}; pass "
                         "the model the run was started with")
    rd.create()
    if not resume:
        atomic_write_text(rd.config, cfg.dumps())
    ledger = Ledger(rd.ledger) if algo.uses_market else None
    state = state or _fresh_state(algo, fed)
    rows = [r for r in rd.read_metrics() if r["round"] <= state["round"]]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.rounds + 1, initial=state["round"] + 1, desc=cfg.algorithm,
                   unit="round")
    for t in range(state["round"] + 1, cfg.rounds + 1):
        new_rows = run_round(algo, fed, state, t, rd, ledger)
        rows = [r for r in rows if r["round"] < t] + new_rows
        rd.write_metrics(rows)
        state["round"] = t
        rd.save_checkpoint(state)
        if bar is not None:
            bar.set_postfix(acc=f"{np.mean([r['acc'] for r in new_rows]):.3f}",
                            U=f"{np.mean([r['U'] for r in new_rows]):.3f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    return rows


def _server_input(fed: Federation, state: dict[str, Any], idx: np.ndarray, t: int) -> ServerInput:
    ix = torch.as_tensor(idx, dtype=torch.long)
    return ServerInput(
        round=t, clients=idx, m=fed.m, reports=fed.profiles.reported.take(idx),
        true=fed.profiles.true.take(idx), uploads=state["uploads"][ix],
        infos={k: v[ix] for k, v in state["infos"].items()}, theta0=fed.theta0[fed.shared],
        seed=derive_seed(fed.cfg.seed, 500 + t))


def _round_zero(fed: Federation, k: int) -> ServerOutput:
    start = fed.theta0[fed.shared].expand(k, -1).clone()
    return ServerOutput.plain(start)


def _sharing_record(true: Reports, A: np.ndarray, U: np.ndarray) -> dict[str, Any]:
    """Return a baseline's round record: its sharing graph and eq. (1)'s utilities, no money."""
    return {"kind": "sharing",
            "inputs": {"N": true.N.tolist(), "c": ["inf" if math.isinf(v) else float(v)
                                                   for v in true.c], "K": true.K.tolist()},
            "outputs": {"A": A.tolist(), "U": U.tolist()}}


@dataclass
class ServerPhase:
    """What the server side of round ``t`` decided, as global per-client arrays.

    ``out`` is the algorithm's :class:`ServerOutput` over the clients passed in
    (``idx``); ``trains`` marks the clients that run their client step this round.
    """

    t: int
    idx: np.ndarray
    out: ServerOutput | None
    trains: np.ndarray
    active: np.ndarray
    U: np.ndarray
    p: np.ndarray
    paid: np.ndarray
    received: np.ndarray
    imports: np.ndarray
    importers: np.ndarray
    columns: dict[str, np.ndarray]

    def message(self, i: int) -> Message:
        """Return the message to global client ``i`` (one of those that train)."""
        return self.out.message(int(np.searchsorted(self.idx, i)))


def server_phase(algo: Algorithm, fed: Federation, state: dict[str, Any], t: int, rd: RunDir,
                 ledger: Ledger | None) -> ServerPhase:
    """Run round ``t``'s server side: server step, settlement records and ledger.

    Uses only what a server knows (profiles, uploads, states), never the clients' data,
    so every transport (this loop, a Flower ServerApp) calls it unchanged.
    """
    m = fed.m
    active = state["active"].numpy().copy()
    idx = np.flatnonzero(active)
    k = len(idx)
    z = np.zeros(m)
    ph = ServerPhase(t=t, idx=idx, out=None, trains=active.copy(), active=active, U=z.copy(),
                     p=z.copy(), paid=z.copy(), received=z.copy(),
                     imports=np.zeros(m, dtype=int), importers=np.zeros(m, dtype=int),
                     columns={})
    if k == 0:
        return ph
    if t == 0:
        ph.out = _round_zero(fed, k)
        return ph
    out, state["server"] = algo.server_step(_server_input(fed, state, idx, t), state["server"])
    ph.out = out
    ph.imports[idx], ph.importers[idx] = out.A.sum(axis=1), out.A.sum(axis=0)
    if out.settlement is not None:
        s = out.settlement
        ph.U[idx], ph.p[idx] = s.U, s.p
        ph.paid[idx], ph.received[idx] = s.r.sum(axis=1), s.r.sum(axis=0)
        ph.trains[idx[~s.stays]] = False
    elif k >= 2:
        true = fed.profiles.true.take(idx)
        ph.U[idx] = sharing_utilities(true.market(), out.A)
        out.record = _sharing_record(true, out.A, ph.U[idx])
    for key, col in out.columns.items():
        ph.columns[key] = np.full(m, np.nan)
        ph.columns[key][idx] = col
    if out.record is not None:
        roles = [fed.profiles.roles[i] for i in idx]
        rd.write_round(t, {"round": t, "clients": idx.tolist(), "roles": roles, **out.record})
        if ledger is not None and out.settlement is not None:
            ledger.book(t, out.settlement.r, idx.tolist())
            total = ledger.round_sum(t)
            if abs(total) > 1e-9:
                raise RuntimeError(f"ledger: round {t} sums to {total!r}, not zero")
    return ph


def collect(state: dict[str, Any], i: int, res: ClientOutput, m: int) -> None:
    """Store client ``i``'s output in the run state (its state, upload and info)."""
    state["clients"][i] = res.state
    state["uploads"][i] = res.upload
    for key, v in res.info.items():
        if key not in state["infos"]:
            state["infos"][key] = torch.zeros((m, *v.shape), dtype=v.dtype)
        state["infos"][key][i] = v


def run_round(algo: Algorithm, fed: Federation, state: dict[str, Any], t: int, rd: RunDir,
              ledger: Ledger | None) -> list[dict[str, Any]]:
    """Run round ``t`` in process: the server phase, every client step, the metric rows."""
    ph = server_phase(algo, fed, state, t, rd, ledger)
    metrics: dict[int, dict[str, float]] = {}
    for i, (res, metrics[i]) in client_results(algo, fed, state, ph, t):
        collect(state, i, res, fed.m)
    return finish_round(fed, state, ph, metrics, algo.uses_market)


def client_results(algo: Algorithm, fed: Federation, state: dict[str, Any], ph: ServerPhase,
                   t: int) -> list[tuple[int, tuple[ClientOutput, dict[str, float]]]]:
    """Run the client step of every client that trains in round ``t``, in client order.

    Batched (:mod:`training.batched`) when ``client_batching`` allows it for this
    algorithm and model, else one :func:`~training.client.run_client` per client.
    """
    ids = [int(i) for i in np.flatnonzero(ph.trains)]
    items = [(ph.message(i), state["clients"][i], fed.data[i], fed.context(i, t)) for i in ids]
    cfg = fed.cfg
    if check_batching(cfg.client_batching, algo, fed.model, cfg.device) and len(ids) > 1:
        return list(zip(ids, run_clients_batched(algo, items, cfg.device), strict=True))
    return [(i, run_client(algo, *item)) for i, item in zip(ids, items, strict=True)]


def finish_round(fed: Federation, state: dict[str, Any], ph: ServerPhase,
                 metrics: dict[int, dict[str, float]], market: bool) -> list[dict[str, Any]]:
    """Return round ``ph.t``'s metric rows and update the run's tracking state.

    ``metrics`` holds the evaluation of every client that trained; a client that quit
    (now or earlier) reports its best-validation model.
    """
    t, trains, active, U = ph.t, ph.trains, ph.active, ph.U
    rows = []
    for i in range(fed.m):
        if trains[i]:
            mt = metrics[i]
            val = mt["val_acc"] if not math.isnan(mt["val_acc"]) else mt["acc"]
            if val > state["best_val"][i]:
                state["best_val"][i] = val
                state["test_at_best"][i] = mt["acc"]
            acc, val_acc = mt["acc"], mt["val_acc"]
        else:  # quit now or earlier: keeps its best-validation model
            acc, val_acc = float(state["test_at_best"][i]), float(state["best_val"][i])
        state["cum_U"][i] += U[i]
        row = {
            "round": t, "client": i, "role": fed.profiles.roles[i],
            "N": float(fed.profiles.reported.N[i]), "active": bool(trains[i]),
            "group": None if fed.groups is None else int(fed.groups[i]),
            "acc": acc, "val_acc": val_acc, "best_acc": float(state["test_at_best"][i]),
            "U": float(U[i]), "cum_U": float(state["cum_U"][i]), "p": float(ph.p[i]),
            "paid": float(ph.paid[i]), "received": float(ph.received[i]),
            "imports": int(ph.imports[i]), "importers": int(ph.importers[i]),
            "ir": bool(U[i] >= -IR_TOL),
        }
        for key, col in ph.columns.items():
            row[key] = None if math.isnan(col[i]) else float(col[i])
        rows.append(row)
    state["active"] = torch.as_tensor(trains)
    broken = [r["client"] for r in rows if not r["ir"] and active[r["client"]]]
    if broken and market:
        warnings.warn(f"round {t}: individual rationality (Theorem 1) violated, U_i < 0 for "
                      f"clients {broken}: " + ", ".join(f"U_{i} = {U[i]:.6g}" for i in broken),
                      IRViolationWarning, stacklevel=4)
    return rows
