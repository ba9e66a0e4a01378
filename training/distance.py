r"""Model distances :math:`d(\theta_i, \theta_j)` for all clients at once, with gradients.

All functions take the stacked flat parameters ``theta`` of shape (m, P) and work in
one batched matrix computation (a Gram matrix), never a Python loop over pairs.

* ``sqeuclidean_mean``: :math:`\|\theta_i - \theta_j\|^2 / P` (default; independent
  of the model size, so ``lam`` keeps its meaning across models);
* ``sqeuclidean``: :math:`\|\theta_i - \theta_j\|^2`;
* ``cosine``: :math:`1 - \langle\theta_i, \theta_j\rangle / (\|\theta_i\|\|\theta_j\|)`.

:meth:`Distance.weighted_grad` returns, for weights :math:`W_{ij} = a_{ij} N_j / N_i`,
the sum :math:`\sum_j W_{ij} \nabla_{\theta_i} d(\theta_i, \theta_j)` used by the
prox-centre of eq. (6). :meth:`Distance.metric` gives the per-client scale
:math:`s_i` of the geometry the distance lives in (:math:`1/P`, :math:`1`,
:math:`1/\|\theta_i\|^2`); :mod:`training.server` explains how it fixes the unit of
:math:`\eta`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

__all__ = ["DISTANCES", "CosineDistance", "Distance", "SqEuclidean", "SqEuclideanMean",
           "cosine_matrix", "get_distance"]

_EPS = 1e-12


class Distance(ABC):
    """A differentiable model distance evaluated for all pairs in one batched op."""

    name: ClassVar[str]

    @abstractmethod
    def pairwise(self, theta: torch.Tensor) -> torch.Tensor:
        r"""Return the (m, m) matrix :math:`d(\theta_i, \theta_j)`, zero diagonal, >= 0."""

    @abstractmethod
    def weighted_grad(self, theta: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        r"""Return (m, P), row i: :math:`\sum_j W_{ij} \nabla_{\theta_i} d(\theta_i,\theta_j)`."""

    @abstractmethod
    def metric(self, theta: torch.Tensor) -> torch.Tensor:
        r"""Return (m,) scales :math:`s_i`, :math:`d \approx s_i\|\Delta\|^2` near ``theta_i``."""


def cosine_matrix(X: torch.Tensor) -> torch.Tensor:
    r"""Return the rows' cosines :math:`\langle x_i, x_j\rangle / (\|x_i\| \|x_j\|)`, float64.

    A zero row has cosine 0 with every row (its norm is clamped to ``_EPS`` = 1e-12). Used by the
    baselines that compare models or updates by angle (CFL's bi-partition, FedAMP's
    attention).
    """
    X = X.to(torch.float64)
    norms = X.norm(dim=1).clamp_min(_EPS)
    return (X @ X.T) / (norms[:, None] * norms[None, :])


def _sq_pairwise(theta: torch.Tensor) -> torch.Tensor:
    sq = (theta * theta).sum(dim=1)
    d = sq[:, None] + sq[None, :] - 2.0 * (theta @ theta.T)
    d = d.clamp_min(0.0)
    d.fill_diagonal_(0.0)
    return d


class SqEuclidean(Distance):
    r""":math:`\|\theta_i - \theta_j\|^2`; gradient :math:`2(\theta_i - \theta_j)`."""

    name = "sqeuclidean"
    scale_by_p: ClassVar[bool] = False

    def _scale(self, theta: torch.Tensor) -> float:
        return 1.0 / theta.shape[1] if self.scale_by_p else 1.0

    def pairwise(self, theta: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return _sq_pairwise(theta) * self._scale(theta)

    def weighted_grad(self, theta: torch.Tensor, W: torch.Tensor) -> torch.Tensor:  # noqa: D102
        S = W.sum(dim=1, keepdim=True)
        return 2.0 * self._scale(theta) * (S * theta - W @ theta)

    def mixing(self, W: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        r"""Return :math:`M` with :math:`\theta - (\eta_i/s_i)\,\text{grad}_i = (M\theta)_i`.

        For squared L2 the metric-scaled step of eq. (6) is linear in ``theta``:
        :math:`M = I - 2\,\mathrm{diag}(\eta_i S_i) + 2\,\mathrm{diag}(\eta_i) W`, so the
        prox-centres of all clients are one (m, m) x (m, P) product.
        """
        S = W.sum(dim=1)
        M = 2.0 * eta[:, None] * W
        return M + torch.diag(1.0 - 2.0 * eta * S)

    def metric(self, theta: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.full((theta.shape[0],), self._scale(theta), dtype=theta.dtype)


class SqEuclideanMean(SqEuclidean):
    r""":math:`\|\theta_i - \theta_j\|^2 / P`; gradient :math:`2(\theta_i - \theta_j)/P`."""

    name = "sqeuclidean_mean"
    scale_by_p = True


class CosineDistance(Distance):
    r""":math:`1 - \cos(\theta_i, \theta_j)`.

    Gradient: :math:`-(u_j - \cos_{ij} u_i)/\|\theta_i\|` with :math:`u = \theta/\|\theta\|`.
    """

    name = "cosine"

    def pairwise(self, theta: torch.Tensor) -> torch.Tensor:  # noqa: D102
        u = theta / theta.norm(dim=1, keepdim=True).clamp_min(_EPS)
        d = (1.0 - u @ u.T).clamp_min(0.0)
        d.fill_diagonal_(0.0)
        return d

    def weighted_grad(self, theta: torch.Tensor, W: torch.Tensor) -> torch.Tensor:  # noqa: D102
        norm = theta.norm(dim=1, keepdim=True).clamp_min(_EPS)
        u = theta / norm
        cos = u @ u.T
        return -((W @ u) - (W * cos).sum(dim=1, keepdim=True) * u) / norm

    def metric(self, theta: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return 1.0 / (theta * theta).sum(dim=1).clamp_min(_EPS)


#: distance name -> class
DISTANCES: dict[str, type[Distance]] = {
    cls.name: cls for cls in (SqEuclideanMean, SqEuclidean, CosineDistance)
}


def get_distance(name: str) -> Distance:
    """Return a distance by name (a key of :data:`DISTANCES`)."""
    if name not in DISTANCES:
        raise ValueError(f"distance = {name!r} is not one of {sorted(DISTANCES)}")
    return DISTANCES[name]()
