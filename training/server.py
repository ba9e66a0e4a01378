r"""The iPFL server step of Algorithm 1 as one pure function.

:func:`ipfl_server_step` takes the clients' reports :math:`(N_i, c_i, K_i)`, their
per-round budgets and the stacked flat models ``theta`` (m, P) and returns the graph
(Algorithm 2 or another solver), the payments (eq. (10)), the utilities (eq. (1)),
the prox-centres (eq. (6)) and the proximal weights of eq. (7). It reads no file and
touches no client object, so any transport (this package's loop, a Flower app) can call it.

Clients whose net bill :math:`p_i` exceeds their budget quit (Algorithm 1's ``else``
branch); the market is then recomputed without them until every remaining client
accepts its bill, so the settled payments always sum to zero.

The prox-centre and its cap (eq. (6))
-------------------------------------
For squared L2, eq. (6) reads, with :math:`W_{ij} = a_{ij} N_j / N_i` and
:math:`S_i = \sum_j W_{ij}`,

.. math:: \bar\theta_i = (1 - 2\eta S_i)\,\theta_i + 2\eta \sum_j W_{ij}\theta_j,

a convex combination only while :math:`2\eta S_i \le 1`; a client importing several
large peers would otherwise be sent an extrapolated model and its accuracy collapses.
We **cap the step per client**: :math:`\eta_i = \min(\eta, \text{max\_mix}/(2 S_i))`,
so at most the fraction ``max_mix`` (default 0.8) of the centre comes from imported
models and the rest stays the client's own, and emit a :class:`ProxCapWarning` naming
the capped clients. The step actually used is returned in ``eta``. The convexity
guarantee is for the two squared-L2 distances; for the cosine distance the same cap
bounds the step, but the centre is a gradient step on the sphere's tangent, not a
mixture of models.

The unit of :math:`\eta`. With the size-normalised distance
:math:`\|\theta_i - \theta_j\|^2 / P` the gradient is :math:`1/P` of the plain one,
so a literal reading of eq. (6) with :math:`\eta = O(1)` would leave
:math:`\bar\theta_i \approx \theta_i` for any real model. We take the gradient step in
the geometry of the distance itself (a natural-gradient reading): the step is divided by
the distance's metric scale :math:`s_i` (:math:`1/P`, :math:`1`, or
:math:`1/\|\theta_i\|^2` for cosine; :meth:`training.distance.Distance.metric`), so
:math:`\eta` is dimensionless: :math:`2\eta S_i` is the share moved to the imports for
both squared-L2 distances. Consistently, the proximal term of eq. (7) is measured in
the same geometry: :math:`\frac{\lambda}{2\eta_i} s_i \|\theta - \bar\theta_i\|^2`,
whose gradient coefficient ``prox[i]`` :math:`= \lambda s_i / \eta_i` is returned.

References
----------
Zhang et al., "Incentivizing Inclusive Contributions in Model Sharing Markets",
arXiv:2505.02462, Algorithm 1, eqs. (1), (6), (7), (10).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from mechanism import Market, payments, solve_graph, utilities

from .distance import get_distance

__all__ = [
    "ProxCapWarning", "Reports", "ServerResult", "ipfl_server_step", "prox_centers"]


@dataclass(frozen=True)
class Reports:
    """What the clients reported in round 0 (Algorithm 1) plus their budgets.

    Attributes
    ----------
    N, c, K : ndarray, shape (m,)
        Data size, sharing cost (``inf`` = pure buyer), data eagerness.
    budget : ndarray, shape (m,)
        Largest net payment :math:`p_i` a client accepts in one round (``inf`` = unlimited).
    """

    N: NDArray[np.float64]
    c: NDArray[np.float64]
    K: NDArray[np.float64]
    budget: NDArray[np.float64]

    @classmethod
    def make(cls, N: ArrayLike, c: ArrayLike, K: ArrayLike,
             budget: ArrayLike | None = None) -> Reports:
        """Build from array-likes; ``budget`` defaults to unlimited."""
        N = np.asarray(N, dtype=float)
        b = np.full(N.shape, math.inf) if budget is None else np.asarray(budget, dtype=float)
        return cls(N=N, c=np.asarray(c, dtype=float), K=np.asarray(K, dtype=float), budget=b)

    def take(self, idx: NDArray[np.intp]) -> Reports:
        """Return the reports of the clients ``idx`` only."""
        return Reports(N=self.N[idx], c=self.c[idx], K=self.K[idx], budget=self.budget[idx])


@dataclass(frozen=True)
class ServerResult:
    r"""Everything one iPFL server step decides (arrays over the m clients passed in).

    Attributes
    ----------
    stays : ndarray of bool, (m,)
        False for clients that refused their bill and quit this round.
    d : ndarray (m, m)
        Model distances that entered the market.
    A : ndarray int8 (m, m)
        Graph among the clients that stay (rows/columns of quitters are zero).
    r, p, U : ndarray
        Remittances (m, m), net payments (m,), utilities (m,) (eqs. (10), (1)); zero for quitters.
    centers : torch.Tensor (m, P)
        Prox-centres of eq. (6) (a quitter's is its own model).
    eta : ndarray (m,)
        Step used per client after the cap.
    prox : ndarray (m,)
        Gradient coefficient of eq. (7)'s proximal term, :math:`\lambda s_i / \eta_i`.
    capped : ndarray of bool (m,)
        Clients whose step was capped.
    """

    stays: NDArray[np.bool_]
    d: NDArray[np.float64]
    A: NDArray[np.int8]
    r: NDArray[np.float64]
    p: NDArray[np.float64]
    U: NDArray[np.float64]
    centers: torch.Tensor
    eta: NDArray[np.float64]
    prox: NDArray[np.float64]
    capped: NDArray[np.bool_]


class ProxCapWarning(RuntimeWarning):
    """Eq. (6)'s step was capped for some clients so the prox-centre stays a mixture."""


def prox_centers(theta: torch.Tensor, A: NDArray, N: NDArray, *, eta: float,
                 max_mix: float = 0.8, distance: str = "sqeuclidean_mean",
                 ) -> tuple[torch.Tensor, NDArray[np.float64], NDArray[np.bool_]]:
    r"""Return eq. (6)'s prox-centres, the capped steps and which clients were capped.

    .. math:: \bar\theta_i = \theta_i - \frac{\eta_i}{s_i}
              \sum_j a_{ij}\frac{N_j}{N_i}\nabla_{\theta_i} d(\theta_i, \theta_j),
              \qquad \eta_i = \min(\eta, \text{max\_mix} / (2 S_i)).

    Examples
    --------
    >>> th = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> c, eta, capped = prox_centers(th, np.array([[0, 1], [0, 0]]), np.array([1.0, 1.0]),
    ...                               eta=0.25, distance="sqeuclidean")
    >>> c[:, 0].tolist(), capped.tolist()
    ([0.5, 1.0], [False, False])
    """
    dist = get_distance(distance)
    N = np.asarray(N, dtype=float)
    W_np = np.asarray(A, dtype=float) * (N[None, :] / N[:, None])
    S = W_np.sum(axis=1)
    with np.errstate(divide="ignore"):
        limit = np.where(S > 0, max_mix / (2.0 * S), math.inf)
    capped = eta > limit
    eta_i = np.minimum(eta, limit)
    if capped.any():
        warnings.warn(
            f"eq. (6): 2*eta*S_i > max_mix = {max_mix} for clients "
            f"{np.flatnonzero(capped).tolist()}; step capped to keep the prox-centre "
            "a convex combination",
            ProxCapWarning, stacklevel=2,
        )
    W = torch.as_tensor(W_np, dtype=theta.dtype)
    eta_t = torch.as_tensor(eta_i, dtype=theta.dtype)
    if hasattr(dist, "mixing"):  # squared L2: one (m, m) @ (m, P) product
        return dist.mixing(W, eta_t) @ theta, eta_i, capped
    grad = dist.weighted_grad(theta, W)
    return theta - (eta_t / dist.metric(theta))[:, None] * grad, eta_i, capped


def ipfl_server_step(reports: Reports, theta: torch.Tensor, *, lam: float, eta: float,
                     max_mix: float = 0.8, distance: str = "sqeuclidean_mean",
                     solver: str = "paper") -> ServerResult:
    r"""Run one server round of Algorithm 1 on ``m`` clients' reports and models.

    Parameters
    ----------
    reports : Reports
        Round-0 reports and budgets of the ``m`` clients passed in.
    theta : torch.Tensor, shape (m, P)
        Flat trainable parameters uploaded this round (any float dtype; computed in float64).
    lam, eta, max_mix, distance, solver
        :math:`\lambda` of eq. (4); the step of eq. (6) and its cap; the distance name;
        the graph solver of :func:`mechanism.solve_graph` (``"paper"``, ``"skip"``, ``"exact"``).

    Returns
    -------
    ServerResult
    """
    m = theta.shape[0]
    th = theta.detach().to(torch.float64)
    d = get_distance(distance).pairwise(th).numpy()
    stays = np.ones(m, dtype=bool)
    A = np.zeros((m, m), dtype=np.int8)
    r, p, U = np.zeros((m, m)), np.zeros(m), np.zeros(m)
    for _ in range(m):
        idx = np.flatnonzero(stays)
        A[:], r[:], p[:], U[:] = 0, 0.0, 0.0, 0.0
        if len(idx) < 2:
            break
        mk = Market(N=reports.N[idx], c=reports.c[idx], K=reports.K[idx],
                    d=d[np.ix_(idx, idx)], lam=lam)
        A_sub = solve_graph(mk, solver)
        pay = payments(mk, A_sub)
        A[np.ix_(idx, idx)] = A_sub
        r[np.ix_(idx, idx)] = pay.r
        p[idx] = pay.p
        U[idx] = utilities(mk, A_sub)
        refuse = pay.p > reports.budget[idx]
        if not refuse.any():
            break
        stays[idx[refuse]] = False
    centers, eta_i, capped = prox_centers(th, A, reports.N, eta=eta, max_mix=max_mix,
                                          distance=distance)
    s = get_distance(distance).metric(th).numpy()
    with np.errstate(divide="ignore"):
        prox = np.where(eta_i > 0, lam * s / eta_i, 0.0)
    return ServerResult(stays=stays, d=d, A=A, r=r, p=p, U=U, centers=centers.to(theta.dtype),
                        eta=eta_i, prox=prox, capped=capped)
