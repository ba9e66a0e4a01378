"""Tests for mechanism/gain.py: values, increments, thresholds against brentq."""

import numpy as np
import pytest
from scipy.optimize import brentq

from mechanism import Gain, LogGain, SqrtGain, get_gain


class ExpGain(Gain):
    """A bounded concave gain K (1 - exp(-x/N)), using only the generic solver."""

    name = "exp"

    def value(self, x, N, K):
        x, N, K = (np.asarray(a, dtype=float) for a in (x, N, K))
        return K * -np.expm1(-x / N)

    def increment(self, x, n, N, K):
        # K (e^{-(x-n)/N} - e^{-x/N}) without cancellation
        x, n, N, K = (np.asarray(a, dtype=float) for a in (x, n, N, K))
        return K * np.exp(-(x - n) / N) * -np.expm1(-n / N)


class AffineTailGain(Gain):
    """Concave with a positive slope at infinity: sqrt gain plus 0.01 x / N."""

    name = "affine-tail"

    def value(self, x, N, K):
        return SqrtGain().value(x, N, K) + 0.01 * np.asarray(x, dtype=float) / N

    def increment(self, x, n, N, K):
        return SqrtGain().increment(x, n, N, K) + 0.01 * np.asarray(n, dtype=float) / N


GAINS = [SqrtGain(), LogGain(), ExpGain()]


def random_pairs(rng, size):
    N = np.exp(rng.uniform(0, 12, size))
    n = np.exp(rng.uniform(0, 12, size))
    K = np.exp(rng.uniform(-3, 12, size))
    return n, N, K


def test_sqrt_gain_hand_values():
    g = SqrtGain()
    # K = 400, N = 100: g(x) = 2 - 20 / sqrt(100 + x)
    assert g.value(0.0, 100.0, 400.0) == 0.0
    assert g.value(300.0, 100.0, 400.0) == pytest.approx(1.0, rel=1e-15)
    assert g.value(800.0, 100.0, 400.0) == pytest.approx(2 - 20 / 30, rel=1e-15)
    assert g.increment(800.0, 500.0, 100.0, 400.0) == pytest.approx(1 - 20 / 30, rel=1e-15)
    assert g.value(1e6, 100.0, 0.0) == 0.0  # K = 0: a pure seller gains nothing


def test_log_gain_hand_values():
    g = LogGain()
    assert g.value(100.0, 100.0, 2.0) == pytest.approx(2 * np.log(2), rel=1e-15)
    assert g.increment(300.0, 200.0, 100.0, 1.0) == pytest.approx(np.log(4 / 2), rel=1e-15)


@pytest.mark.parametrize("g", GAINS, ids=lambda g: g.name)
def test_gain_is_concave_increasing_and_zero_at_zero(g):
    rng = np.random.default_rng(1)
    n, N, K = random_pairs(rng, 2000)
    x = np.exp(rng.uniform(0, 12, 2000))
    assert np.all(g.value(0.0, N, K) == 0)
    assert np.all(g.value(x + n, N, K) >= g.value(x, N, K))
    # increments of the same size shrink as x grows (concavity)
    assert np.all(g.increment(x + 2 * n, n, N, K) <= g.increment(x + n, n, N, K) * (1 + 1e-12))


@pytest.mark.parametrize("g", [SqrtGain(), LogGain()], ids=lambda g: g.name)
def test_stable_increment_matches_value_difference(g):
    rng = np.random.default_rng(2)
    n, N, K = random_pairs(rng, 2000)
    x = n * np.exp(rng.uniform(0, 3, 2000))
    fast = g.increment(x, n, N, K)
    plain = g.value(x, N, K) - g.value(x - n, N, K)
    assert np.allclose(fast, plain, rtol=1e-7, atol=1e-12 * g.value(x, N, K).max())


@pytest.mark.parametrize("g", GAINS, ids=lambda g: g.name)
def test_threshold_matches_brentq_on_random_pairs(g):
    rng = np.random.default_rng(3)
    n, N, K = random_pairs(rng, 300)
    w = g.value(n, N, K) * np.exp(rng.uniform(-20, 0, 300))  # 0 < w <= g(n): a root exists
    T = g.threshold(w, n, N, K)
    for k in range(300):
        def f(t, k=k):
            return float(g.increment(t, n[k], N[k], K[k])) - w[k]

        hi = 2 * n[k]
        while f(hi) > 0:
            hi *= 2
        root = brentq(f, n[k], hi, xtol=1e-300, rtol=1e-15, maxiter=1000)
        assert T[k] == pytest.approx(root, rel=1e-9), (k, n[k], N[k], K[k], w[k])


