"""Users' own data: per-client arrays or torch datasets, validated like the built-in ones.

:func:`as_client_pools` turns what a user passes as ``train(..., data=...)`` into one
pooled :class:`~training.data.Dataset` plus one index array per client, so the rest of
the run (train / validation / test splits, records) is the same as for the built-in
datasets. Accepted:

* ``None`` or a :class:`~training.data.Dataset`: not per-client (the config's partition
  splits it; returns None here);
* a list of ``(X, y)`` pairs (numpy arrays or tensors), one per client;
* a list of torch ``Dataset`` objects yielding ``(x, y)``, one per client.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from .data import Dataset

__all__ = ["as_client_pools"]


def _arrays(i: int, item: Any) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if isinstance(item, tuple | list) and len(item) == 2:
        X, y = item
    elif isinstance(item, torch.utils.data.Dataset):
        try:
            pairs = [item[k] for k in range(len(item))]
        except Exception as exc:  # noqa: BLE001 (reported with the client index)
            raise ValueError(f"data[{i}]: cannot read the torch dataset ({exc})") from None
        if not pairs:
            raise ValueError(f"data[{i}]: the dataset is empty")
        X = torch.stack([torch.as_tensor(p[0]) for p in pairs])
        y = torch.as_tensor([int(p[1]) for p in pairs])
    else:
        raise ValueError(f"data[{i}] = {type(item).__name__}: expected an (X, y) pair or a "
                         "torch Dataset")
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    y = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if X.ndim < 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(f"data[{i}]: X of shape {X.shape} and y of shape {y.shape} do not "
                         "pair up (need X (n, ...) and y (n,))")
    if not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise ValueError(f"data[{i}]: labels must be non-negative integers, got dtype {y.dtype}"
                         f"{'' if not len(y) else f', min {y.min()}'}")
    if not np.isfinite(X).all():
        raise ValueError(f"data[{i}]: X holds non-finite values")
    return X.astype(np.float32), y.astype(np.int64)


def as_client_pools(data: Any, clients: int) -> tuple[Dataset, list[NDArray[np.intp]]] | None:
    """Return (pooled dataset, one index array per client), or None when not per-client.

    Raises
    ------
    ValueError
        When the number of client datasets differs from ``clients``, or a client's data
        is malformed (naming the client index and what is wrong).
    """
    if data is None or isinstance(data, Dataset):
        return None
    if not isinstance(data, list | tuple):
        raise ValueError(f"data = {type(data).__name__}: expected a Dataset or one (X, y) pair "
                         "or torch Dataset per client")
    if len(data) != clients:
        raise ValueError(f"data has {len(data)} client datasets, but clients = {clients}")
    arrays = [_arrays(i, item) for i, item in enumerate(data)]
    shapes = {a[0].shape[1:] for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"data: clients' inputs differ in shape: {sorted(shapes)}")
    X = np.concatenate([a[0] for a in arrays])
    y = np.concatenate([a[1] for a in arrays])
    bounds = np.cumsum([0] + [len(a[1]) for a in arrays])
    parts = [np.arange(bounds[i], bounds[i + 1]) for i in range(clients)]
    n_classes = int(y.max()) + 1
    return Dataset(X=X, y=y, n_classes=n_classes, name="user"), parts
