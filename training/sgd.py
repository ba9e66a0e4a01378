r"""Local SGD's loop, written once: the mini-batches of every epoch and the walk over them.

A client's local training (Algorithm 1, line "local update") is ``epochs`` passes of
mini-batch SGD, :math:`\theta \leftarrow \theta - \eta \nabla_\theta F_i(\theta; b)`, over
batches ``b`` of ``batch_size`` samples cut from one permutation per epoch. Two kernels
take the steps: one client with its module and ``torch.optim.SGD``
(:func:`training.client.local_sgd`) and many clients' parameter rows at once
(:func:`training.batched.train_batched`, ``vmap`` or the stacked chain). Both walk the
same :class:`BatchPlan` with :func:`sgd_loop`, so they draw the same batches in the same
order; only the step (gradient and update) differs, and a test holds the two equal to
rounding (``tests/training/test_batched.py``).

>>> plan = BatchPlan.of([5, 2], batch_size=2, orders=[[torch.arange(5)], [torch.arange(2)]])
>>> plan.steps.tolist(), plan.active
([3, 1], [2, 1, 1])
>>> plan.batch(0, 0, 2).tolist()  # client 0's last, short batch of epoch 0
[4]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .client import ClientContext

__all__ = ["BatchPlan", "epoch_orders", "sgd_loop"]


def epoch_orders(ctx: ClientContext, n: int, purpose: int = 0) -> list[torch.Tensor]:
    """Return the order of a client's ``n`` training samples in each of its local epochs.

    One permutation per epoch from the generator seeded by (seed, round, client,
    purpose) (:meth:`training.client.ClientContext.generator`); an epoch's mini-batches
    are consecutive ``batch_size`` slices of it.
    """
    gen = ctx.generator(purpose)
    return [torch.randperm(n, generator=gen) for _ in range(ctx.epochs)]


@dataclass(frozen=True)
class BatchPlan:
    r"""Every client's mini-batches, as row indices into the clients' stacked training sets.

    Attributes
    ----------
    idx : torch.Tensor long (E, C, S, B)
        Row of sample ``b`` of step ``s`` of epoch ``e`` of client ``c`` (client ``c``'s
        rows are offset by the sizes of the clients before it).
    weight : torch.Tensor bool (E, C, S, B)
        False for padding: a client's last batch may be short, and a client with fewer
        samples has fewer steps; ``S`` is the longest client's number of steps.
    steps : torch.Tensor long (C,)
        Each client's number of real steps per epoch, :math:`\lceil n_c / B \rceil`.
    """

    idx: torch.Tensor
    weight: torch.Tensor
    steps: torch.Tensor

    @classmethod
    def of(cls, n: Sequence[int], batch_size: int,
           orders: Sequence[Sequence[torch.Tensor]]) -> BatchPlan:
        """Return the plan of clients with ``n[c]`` samples and epoch orders ``orders[c]``."""
        B, C = batch_size, len(n)
        E = len(orders[0]) if C else 0
        S = max([1, *(-(-k // B) for k in n)])
        idx = torch.zeros((E, C, S * B), dtype=torch.long)
        weight = torch.zeros((E, C, S * B), dtype=torch.bool)
        offset = 0
        for c, (k, per_epoch) in enumerate(zip(n, orders, strict=True)):
            for e, order in enumerate(per_epoch):
                idx[e, c, :k] = order + offset
                weight[e, c, :k] = True
            offset += k
        steps = torch.tensor([-(-k // B) for k in n], dtype=torch.long)
        return cls(idx.view(E, C, S, B), weight.view(E, C, S, B), steps)

    @classmethod
    def for_clients(cls, n: Sequence[int], ctxs: Sequence[ClientContext],
                    purpose: int = 0) -> BatchPlan:
        """Return the plan of clients with ``n[c]`` samples, orders from :func:`epoch_orders`."""
        return cls.of(n, ctxs[0].batch_size,
                      [epoch_orders(ctx, k, purpose) for k, ctx in zip(n, ctxs, strict=True)])

    @property
    def active(self) -> list[int]:
        """How many clients take step ``s`` (the first ones, for a plan sorted by steps)."""
        return [int((self.steps > s).sum()) for s in range(self.idx.shape[2])]

    def sorted(self) -> tuple[BatchPlan, torch.Tensor]:
        """Return the plan with its clients by number of steps, most first, and that order.

        The clients still stepping at any step are then a prefix: a kernel trains them on
        views, without a gather or a scatter back.
        """
        order = torch.argsort(self.steps, descending=True, stable=True)
        return BatchPlan(self.idx[:, order], self.weight[:, order], self.steps[order]), order

    def batch(self, e: int, c: int, s: int) -> torch.Tensor:
        """Return the rows of client ``c``'s batch at step ``s`` of epoch ``e`` (no padding)."""
        return self.idx[e, c, s][self.weight[e, c, s]]


def sgd_loop(plan: BatchPlan, step: Callable[[int, int, int], None]) -> None:
    """Walk ``plan``: for each epoch ``e`` and step ``s``, ``step(e, s, k)``.

    ``k`` is the number of clients with a real batch at step ``s``: the first ``k`` of a
    plan sorted by steps (:meth:`BatchPlan.sorted`). A step no client has is skipped (a
    client with no data takes no step). ``step`` computes the gradient of each of those
    clients' objectives on its batch and updates their parameters.
    """
    active = plan.active
    for e in range(plan.idx.shape[0]):
        for s, k in enumerate(active):
            if k:
                step(e, s, k)
