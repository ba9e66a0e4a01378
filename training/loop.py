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

import contextlib
import copy
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mechanism import IR_TOL, sharing_utilities
from mechanism.market import DOMAIN

from .algorithms import Algorithm, ServerInput, ServerOutput, get_algorithm
from .algorithms.base import ClientOutput, Message
from .batched import check_batching, run_clients_batched
from .client import ClientContext, LocalData, derive_seed, run_client
from .config import Config, resume_config
from .data import Dataset, load_dataset
from .distance import get_distance
from .ledger import Ledger
from .models import build_model, get_flat, shared_mask
from .partition import client_splits, partition
from .profiles import Profiles, Reports, build_profiles
from .rundir import RunDir, RunDirError, is_finite_json, sha256
from .server import json_floats, market_distances

__all__ = ["Federation", "IRViolationWarning", "NonFiniteRound", "ServerPhase",
           "check_round_finite", "collect", "commit_round", "finish_round", "prepare",
           "run_round", "server_phase", "train"]


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
    if model is None:
        _check_memory(cfg, tuple(ds.X.shape[1:]), ds.n_classes)
    torch.manual_seed(derive_seed(cfg.seed, 3))
    if model is None:
        model = build_model(cfg.model, tuple(ds.X.shape[1:]), ds.n_classes, cfg.hidden)
    else:
        model = _check_model(copy.deepcopy(model), X[:2], ds.n_classes)
    theta0, buffers0 = get_flat(model)
    shared = shared_mask(model, cfg.share)
    N = np.array([d.n_train for d in local], dtype=float)
    _check_market_domain(cfg, N)
    profiles = build_profiles(
        N, c=cfg.per_client("c"), K_per_sample=cfg.per_client("K_per_sample"),
        budget=cfg.per_client("budget"), roles=cfg.role_list, liars=list(cfg.liar),
        liar_N=cfg.liar_N, liar_c=cfg.liar_c, liar_K=cfg.liar_K,
        rng=np.random.default_rng(derive_seed(cfg.seed, 4)))
    groups = getattr(parts, "groups", None)
    return Federation(cfg, model, local, profiles, theta0, buffers0, shared, groups)


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``, else physical), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(cfg: Config, input_shape: tuple[int, ...], n_classes: int) -> None:
    """Refuse, before allocating, a model whose run cannot fit in memory.

    The model is built on the ``meta`` device (no memory) to count its parameters ``P``;
    a run holds at least two float32 copies per client (its state and its upload) plus
    the template: ``4 P (2 m + 1)`` bytes, a lower bound.
    """
    with torch.device("meta"):
        probe = build_model(cfg.model, input_shape, n_classes, cfg.hidden)
    P = sum(p.numel() for p in probe.parameters())
    need = 4 * P * (2 * cfg.clients + 1)
    have = _available_memory()
    if have is not None and need > have:
        raise ValueError(
            f"config: hidden = {cfg.hidden} gives a model of {P:,} parameters; {cfg.clients} "
            f"clients need at least {need / 2**30:,.3g} GiB (two float32 copies each), more "
            f"than the {have / 2**30:,.3g} GiB available; lower hidden or clients")


