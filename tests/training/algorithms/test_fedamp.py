"""FedAMP: attention rows sum to one, the proximal term has gradient, FedAMP is not Local."""

import numpy as np
import pytest
import torch

from training import Config, prepare, train
from training.algorithms import ServerInput, get_algorithm
from training.algorithms.base import all_pairs
from training.algorithms.fedamp import attention_weights
from training.profiles import Reports

CFG = Config(algorithm="fedamp", clients=4, rounds=2, epochs=1, hidden=16, max_samples=400)


@pytest.fixture(scope="module")
def fed():
    return prepare(CFG)


def _input(uploads: torch.Tensor, theta0: torch.Tensor) -> ServerInput:
    k = uploads.shape[0]
    rep = Reports.make(N=np.arange(1, k + 1), c=np.full(k, 0.2), K=np.full(k, 100.0))
    return ServerInput(round=1, clients=np.arange(k), m=k, reports=rep, true=rep,
                       uploads=uploads, infos={}, theta0=theta0, seed=0)


@pytest.mark.parametrize("sigma", [1e-3, 10.0, 1e6])
def test_attention_rows_sum_to_one_without_overflow(sigma):
    """Rows are non-negative, sum to 1, keep xi_ii = self_weight, for tiny and huge sigma."""
    W = torch.randn(6, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xi = attention_weights(W, sigma=sigma, self_weight=0.3)
    assert torch.isfinite(xi).all()
    assert (xi >= 0).all()
    assert torch.allclose(xi.sum(dim=1), torch.ones(6, dtype=torch.float64))
    assert torch.allclose(xi.diagonal(), torch.full((6,), 0.3, dtype=torch.float64))


def test_attention_prefers_similar_models():
    """The weight on an aligned model dominates the one on an opposite model (sigma = 10)."""
    W = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]])
    xi = attention_weights(W, sigma=10.0, self_weight=0.3)
    assert xi[0, 1] > 0.69 and xi[0, 2] < 1e-6
    assert attention_weights(W[:1], 10.0, 0.3).tolist() == [[1.0]]


def test_similarity_of_updates_measures_moves_from_theta0():
    """similarity = "update" compares w - theta0: raw weights alike, moves opposite."""
    theta0 = torch.tensor([10.0, 10.0], dtype=torch.float64)
    up = theta0 + torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]], dtype=torch.float64)
    moves = get_algorithm(CFG).server_step(_input(up, theta0), {})[0]
    raw = get_algorithm(CFG.replace(hyper={"similarity": "weights"})).server_step(
        _input(up, theta0), {})[0]
    # by moves client 0 mixes in almost only client 1; by raw weights, both others
    assert torch.allclose(moves.centers[0], 0.3 * up[0] + 0.7 * up[1], atol=1e-6)
    assert not torch.allclose(raw.centers[0], 0.3 * up[0] + 0.7 * up[1], atol=1e-3)


def test_server_output(fed):
    """Start = own upload, centre = Xi @ W, prox = mu, complete sharing graph."""
    theta0 = fed.theta0[fed.shared]
    up = theta0 + 0.1 * torch.randn((4, theta0.numel()), generator=torch.Generator().manual_seed(2))
    algo = get_algorithm(CFG.replace(hyper={"mu": 0.5}))
    out, state = algo.server_step(_input(up, theta0), {})
    xi = attention_weights(up - theta0, 10.0, 0.3)
    assert state == {}
    assert torch.equal(out.starts, up)
    assert torch.allclose(out.centers, (xi @ up.double()).float())
    assert list(out.prox) == [0.5] * 4
    assert (out.A == all_pairs(4)).all()


def test_proximal_term_has_gradient():
    """PFLlib's defect (a prox built from .data: zero gradient) must not come back."""
    algo = get_algorithm(CFG)
    flat = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    center = torch.zeros(3)
    loss = torch.tensor(0.0)  # a data loss with no gradient: only the proximal term acts
    obj = algo.local_objective(loss, flat, center, algo.max_prox(None, None))
    obj.backward()
    assert torch.allclose(flat.grad, 1.0 * (flat.detach() - center))


def test_trained_model_differs_from_local(fed):
    """From the same start, FedAMP's client step moves towards u_i; Local's does not."""
    # Prepare
    theta0 = fed.theta0[fed.shared]
    up = theta0 + 0.1 * torch.randn((4, theta0.numel()), generator=torch.Generator().manual_seed(3))
    amp, local = get_algorithm(CFG), get_algorithm(CFG.replace(algorithm="local"))
    inp = _input(up, theta0)
    amp_out, _ = amp.server_step(inp, {})
    local_out, _ = local.server_step(inp, {})
    state = amp.init_client_state(0, fed.theta0, fed.buffers0)
    ctx, data = fed.context(0, 1), fed.data[0]
    # Execute
    a = amp.client_step(amp_out.message(0), state, data, ctx)
    b = local.client_step(local_out.message(0), state, data, ctx)
    # Assert
    assert torch.equal(amp_out.starts[0], local_out.starts[0])
    assert not torch.allclose(a.upload, b.upload, atol=1e-4)
    u = amp_out.centers[0]
    assert (a.upload - u).norm() < (b.upload - u).norm()


def test_hyper_parameters_are_checked():
    """mu = 0 (FedAMP = Local), a self-weight above 1 and sigma = 0 are refused by name."""
    with pytest.raises(ValueError, match=r"\[fedamp\] mu = 0.0 must be > 0"):
        Config(algorithm="fedamp", hyper={"mu": 0})
    with pytest.raises(ValueError, match=r"\[fedamp\] self_weight = 1.5 must be <= 1"):
        Config(algorithm="fedamp", hyper={"self_weight": 1.5})
    with pytest.raises(ValueError, match=r"\[fedamp\] sigma = 0.0 must be > 0"):
        Config(algorithm="fedamp", hyper={"sigma": 0})


def test_end_to_end(tmp_path):
    """Two rounds run end to end."""
    rows = train(CFG, tmp_path / "run", progress=False)
    assert {r["round"] for r in rows} == {0, 1, 2}
    assert all(r["imports"] == 3 for r in rows if r["round"] > 0)
