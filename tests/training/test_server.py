import math

import numpy as np
import pytest
import torch

from training.server import Reports, ipfl_server_step, prox_centers


def _theta(m=4, P=20, seed=0):
    return torch.randn(m, P, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_prox_center_below_cap_is_eq6_literally():
    """With 2 eta S_i <= max_mix the centre is (1 - 2 eta S_i) theta_i + 2 eta sum W_ij theta_j."""
    theta = _theta()
    A = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]])
    N = np.array([10.0, 20.0, 10.0, 5.0])
    c, eta, capped = prox_centers(theta, A, N, eta=0.1, max_mix=1.0, distance="sqeuclidean")
    W = A * N[None] / N[:, None]
    S = W.sum(1)
    want = (1 - 2 * 0.1 * S)[:, None] * theta.numpy() + 2 * 0.1 * W @ theta.numpy()
    np.testing.assert_allclose(c.numpy(), want, atol=1e-12)
    assert not capped.any()


@pytest.mark.parametrize("distance", ["sqeuclidean", "sqeuclidean_mean"])
def test_prox_center_is_capped_to_a_convex_combination(distance):
    """Importing much larger peers would extrapolate; the cap keeps weights in [0, 1] and warns."""
    theta = _theta()
    A = np.array([[0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    N = np.array([10.0, 100.0, 100.0, 100.0])  # S_0 = 30, eta = 0.25 -> 2 eta S = 15
    with pytest.warns(RuntimeWarning, match="clients \\[0\\]"):
        c, eta, capped = prox_centers(theta, A, N, eta=0.25, max_mix=0.8, distance=distance)
    assert capped.tolist() == [True, False, False, False]
    assert eta[0] == pytest.approx(0.8 / (2 * 30))
    # centre_0 = 0.2 theta_0 + 0.8 * mean(theta_1..3): a convex combination
    want = 0.2 * theta[0] + 0.8 * theta[1:].mean(0)
    torch.testing.assert_close(c[0], want, atol=1e-12, rtol=0)


def test_huge_eta_is_capped_where_the_literal_step_would_extrapolate():
    """eta = 50 with one import: literal eq. (6) gives -99 theta_0 + 100 theta_1, far
    beyond both models; the cap (max_mix = 1) stops at theta_1 itself."""
    theta = _theta()
    A = np.array([[0, 1, 0, 0]] + [[0] * 4] * 3)
    N = np.ones(4)
    with pytest.warns(RuntimeWarning):
        c, _, _ = prox_centers(theta, A, N, eta=50.0, max_mix=1.0, distance="sqeuclidean")
    literal = (1 - 2 * 50.0 * 1) * theta[0] + 2 * 50.0 * 1 * theta[1]  # S_0 = N_1/N_0 = 1
    assert torch.linalg.norm(literal - theta[0]) > 50 * torch.linalg.norm(theta[1] - theta[0])
    torch.testing.assert_close(c[0], theta[1])


def _reports(m=4, budget=math.inf):
    N = np.array([30.0, 40.0, 50.0, 60.0])[:m]
    return Reports.make(N=N, c=np.full(m, 0.1), K=100 * N, budget=np.full(m, budget))


def test_server_step_balances_payments_and_matches_mechanism():
    from mechanism import Market, payments, solve_graph, utilities

    theta = _theta()
    res = ipfl_server_step(_reports(), theta, lam=1.0, eta=0.25)
    assert abs(res.p.sum()) < 1e-12
    mk = Market(N=[30, 40, 50, 60], c=[0.1] * 4, K=[3000, 4000, 5000, 6000], d=res.d, lam=1.0)
    A = solve_graph(mk, "paper")
    np.testing.assert_array_equal(res.A, A)
    np.testing.assert_allclose(res.p, payments(mk, A).p)
    np.testing.assert_allclose(res.U, utilities(mk, A))
    assert 0 < res.A.sum() < 12


def test_budget_makes_clients_quit_and_the_rest_still_balance():
    theta = _theta()
    free = ipfl_server_step(_reports(), theta, lam=1.0, eta=0.25)
    assert free.p.max() > 0
    res = ipfl_server_step(_reports(budget=0.0), theta, lam=1.0, eta=0.25)
    assert not res.stays.all()
    assert (res.p[res.stays] <= 1e-12).all()
    quit_ = ~res.stays
    assert res.A[quit_].sum() == 0 and res.A[:, quit_].sum() == 0
    assert abs(res.p.sum()) < 1e-12


def test_unknown_solver_is_a_clear_error():
    with pytest.raises(ValueError, match="solver|method"):
        ipfl_server_step(_reports(), _theta(), lam=1.0, eta=0.25, solver="magic")
