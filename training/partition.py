"""Split a pooled dataset among clients (Results 2.1): NIID, Cluster, Skew.

Every partitioner takes the labels, the number of clients ``m`` and an explicit
:class:`numpy.random.Generator` and returns one index array per client; the same
generator state gives the same split. :func:`client_splits` then divides each
client's indices into its own train, validation and test sets, so every client is evaluated on
its own distribution (personalised accuracy).

* **NIID**: for each class, client shares are drawn from ``Dirichlet(beta)``
  (default ``beta = 0.1`` in the paper).
* **Cluster**: clients are randomly put into ``groups`` groups; each class is split
  between groups with ``Dirichlet(beta_between)`` (small: groups differ) and within
  a group with ``Dirichlet(beta_within)`` (large: members look alike).
* **Skew**: the classes are divided into clusters of ``classes_per_client`` classes;
  clients are dealt round-robin (in random order) to the class clusters; the samples
  of each class are split evenly among the clients of its cluster, so each client
  holds exactly those classes.

Each partitioner redraws (up to 100 times) until every client holds at least
``min_size`` samples, and raises :class:`ValueError` if that is impossible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "PARTITIONERS",
    "ClientData",
    "client_splits",
    "cluster_partition",
    "dirichlet_partition",
    "iid_partition",
    "partition",
    "skew_partition",
]

Index = NDArray[np.intp]


class Parts(list):
    """One index array per client, plus each client's true group where the partition has one.

    ``groups[i]`` is client ``i``'s group (Cluster: its group; Skew: its class cluster);
    ``None`` for NIID and IID. Used to check whether similar clients collaborate.
    """

    groups: NDArray[np.intp] | None = None


def _groups_of(members: list[Index], m: int) -> NDArray[np.intp]:
    g = np.empty(m, dtype=np.intp)
    for k, grp in enumerate(members):
        g[np.asarray(grp, dtype=np.intp)] = k
    return g


def _check(y: NDArray, m: int, min_size: int) -> None:
    if m < 1:
        raise ValueError(f"partition: clients = {m} must be >= 1")
    if m * min_size > len(y):
        raise ValueError(
            f"partition: clients = {m} need at least {min_size} samples each, "
            f"but the dataset has only {len(y)} samples"
        )


def _split_by_shares(idx: Index, shares: NDArray[np.float64]) -> list[Index]:
    cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
    return np.split(idx, cuts)


def _retry(draw: Callable[[], list[Index]], m: int, min_size: int, what: str) -> Parts:
    for _ in range(100):
        parts = draw()
        if min(len(p) for p in parts) >= min_size:
            out = Parts(np.sort(p) for p in parts)
            out.groups = getattr(parts, "groups", None)
            return out
    raise ValueError(
        f"partition: {what} could not give all {m} clients >= {min_size} samples in 100 draws; "
        "use fewer clients or a larger beta"
    )


def dirichlet_partition(y: NDArray, m: int, beta: float, rng: np.random.Generator,
                        min_size: int = 10) -> list[Index]:
    """Per class, split samples among ``m`` clients with shares from ``Dirichlet(beta)``."""
    _check(y, m, min_size)
    classes = np.unique(y)

    def draw() -> list[Index]:
        parts: list[list[Index]] = [[] for _ in range(m)]
        for k in classes:
            idx = rng.permutation(np.flatnonzero(y == k))
            for i, chunk in enumerate(_split_by_shares(idx, rng.dirichlet(np.full(m, beta)))):
                parts[i].append(chunk)
        return [np.concatenate(p) for p in parts]

    return _retry(draw, m, min_size, f"Dirichlet(beta={beta})")


def cluster_partition(y: NDArray, m: int, groups: int, beta_between: float, beta_within: float,
                      rng: np.random.Generator, min_size: int = 10) -> list[Index]:
    """Random client groups; ``Dirichlet(beta_between)`` across groups, ``beta_within`` inside."""
    _check(y, m, min_size)
    if not 1 <= groups <= m:
        raise ValueError(f"partition: groups = {groups} must lie in [1, clients = {m}]")
    classes = np.unique(y)

    def draw() -> list[Index]:
        members = np.array_split(rng.permutation(m), groups)
        parts: list[list[Index]] = [[] for _ in range(m)]
        for k in classes:
            idx = rng.permutation(np.flatnonzero(y == k))
            by_group = _split_by_shares(idx, rng.dirichlet(np.full(groups, beta_between)))
            for grp, chunk in zip(members, by_group, strict=True):
                shares = rng.dirichlet(np.full(len(grp), beta_within))
                for i, sub in zip(grp, _split_by_shares(chunk, shares), strict=True):
                    parts[i].append(sub)
        out = Parts(np.concatenate(p) for p in parts)
        out.groups = _groups_of(members, m)
        return out

    return _retry(draw, m, min_size, f"Cluster(groups={groups})")


def skew_partition(y: NDArray, m: int, classes_per_client: int, rng: np.random.Generator,
                   min_size: int = 10) -> list[Index]:
    """Classes in clusters of ``classes_per_client``; each client holds one cluster's classes."""
    _check(y, m, min_size)
    classes = np.unique(y)
    if not 1 <= classes_per_client <= len(classes):
        raise ValueError(
            f"partition: classes_per_client = {classes_per_client} must lie in "
            f"[1, {len(classes)}] (the number of classes)"
        )
    n_clusters = len(classes) // classes_per_client
    if n_clusters > m:
        raise ValueError(f"partition: skew needs clients >= {n_clusters} class clusters, got {m}")

    def draw() -> list[Index]:
        perm = rng.permutation(classes)
        clusters = [perm[k * classes_per_client:(k + 1) * classes_per_client]
                    for k in range(n_clusters)]
        order = rng.permutation(m)
        members = [order[k::n_clusters] for k in range(n_clusters)]
        parts: list[list[Index]] = [[] for _ in range(m)]
        for cls, grp in zip(clusters, members, strict=True):
            for k in cls:
                idx = rng.permutation(np.flatnonzero(y == k))
                for i, chunk in zip(grp, np.array_split(idx, len(grp)), strict=True):
                    parts[i].append(chunk)
        out = Parts(np.concatenate(p) for p in parts)
        out.groups = _groups_of(members, m)
        return out

    return _retry(draw, m, min_size, f"Skew(classes_per_client={classes_per_client})")