def _check_market_domain(cfg: Config, N: np.ndarray) -> None:
    """Refuse profiles outside the market's numeric domain (:data:`mechanism.DOMAIN`)."""
    lo, hi = DOMAIN["K"]
    for key, factor in (("K_per_sample", cfg.liar_K), ("c", cfg.liar_c)):
        for i, v in enumerate(cfg.per_client(key)):
            x = v * (float(N[i]) if key == "K_per_sample" else 1.0)
            limit = hi if key == "K_per_sample" else DOMAIN["c"][1]
            if key == "c" and math.isinf(v):
                continue
            if not x * max(factor, 1.0) <= limit:
                name = f"{key}[{i}]" if isinstance(getattr(cfg, key), tuple) else key
                what = f"K_{i} = {v:g} x N_{i} = {x:g}" if key == "K_per_sample" else f"{x:g}"
                liars = f" (x liar factor {factor:g})" if factor > 1 else ""
                raise ValueError(f"config: {name} = {v:g} gives {what}{liars}, outside the "
                                 f"market's numeric domain "
                                 f"[{lo:g}, {limit:g}] (mechanism.DOMAIN); choose a smaller "
                                 f"{key}")


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
          data: Any = None, overrides: list[str] | None = None) -> list[dict[str, Any]]:
    """Run (or resume) a training run in ``run_dir`` and return all metric rows.

    Parameters
    ----------
    cfg : Config or None
        The configuration; on ``resume`` it is read from ``run_dir/config.json`` and
        ``cfg`` must be None or equal to it.
    run_dir : path
        The run directory (created if needed; a new run refuses a non-empty one).
    resume : bool
        Continue from the last committed round, after checking every artefact against
        the run's hash chain (:meth:`RunDir.verify`).
    progress : bool
        Show a tqdm bar with mean accuracy and mean utility.
    model : torch.nn.Module, optional
        Any module producing ``n_classes`` logits (see :func:`prepare`); on resume, pass
        the same architecture again (its parameter count is checked).
    data : optional
        Your own data instead of ``cfg.dataset`` (see :func:`prepare`).
    overrides : list of str, optional
        On resume only, ``key=value`` changes of non-structural keys
        (:data:`training.config.RESUMABLE` and the algorithm's table), recorded in the
        history inside ``config.json``; ``rounds=30`` extends a finished run.

    Raises
    ------
    ValueError
        Before any work, for a bad setting or run directory
        (:class:`~training.rundir.RunDirError`, :class:`~training.rundir.RunLocked` when
        another process writes the run); after a round whose numbers are not finite
        (:class:`NonFiniteRound`: nothing of that round is committed).
    """
    rd = RunDir(run_dir)
    if resume:
        if not rd.path.is_dir():
            raise RunDirError(f"resume: run_dir {str(rd.path)!r} does not exist")
        rd.read_config_bytes()  # not a run: say so before taking the lock
    elif cfg is None:
        raise ValueError("train: cfg is required for a new run")
    elif overrides:
        raise ValueError("train: overrides apply to a resumed run; pass a changed cfg instead")
    else:
        rd.check_new()
    existed = rd.path.exists()
    try:
        with rd.lock():
            return _train_locked(cfg, rd, resume, progress, model, data, list(overrides or []))
    except BaseException:
        if not resume and not rd.config.exists():  # a new run that wrote nothing: no trace
            with contextlib.suppress(OSError):
                rd.lockfile.unlink(missing_ok=True)
            for folder in (rd.rounds, None if existed else rd.path):
                if folder is not None:
                    with contextlib.suppress(OSError):
                        folder.rmdir()
        raise


def open_run(rd: RunDir, cfg: Config | None, resume: bool, overrides: list[str],
             allow: tuple[str, ...] = ()) -> tuple[Config, dict[str, Any] | None,
                                                   dict[str, Any] | None]:
    """Return (config, config document to write or None, checkpointed state or None).

    A new run checks that the folder is empty (``allow``: a transport's own entries);
    a resumed run reads its config, verifies every artefact against the hash chain and
    applies ``overrides`` to non-structural keys (recorded in the config's history).
    Every transport calls this while holding the run's lock.
    """
    doc = None
    state = None
    if resume:
        current = rd.read_config_doc()
        saved = _config_from(rd, current)
        if cfg is not None and cfg != saved:
            raise ValueError(f"resume: config differs from the one in {str(rd.config)!r}")
        cfg = saved
        state = rd.load_checkpoint()
        check = rd.verify(resuming=True, state=state)
        if check.problems:
            raise RunDirError(
                f"resume: {str(rd.path)!r} fails verification: {check.problems[0]} "
                f"({len(check.problems)} problem(s); `ipfl audit-run {str(rd.path)}` lists "
                "them); it is not extended")
        if overrides:
            cfg, doc = resume_config(current, overrides, check.committed + 1,
                                     sha256(rd.read_config_bytes()))
    elif cfg is None:
        raise ValueError("train: cfg is required for a new run")
    else:
        rd.check_new(allow)
        doc = cfg.to_dict()
    return cfg, doc, state


