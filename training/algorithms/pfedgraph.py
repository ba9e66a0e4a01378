r"""pFedGraph (Ye et al., ICML 2023): a collaboration graph inferred from model similarity.

Round ``t`` (server step, then client step):

1. **Model difference** (Sec. 3.2): with :math:`\Delta_j = w_j - w^0` (upload minus the
   common initial model), :math:`d_{ij} = -\cos(\Delta_i, \Delta_j)`, diagonal included.
2. **Graph inference** (Sec. 3.2, the per-client QP): for every client ``i``

   .. math:: a_i = \arg\min_{a \in \Delta^{k-1}} \alpha \|a - p\|^2 + \sum_j a_j d_{ij},
             \qquad p_j = N_j / \sum_l N_l

   with reported :math:`N` and :math:`\alpha = 0.8`. Expanding the square,
   :math:`\alpha\|a - p\|^2 + d_i^\top a = \alpha\|a - (p - d_i / (2\alpha))\|^2 +`
   const, so :math:`a_i` is the Euclidean projection of :math:`p - d_i/(2\alpha)` onto
   the probability simplex: :func:`simplex_projection`, sort-based, all rows at once
   (Held, Wolfe, Crowder 1974; Duchi et al., ICML 2008, Fig. 1), instead of one
   generic QP per client.
3. **Graph-based aggregation** (Sec. 3.3): client ``i``'s aggregate
   :math:`\bar w_i = \sum_j a_{ij} w_j` is its start point.
4. **Local training** (Sec. 3.3): client ``i`` minimises
   :math:`L_i(w) - \lambda \cos(w, \bar w_i)` from :math:`\bar w_i`, ``lam = 0.01``: the
   similarity term *pulls* the model towards its aggregate (:meth:`PFedGraph.local_objective`).

Readings of the public code (MediaBrain-SJTU/pFedGraph, ``pytorch/pfedgraph_cosine.py``
and ``pytorch/pfedgraph_cosine/utils.py``, read at commit 4f5f17c)
-----------------------------------------------------------------------------------
- ``cal_model_cosine_difference``: :math:`d_{ij} = -\cos(w_i - w^0, w_j - w^0)` over all
  parameters, where :math:`w^0` (``global_parameters``) is the initial model, never
  updated; values below ``-0.9`` are set to ``-1.0`` (so the diagonal is ``-1``). We do
  the same (:data:`CLIP`).
- ``optimizing_graph_matrix_neighbor``: cvxpy minimises
  :math:`x^\top(\alpha I)x + (d_i - 2\alpha p)^\top x` subject to :math:`x \ge 0`,
  :math:`\mathbf 1^\top x = 1`, i.e. the objective above; ``p`` are the data fractions of
  the round's participants; ``--alpha 0.8``, ``--lam 0.01`` are the defaults.
- The local regulariser is ``lam * dot(c_i, w) / ||w||`` with
  :math:`c_i = \sum_j a_{ij} w_j / \|w_j\|`, i.e. :math:`+\lambda \sum_j a_{ij}\cos(w, w_j)`,
  and it is *minimised*: the sign pushes each model away from its neighbours (pFedGraph
  issue #1). We use the paper's direction with the aggregate itself as the reference,
  :math:`-\lambda\cos(w, \bar w_i)`; a test checks that a gradient step on the term
  alone increases :math:`\cos(w, \bar w_i)`.
- The public code trains a fixed number of iterations with momentum 0.9; here local
  training is the package's common SGD (``epochs``), as for every algorithm.

Sharing graph for the economic utility: :math:`A_{ij} = 1` where :math:`a_{ij} > 10^{-12}`,
:math:`j \ne i` (the models that entered client ``i``'s aggregate).

What is evaluated (``evaluates = "trained"``)
---------------------------------------------
The model after local training. The public code scores twice per round, the received
aggregate before training (``test1``) and the model after it (``test2``), and keeps the
test accuracy at the best validation accuracy over both; we score once, after training,
like every other method here, so its best-validation selection has one candidate per
round, not two (a departure that can only lower pFedGraph's best-validation number).

References
----------
Ye, Ni, Wu, Wang, Chen, "Personalized Federated Learning with Inferred Collaboration
Graphs", ICML 2023 (PMLR 202).
Duchi, Shalev-Shwartz, Singer, Chandra, "Efficient Projections onto the l1-Ball for
Learning in High Dimensions", ICML 2008.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from ..hyper import Param
from .base import Algorithm, ServerInput, ServerOutput, State, register

if TYPE_CHECKING:
    from mechanism import Settlement

__all__ = ["CLIP", "PFedGraph", "cosine_difference", "graph_weights", "simplex_projection"]

#: the public code's clipping: differences below ``-CLIP`` become ``-1``
CLIP = 0.9
#: an edge of the sharing graph: a weight above this
EDGE_TOL = 1e-12


def simplex_projection(V: ArrayLike) -> NDArray[np.float64]:
    r"""Project every row of ``V`` onto the probability simplex (Euclidean projection).

    Row ``v`` maps to :math:`x = \max(v - \tau, 0)` with :math:`\tau` chosen so that
    :math:`\sum_j x_j = 1`: sort :math:`u = v` descending, let
    :math:`\rho = \max\{j : u_j - (\sum_{r \le j} u_r - 1)/j > 0\}`, then
    :math:`\tau = (\sum_{r \le \rho} u_r - 1)/\rho` (Duchi et al. 2008, Fig. 1).
    :math:`O(m \log m)` per row.

    Parameters
    ----------
    V : array_like, (n, m) or (m,)
        The points to project, one per row.

    Returns
    -------
    ndarray, same shape as ``V``
        Non-negative rows summing to one.

    Examples
    --------
    >>> simplex_projection([[0.5, 0.5], [2.0, 0.0], [0.3, 0.1]]).round(6).tolist()
    [[0.5, 0.5], [1.0, 0.0], [0.6, 0.4]]
    """
    V = np.asarray(V, dtype=np.float64)
    if V.ndim not in (1, 2) or V.shape[-1] == 0:
        raise ValueError(f"simplex_projection: V of shape {V.shape} must be (n, m) or (m,), m >= 1")
    if not np.isfinite(V).all():
        raise ValueError("simplex_projection: V has non-finite entries")
    rows = np.atleast_2d(V)
    m = rows.shape[1]
    u = -np.sort(-rows, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    j = np.arange(1, m + 1)
    rho = (u - css / j > 0).sum(axis=1)  # the condition holds exactly for j <= rho
    tau = css[np.arange(rows.shape[0]), rho - 1] / rho
    X = np.maximum(rows - tau[:, None], 0.0)
    return X.reshape(V.shape)


def cosine_difference(uploads: torch.Tensor, theta0: torch.Tensor,
                      clip: float = CLIP) -> NDArray[np.float64]:
    r"""Return :math:`d_{ij} = -\cos(w_i - w^0, w_j - w^0)`, values below ``-clip`` set to -1.

    A client whose update is zero has cosine 0 with every model (its row and column of
    ``d`` are 0 off the diagonal, -1 on it).
    """
    dw = (uploads.to(torch.float64) - theta0.to(torch.float64)[None])
    norms = dw.norm(dim=1, keepdim=True)
    unit = dw / norms.clamp_min(1e-300)
    d = -(unit @ unit.T).numpy()
    np.fill_diagonal(d, -1.0)
    d[d < -clip] = -1.0
    return d


def graph_weights(d: NDArray[np.float64], N: ArrayLike, alpha: float) -> NDArray[np.float64]:
    r"""Return the (k, k) aggregation weights :math:`a_i`, row by row, in closed form.

    Each row solves :math:`\min_{a \in \Delta} \alpha\|a - p\|^2 + d_i^\top a` with
    :math:`p = N / \sum N`: the projection of :math:`p - d_i / (2\alpha)` onto the simplex.
    """
    N = np.asarray(N, dtype=np.float64)
    p = N / N.sum()
    return simplex_projection(p[None, :] - np.asarray(d) / (2.0 * alpha))


@register
class PFedGraph(Algorithm):
    """Per-client aggregation over an inferred graph; local loss pulled towards the aggregate."""

    name = "pfedgraph"
    rank = 70
    summary = "Ye et al. 2023: aggregation weights from a similarity graph (closed-form QP)"
    hyper = {
        "alpha": Param(0.8, lo=0.0, lo_open=True, doc="weight of ||a - p||^2 in the graph QP"),
        "lam": Param(0.01, lo=0.0, doc="weight of the cosine-similarity term of local training"),
    }

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Infer the graph from the uploads, aggregate per client, send lam as the term's weight."""
        d = cosine_difference(inp.uploads, inp.theta0)
        a = graph_weights(d, inp.reports.N, float(self.hp["alpha"]))
        W = torch.as_tensor(a, dtype=inp.uploads.dtype)
        agg = W @ inp.uploads
        A = (a > EDGE_TOL).astype(np.int8)
        np.fill_diagonal(A, 0)
        lam = np.full(inp.k, float(self.hp["lam"]))
        out = ServerOutput(starts=agg, centers=agg.clone(), prox=lam, A=A,
                           own_start=np.diag(a).copy(), own_center=np.diag(a).copy())
        out.columns["self_weight"] = np.diag(a).copy()
        return out, state

    def local_objective(self, loss: torch.Tensor, flat: torch.Tensor, center: torch.Tensor,
                        prox: float) -> torch.Tensor:
        r"""Return :math:`L - \lambda \cos(w, \bar w_i)` (``prox`` carries :math:`\lambda`).

        The minus sign makes SGD increase the cosine: the model is pulled towards its
        aggregate (the public code's ``+`` pushes it away, pFedGraph issue #1).
        """
        if prox == 0.0:
            return loss
        cos = torch.dot(flat, center) / (flat.norm() * center.norm()).clamp_min(1e-12)
        return loss - prox * cos

    def vmap_objective(self, loss: torch.Tensor, flat: torch.Tensor, center: torch.Tensor,
                       prox: torch.Tensor) -> torch.Tensor:
        """Return :meth:`local_objective` with a tensor ``prox`` (0 leaves the loss unchanged)."""
        cos = torch.dot(flat, center) / (flat.norm() * center.norm()).clamp_min(1e-12)
        return loss - prox * cos
