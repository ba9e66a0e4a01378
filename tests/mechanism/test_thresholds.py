"""Tests for mechanism/thresholds.py: the m x m matrix against per-pair brentq."""

import math

import numpy as np
import pytest

from mechanism import Market, random_market, thresholds
from mechanism.reference import reference_threshold


@pytest.mark.parametrize("seed", range(12))
def test_matrix_matches_scalar_brentq_per_pair(seed):
    mk = random_market(7, seed=seed, buyers=0.15, sellers=0.15, K_range=(10, 1e6),
                       c_range=(1e-4, 3.0), N_range=(1, 1e5))
    th = thresholds(mk)
    for i in range(mk.m):
        for j in range(mk.m):
            ref = reference_threshold(mk, i, j)
            assert th[i, j] == pytest.approx(ref, rel=1e-9, abs=0), (i, j)


def test_log_gain_market_matches_scalar_brentq():
    mk = random_market(6, seed=3, gain="log", K_range=(0.1, 10))
    th = thresholds(mk)
    for i in range(mk.m):
        for j in range(mk.m):
            assert th[i, j] == pytest.approx(reference_threshold(mk, i, j), rel=1e-9)


def test_special_entries():
    """Diagonal 0; a pure buyer's column 0; w = 0 gives inf; a pure seller's row is 0.

    Client 2 (K = 0) gains nothing from imports. Its w_20 = c_0 + lam N_0/N_2 d_20 = 0,
    so every T solves its threshold equation; Definition 2 says a pure seller "will not
    buy models", and its row is 0, not inf.
    """
    mk = Market(N=[100, 200, 300, 400], c=[0.0, math.inf, 0.5, 0.2], K=[400, 400, 0, 400],
                d=np.zeros((4, 4)), lam=1.0)
    th = thresholds(mk)
    assert np.all(np.diagonal(th) == 0)
    assert np.all(th[:, 1] == 0)  # nobody imports the pure buyer
    assert np.isinf(th[1, 0]) and np.isinf(th[3, 0])  # c_0 = 0 and d = 0: w = 0
    assert th[2].tolist() == [0, 0, 0, 0]  # the pure seller, even for free client 0


def test_threshold_reads_Nj_over_Ni():
    """Client 0 (N = 100) and 1 (N = 400); d_01 = 1, lam = 0.1, c = 0.

    With w_01 = lam N_1/N_0 d_01 = 0.4 the threshold T solves
    20/sqrt(T - 300) - 20/sqrt(T + 100) = 0.4; the printed N_i/N_i would give w = 0.1.
    """
    mk = Market(N=[100, 400], c=[0, 0], K=[400, 400], d=[[0, 1], [1, 0]], lam=0.1)
    T = thresholds(mk)[0, 1]
    assert 20 / math.sqrt(T - 300) - 20 / math.sqrt(T + 100) == pytest.approx(0.4, rel=1e-12)