@pytest.mark.parametrize("g", GAINS, ids=lambda g: g.name)
def test_threshold_special_cases(g):
    n, N, K = np.array([50.0, 50.0, 50.0, 50.0]), 100.0, np.array([400.0, 400.0, 0.0, 0.0])
    gn = float(g.value(50.0, 100.0, 400.0))
    w = np.array([0.0, gn * 1.0001, 0.0, 1.0])
    # w <= 0: always worth it (inf); w > g(n): no solution (0);
    # K = 0 (gain identically zero): 0 whatever w, even w = 0 (a pure seller buys nothing)
    assert g.threshold(w, n, N, K).tolist() == [np.inf, 0.0, 0.0, 0.0]
    # w = g(n) exactly: the threshold is n itself
    assert g.threshold(gn, 50.0, 100.0, 400.0) == pytest.approx(50.0, rel=1e-9)


def test_sqrt_threshold_hand_value():
    # K = 400, N = 100: g(300) - g(0) = 1, so w = 1 with n = 300 gives T = 300
    assert SqrtGain().threshold(1.0, 300.0, 100.0, 400.0) == pytest.approx(300.0, rel=1e-12)
    # and w = g(800) - g(300) = 1/3 with n = 500 gives T = 800
    assert SqrtGain().threshold(1 / 3, 500.0, 100.0, 400.0) == pytest.approx(800.0, rel=1e-12)


def test_fast_sqrt_threshold_agrees_with_generic_solver_at_extremes():
    rng = np.random.default_rng(4)
    n, N, K = random_pairs(rng, 5000)
    w = SqrtGain().value(n, N, K) * np.exp(rng.uniform(-40, 0, 5000))
    fast = SqrtGain().threshold(w, n, N, K)
    generic = Gain.threshold(SqrtGain(), w, n, N, K)
    assert np.allclose(fast, generic, rtol=1e-9, atol=0)


def test_gain_with_positive_slope_at_infinity_gives_infinite_threshold():
    g = AffineTailGain()
    # increments never fall below 0.01 n / N = 0.01 * 100 / 100 = 0.01 > w
    assert np.isinf(g.threshold(0.005, 100.0, 100.0, 400.0))
    assert np.isfinite(g.threshold(0.05, 100.0, 100.0, 400.0))


def test_get_gain():
    assert isinstance(get_gain(None), SqrtGain)
    assert isinstance(get_gain("paper"), SqrtGain)
    custom = ExpGain()
    assert get_gain(custom) is custom
    with pytest.raises(ValueError, match="gain = 3"):
        get_gain(3)


@pytest.mark.parametrize("g", GAINS, ids=lambda g: g.name)
def test_threshold_is_the_smallest_root(g):
    # the smallest double T >= n whose computed increment is <= w (Algorithm 2's strict
    # test at ties), also on the plateaus of subnormal gains and of N + T - n == N
    rng = np.random.default_rng(4)
    size = 400
    n = 10.0 ** rng.uniform(-3, 12, size)
    N = 10.0 ** rng.uniform(-3, 12, size)
    K = np.where(rng.random(size) < 0.5, 10.0 ** rng.uniform(-3, 12, size),
                 rng.choice([5e-324, 1e-310, 1e-300, 1e-250], size))
    gn = g.value(n, N, K)
    w = np.where(rng.random(size) < 0.3, gn, gn * 10.0 ** rng.uniform(-15, 0, size))
    w = np.where(w > 0, w, 5e-324)
    with np.errstate(all="ignore"):
        T = g.threshold(w, n, N, K)
        live = (T > 0) & np.isfinite(T)
        assert live.sum() > size // 2
        n, N, K, w, T = n[live], N[live], K[live], w[live], T[live]
        assert np.all(T >= n)
        assert np.all(g.increment(T, n, N, K) <= w)
        below = np.nextafter(T, 0.0)
        assert np.all((T == n) | (g.increment(below, n, N, K) > w))


def test_log_threshold_on_a_subnormal_plateau():
    # issue: K_i = 1e-300, N_i = 1e12, n = 1.008: the increment equals w = g(n) from
    # T = n to about 2.6 (subnormal precision); the threshold is n, not a point inside
    g, n, N, K = LogGain(), 1.0083251838187839, 1e12, 1e-300
    w = float(g.value(n, N, K))
    assert float(g.increment(2.6, n, N, K)) == w  # a plateau
    assert g.threshold(w, n, N, K) == n
