r"""The one training loop of Algorithm 1; algorithms plug in through their hooks.

Round 0: every client trains locally from the common initial model :math:`\theta^0`
and reports :math:`(N_i, c_i, K_i)` (the round-0 proximal term of Algorithm 1 is centred
at :math:`\theta^0` itself; we train round 0 without it). Rounds ``t = 1 .. rounds``:
the clients still in upload :math:`\theta_i^t`; the algorithm's
:meth:`~training.algorithms.Algorithm.server_step` decides graph, payments, quitters and
prox-centres; the clients that pay train ``epochs`` epochs on eq. (7); a client that
quits keeps its best model so far (best by its own test accuracy) and stops.

Determinism and resume: data split, initial model and every client's mini-batch order
in every round come from generators seeded by ``(seed, round, client)``, never from a
global state carried across rounds, so a run resumed from its last checkpoint produces
exactly the metrics of an uninterrupted run. The checkpoint is written last in a round
(the commit point); the round's market record, ledger entries and metrics written
before it are idempotent when the round is re-run.
"""

from __future__ import annotations

import copy
import math
import os
import signal
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .algorithms import get_algorithm
from .client import evaluate, train_client
from .config import Config
from .data import load_dataset
from .ledger import Ledger
from .models import build_model, get_flat
from .partition import ClientData, client_splits, partition
from .rundir import RunDir, atomic_write_text
from .server import ProxCapWarning, Reports

__all__ = ["Federation", "prepare", "train"]


@dataclass
class Federation:
    """Everything fixed for a run: the clients' data, the model template, the reports."""

    cfg: Config
    model: nn.Module
    train_sets: list[tuple[torch.Tensor, torch.Tensor]]
    test_sets: list[tuple[torch.Tensor, torch.Tensor]]
    splits: list[ClientData]
    reports: Reports
    theta0: torch.Tensor
    buffers0: torch.Tensor

    @property
    def m(self) -> int:
        """Number of clients."""
        return len(self.splits)


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)


def prepare(cfg: Config, model: nn.Module | None = None) -> Federation:
    r"""Load data, partition it, build the model and the reports; all validation first.

    ``model``, when given, is any :class:`torch.nn.Module` mapping a batch of this
    dataset's inputs to ``n_classes`` logits; it is deep-copied, so its own current
    parameters are the common initial model :math:`\theta^0` and the caller's module
    is never modified. Without it, ``cfg.model`` names a built-in model.
    """
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    data = load_dataset(cfg.dataset, cfg.data_dir)
    X, y = data.X, data.y
    if cfg.max_samples and cfg.max_samples < len(y):
        perm = np.random.default_rng(_seed(cfg.seed, 1)).permutation(len(y))
        keep = np.sort(perm[:cfg.max_samples])
        X, y = X[keep], y[keep]
    if cfg.clients > len(y):
        raise ValueError(f"config: clients = {cfg.clients} exceeds the {len(y)} samples of "
                         f"dataset {cfg.dataset!r}")
    rng = np.random.default_rng(_seed(cfg.seed, 2))
    parts = partition(cfg.partition, y, cfg.clients, rng, beta=cfg.beta, groups=cfg.groups,
                      beta_between=cfg.beta_between, beta_within=cfg.beta_within,
                      classes_per_client=cfg.classes_per_client)
    splits = client_splits(parts, cfg.test_frac, rng)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    train_sets = [(Xt[s.train], yt[s.train]) for s in splits]
    test_sets = [(Xt[s.test], yt[s.test]) for s in splits]
    torch.manual_seed(_seed(cfg.seed, 3))
    if model is None:
        model = build_model(cfg.model, tuple(X.shape[1:]), data.n_classes, cfg.hidden)
    else:
        model = _check_model(copy.deepcopy(model), Xt[:2], data.n_classes)
    theta0, buffers0 = get_flat(model)
    N = np.array([s.n_train for s in splits], dtype=float)
    reports = Reports.make(N=N, c=np.full(len(N), cfg.c), K=cfg.K_per_sample * N,
                           budget=np.full(len(N), cfg.budget))
    return Federation(cfg, model, train_sets, test_sets, splits, reports, theta0, buffers0)


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


def _crash_point(name: str, t: int) -> None:
    """Kill this process with SIGKILL at ``IPFL_CRASH_AT=name:round`` (crash tests only)."""
    if os.environ.get("IPFL_CRASH_AT") == f"{name}:{t}":
        os.kill(os.getpid(), signal.SIGKILL)


def _fresh_state(fed: Federation) -> dict[str, Any]:
    m = fed.m
    return {
        "round": -1,
        "params": fed.theta0.expand(m, -1).clone(),
        "buffers": fed.buffers0.expand(m, -1).clone(),
        "best_params": fed.theta0.expand(m, -1).clone(),
        "best_buffers": fed.buffers0.expand(m, -1).clone(),
        "best_acc": np.full(m, -1.0),
        "cum_U": np.zeros(m),
        "active": np.ones(m, dtype=bool),
    }


