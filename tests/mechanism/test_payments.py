"""Tests for mechanism/payments.py: eq. (10), (1), (3), (8) by hand and at scale."""

import math

import numpy as np
import pytest
from worked_markets import three_clients

from mechanism import (
    Market,
    check_graph,
    greedy_graph,
    objective,
    payments,
    random_market,
    social_welfare,
    solve_graph,
    utilities,
)
from mechanism.payments import IR_RTOL, marginal_gains
from mechanism.reference import reference_payments


def test_three_client_worked_example():
    r"""A = [[0,1,0],[0,0,0],[0,1,0]] (see test_graph.three_clients).

    r_01 = g_0(300) - g_0(0) - lam N_1/N_0 d_01 = 1 - 3 * 0.05 = 0.85
    r_21 = g_2(300) - g_2(0) - lam N_1/N_2 d_21 = 1 - 3 * 0.1  = 0.70
    p = (0.85, -(0.85 + 0.70), 0.70) = (0.85, -1.55, 0.70)   [sum 0]
    U_0 = g_0(300) - 0 * c_0 - p_0 = 1 - 0.85 = 0.15
    U_1 = 0 - 2 * 0.25 + 1.55     = 1.05
    U_2 = 1 - 0 - 0.70            = 0.30   (c_2 = inf, nobody imports 2: cost 0)
    SW  = (1 + 0 + 1) - 2 * 0.25  = 1.50 = U_0 + U_1 + U_2
    phi_0 = w_01 - g_0(300) = 0.40 - 1 = -0.60;  phi_2 = 0.55 - 1 = -0.45;  phi_1 = 0
    """
    mk = three_clients()
    A = greedy_graph(mk)
    pay = payments(mk, A)
    expected_r = np.zeros((3, 3))
    expected_r[0, 1], expected_r[2, 1] = 0.85, 0.70
    np.testing.assert_allclose(pay.r, expected_r, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(pay.p, [0.85, -1.55, 0.70], rtol=1e-12)
    np.testing.assert_allclose(pay.paid, [0.85, 0, 0.70], rtol=1e-12)
    np.testing.assert_allclose(pay.received, [0, 1.55, 0], rtol=1e-12)
    np.testing.assert_allclose(utilities(mk, A), [0.15, 1.05, 0.30], rtol=1e-12)
    assert social_welfare(mk, A) == pytest.approx(1.5, rel=1e-12)
    np.testing.assert_allclose(objective(mk, A), [-0.60, 0.0, -0.45], rtol=1e-12)


def test_net_payment_subtracts_what_others_remit():
    """Definition 4 prints sum_j r_ij - sum_j r_ij (always 0); the reading subtracts r_ji."""
    mk = three_clients()
    assert payments(mk, greedy_graph(mk)).p[1] == pytest.approx(-1.55)


@pytest.mark.parametrize("seed", range(25))
def test_against_scalar_reference_and_budget_balance(seed):
    rng = np.random.default_rng(seed)
    mk = random_market(int(rng.integers(2, 12)), seed=rng, buyers=0.2, sellers=0.2)
    for variant in ("paper", "skip"):
        A = greedy_graph(mk, variant)
        r, p = reference_payments(mk, A)
        pay = payments(mk, A)
        np.testing.assert_allclose(pay.r, r, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(pay.p, p, rtol=1e-9, atol=1e-12)
        assert abs(pay.p.sum()) <= 1e-9
        assert social_welfare(mk, A) == pytest.approx(utilities(mk, A).sum(), rel=1e-9, abs=1e-9)


def test_budget_balance_at_scale():
    mk = random_market(800, seed=5, buyers=0.1, sellers=0.1)
    pay = payments(mk, greedy_graph(mk))
    assert np.abs(pay.r).sum() > 1.0  # money does move
    assert abs(pay.p.sum()) <= 1e-9


def test_pure_buyer_nobody_imports_has_zero_cost_not_nan():
    mk = three_clients()
    U = utilities(mk, greedy_graph(mk))
    assert np.all(np.isfinite(U))


def test_empty_graph_gives_zero_everything():
    mk = random_market(5, seed=1)
    A = np.zeros((5, 5), dtype=int)
    assert np.all(payments(mk, A).r == 0) and np.all(utilities(mk, A) == 0)
    assert social_welfare(mk, A) == 0 and np.all(objective(mk, A) == 0)


def test_objective_is_weights_minus_gain():
    mk = Market(N=[100, 300, 500], c=[0.3, 0.2, 0.1], K=[400, 400, 400], lam=0.0)
    A = np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0]])
    g0 = 2 - 20 / math.sqrt(900)  # client 0 imports 800 points
    g2 = math.sqrt(400 / 500) - math.sqrt(400 / 600)
    np.testing.assert_allclose(objective(mk, A), [0.3 - g0, 0.0, 0.3 - g2], rtol=1e-12)


