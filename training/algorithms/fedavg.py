r"""FedAvg (McMahan et al., AISTATS 2017): every client restarts from the data-weighted mean.

.. math:: w \leftarrow \sum_k \frac{N_k}{\sum_l N_l} w_k

with the reported :math:`N_k` (a server only knows reports). The sharing graph used for
the economic utility is complete: every client's model enters every other's.

What is evaluated (``evaluates = "aggregated"``)
------------------------------------------------
The aggregated global model, on each client's test split, as the references score it:
pFedGraph's ``fedavg.py`` (main loop, ``evaluate_global_model`` after aggregation) and
PFLlib's ``serveravg.py`` (``send_models`` -> ``evaluate`` -> ``train``). Round ``t``
scores :math:`w^t`, the model the server sends in round ``t`` (aggregated from round
``t - 1``'s uploads), before the client's local training, as PFLlib does; pFedGraph
scores the same model at the end of round ``t - 1``. The model after local training is
never scored: that would give FedAvg a fine-tuning step it does not have. Read at
pFedGraph 4f5f17c, PFLlib d832e76.

References
----------
McMahan, Moore, Ramage, Hampson, Agüera y Arcas, "Communication-Efficient Learning of
Deep Networks from Decentralized Data", AISTATS 2017, Algorithm 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import NDArray

from .base import Algorithm, ServerInput, ServerOutput, State, all_pairs, register

if TYPE_CHECKING:
    from mechanism import Settlement

__all__ = ["FedAvg", "weighted_mean"]


def weighted_mean(inp: ServerInput) -> tuple[torch.Tensor, NDArray[np.float64]]:
    r"""Return the (k, P) tensor whose every row is the N-weighted mean, and the weights.

    The weights :math:`N_k / \sum_l N_l` are also each client's weight of its own
    upload in its start point (:attr:`ServerOutput.own_start`).
    """
    w_np = inp.reports.N / inp.reports.N.sum()
    w = torch.as_tensor(w_np, dtype=inp.uploads.dtype)
    mean = (w[:, None] * inp.uploads).sum(dim=0, keepdim=True)
    return mean.expand_as(inp.uploads).clone(), w_np


@register
class FedAvg(Algorithm):
    """All clients start each round from the N-weighted average model."""

    name = "fedavg"
    rank = 10
    summary = "McMahan et al. 2017: data-weighted model averaging"
    evaluates = "aggregated"
    one_global_model = True

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Return the N-weighted average as every client's start point."""
        mean, w = weighted_mean(inp)
        return ServerOutput.plain(mean, all_pairs(inp.k), own=w), state
