import pytest
import torch

from training.distance import DISTANCES, get_distance


def _naive(name, a, b):
    if name == "sqeuclidean":
        return ((a - b) ** 2).sum()
    if name == "sqeuclidean_mean":
        return ((a - b) ** 2).sum() / a.numel()
    return 1 - (a @ b) / (a.norm() * b.norm())


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_pairwise_matches_naive_loop(name):
    g = torch.Generator().manual_seed(0)
    theta = torch.randn(6, 40, generator=g, dtype=torch.float64)
    D = get_distance(name).pairwise(theta)
    for i in range(6):
        for j in range(6):
            want = 0.0 if i == j else float(_naive(name, theta[i], theta[j]))
            assert float(D[i, j]) == pytest.approx(want, abs=1e-10)


@pytest.mark.parametrize("name", sorted(DISTANCES))
def test_weighted_gradient_matches_autograd(name):
    g = torch.Generator().manual_seed(1)
    theta = torch.randn(5, 30, generator=g, dtype=torch.float64)
    W = torch.rand(5, 5, generator=g, dtype=torch.float64)
    W.fill_diagonal_(0)
    got = get_distance(name).weighted_grad(theta, W)
    for i in range(5):
        x = theta[i].clone().requires_grad_(True)
        total = sum(W[i, j] * _naive(name, x, theta[j]) for j in range(5) if j != i)
        (grad,) = torch.autograd.grad(total, x)
        torch.testing.assert_close(got[i], grad, atol=1e-10, rtol=1e-8)


def test_unknown_distance():
    with pytest.raises(ValueError, match="'manhattan'"):
        get_distance("manhattan")


@pytest.mark.parametrize("name", ["sqeuclidean", "sqeuclidean_mean"])
def test_mixing_matrix_equals_metric_scaled_gradient_step(name):
    g = torch.Generator().manual_seed(2)
    theta = torch.randn(5, 30, generator=g, dtype=torch.float64)
    W = torch.rand(5, 5, generator=g, dtype=torch.float64)
    W.fill_diagonal_(0)
    eta = torch.rand(5, generator=g, dtype=torch.float64) * 0.1
    dist = get_distance(name)
    step = theta - (eta / dist.metric(theta))[:, None] * dist.weighted_grad(theta, W)
    torch.testing.assert_close(dist.mixing(W, eta) @ theta, step)
