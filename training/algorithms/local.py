"""Plain local training: every client trains alone, no market, no sharing."""

from __future__ import annotations

import torch

from ..server import Reports
from .base import Algorithm, RoundPlan, register

__all__ = ["Local"]


@register
class Local(Algorithm):
    """Each client continues from its own model with its data loss only."""

    name = "local"

    def server_step(self, reports: Reports, theta: torch.Tensor, round_: int) -> RoundPlan:
        """Return the clients' own models as their start points."""
        return RoundPlan.no_market(theta.clone())