@pytest.mark.parametrize(
    ("A", "match"),
    [
        (np.zeros((2, 2)), r"shape \(2, 2\), expected \(3, 3\)"),
        ([[0, 2, 0], [0, 0, 0], [0, 0, 0]], r"A\[0, 1\] = 2 must be 0 or 1"),
        ([[0, 0, 0], [0, 1, 0], [0, 0, 0]], r"A\[1, 1\] = 1: a client cannot import itself"),
        ("abc", "got dtype <U3"),
        (None, "got dtype object"),
        ([[0, 1, 0], [0, 0], [0, 0, 0]], "must be an m x m array of 0/1"),
    ],
)
def test_check_graph_errors(A, match):
    with pytest.raises(ValueError, match=match):
        check_graph(three_clients(), A)


def test_solve_graph_registry():
    mk = three_clients()
    np.testing.assert_array_equal(solve_graph(mk, "paper"), greedy_graph(mk, "paper"))
    np.testing.assert_array_equal(solve_graph(mk, "skip"), greedy_graph(mk, "skip"))
    with pytest.raises(ValueError, match="method = 'magic' is not one of"):
        solve_graph(mk, "magic")
    with pytest.raises(ValueError, match="method 'paper' takes no options"):
        solve_graph(mk, "paper", time_limit=1.0)


@pytest.mark.parametrize("ratio", [1e6, 1e9, 3.16e11, 1e12, 1e15])
@pytest.mark.parametrize("variant", ["paper", "skip"])
def test_individual_rationality_survives_extreme_data_ratios(ratio, variant):
    """The increment N + x - n once rounded the small client's U_0 to about -2 (issue 12).

    Client 0 (small) imports client 1 (``ratio`` times larger) and pays it the
    whole gain of that import: U_0 is exactly 0, and must not round below it.
    """
    # Prepare
    N0 = 1.4668630405005982 if ratio < 1e15 else 1e-3
    N = np.array([N0, min(N0 * ratio, 1e12)])
    mk = Market(N=N, c=[0.2, 0.2], K=np.minimum(100 * N, 1e12), lam=0.0)
    # Execute
    A = greedy_graph(mk, variant)
    U = utilities(mk, A)
    pay = payments(mk, A)
    # Assert
    assert A[0, 1] == 1
    assert U[0] >= -IR_RTOL * (pay.paid[0] + pay.received[0] + mk.gain.value(N[1], N[0], mk.K[0]))
    assert abs(pay.p.sum()) <= 1e-9 * np.abs(pay.r).sum()


def test_marginal_gains_of_a_dominant_import_are_accurate():
    """g_i(y + N_j) - g_i(y) with y the small rest of the row, to 1e-12 relative."""
    from decimal import Decimal, getcontext

    getcontext().prec = 60
    N = np.array([1e-3, 1e12, 2.5e-3, 7e-3])
    mk = Market(N=N, c=[0, 0, 0, 0], K=[1e12, 1e12, 1e12, 1e12], lam=0)
    A = np.array([[0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    got = marginal_gains(mk, A)[0]

    def g(x):  # sqrt(K/N) - sqrt(K/(N+x)) in 60 digits
        K, Ni = Decimal(1e12), Decimal(1e-3)
        return (K / Ni).sqrt() - (K / (Ni + x)).sqrt()

    D = [Decimal(float(v)) for v in N]
    total = D[1] + D[2] + D[3]
    for j in (1, 2, 3):
        want = float(g(total) - g(total - D[j]))
        assert got[j] == pytest.approx(want, rel=1e-12), j
