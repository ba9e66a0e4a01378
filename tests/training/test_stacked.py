"""Chains of linear layers on stacked weights (training/stacked.py) equal autograd (issue 10)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from training import Config, prepare
from training.algorithms import get_algorithm
from training.algorithms.base import Message
from training.batched import train_batched
from training.models import MLP, SmallCNN
from training.stacked import ELEMENTWISE, stacked_chain


def _autograd_loss_and_grad(model, theta, x, y, w):
    """Each client's weighted mean cross-entropy and gradient, one client at a time."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]
    losses, grads = [], []
    for c in range(theta.shape[0]):
        t = theta[c].clone().requires_grad_(True)
        params = {n: p.view(s) for n, p, s in zip(names, t.split(sizes), shapes, strict=True)}
        ce = F.cross_entropy(functional_call(model, params, (x[c],)), y[c], reduction="none")
        loss = (ce * w[c]).sum() / w[c].sum()
        (g,) = torch.autograd.grad(loss, t)
        losses.append(loss.detach())
        grads.append(g)
    return torch.stack(losses), torch.stack(grads)


CHAINS = {
    "mlp (Flatten, Linear, ReLU, Linear)": lambda: MLP(12, 5, hidden=7),
    "no bias, tanh, sigmoid": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(12, 6, bias=False), nn.Tanh(), nn.Linear(6, 6), nn.Sigmoid(),
        nn.Linear(6, 5, bias=False)),
    "leaky relu in place, identity": lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.LeakyReLU(0.3, inplace=True), nn.Identity(),
        nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 5)),
}


@pytest.mark.parametrize("make", CHAINS.values(), ids=CHAINS.keys())
def test_loss_and_gradient_equal_autograd_client_by_client(make):
    # Prepare: 4 clients, image-shaped inputs, padded samples of weight 0
    torch.manual_seed(0)
    model = make()
    P = sum(p.numel() for p in model.parameters())
    theta = torch.randn(4, P) * 0.5
    x = torch.randn(4, 9, 3, 4)
    y = torch.randint(0, 5, (4, 9))
    w = (torch.rand(4, 9) < 0.7).float()
    w[:, 0] = 1.0
    chain = stacked_chain(model)
    assert chain is not None
    # Execute
    loss, grad = chain.loss_and_grad(theta, x, y, w)
    ref_loss, ref_grad = _autograd_loss_and_grad(model, theta, x, y, w)
    # Assert
    torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-5, atol=1e-6)
    assert grad.abs().sum() > 0


class _Skip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(x + self.a(x))


class _Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.spare = nn.Linear(4, 2), nn.Linear(4, 2)

    def forward(self, x):
        return self.a(x)


def _twice():
    lin = nn.Linear(4, 4)
    return nn.Sequential(lin, nn.ReLU(), lin, nn.ReLU(), nn.Linear(4, 2))


def _tied():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    return nn.Sequential(a, nn.ReLU(), b, nn.ReLU(), nn.Linear(4, 2))


OTHERS = {
    "a layer called twice": _twice,
    "tied weights": _tied,
    "convolutions": lambda: SmallCNN(1, 10, side=28),
    "a skip connection": _Skip,
    "a parameter the forward does not use": _Unused,
    "GELU (no closed-form derivative here)": lambda: nn.Sequential(nn.Linear(4, 4), nn.GELU(),
                                                                   nn.Linear(4, 2)),
    "Flatten of other dimensions": lambda: nn.Sequential(nn.Flatten(2), nn.Linear(4, 2)),
    "no linear layer": lambda: nn.Sequential(nn.Flatten(), nn.ReLU()),
    "dropout": lambda: nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)),
}


@pytest.mark.parametrize("make", OTHERS.values(), ids=OTHERS.keys())
def test_other_models_keep_the_vmap_path(make):
    assert stacked_chain(make()) is None


def test_the_supported_activations_are_the_ones_with_a_derivative_here():
    assert set(ELEMENTWISE) == {nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.Identity}


