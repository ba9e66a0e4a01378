r"""FedAMP (Huang et al., AAAI 2021), heuristic variant: attentive message passing.

Round ``t``, following Algorithm 1 of the paper with the heuristic attention of its
Section 5 ("FedAMP with deep neural networks"):

1. **attentive message passing** (server, eq. (6)): for each client ``i`` the server
   builds its personalised cloud model

   .. math:: u_i = \xi_{ii}\, w_i + \sum_{j \ne i} \xi_{ij}\, w_j,

   with the self-attention :math:`\xi_{ii}` a fixed hyper-parameter (``self_weight``)
   and the others a softmax of scaled cosine similarities,

   .. math:: \xi_{ij} = (1 - \xi_{ii})
             \frac{e^{\sigma \cos(w_i, w_j)}}{\sum_{h \ne i} e^{\sigma \cos(w_i, w_h)}},

   so each row of :math:`\Xi` is non-negative and sums to 1;
2. **personalised update** (client, eq. (7)): client ``i`` minimises

   .. math:: L_i(w) + \frac{\lambda}{2\alpha_k}\|w - u_i\|^2

   by local SGD; here ``mu`` :math:`= \lambda / \alpha_k` (constant over rounds).

Readings of the paper and of the public code
--------------------------------------------
- *Start point*: the paper's eq. (7) is a proximal step and leaves the solver's initial
  point open. PFLlib (``clientamp.py``: only the centre ``client_u`` is overwritten by
  ``set_parameters``) and pFedGraph's ``fedamp.py`` (each client keeps its own
  ``local_models[k]``) both continue from the client's own previous model, so the start
  point is the client's own upload and the centre is :math:`u_i`.
- *Similarity*: pFedGraph's ``fedamp/utils.py`` takes the cosine of the models' moves
  from the common initial model, :math:`\cos(w_i - \theta^0, w_j - \theta^0)`, with
  :math:`\xi_{ii} = 0.3` and :math:`\sigma = 10`; those are the defaults here
  (``similarity = "update"``). Every model of a run starts at :math:`\theta^0`, so the
  cosine of the raw weights (``similarity = "weights"``, the paper's literal wording)
  stays close to 1 and makes the mixing almost uniform.
- *The proximal term carries gradient*: PFLlib builds it from ``.data`` tensors, so its
  gradient is zero and FedAMP trains exactly as Local (PFLlib issues #4 and #95); here
  it is the base class's differentiable :math:`\frac{\mu}{2}\|w - u_i\|^2` (squared, as
  eq. (7); PFLlib also drops the square).
- *No underflow*: PFLlib's exact variant, :math:`e^{-\|w_i - w_j\|^2/\sigma}/\sigma`,
  underflows to 0 for CNN-sized distances and its self-weight :math:`1 - \sum_j \xi_{ij}`
  can go negative. The heuristic variant computed as a softmax with the row maximum
  subtracted neither overflows nor underflows for any ``sigma``, and the self-weight is
  fixed in ``[0, 1]``.
- ``mu = 1`` is pFedGraph's ``lambda_1`` (with its lr 0.01 and momentum 0.9 the
  effective step is about our lr 0.1, so the pull per step is comparable). On the demo
  (one run, seed 0) it ends at mean test accuracy 0.807 against Local's 0.839;
  ``mu = 0.1`` gave 0.852. The default was not tuned on these test figures.

The sharing graph for the economic utility: ``i`` imports ``j`` when
:math:`\xi_{ij} > 0`, which a softmax makes every pair.

What is evaluated (``evaluates = "trained"``)
---------------------------------------------
The client's own model after local training: in pFedGraph's ``fedamp.py`` the model is
never replaced by :math:`u_i` (it only anchors the proximal term) and is scored after
``local_train_fedavg``; PFLlib's ``serveramp.py`` likewise scores the client's own model.

References
----------
Huang, Chu, Zhou, Wang, Liu, Pei, Zhang, "Personalized Cross-Silo Federated Learning on
Non-IID Data", AAAI 2021, Algorithm 1, eqs. (6)-(7) and Section 5 (heuristic attention).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from ..distance import cosine_matrix
from ..hyper import Param
from .base import Algorithm, ServerInput, ServerOutput, State, register

if TYPE_CHECKING:
    from mechanism import Settlement

    from ..profiles import Reports

__all__ = ["FedAMP", "attention_weights"]


def attention_weights(W: torch.Tensor, sigma: float, self_weight: float) -> torch.Tensor:
    r"""Return the (k, k) attention matrix :math:`\Xi` of the heuristic FedAMP.

    Row ``i`` is :math:`\xi_{ii} =` ``self_weight`` on the diagonal and
    :math:`(1 - \xi_{ii})\,\mathrm{softmax}_{j \ne i}(\sigma \cos(W_i, W_j))` elsewhere
    (the maximum subtracted before the exponential). A lone client gets weight 1.

    Parameters
    ----------
    W : torch.Tensor, (k, P)
        The vectors compared (the models, or their moves from :math:`\theta^0`).
    sigma : float
        Scale of the cosine similarity, > 0.
    self_weight : float
        The self-attention :math:`\xi_{ii}` in [0, 1].

    Examples
    --------
    >>> W = torch.tensor([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0]])
    >>> xi = attention_weights(W, sigma=10.0, self_weight=0.3)
    >>> torch.allclose(xi.sum(dim=1), torch.ones(3, dtype=torch.float64))
    True
    >>> round(float(xi[0, 1]), 4), round(float(xi[0, 2]), 4)
    (0.7, 0.0)
    """
    k = W.shape[0]
    if k == 1:
        return torch.ones((1, 1), dtype=torch.float64)
    logits = sigma * cosine_matrix(W)
    logits.fill_diagonal_(-torch.inf)
    off = torch.softmax(logits, dim=1)  # subtracts each row's maximum: no over/underflow to nan
    xi = (1.0 - self_weight) * off
    xi.fill_diagonal_(self_weight)
    return xi


@register
class FedAMP(Algorithm):
    """Each client is pulled towards its own attention-weighted mix of all models."""

    name = "fedamp"
    rank = 40
    summary = "Huang et al. 2021: attentive message passing (heuristic cosine attention)"
    hyper = {
        "mu": Param(1.0, lo=0.0, lo_open=True, doc="proximal weight lambda / alpha_k (eq. (7))"),
        "sigma": Param(10.0, lo=0.0, lo_open=True, hi=1e6, doc="scale of the cosine attention"),
        "self_weight": Param(0.3, lo=0.0, hi=1.0, doc="self-attention xi_ii"),
        "similarity": Param("update", choices=("update", "weights"),
                            doc="cosine of w - theta0 (pFedGraph) or of the raw weights"),
    }

    def max_prox(self, reports: Reports, theta0: torch.Tensor) -> float:
        """Return ``mu``, every client's proximal weight."""
        return float(self.hp["mu"])

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Return own uploads as start points and the attention mixes as proximal centres."""
        hp = self.hp
        W = inp.uploads
        compared = W - inp.theta0[None].to(W.dtype) if hp["similarity"] == "update" else W
        xi = attention_weights(compared, hp["sigma"], hp["self_weight"])
        centers = (xi @ W.to(torch.float64)).to(W.dtype)
        A = (xi.numpy() > 0).astype(np.int8)
        np.fill_diagonal(A, 0)
        out = ServerOutput(starts=W.clone(), centers=centers, prox=np.full(inp.k, hp["mu"]), A=A,
                           own_start=np.ones(inp.k), own_center=np.diag(xi.numpy()).copy())
        return out, state
