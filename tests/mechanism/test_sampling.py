"""Tests for mechanism/sampling.py: seeded, valid, roles, metric distances, bad input."""

import numpy as np
import pytest

from mechanism import random_market


def test_same_seed_same_market_other_seed_other_market():
    a, b, c = random_market(30, seed=4), random_market(30, seed=4), random_market(30, seed=5)
    for field in ("N", "c", "K", "d"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.N, c.N)


def test_ranges_roles_and_integer_sizes():
    mk = random_market(400, seed=1, N_range=(10, 1000), buyers=0.25, sellers=0.25)
    assert np.all((mk.N >= 10) & (mk.N <= 1000)) and np.all(mk.N == np.round(mk.N))
    roles = np.array(mk.roles)
    assert 0.15 < np.mean(roles == "buyer") < 0.35 and 0.15 < np.mean(roles == "seller") < 0.35


def test_distances_are_a_metric():
    d = random_market(40, seed=2).d
    np.testing.assert_allclose(d, d.T)
    # triangle inequality d_ik <= d_ij + d_jk for every triple
    assert np.all(d[:, None, :] <= d[:, :, None] + d[None, :, :] + 1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"m": 1}, "m = 1 must be an integer >= 2"),
        ({"m": 2.5}, "m = 2.5 must be an integer >= 2"),
        ({"m": 5, "N_range": (0.1, 0.2)}, r"N_range = \(0.1, 0.2\) needs low >= 1"),
        ({"m": 5, "c_range": (1.0, 0.5)}, r"c_range = \(1.0, 0.5\) needs 0 < low <= high"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        random_market(**kwargs)
