"""pFedGraph: the closed-form graph QP, the public code's clipping, the regulariser's sign."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from training import Config
from training.algorithms import ServerInput, get_algorithm
from training.algorithms.pfedgraph import (
    cosine_difference,
    graph_weights,
    simplex_projection,
)
from training.profiles import Reports


def _qp(d: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
    """Solve min_a alpha ||a - p||^2 + d.a over the simplex with a generic solver (SLSQP)."""
    m = len(p)
    res = minimize(lambda a: alpha * ((a - p) ** 2).sum() + d @ a,
                   np.full(m, 1.0 / m),
                   jac=lambda a: 2 * alpha * (a - p) + d,
                   method="SLSQP", bounds=[(0.0, None)] * m,
                   constraints=[{"type": "eq", "fun": lambda a: a.sum() - 1.0,
                                 "jac": lambda a: np.ones_like(a)}],
                   options={"ftol": 1e-12, "maxiter": 1000})
    assert res.success, res.message
    return res.x


@pytest.mark.parametrize("seed", range(20))
def test_projection_equals_generic_qp(seed: int) -> None:
    """Every row of the closed form equals the generic QP solution to 1e-6."""
    # Prepare: random instances shaped like pFedGraph's (d in [-1, 1], p data fractions)
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 12))
    d = rng.uniform(-1, 1, (m, m))
    N = rng.integers(5, 500, m).astype(float)
    alpha = float(rng.choice([0.05, 0.3, 0.8, 5.0]))
    # Execute
    a = graph_weights(d, N, alpha)
    ref = np.array([_qp(d[i], N / N.sum(), alpha) for i in range(m)])
    # Assert
    assert np.allclose(a.sum(axis=1), 1.0) and (a >= 0).all()
    np.testing.assert_allclose(a, ref, atol=1e-6)


def test_projection_is_the_nearest_simplex_point() -> None:
    """The projection beats every other simplex point by distance (random points, 1-D input)."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.normal(0, 2, 6)
        x = simplex_projection(v)
        others = rng.dirichlet(np.ones(6), 200)
        assert ((others - v) ** 2).sum(axis=1).min() >= ((x - v) ** 2).sum() - 1e-12


def test_projection_refuses_bad_input() -> None:
    """Errors name the shape or the problem."""
    with pytest.raises(ValueError, match=r"shape \(2, 0\)"):
        simplex_projection(np.zeros((2, 0)))
    with pytest.raises(ValueError, match="non-finite"):
        simplex_projection([np.nan, 1.0])


def test_cosine_difference_clips_like_the_public_code() -> None:
    """d = -cos of the updates from theta0; values below -0.9 become -1 (diagonal -1)."""
    theta0 = torch.tensor([1.0, 1.0, 1.0])
    dW = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    d = cosine_difference(theta0 + dW, theta0)
    cos01 = 1.0 / np.sqrt(1.01)  # 0.995 > 0.9: clipped
    assert d[0, 1] == -1.0 and d[1, 0] == -1.0 and cos01 > 0.9
    assert np.allclose(np.diag(d), -1.0)
    assert d[0, 2] == pytest.approx(0.0) and d[0, 3] == pytest.approx(1.0)
    assert d[1, 2] == pytest.approx(-0.1 / np.sqrt(1.01))


def test_regulariser_pulls_towards_the_aggregate() -> None:
    """A gradient step on the similarity term alone increases cos(w, aggregate) (issue #1)."""
    # Prepare
    cfg = Config(algorithm="pfedgraph", clients=4, rounds=1)
    algo = get_algorithm(cfg)
    rng = torch.Generator().manual_seed(0)
    w = torch.randn(50, generator=rng, dtype=torch.float64).requires_grad_(True)
    agg = torch.randn(50, generator=rng, dtype=torch.float64)
    before = float(torch.nn.functional.cosine_similarity(w.detach(), agg, dim=0))
    # Execute: one SGD step on the objective with a zero data loss
    zero = torch.zeros((), dtype=torch.float64)
    algo.local_objective(zero, w, agg, algo.hp["lam"]).backward()
    with torch.no_grad():
        w2 = w - 10.0 * w.grad
    after = float(torch.nn.functional.cosine_similarity(w2, agg, dim=0))
    # Assert
    assert after > before + 1e-6


def _server_input(uploads: torch.Tensor, theta0: torch.Tensor, N: np.ndarray) -> ServerInput:
    rep = Reports.make(N, c=np.full(len(N), 0.2), K=np.ones(len(N)))
    return ServerInput(round=1, clients=np.arange(len(N)), m=len(N), reports=rep, true=rep,
                       uploads=uploads, infos={}, theta0=theta0, seed=0)


def test_server_step_aggregates_with_graph_weights() -> None:
    """Starts are a @ uploads, centres equal starts, lam is sent, A marks a_ij > 0 off-diagonal."""
    # Prepare: two groups of clients with opposite updates
    theta0 = torch.zeros(4, dtype=torch.float64)
    up = torch.tensor([[1.0, 0, 0, 0], [1.0, 0.1, 0, 0], [-1.0, 0, 0.2, 0], [-1.0, 0, 0, 0.1]],
                      dtype=torch.float64)
    N = np.array([100.0, 50.0, 80.0, 70.0])
    algo = get_algorithm(Config(algorithm="pfedgraph", clients=4, rounds=1))
    # Execute
    out, _ = algo.server_step(_server_input(up, theta0, N), {})
    # Assert
    a = graph_weights(cosine_difference(up, theta0), N, 0.8)
    torch.testing.assert_close(out.starts, torch.as_tensor(a) @ up)
    torch.testing.assert_close(out.centers, out.starts)
    assert np.allclose(out.prox, 0.01)
    assert out.A.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