def iid_partition(y: NDArray, m: int, rng: np.random.Generator, min_size: int = 10) -> list[Index]:
    """Split a random permutation into ``m`` near-equal parts."""
    _check(y, m, min_size)
    return [np.sort(p) for p in np.array_split(rng.permutation(len(y)), m)]


#: partition name -> function(y, m, rng, **options)
PARTITIONERS: dict[str, Callable[..., list[Index]]] = {
    "niid": lambda y, m, rng, beta=0.1, **_: dirichlet_partition(y, m, beta, rng),
    "cluster": lambda y, m, rng, groups=4, beta_between=0.1, beta_within=10.0, **_: (
        cluster_partition(y, m, groups, beta_between, beta_within, rng)),
    "skew": lambda y, m, rng, classes_per_client=5, **_: skew_partition(
        y, m, classes_per_client, rng),
    "iid": lambda y, m, rng, **_: iid_partition(y, m, rng),
}


def partition(name: str, y: NDArray, m: int, rng: np.random.Generator,
              **options: float) -> list[Index]:
    """Dispatch to a partitioner of :data:`PARTITIONERS` by name."""
    if name not in PARTITIONERS:
        raise ValueError(f"partition = {name!r} is not one of {sorted(PARTITIONERS)}")
    return PARTITIONERS[name](y, m, rng, **options)


@dataclass(frozen=True)
class ClientData:
    """One client's private train, validation and test indices into the pooled dataset.

    Validation selects (the round of best validation accuracy, a quitter's best model);
    test only reports. All three come from the client's own distribution.
    """

    train: Index
    val: Index
    test: Index

    @property
    def n_train(self) -> int:
        """:math:`N_i`, the client's true data size."""
        return int(len(self.train))


def client_splits(parts: list[Index], test_frac: float, rng: np.random.Generator,
                  val_frac: float = 0.0) -> list[ClientData]:
    """Split each client's indices into train, validation and test sets.

    ``test_frac`` and ``val_frac`` of each client's samples (rounded, at least one
    each when the fraction is positive) go to test and validation; train keeps at least
    one sample. ``val_frac = 0`` gives an empty validation set.
    """
    out = []
    for i, idx in enumerate(parts):
        need = 2 + (val_frac > 0)
        if len(idx) < need:
            raise ValueError(f"partition: client {i} has {len(idx)} samples; needs >= {need}")
        perm = rng.permutation(idx)
        n_test = min(max(1, round(test_frac * len(idx))), len(idx) - need + 1)
        n_val = 0 if val_frac <= 0 else min(max(1, round(val_frac * len(idx))),
                                            len(idx) - n_test - 1)
        out.append(ClientData(train=np.sort(perm[n_test + n_val:]),
                              val=np.sort(perm[n_test:n_test + n_val]),
                              test=np.sort(perm[:n_test])))
    return out