def _train_locked(cfg: Config | None, rd: RunDir, resume: bool, progress: bool,
                  model: nn.Module | None, data: Any,
                  overrides: list[str]) -> list[dict[str, Any]]:
    cfg, doc, state = open_run(rd, cfg, resume, overrides)
    algo = get_algorithm(cfg)
    fed = prepare(cfg, model, data)
    check_batching(cfg.client_batching, algo, fed.model, cfg.device)  # "on": refuse now
    check_stability(algo, fed)
    if state is not None and state["uploads"].shape[1] != int(fed.shared.sum()):
        raise ValueError(f"resume: the checkpoint holds {state['uploads'].shape[1]} shared "
                         f"parameters per client, the model has {int(fed.shared.sum())}; pass "
                         "the model the run was started with")
    if doc is not None:
        rd.write_config(doc)  # the first write of a new run, or a recorded resume change
    rd.create()
    ledger = Ledger(rd.ledger) if algo.uses_market else None
    state = state or _fresh_state(algo, fed)
    rows = [r for r in rd.read_metrics() if r["round"] <= state["round"]]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.rounds + 1, initial=state["round"] + 1, desc=cfg.algorithm,
                   unit="round")
    try:
        for t in range(state["round"] + 1, cfg.rounds + 1):
            new_rows = run_round(algo, fed, state, t, rd, ledger)
            check_round_finite(t, state, new_rows, rd)
            rows = [r for r in rows if r["round"] < t] + new_rows
            commit_round(rd, state, t, rows)
            if bar is not None:
                bar.set_postfix(acc=f"{np.mean([r['acc'] for r in new_rows]):.3f}",
                                U=f"{np.mean([r['U'] for r in new_rows]):.3f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def _config_from(rd: RunDir, doc: dict[str, Any]) -> Config:
    try:
        return Config.from_dict({k: v for k, v in doc.items() if k != "history"})
    except ValueError as exc:
        raise RunDirError(f"{str(rd.config)!r}: {exc} (the file was edited; restore the "
                          "one the run wrote)") from None


class NonFiniteRound(ValueError):
    """A round produced NaN or infinity; it was not committed."""


def check_round_finite(t: int, state: dict[str, Any], rows: list[dict[str, Any]],
                       rd: RunDir) -> None:
    """Refuse to commit round ``t`` if an upload, model, metric, utility or record is not finite.

    Raises :class:`NonFiniteRound` naming the first offender; the checkpoint of round
    ``t - 1`` stays the commit point, so the run resumes with a changed setting.
    """
    bad = None
    uploads = state["uploads"]
    if not torch.isfinite(uploads).all():
        who = torch.nonzero(~torch.isfinite(uploads).all(dim=1)).flatten().tolist()
        bad = f"the uploaded models of clients {who}"
    for i, cs in enumerate(state["clients"]):
        if bad is None and not _finite_tensors(cs):
            bad = f"client {i}'s state"
    for r in rows:
        for key in ("acc", "best_acc", "U", "cum_U", "p", "paid", "received"):
            if bad is None and not math.isfinite(r[key]):
                bad = f"{key} of client {r['client']} ({r[key]!r})"
    rec = rd.round_path(t)
    if bad is None and t > 0 and rec.is_file() and not is_finite_json(rec.read_text()):
        bad = f"the round record {str(rec)!r}"
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


def commit_round(rd: RunDir, state: dict[str, Any], t: int, rows: list[dict[str, Any]]) -> None:
    """Commit round ``t``: write all metric rows, then the checkpoint with its chain entry.

    Every transport calls this after :func:`finish_round` (and :func:`check_round_finite`);
    the checkpoint is the commit point.
    """
    rd.write_metrics(rows)
    state["round"] = t
    rd.save_checkpoint(state)


def _server_input(fed: Federation, state: dict[str, Any], idx: np.ndarray, t: int) -> ServerInput:
    ix = torch.as_tensor(idx, dtype=torch.long)
    return ServerInput(
        round=t, clients=idx, m=fed.m, reports=fed.profiles.reported.take(idx),
        true=fed.profiles.true.take(idx), uploads=state["uploads"][ix],
        infos={k: v[ix] for k, v in state["infos"].items()}, theta0=fed.theta0[fed.shared],
        seed=derive_seed(fed.cfg.seed, 500 + t))


def _round_zero(fed: Federation, k: int) -> ServerOutput:
    start = fed.theta0[fed.shared].expand(k, -1).clone()
    return ServerOutput.plain(start, own=0.0)  # theta0 for all: no upload mixed in


#: how a baseline's round record measures the distances between the uploads: as iPFL
#: does by default (:class:`training.algorithms.ipfl.IPFL`), so a baseline run can be
#: rescored offline under any ``lam`` (``ipfl rescore``)
SHARING_DISTANCE = ("sqeuclidean_mean", "median")


def _sharing_record(true: Reports, A: np.ndarray, U: np.ndarray,
                    uploads: torch.Tensor) -> dict[str, Any]:
    r"""Return a baseline's round record: its graph, eq. (1)'s utilities, the uploads' distances.

    ``inputs.d`` is the (k, k) matrix of distances between this round's uploads, measured
    and scaled exactly as iPFL's market measures them (:data:`SHARING_DISTANCE`,
    :func:`training.server.market_distances`), so that eq. (4)'s distance term
    :math:`\lambda \sum_j a_{ij} N_j / N_i\, d_{ij}` can be priced afterwards under any
    ``lam``. No money moves: a baseline has no payments.
    """
    name, scale = SHARING_DISTANCE
    d = market_distances(get_distance(name).pairwise(uploads.detach().to(torch.float64)).numpy(),
                         scale)
    return {"kind": "sharing",
            "inputs": {"N": true.N.tolist(), "c": json_floats(true.c), "K": true.K.tolist(),
                       "d": d.tolist(), "distance": name, "d_scale": scale},
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
        out.record = _sharing_record(true, out.A, ph.U[idx],
                                     state["uploads"][torch.as_tensor(idx, dtype=torch.long)])
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
            val = mt["val_acc"]  # selection on validation only (val_frac > 0), never test
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
