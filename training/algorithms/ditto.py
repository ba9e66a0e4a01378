r"""Ditto (Li et al., ICML 2021): a FedAvg global model plus a proximal personal model.

Each client keeps two models. Following Algorithm 1 of the paper, in round ``t``:

1. the server sends the global model :math:`w^t`, the ``N``-weighted mean of the
   uploaded global models (FedAvg's aggregation, line 10 of Algorithm 1, with the
   reported :math:`N_k`);
2. client ``k`` updates its **global** copy by plain local SGD from :math:`w^t` on
   :math:`L_k(w)` (lines 5-6, the ``UPDATE_GLOBAL`` solver) and uploads it;
3. client ``k`` updates its **personal** model :math:`v_k`, starting from its own
   previous :math:`v_k`, by local SGD on eq. (2)'s inner problem

   .. math:: h_k(v; w^t) = L_k(v) + \frac{\lambda}{2}\|v - w^t\|^2

   (lines 7-8), where :math:`w^t` is the global model received *this* round
   (the message's start point).

The personal model is the one evaluated (the paper reports personal accuracy, as does
pFedGraph's ``ditto.py``); it never leaves the client. The sharing graph used for the
economic utility is complete: every upload enters every client's :math:`w^t`.

Readings and defaults
---------------------
- ``lam = 1`` as in pFedGraph's experiments (the paper's grid is 0.05 .. 2); ``lam = 0``
  would make the personal model plain local training (PFLlib's default ``mu = 0``), so
  it must be positive.
- The two local problems draw their mini-batches from different generators
  (``purpose`` 0 for the global model, 1 for the personal one), so neither is a copy
  of the other's trajectory.
- The server sends ``prox = lam`` in the message; round 0 (the transport's plain
  round, centre :math:`\theta^0`, ``prox = 0``) trains the personal model without the
  proximal term.
- Only the shared coordinates (config ``share``) are aggregated and pulled towards
  :math:`w^t`; the rest of each model stays local.

What is evaluated (``evaluates = "personal"``)
----------------------------------------------
The personal model after this round's local training, as pFedGraph's ``ditto.py``
(``local_train_fedavg`` scores ``vnet`` after its steps). PFLlib's ``serverditto.py``
scores both the global and the personal model before training and mixes them in one
list; we follow pFedGraph.

References
----------
Li, Hu, Beirami, Smith, "Ditto: Fair and Robust Federated Learning Through
Personalization", ICML 2021, Algorithm 1 and eq. (2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..hyper import Param
from .base import (
    Algorithm,
    ClientOutput,
    Message,
    ServerInput,
    ServerOutput,
    State,
    all_pairs,
    register,
)
from .fedavg import weighted_mean

if TYPE_CHECKING:
    from mechanism import Settlement

    from ..client import ClientContext, LocalData
    from ..profiles import Reports

__all__ = ["Ditto"]

#: generator purposes of the two local problems (distinct draws of mini-batches)
GLOBAL, PERSONAL = 0, 1


@register
class Ditto(Algorithm):
    r"""FedAvg global model; personal model on :math:`L_k(v) + \lambda/2\,\|v - w^t\|^2`."""

    name = "ditto"
    rank = 30
    summary = "Li et al. 2021: FedAvg global model plus proximal personal models"
    evaluates = "personal"
    hyper = {"lam": Param(1.0, lo=0.0, lo_open=True,
                          doc="weight of the personal model's pull to the global model (eq. (2))")}

    def max_prox(self, reports: Reports, theta0: torch.Tensor) -> float:
        """Return ``lam``, the personal problem's proximal weight."""
        return float(self.hp["lam"])

    def init_client_state(self, i: int, params0: torch.Tensor, buffers0: torch.Tensor) -> State:
        """Return the global copy (``params``, ``buffers``) and the personal model, all theta0."""
        return {"params": params0.clone(), "buffers": buffers0.clone(),
                "personal": params0.clone(), "personal_buffers": buffers0.clone()}

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Return the N-weighted mean of the uploaded globals as start and centre; prox lam."""
        mean, w = weighted_mean(inp)
        return ServerOutput.plain(mean, all_pairs(inp.k), prox=self.hp["lam"], own=w), state

    def evaluated_model(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the personal model, the one Ditto evaluates."""
        return state["personal"], state["personal_buffers"]

    def client_step(self, msg: Message, state: State, data: LocalData,
                    ctx: ClientContext) -> ClientOutput:
        r"""Update the global copy from ``msg.start`` and the personal model towards it.

        The global copy trains on the data loss only (upload); the personal model
        trains from its previous value on :math:`L_k(v) + \frac{\lambda}{2}\|v - w^t\|^2`
        with :math:`w^t` = ``msg.start`` and :math:`\lambda` = ``msg.prox`` (evaluated).
        """
        from ..client import local_sgd

        params, buffers = local_sgd(ctx, data, state, msg.start, msg.start, 0.0,
                                    self.local_objective, purpose=GLOBAL)
        personal_state = {**state, "buffers": state["personal_buffers"]}
        personal, p_buffers = local_sgd(ctx, data, personal_state,
                                        state["personal"][ctx.shared], msg.start, msg.prox,
                                        self.local_objective, params=state["personal"],
                                        purpose=PERSONAL)
        new = {"params": params, "buffers": buffers, "personal": personal,
               "personal_buffers": p_buffers}
        return ClientOutput(upload=params[ctx.shared], evaluated=personal, buffers=p_buffers,
                            state=new)
