"""FedAvg (McMahan et al.): every client restarts from the data-weighted mean model."""

from __future__ import annotations

import torch

from ..server import Reports
from .base import Algorithm, RoundPlan, register

__all__ = ["FedAvg"]


@register
class FedAvg(Algorithm):
    r"""All clients start each round from :math:`\sum_i N_i\theta_i / \sum_i N_i`."""

    name = "fedavg"

    def server_step(self, reports: Reports, theta: torch.Tensor, round_: int) -> RoundPlan:
        """Return the N-weighted average as every client's start point."""
        w = torch.as_tensor(reports.N / reports.N.sum(), dtype=theta.dtype)
        mean = (w[:, None] * theta).sum(dim=0, keepdim=True)
        return RoundPlan.no_market(mean.expand_as(theta).clone())
