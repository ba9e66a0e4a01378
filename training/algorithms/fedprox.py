r"""FedProx (Li et al., MLSys 2020): FedAvg plus a proximal term in every client's loss.

Client ``k`` minimises :math:`L_k(w) + \frac{\mu}{2}\|w - w^t\|^2` starting from the
global model :math:`w^t` (the N-weighted average, as FedAvg); ``mu = 0.01`` as in
pFedGraph's experiments. ``mu = 0`` would be FedAvg (PFLlib's default), so ``mu`` must
be positive here.

What is evaluated (``evaluates = "aggregated"``)
------------------------------------------------
As FedAvg: the aggregated global model the server sends, before local training
(pFedGraph's ``fedprox.py``, PFLlib's ``serverprox.py``); see
:mod:`training.algorithms.fedavg`.

References
----------
Li, Sahu, Zaheer, Sanjabi, Talwalkar, Smith, "Federated Optimization in Heterogeneous
Networks", MLSys 2020, Algorithm 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hyper import Param
from .base import Algorithm, ServerInput, ServerOutput, State, all_pairs, register
from .fedavg import weighted_mean

if TYPE_CHECKING:
    from mechanism import Settlement

__all__ = ["FedProx"]


@register
class FedProx(Algorithm):
    r"""FedAvg aggregation; local objective with :math:`\mu/2\,\|w - w^t\|^2`."""

    name = "fedprox"
    rank = 20
    summary = "Li et al. 2020: FedAvg with a proximal term"
    evaluates = "aggregated"
    one_global_model = True
    hyper = {"mu": Param(0.01, lo=0.0, lo_open=True, doc="proximal weight")}

    def max_prox(self, reports, theta0) -> float:  # noqa: ANN001, D102
        return float(self.hp["mu"])

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Return the N-weighted average as start point and proximal centre."""
        mean, w = weighted_mean(inp)
        return ServerOutput.plain(mean, all_pairs(inp.k), prox=self.hp["mu"], own=w), state