@pytest.mark.parametrize("name,share", [("ipfl", ".*"), ("pfedgraph", ".*"),
                                        ("fedprox", r"net\.1\."), ("pfedgraph", r"net\.1\.")])
def test_stacked_and_vmap_kernels_equal_the_loop(name, share):
    """Both kernels give each client's own step to rounding, also for a custom objective
    (pFedGraph's cosine term, chained through autograd) and a partly shared model."""
    # Prepare
    cfg = Config(algorithm=name, clients=5, epochs=2, hidden=16, max_samples=500, batch_size=8,
                 share=share)
    fed = prepare(cfg)
    algo = get_algorithm(cfg)
    gen = torch.Generator().manual_seed(1)
    P = int(fed.shared.sum())
    assert (P < fed.theta0.numel()) == (share != ".*")
    msgs, states, ctxs = [], [], []
    for i in range(fed.m):
        msgs.append(Message(start=fed.theta0[fed.shared] + 0.01 * torch.randn(P, generator=gen),
                            center=fed.theta0[fed.shared] + 0.01 * torch.randn(P, generator=gen),
                            prox=0.0 if i == 1 else 0.2 * i))
        states.append(algo.init_client_state(i, fed.theta0, fed.buffers0))
        ctxs.append(fed.context(i, 1))
    # Execute
    looped = [algo.client_step(msgs[i], states[i], fed.data[i], ctxs[i]) for i in range(fed.m)]
    out = {k: train_batched(algo, msgs, states, fed.data, ctxs, kernel=k)
           for k in ("stacked", "vmap")}
    # Assert
    for k, batched in out.items():
        for b, lo in zip(batched, looped, strict=True):
            torch.testing.assert_close(b.evaluated, lo.evaluated, rtol=1e-5, atol=1e-5, msg=k)
            torch.testing.assert_close(b.upload, lo.upload, rtol=1e-5, atol=1e-5, msg=k)


def test_kernel_stacked_refuses_a_cnn_and_an_unknown_kernel():
    cfg = Config(dataset="digits", clients=2, max_samples=100)
    cnn = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 2, 3), nn.Flatten(),
                        nn.Linear(72, 10))
    fed = prepare(cfg, model=cnn)
    algo = get_algorithm(cfg)
    args = ([Message(start=fed.theta0, center=fed.theta0, prox=0.0)] * 2,
            [algo.init_client_state(i, fed.theta0, fed.buffers0) for i in range(2)],
            fed.data, [fed.context(i, 1) for i in range(2)])
    with pytest.raises(ValueError, match="kernel = 'stacked' but model Sequential is not a chain"):
        train_batched(algo, *args, kernel="stacked")
    with pytest.raises(ValueError, match="kernel = 'fast' is not one of"):
        train_batched(algo, *args, kernel="fast")


def test_a_custom_objective_that_ignores_the_parameters_is_chained_too():
    """An objective F(loss) only (no proximal part): the stacked kernel equals the loop."""
    from training.algorithms.fedprox import FedProx

    class Scaled(FedProx):
        def local_objective(self, loss, flat, center, prox):
            return loss * (1.0 + prox)

        def vmap_objective(self, loss, flat, center, prox):
            return loss * (1.0 + prox)

    cfg = Config(algorithm="fedprox", clients=3, epochs=1, hidden=8, max_samples=300,
                 batch_size=8)
    fed = prepare(cfg)
    algo = Scaled(cfg)
    P = int(fed.shared.sum())
    msgs = [Message(start=fed.theta0[fed.shared], center=torch.zeros(P), prox=0.5 * i)
            for i in range(fed.m)]
    states = [algo.init_client_state(i, fed.theta0, fed.buffers0) for i in range(fed.m)]
    ctxs = [fed.context(i, 1) for i in range(fed.m)]
    looped = [algo.client_step(msgs[i], states[i], fed.data[i], ctxs[i]) for i in range(fed.m)]
    batched = train_batched(algo, msgs, states, fed.data, ctxs, kernel="stacked")
    for b, lo in zip(batched, looped, strict=True):
        torch.testing.assert_close(b.evaluated, lo.evaluated, rtol=1e-5, atol=1e-5)
