"""Client side: local training on eq. (7) and personalised evaluation.

Shuffling uses a :class:`torch.Generator` the caller seeds per client and round, so a
round re-run after a crash draws exactly the same mini-batches.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .models import get_flat, set_flat

__all__ = ["evaluate", "train_client"]

Objective = Callable[[torch.Tensor, list[torch.Tensor], list[torch.Tensor], float], torch.Tensor]


def train_client(model: nn.Module, X: torch.Tensor, y: torch.Tensor, start: torch.Tensor,
                 buffers: torch.Tensor, center: torch.Tensor, prox: float, *, epochs: int,
                 batch_size: int, lr: float, generator: torch.Generator,
                 objective: Objective) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``epochs`` epochs of SGD from ``start`` and return the new (params, buffers).

    ``objective(loss, params, center_views, prox)`` builds the minimised objective (the
    algorithm's :meth:`~training.algorithms.Algorithm.local_objective`).
    """
    set_flat(model, start, buffers)
    params = [p for p in model.parameters() if p.requires_grad]
    views, k = [], 0
    for p in params:
        views.append(center[k:k + p.numel()].view_as(p).detach())
        k += p.numel()
    opt = torch.optim.SGD(params, lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    n = X.shape[0]
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            opt.zero_grad(set_to_none=True)
            obj = objective(loss_fn(model(X[idx]), y[idx]), params, views, prox)
            obj.backward()
            opt.step()
    return get_flat(model)


@torch.no_grad()
def evaluate(model: nn.Module, params: torch.Tensor, buffers: torch.Tensor, X: torch.Tensor,
             y: torch.Tensor, batch_size: int = 1024) -> float:
    """Return the accuracy of the model ``(params, buffers)`` on ``(X, y)``."""
    set_flat(model, params, buffers)
    model.eval()
    correct = 0
    for s in range(0, X.shape[0], batch_size):
        correct += int((model(X[s:s + batch_size]).argmax(dim=1) == y[s:s + batch_size]).sum())
    return correct / max(1, X.shape[0])
