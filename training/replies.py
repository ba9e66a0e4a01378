r"""A remote client's replies checked against what the server asked for: one reason, or None.

A transport whose clients run elsewhere (:class:`training.remote.Coordinator`, the Flower
ServerApp) receives whatever a client sends. Every reply is checked here before any of
it reaches the run: a bad reply drops *that client* (from the round on, with the reason
recorded in the round's ``drops``), never the federation, and never commits a number
the round did not ask for.

Profile reply (once, before round 0; :func:`check_profile`)
    ``n_train``, ``n_val``, ``n_test`` are Python integers (no bool, no float) with
    ``n_train >= 1``, ``n_val, n_test >= 0`` and ``n_train + n_val + n_test`` at most the
    pool the config draws from (``max_samples``, else the dataset's size,
    :data:`POOL_SIZES`); ``input_shape`` a list of 1 to 4 positive integers;
    ``n_classes`` an integer in ``[2, 1000]``; ``group`` ``-1`` or a group index.
    ``n_train`` is the client's *registered* :math:`N_i`: the market prices it (eq. (2)).

Train reply (every round; :func:`check_train_reply`)
    * ``n_train`` equal to the registered :math:`N_i` (a client cannot change its size);
    * ``upload``: an array of exactly the round's dtype (float32: no float64 or int64
      is cast silently) and shape ``(P,)``, ``P`` the shared parameters, all finite;
    * ``state`` and ``info``: dicts of numeric arrays, finite; an entry the server already
      holds keeps its shape and dtype; all of a state at most :data:`STATE_FACTOR` times
      the model's size;
    * ``metrics``: exactly ``acc``, ``val_acc``, ``loss``, ``val_loss``, finite, the
      accuracies in ``[0, 1]`` and the losses ``>= 0``.

The functions are pure: they read the reply and the expectation, and return the first
problem as one line naming the field and the value (or None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["METRICS", "POOL_SIZES", "STATE_FACTOR", "Expect", "check_evaluation",
           "check_profile", "check_train_reply"]

#: samples in each dataset's pool (train and test files together); a client's three
#: splits together cannot exceed it (nor ``max_samples`` when the config sets it)
POOL_SIZES = {"digits": 1797, "synthetic": 600, "cifar10": 60_000, "fashion_mnist": 70_000,
              # training.instruct: 200 generated examples a sentiment client, 164 problems
              "instruct_finance": 6 * 200, "instruct_mixed": 3 * 200 + 164}

#: the metrics a train reply carries, each with its range
METRICS = {"acc": (0.0, 1.0), "val_acc": (0.0, 1.0), "loss": (0.0, math.inf),
           "val_loss": (0.0, math.inf)}

#: a client's state holds at most this many times the model's parameters and buffers
#: (params, buffers, Ditto's personal pair, the aggregated pair, an attacker's upload)
STATE_FACTOR = 8

#: the most classes a profile may declare, and the most input dimensions
_MAX_CLASSES, _MAX_DIMS = 1000, 4


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def check_profile(prof: Mapping[str, Any], pool: int, groups: int) -> str | None:
    """Return why a profile reply is bad (one line), or None.

    Parameters
    ----------
    prof : mapping
        The reply's fields (:data:`training.remote.PROFILE_FIELDS`).
    pool : int
        The most samples a client can hold: ``max_samples``, else the dataset's size.
    groups : int
        The config's number of groups (a client's ``group`` is -1 or in ``0..groups-1``).
    """
    for key, low in (("n_train", 1), ("n_val", 0), ("n_test", 0)):
        v = prof[key]
        if not _is_int(v) or not low <= v <= pool:
            return f"profile: {key} = {_short(v)} is not an integer in [{low}, {pool}]"
    total = int(prof["n_train"]) + int(prof["n_val"]) + int(prof["n_test"])
    if total > pool:
        return (f"profile: n_train + n_val + n_test = {total} exceeds the {pool} samples "
                "the config draws from")
    shape = prof["input_shape"]
    if (not isinstance(shape, list | tuple) or not 1 <= len(shape) <= _MAX_DIMS
            or not all(_is_int(s) and 1 <= s <= 10**6 for s in shape)):
        return f"profile: input_shape = {_short(shape)} is not 1 to {_MAX_DIMS} positive integers"
    if not _is_int(prof["n_classes"]) or not 2 <= prof["n_classes"] <= _MAX_CLASSES:
        return f"profile: n_classes = {_short(prof['n_classes'])} is not in [2, {_MAX_CLASSES}]"
    g = prof["group"]
    if not _is_int(g) or not -1 <= g < groups:
        return f"profile: group = {_short(g)} is not -1 or a group in [0, {groups - 1}]"
    if not isinstance(prof["theta0_digest"], str):
        return f"profile: theta0_digest = {_short(prof['theta0_digest'])} is not a string"
    return None


@dataclass(frozen=True)
class Expect:
    """What round ``t`` asked client ``i`` for (the server's side of the check).

    Attributes
    ----------
    n_train : int
        The client's registered :math:`N_i` (its profile's ``n_train``).
    upload_shape : tuple of int
        ``(P,)``, the shared parameters.
    upload_dtype : numpy.dtype
        The run's parameter dtype (float32).
    state : dict of (shape, dtype)
        The state entries the server holds for the client.
    infos : dict of (shape, dtype)
        The per-client info entries the server holds (one row's shape).
    state_limit : int
        The most elements a state may hold in all (:data:`STATE_FACTOR` x model size).
    info_limit : int
        The most elements the infos may hold in all.
    """

    n_train: int
    upload_shape: tuple[int, ...]
    upload_dtype: np.dtype
    state: Mapping[str, tuple[tuple[int, ...], np.dtype]]
    infos: Mapping[str, tuple[tuple[int, ...], np.dtype]]
    state_limit: int
    info_limit: int


def _numeric(name: str, a: Any) -> str | None:
    if not isinstance(a, np.ndarray):
        return f"{name} is a {type(a).__name__}, not an array"
    if a.dtype.kind not in "fiub":
        return f"{name} has dtype {a.dtype}, not a numeric one"
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = int(np.flatnonzero(~np.isfinite(a.ravel()))[0])
        return f"{name}[{bad}] = {float(a.ravel()[bad])!r} is not finite"
    return None


def _arrays(name: str, d: Any, held: Mapping[str, tuple[tuple[int, ...], np.dtype]],
            limit: int) -> str | None:
    if not isinstance(d, Mapping):
        return f"{name} is a {type(d).__name__}, not a dict of arrays"
    total = 0
    for key, a in d.items():
        where = f"{name}[{key!r}]"
        if not isinstance(key, str):
            return f"{name} has a key {_short(key)} that is not a string"
        if (why := _numeric(where, a)) is not None:
            return why
        if key in held and (a.shape, a.dtype) != (tuple(held[key][0]), np.dtype(held[key][1])):
            return (f"{where} has shape {a.shape} and dtype {a.dtype}, expected "
                    f"{tuple(held[key][0])} and {np.dtype(held[key][1])}")
        total += a.size
        if total > limit:
            return f"{name} holds more than {limit} numbers"
    return None


def _check_metrics(metrics: Any, keys: tuple[str, ...]) -> str | None:
    if not isinstance(metrics, Mapping) or set(metrics) != set(keys):
        got = sorted(metrics) if isinstance(metrics, Mapping) else type(metrics).__name__
        return f"metrics are {got}, expected {sorted(keys)}"
    for key in keys:
        lo, hi = METRICS[key]
        v = metrics[key]
        if (isinstance(v, bool) or not isinstance(v, int | float)
                or not (math.isfinite(v) and lo <= v <= hi)):
            span = f"[{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g} and finite"
            return f"metric {key} = {_short(v)} is not in {span}"
    return None


def check_evaluation(metrics: Any) -> str | None:
    """Return why a final ``evaluate`` reply's metrics are bad (exactly ``acc``, ``loss``)."""
    return _check_metrics(metrics, ("acc", "loss"))


def check_train_reply(rep: Mapping[str, Any], expect: Expect) -> str | None:
    """Return why a (non-quit) train reply is bad (one line), or None.

    ``rep`` holds ``n_train``, ``upload``, ``state``, ``info`` and ``metrics`` as the
    transport decoded them (arrays as numpy arrays, metrics as a dict of numbers).
    """
    lacks = [f for f in ("n_train", "upload", "state", "metrics") if f not in rep]
    if lacks:
        return f"reply lacks {lacks}"
    n = rep["n_train"]
    if not _is_int(n) or n != expect.n_train:
        return f"n_train = {_short(n)} differs from the registered N = {expect.n_train}"
    up = rep["upload"]
    if not isinstance(up, np.ndarray):
        return f"upload is a {type(up).__name__}, not an array"
    if up.dtype != expect.upload_dtype:
        return f"upload has dtype {up.dtype}, expected {expect.upload_dtype} (never cast)"
    if up.shape != tuple(expect.upload_shape):
        return f"upload has shape {up.shape}, expected {tuple(expect.upload_shape)}"
    if (why := _numeric("upload", up)) is not None:
        return why
    for name, d, held, limit in (("state", rep["state"], expect.state, expect.state_limit),
                                 ("info", rep.get("info", {}), expect.infos, expect.info_limit)):
        if (why := _arrays(name, d, held, limit)) is not None:
            return why
    return _check_metrics(rep["metrics"], tuple(METRICS))
