"""The federation of a run: the clients' data, the model template, the profiles; and its checks.

:func:`prepare` builds it where the clients' data is (the in-process loop, a Flower
client); :func:`server_view` builds the server's view from the clients' true data sizes
only (a Flower server). Both build the same initial model and profiles from the config's
seed. The checks a run must pass before its first write (:func:`check_stability`,
:func:`check_market_domain`, plus the memory and model checks :func:`prepare` runs) live
here; :meth:`training.session.Session.start` runs them for every transport.
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from mechanism.market import DOMAIN

from .client import ClientContext, LocalData, derive_seed
from .config import Config
from .data import Dataset, load_dataset
from .instruct import INSTRUCT_DATASETS, client_pools
from .llm import LLM_MODELS
from .models import build_model, get_flat, shared_mask
from .partition import client_splits, partition
from .profiles import Profiles, build_profiles

if TYPE_CHECKING:
    from .algorithms import Algorithm

__all__ = ["Federation", "check_market_domain", "check_stability", "initial_model", "prepare",
           "server_view"]


@dataclass
class Federation:
    """Everything fixed for a run: the clients' data, the model template, the profiles.

    Two views: a process that holds the clients' data (:func:`prepare`: ``ipfl train``,
    a Flower client) and a server that holds only their profiles (:func:`server_view`:
    ``data`` is empty). Both build the same initial model from the config's seed.
    """

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
        """Number of clients (the server's view has their profiles, not their data)."""
        return len(self.profiles.roles)

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
    if cfg.dataset in INSTRUCT_DATASETS and pools is None:
        pools = client_pools(cfg)  # token rows, one domain per client (training.instruct)
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
        if cfg.model not in LLM_MODELS:  # a language model's base is frozen and shared
            _check_memory(cfg, tuple(ds.X.shape[1:]), ds.n_classes)
        model = initial_model(cfg, tuple(ds.X.shape[1:]), ds.n_classes)
    else:
        torch.manual_seed(derive_seed(cfg.seed, 3))  # as initial_model: same draws after
        model = _check_model(copy.deepcopy(model), X[:2], ds.n_classes)
    N = np.array([d.n_train for d in local], dtype=float)
    groups = getattr(parts, "groups", None)
    return _federation(cfg, model, local, N, groups)


def initial_model(cfg: Config, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    r"""Return the config's model with the run's common initial parameters :math:`\theta^0`.

    Seeded by ``(seed, 3)``: every process that builds it (the in-process loop, a Flower
    server, each Flower client) gets the same :math:`\theta^0`.
    """
    torch.manual_seed(derive_seed(cfg.seed, 3))
    if cfg.model in LLM_MODELS:
        from .llm import build_llm

        return build_llm(cfg.model, device=cfg.device)
    return build_model(cfg.model, input_shape, n_classes, cfg.hidden)


def _federation(cfg: Config, model: nn.Module, local: list[LocalData], N: np.ndarray,
                groups: np.ndarray | None) -> Federation:
    theta0, buffers0 = get_flat(model)
    profiles = build_profiles(
        N, c=cfg.per_client("c"), K_per_sample=cfg.per_client("K_per_sample"),
        budget=cfg.per_client("budget"), roles=cfg.role_list, liars=list(cfg.liar),
        liar_N=cfg.liar_N, liar_c=cfg.liar_c, liar_K=cfg.liar_K,
        rng=np.random.default_rng(derive_seed(cfg.seed, 4)))
    return Federation(cfg, model, local, profiles, theta0, buffers0,
                      shared_mask(model, cfg.share), groups)


def server_view(cfg: Config, input_shape: tuple[int, ...], n_classes: int, N: np.ndarray,
                groups: np.ndarray | None = None) -> Federation:
    """Return the federation as a server sees it: the profiles of ``N`` true data sizes, no data.

    Used by a transport whose clients hold their data elsewhere
    (:class:`training.remote.Coordinator`): the model and profiles are built exactly as
    :func:`prepare` builds them, from the config's seed.
    """
    torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True)
    model = initial_model(cfg, input_shape, n_classes)
    return _federation(cfg, model, [], np.asarray(N, dtype=float), groups)


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


def check_market_domain(cfg: Config, N: np.ndarray) -> None:
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
