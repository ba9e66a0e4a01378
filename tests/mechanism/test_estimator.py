"""The displacement estimator of effective data size (mechanism/estimator.py, issue 24)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mechanism import size_from_displacement
from mechanism.estimator import MIN_CLIENTS, theil_sen

sizes = st.lists(st.floats(5.0, 5000.0), min_size=MIN_CLIENTS, max_size=12, unique=True)


@given(N=sizes, c=st.floats(0.0, 1.0), alpha=st.floats(0.05, 1.0))
def test_recovers_the_sizes_when_the_curve_is_right(N, c, alpha):
    """Displacements exactly on delta = alpha (c + ln N) give every N back.

    Drawn so that the slope is above the floor (MIN_SLOPE times the median displacement:
    1 / (c + ln N) >= 1 / (1 + ln 5000) > 0.1).
    """
    # Prepare
    N = np.array(N)
    # Execute
    est = size_from_displacement(alpha * (c + np.log(N)), N)
    # Assert
    np.testing.assert_allclose(est, N, rtol=1e-9)


def test_recovers_the_sizes_within_a_factor_1_5_under_noise():
    """Noise of sd 0.05 alpha on delta: every estimate within a factor 1.5 (ln error < 0.405).

    The error in ln N is the noise over the slope (sd 0.05) plus the calibration's error,
    so 0.405 is eight noise sds; an estimator that ignored the displacement (or inverted
    the wrong curve) misses by ln(5000 / 20) = 5.5.
    """
    # Prepare
    rng = np.random.default_rng(24)
    N = np.exp(rng.uniform(np.log(20), np.log(5000), size=40))
    alpha = 0.3
    delta = 0.5 + alpha * np.log(N) + rng.normal(0.0, 0.05 * alpha, size=N.size)
    # Execute
    est = size_from_displacement(delta, N)
    # Assert
    assert np.abs(np.log(est / N)).max() < np.log(1.5)


@given(N=sizes, i=st.integers(0, 11), factor=st.floats(1e-3, 1e3),
       noise=st.lists(st.floats(-0.2, 0.2), min_size=12, max_size=12))
def test_a_clients_own_report_never_moves_its_own_estimate(N, i, factor, noise):
    """Leave-one-out: client i's estimate is the same whatever i reports."""
    # Prepare
    N = np.array(N)
    i %= N.size
    delta = 1.0 + 0.3 * np.log(N) + np.array(noise[:N.size])
    lie = N.copy()
    lie[i] *= factor
    # Execute
    honest, lying = size_from_displacement(delta, N), size_from_displacement(delta, lie)
    # Assert
    assert lying[i] == honest[i]


def test_one_liar_moves_the_others_only_through_one_calibration_point():
    """A tenfold report moves an honest client's estimate by far less than tenfold."""
    N = np.array([20.0, 40.0, 60.0, 90.0, 130.0, 200.0, 300.0, 450.0, 700.0, 1000.0])
    delta = 0.4 + 0.25 * np.log(N)
    lie = N.copy()
    lie[4] *= 10
    moved = np.abs(np.log(size_from_displacement(delta, lie) / N))
    assert moved[4] == pytest.approx(0.0, abs=1e-9) and moved.max() < 0.5


def test_fewer_than_three_clients_get_their_reports():
    """No curve can be calibrated leaving one of two out: the estimate is the reports."""
    assert size_from_displacement([0.5, 2.0], [10.0, 30.0]).tolist() == [10.0, 30.0]


def test_flat_displacements_give_finite_estimates_in_the_domain():
    """Every client moved the same: the slope floor keeps the inversion finite."""
    est = size_from_displacement([1.0, 1.0, 1.0, 5.0], [10.0, 20.0, 40.0, 80.0])
    assert np.isfinite(est).all() and est.min() >= 1e-3 and est.max() <= 1e12


def test_all_reports_equal_is_handled():
    """No pair with distinct sizes: the slope is the floor, not NaN."""
    est = size_from_displacement([0.9, 1.0, 1.1], [50.0, 50.0, 50.0])
    assert np.isfinite(est).all() and est[0] < est[1] < est[2]


@pytest.mark.parametrize(("delta", "N", "message"), [
    ([1.0, np.nan, 1.0], [1.0, 2.0, 3.0], r"displacement\[1\] = nan must be finite and > 0"),
    ([1.0, 1.0, 0.0], [1.0, 2.0, 3.0], r"displacement\[2\] = 0\.0 must be finite and > 0"),
    ([1.0, 1.0, 1.0], [1.0, -2.0, 3.0], r"reported\[1\] = -2\.0 must be finite and > 0"),
    ([1.0, 1.0, 1.0], [1.0, np.inf, 3.0], r"reported\[1\] = inf must be finite and > 0"),
    ([1.0, 1.0], [1.0, 2.0, 3.0], r"displacement has 2 entries, reported 3"),
    ([[1.0, 1.0]], [1.0, 2.0], r"displacement must be a vector, got shape \(1, 2\)"),
])
def test_bad_input_is_refused_naming_the_field_index_and_value(delta, N, message):
    with pytest.raises(ValueError, match=message):
        size_from_displacement(delta, N)


def test_theil_sen_ignores_one_outlier():
    a, alpha = theil_sen([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 5.0, 7.0, 100.0])
    assert (a, alpha) == (1.0, 2.0)
