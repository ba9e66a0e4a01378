import math

import numpy as np
import pytest
import torch

from mechanism import Market, payments, solve_graph, utilities
from training.profiles import Reports
from training.server import (
    ipfl_market,
    ipfl_server_step,
    market_distances,
    prox_centers,
    prox_weights,
)


def _theta(m=4, P=20, seed=0):
    return torch.randn(m, P, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("distance", ["sqeuclidean", "sqeuclidean_mean"])
@pytest.mark.parametrize("eta", [0.25, 0.5, 1.0])
def test_prox_center_is_the_relative_step_of_eq6(distance, eta):
    """Centre = (1 - eta) theta_i + eta sum_j W_ij theta_j / S_i: the literal eq. (6) step
    with eta_i = eta / (2 s S_i), a convex combination for every eta in (0, 1]."""
    theta = _theta()
    A = np.array([[0, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    N = np.array([10.0, 100.0, 100.0, 100.0])  # S_0 = 30: the old literal step extrapolated
    c = prox_centers(theta, A, N, eta=eta, distance=distance)
    W = A * N[None] / N[:, None]
    S = W.sum(1)
    th = theta.numpy()
    for i in range(4):
        want = th[i] if S[i] == 0 else (1 - eta) * th[i] + eta * (W[i] @ th) / S[i]
        np.testing.assert_allclose(c[i].numpy(), want, atol=1e-12)
    # literally eq. (6): theta_i - eta_i * sum_j W_ij grad d(theta_i, theta_j)
    s = 1.0 / theta.shape[1] if distance == "sqeuclidean_mean" else 1.0
    eta_i = eta / (2 * s * S[0])
    grad = sum(W[0, j] * 2 * s * (th[0] - th[j]) for j in range(4))
    np.testing.assert_allclose(c[0].numpy(), th[0] - eta_i * grad, atol=1e-12)


def test_eta_acts():
    """Different eta give different centres (the old cap made 0.25, 5 and 100 identical)."""
    theta = _theta()
    A = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0]])
    N = np.array([10.0, 40.0, 40.0, 20.0])
    centres = [prox_centers(theta, A, N, eta=e) for e in (0.25, 0.5, 1.0)]
    assert not torch.allclose(centres[0], centres[1])
    assert not torch.allclose(centres[1], centres[2])


def test_prox_weight_is_lam_prox_over_eta_i():
    theta = _theta()
    A = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    N = np.array([10.0, 20.0, 10.0, 5.0])
    mu = prox_weights(theta, A, N, eta=0.5, lam_prox=3.0, distance="sqeuclidean_mean")
    S = (A * N[None] / N[:, None]).sum(1)
    np.testing.assert_allclose(mu, 3.0 * 2 * S / 20 / 0.5)
    assert mu[1] == 0.0 and mu[3] == 0.0


def test_market_distances_are_scaled_by_their_median():
    d = np.array([[0, 1.0, 9.0], [1.0, 0, 3.0], [9.0, 3.0, 0]])
    np.testing.assert_allclose(market_distances(d, "median"), d / 3.0)
    np.testing.assert_array_equal(market_distances(d, "none"), d)
    np.testing.assert_array_equal(market_distances(np.zeros((3, 3)), "median"), np.zeros((3, 3)))


def _reports(m=4, budget=math.inf):
    N = np.array([30.0, 40.0, 50.0, 60.0])[:m]
    return Reports.make(N=N, c=np.full(m, 0.1), K=100 * N, budget=np.full(m, budget))


def test_server_step_balances_payments_and_matches_mechanism():
    theta = _theta()
    out, s = ipfl_server_step(_reports(), theta, lam=1.0, lam_prox=1.0, eta=0.25)
    assert abs(s.p.sum()) < 1e-12
    d = ipfl_market(_reports(), theta, lam=1.0).market.d
    mk = Market(N=[30, 40, 50, 60], c=[0.1] * 4, K=[3000, 4000, 5000, 6000], d=d, lam=1.0)
    A = solve_graph(mk, "paper")
    np.testing.assert_array_equal(s.A, A)
    np.testing.assert_array_equal(out.A, A)
    np.testing.assert_allclose(s.p, payments(mk, A).p)
    np.testing.assert_allclose(s.U, utilities(mk, A))
    assert 0 < s.A.sum() < 12


def test_budget_makes_clients_quit_and_the_rest_still_balance():
    theta = _theta()
    free = ipfl_server_step(_reports(), theta, lam=1.0, lam_prox=1.0, eta=0.25)[1]
    assert free.p.max() > 0
    s = ipfl_server_step(_reports(budget=0.0), theta, lam=1.0, lam_prox=1.0, eta=0.25)[1]
    assert not s.stays.all()
    assert (s.p[s.stays] <= 1e-12).all()
    quit_ = ~s.stays
    assert s.A[quit_].sum() == 0 and s.A[:, quit_].sum() == 0
    assert abs(s.p.sum()) < 1e-12


def test_a_liars_utility_is_measured_with_its_true_profile():
    """The market runs on reports; the recorded U uses the true N, c, K with the same bills."""
    theta = _theta()
    true = _reports()
    lie = Reports.make(N=true.N * np.array([10, 1, 1, 1]), c=true.c, K=true.K)
    _, s = ipfl_server_step(lie, theta, lam=1.0, lam_prox=1.0, eta=0.5, true=true)
    d = ipfl_market(lie, theta, lam=1.0, true=true).market.d
    mk = Market(N=lie.N, c=lie.c, K=lie.K, d=d, lam=1.0)
    np.testing.assert_array_equal(s.A, solve_graph(mk, "paper"))
    truth = mk.replace(N=true.N)
    gains = truth.gain.value(s.A @ truth.N, truth.N, truth.K)
    want = gains - 0.1 * s.A.sum(axis=0) - payments(mk, s.A).p
    np.testing.assert_allclose(s.U, want)
    assert not np.allclose(s.U, utilities(mk, s.A))


def test_unknown_solver_is_a_clear_error():
    with pytest.raises(ValueError, match="solver|method"):
        ipfl_server_step(_reports(), _theta(), lam=1.0, lam_prox=1.0, eta=0.25, solver="magic")


def test_a_model_far_beyond_the_domain_is_priced_out_not_refused():
    """An attacker whose model drifted 1e6+ medians away: distances clip to the domain's
    1e6, the round settles, and nobody imports it (experiments' sign-flip runs failed here)."""
    theta = _theta(m=6)
    theta[5] = 1e12  # a drifted, poisoned upload; the median stays among honest pairs
    N = np.array([30.0, 40.0, 50.0, 60.0, 70.0, 80.0])
    rep = Reports.make(N=N, c=np.full(6, 0.1), K=100 * N)
    _, s = ipfl_server_step(rep, theta, lam=1.0, lam_prox=1.0, eta=1.0)
    d = ipfl_market(rep, theta, lam=1.0).market.d
    assert d.max() == 1e6
    assert s.A[:, 5].sum() == 0 and s.A[:5, :5].sum() > 0
    assert abs(s.p.sum()) < 1e-9


@pytest.mark.parametrize("eta", [0.25, 1.0])
@pytest.mark.parametrize("distance", ["sqeuclidean_mean", "sqeuclidean"])
def test_own_weights_are_the_prox_centres_own_coefficient(eta, distance):
    """For a fixed graph, d centre_i / d theta_i = own_weights[i] * I (1 - eta, or 1 alone)."""
    from training.server import own_weights, prox_centers

    g = torch.Generator().manual_seed(3)
    theta = torch.randn(4, 6, generator=g, dtype=torch.float64)
    A = np.array([[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 1], [0, 1, 0, 0]])
    N = np.array([100.0, 300.0, 50.0, 80.0])
    w = own_weights(A, N, eta=eta, distance=distance)
    base = prox_centers(theta, A, N, eta=eta, distance=distance)
    for i in range(4):
        moved = theta.clone()
        moved[i] += 1.0  # the centres are affine in theta: a unit step gives the coefficient
        delta = prox_centers(moved, A, N, eta=eta, distance=distance)[i] - base[i]
        assert torch.allclose(delta, torch.full_like(delta, w[i])), (i, delta, w[i])
    assert w[1] == 1.0 and w[0] == pytest.approx(1 - eta)