def train(cfg: Config | None, run_dir: str | Path, *, resume: bool = False,
          progress: bool = True, model: nn.Module | None = None) -> list[dict[str, Any]]:
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
        Any module producing ``n_classes`` logits (see :func:`prepare`); on resume,
        pass the same architecture again (its parameter count is checked).
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
    fed = prepare(cfg, model)
    rd.create()
    if not resume:
        atomic_write_text(rd.config, cfg.dumps())
    ledger = Ledger(rd.ledger) if algo.uses_market else None
    state = rd.load_checkpoint() if resume else None
    if state is not None and state["params"].shape[1] != fed.theta0.numel():
        raise ValueError(f"resume: the checkpoint holds {state['params'].shape[1]} parameters "
                         f"per client, the model has {fed.theta0.numel()}; pass the model "
                         "the run was started with")
    state = state or _fresh_state(fed)
    rows = [r for r in rd.read_metrics() if r["round"] <= state["round"]]

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.rounds + 1, initial=state["round"] + 1, desc=f"{cfg.algorithm}",
                   unit="round")
    capped_total = 0
    for t in range(state["round"] + 1, cfg.rounds + 1):
        new_rows, capped = _round(fed, algo, state, t, rd, ledger)
        capped_total += capped
        rows = [r for r in rows if r["round"] < t] + new_rows
        rd.write_metrics(rows)
        _crash_point("metrics", t)
        state["round"] = t
        rd.save_checkpoint(state)
        _crash_point("checkpoint", t)
        if bar is not None:
            live = [r for r in new_rows if r["active"]] or new_rows
            bar.set_postfix(acc=f"{np.mean([r['acc'] for r in new_rows]):.3f}",
                            U=f"{np.mean([r['U'] for r in live]):.3f}")
            bar.update(1)
    if bar is not None:
        bar.close()
    if capped_total:
        warnings.warn(f"eq. (6): the prox-centre step was capped {capped_total} times "
                      f"(client-rounds) to stay a convex combination (max_mix = {cfg.max_mix})",
                      ProxCapWarning, stacklevel=2)
    return rows


class IRViolationWarning(UserWarning):
    """A recorded round in which some client's utility U_i^t (eq. (1)) is negative."""


def _round(fed: Federation, algo: Any, state: dict[str, Any], t: int, rd: RunDir,
           ledger: Ledger | None) -> tuple[list[dict[str, Any]], int]:
    cfg, m = fed.cfg, fed.m
    params, buffers = state["params"], state["buffers"]
    active = state["active"]
    idx = np.flatnonzero(active)
    k = len(idx)
    U, p, paid, received = np.zeros(m), np.zeros(m), np.zeros(m), np.zeros(m)
    imports, importers = np.zeros(m, dtype=int), np.zeros(m, dtype=int)
    eta = np.full(m, math.nan)
    capped = 0
    starts, prox = params.clone(), np.zeros(m)
    train_mask = active.copy()
    if t > 0 and k > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProxCapWarning)  # summed up once, at the end
            plan = algo.server_step(fed.reports.take(idx), params[idx], t)
        starts[idx] = plan.centers.to(params.dtype)
        prox[idx] = plan.prox
        U[idx], p[idx] = plan.U, plan.p
        paid[idx], received[idx] = plan.r.sum(axis=1), plan.r.sum(axis=0)
        imports[idx], importers[idx] = plan.A.sum(axis=1), plan.A.sum(axis=0)
        if "eta" in plan.extra:
            eta[idx] = plan.extra["eta"]
            capped = int(np.sum(plan.extra["capped"]))
        quit_ = idx[~plan.stays]
        train_mask[quit_] = False
        if plan.market is not None:
            record = {"round": t, "clients": idx.tolist(), **plan.market}
            rd.write_round(t, record)
            _crash_point("record", t)
            if ledger is not None:
                ledger.book(t, plan.r, idx.tolist())
                total = ledger.round_sum(t)
                if abs(total) > 1e-9:
                    raise RuntimeError(f"ledger: round {t} sums to {total!r}, not zero")
            _crash_point("ledger", t)
    for i in np.flatnonzero(train_mask):
        gen = torch.Generator().manual_seed(_seed(cfg.seed, 100 + t, int(i)))
        torch.manual_seed(_seed(cfg.seed, 200 + t, int(i)))
        X, y = fed.train_sets[i]
        params[i], buffers[i] = train_client(
            fed.model, X, y, starts[i], buffers[i], starts[i].clone(), float(prox[i]),
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, generator=gen,
            objective=algo.local_objective)
    rows = []
    for i in range(m):
        if train_mask[i]:
            acc = evaluate(fed.model, params[i], buffers[i], *fed.test_sets[i])
            if acc > state["best_acc"][i]:
                state["best_acc"][i] = acc
                state["best_params"][i] = params[i]
                state["best_buffers"][i] = buffers[i]
        else:  # quit now or earlier: keeps its best model
            if active[i]:
                params[i], buffers[i] = state["best_params"][i], state["best_buffers"][i]
            acc = float(state["best_acc"][i])
        state["cum_U"][i] += U[i]
        rows.append({
            "round": t, "client": i, "active": bool(train_mask[i]), "acc": acc,
            "U": float(U[i]), "cum_U": float(state["cum_U"][i]), "p": float(p[i]),
            "paid": float(paid[i]), "received": float(received[i]),
            "imports": int(imports[i]), "importers": int(importers[i]),
            "ir": bool(U[i] >= -1e-9), "eta": None if math.isnan(eta[i]) else float(eta[i]),
        })
    broken = [r["client"] for r in rows if not r["ir"]]
    if broken:
        warnings.warn(f"round {t}: individual rationality (Theorem 1) violated, U_i < 0 for "
                      f"clients {broken}: " + ", ".join(f"U_{i} = {U[i]:.6g}" for i in broken),
                      IRViolationWarning, stacklevel=3)
    state["active"] = train_mask
    return rows, capped
