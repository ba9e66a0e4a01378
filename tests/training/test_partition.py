import numpy as np
import pytest

from training.partition import (
    client_splits,
    cluster_partition,
    dirichlet_partition,
    partition,
    skew_partition,
)

Y = np.repeat(np.arange(10), 60)  # 600 labels, 10 classes


@pytest.mark.parametrize("name", ["niid", "cluster", "skew", "iid"])
def test_partition_covers_each_sample_once_and_is_seeded(name):
    """Every sample goes to exactly one client, no client is empty, same seed same split."""
    # Prepare / Execute
    a = partition(name, Y, 6, np.random.default_rng(3), beta=0.3)
    b = partition(name, Y, 6, np.random.default_rng(3), beta=0.3)
    c = partition(name, Y, 6, np.random.default_rng(4), beta=0.3)
    # Assert
    assert all(len(p) > 0 for p in a)
    assert sum(len(p) for p in a) == len(Y)
    assert np.array_equal(np.sort(np.concatenate(a)), np.arange(len(Y)))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    if name != "iid":
        assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_dirichlet_small_beta_is_more_skewed_than_large():
    """Label entropy per client falls with beta (NIID)."""
    def entropy(parts):
        out = []
        for p in parts:
            q = np.bincount(Y[p], minlength=10) / len(p)
            out.append(-(q[q > 0] * np.log(q[q > 0])).sum())
        return np.mean(out)

    lo = dirichlet_partition(Y, 5, 0.1, np.random.default_rng(0))
    hi = dirichlet_partition(Y, 5, 100.0, np.random.default_rng(0))
    assert entropy(lo) < entropy(hi) - 0.5


def test_skew_gives_each_client_exactly_its_cluster_classes():
    parts = skew_partition(Y, 4, 5, np.random.default_rng(1))
    for p in parts:
        assert len(np.unique(Y[p])) == 5


def test_cluster_members_of_a_group_are_alike():
    """Within-group label distributions are closer than between-group ones."""
    rng = np.random.default_rng(2)
    parts = cluster_partition(Y, 6, 2, 0.1, 100.0, rng)
    hist = np.array([np.bincount(Y[p], minlength=10) / len(p) for p in parts])
    dist = np.abs(hist[:, None] - hist[None]).sum(-1)
    near = np.sort(dist, axis=1)[:, 1]  # nearest other client
    assert near.mean() < dist[~np.eye(6, dtype=bool)].mean()


def test_client_splits_train_and_test_nonempty_and_disjoint():
    parts = dirichlet_partition(Y, 5, 0.5, np.random.default_rng(0))
    splits = client_splits(parts, 0.3, np.random.default_rng(0))
    for p, s in zip(parts, splits, strict=True):
        assert len(s.train) > 0 and len(s.test) > 0
        assert len(np.intersect1d(s.train, s.test)) == 0
        assert len(s.train) + len(s.test) == len(p)


@pytest.mark.parametrize("m", [0, -3])
def test_nonpositive_client_count_is_rejected(m):
    with pytest.raises(ValueError, match="clients"):
        partition("niid", Y, m, np.random.default_rng(0))


def test_more_clients_than_samples_is_rejected():
    with pytest.raises(ValueError, match="only 600 samples"):
        partition("iid", Y, 601, np.random.default_rng(0))


def test_unknown_partition_is_rejected():
    with pytest.raises(ValueError, match="'bogus'"):
        partition("bogus", Y, 3, np.random.default_rng(0))
