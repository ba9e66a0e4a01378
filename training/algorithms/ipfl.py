"""iPFL (Algorithm 1): market graph, payments, prox-centres, proximal local training."""

from __future__ import annotations

import torch

from ..server import Reports, ipfl_server_step
from .base import Algorithm, RoundPlan, register

__all__ = ["IPFL"]


@register
class IPFL(Algorithm):
    r"""The paper's method; the server step is :func:`training.server.ipfl_server_step`.

    Each client starts its local training at its prox-centre :math:`\bar\theta_i^t`
    (eq. (6)) and minimises eq. (7); starting there is our choice of initial point for
    the inner ``argmin``, which Algorithm 1 leaves open.
    """

    name = "ipfl"
    uses_market = True

    def server_step(self, reports: Reports, theta: torch.Tensor, round_: int) -> RoundPlan:
        """Run the market on the clients still in and return their plan and audit record."""
        cfg = self.cfg
        res = ipfl_server_step(reports, theta, lam=cfg.lam, eta=cfg.eta, max_mix=cfg.max_mix,
                               distance=cfg.distance, solver=cfg.solver)
        market = {
            "inputs": {"N": reports.N.tolist(), "c": reports.c.tolist(), "K": reports.K.tolist(),
                       "budget": reports.budget.tolist(), "d": res.d.tolist(), "lam": cfg.lam,
                       "solver": cfg.solver},
            "outputs": {"stays": res.stays.tolist(), "A": res.A.tolist(), "r": res.r.tolist(),
                        "p": res.p.tolist(), "U": res.U.tolist()},
        }
        return RoundPlan(centers=res.centers, prox=res.prox, stays=res.stays, A=res.A, r=res.r,
                         p=res.p, U=res.U, market=market,
                         extra={"eta": res.eta, "capped": res.capped})
