r"""The proximal term of a client's local objective, written once for every kernel.

Eq. (7) (iPFL), FedProx, Ditto's personal model and FedAMP all add to the data loss

.. math:: \frac{\mu}{2}\,\|\theta - c\|^2

for a centre :math:`c` and weight :math:`\mu` the server sends. The per-client loop
(:func:`training.client.local_sgd`, through :meth:`Algorithm.local_objective`), the
vmapped kernel (:meth:`Algorithm.vmap_objective`) and the stacked kernel of
:mod:`training.batched` (which writes the gradient out) all use these two functions, so
the term has one definition. Both work on one client (``theta`` (P,), ``mu`` a number
or 0-d tensor) or on a stack of clients (``theta`` (C, P), ``mu`` (C,)).

>>> theta, c = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])
>>> float(proximal_term(theta, c, 2.0)), proximal_grad(theta, c, 2.0).tolist()
(5.0, [2.0, 4.0])
"""

from __future__ import annotations

import torch

__all__ = ["proximal_grad", "proximal_term"]


def proximal_term(theta: torch.Tensor, center: torch.Tensor,
                  mu: float | torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\frac{\mu}{2}\|\theta - c\|^2`, per client when ``theta`` is stacked."""
    return 0.5 * mu * ((theta - center) ** 2).sum(dim=-1)


def proximal_grad(theta: torch.Tensor, center: torch.Tensor,
                  mu: float | torch.Tensor) -> torch.Tensor:
    r"""Return :math:`\mu(\theta - c)`, the term's gradient in ``theta`` (same shape)."""
    mu = torch.as_tensor(mu, dtype=theta.dtype, device=theta.device)
    return (mu.unsqueeze(-1) if mu.dim() else mu) * (theta - center)
