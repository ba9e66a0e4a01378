r"""The iPFL server side of Algorithm 1 as pure functions of reports and uploads.

:func:`ipfl_market` measures the model distances and builds the round's market; the
session settles it (:func:`mechanism.settle`: Algorithm 2, eq. (10), quits,
utilities); :func:`ipfl_messages` computes each client's prox-centre (eq. (6)) and
proximal weight (eq. (7)) for the settled graph. They read no file and touch no
client object, so any transport can call them; :func:`ipfl_server_step` chains the
three by hand.

Our reading of eqs. (6)-(7): a linearised proximal step
-------------------------------------------------------
Eq. (5) asks client ``i`` to minimise :math:`L_i(\theta) + \lambda R_i(\theta)` with
:math:`R_i(\theta) = \sum_j W_{ij} d(\theta, \theta_j)`, :math:`W_{ij} = a_{ij} N_j/N_i`.
Linearising :math:`R_i` at :math:`\theta_i^t` and adding :math:`\frac{\lambda}{2\eta}
\|\theta - \theta_i^t\|^2` gives exactly eqs. (6)-(7):
:math:`L_i(\theta) + \frac{\lambda}{2\eta}\|\theta - \bar\theta_i^t\|^2` with
:math:`\bar\theta_i^t = \theta_i^t - \eta\nabla R_i(\theta_i^t)`. That step is a
majorisation (the proximal problem upper-bounds eq. (5)) only while
:math:`\eta \le 1/L_i`, where :math:`L_i = 2 s_i S_i` is the curvature of
:math:`R_i` (:math:`S_i = \sum_j W_{ij}`, :math:`s_i` the distance's metric scale,
:meth:`training.distance.Distance.metric`). A literal, client-independent
:math:`\eta` is therefore either unstable for clients that import much
(:math:`2\eta s_i S_i > 1` extrapolates past every collaborator) or negligible for the
others. We read :math:`\eta` **relative to each client's stable step**:
:math:`\eta_i = \eta / L_i` with ``eta`` in (0, 1]. For both squared-L2 distances this
gives

.. math:: \bar\theta_i = (1 - \eta)\,\theta_i + \eta\,\frac{\sum_j W_{ij}\theta_j}{S_i},

a convex combination for every ``eta`` in (0, 1]: ``eta`` is the share of the centre
that comes from the imported models, and it acts (0.25, 0.5 and 1 give different
centres) with no cap. Eq. (7)'s weight is then
:math:`\mu_i = \lambda_{\text{prox}}/\eta_i = \lambda_{\text{prox}} L_i / \eta` on the
squared distance to the centre.

Two lambdas. Eq. (4) uses one :math:`\lambda` for the market's price of distance
(Algorithm 2, eqs. (8), (10)) and eq. (7) for the proximal pull. On real models no
single value serves both (measured in :mod:`training.algorithms.ipfl`), so we
decouple them: ``lam`` prices distance in the market, ``lam_prox`` sets the pull.
The market's distances are made dimensionless (``d_scale = "median"``: divided by the
median distance between the clients in this round), so ``lam`` is the price, in the
units of ``c``, of importing a model at the typical distance; the median is robust
to a few attackers far away.

References
----------
Zhang et al., "Incentivizing Inclusive Contributions in Model Sharing Markets",
arXiv:2505.02462, Algorithm 1, eqs. (1), (4)-(7), (10).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import NDArray

from mechanism import DEFENCES, ESTIMATORS, Market, Settlement, settle, size_from_displacement
from mechanism.defence import NEEDS_ESTIMATE
from mechanism.market import DOMAIN
from mechanism.points import pairwise_distances

from .algorithms.base import MarketCall, ServerOutput
from .distance import get_distance
from .profiles import Reports

__all__ = ["D_MAX", "D_SCALES", "displacements", "estimate_sizes", "ipfl_market",
           "ipfl_messages", "ipfl_server_step", "market_distances", "market_points",
           "own_weights", "project_uploads",
           "prox_centers", "prox_weights"]

#: how the market's distances are scaled each round
D_SCALES = ("median", "none")


#: largest distance the market accepts (:data:`mechanism.market.DOMAIN`)
D_MAX = DOMAIN["d"][1]


def market_distances(d: NDArray[np.float64], d_scale: str) -> NDArray[np.float64]:
    """Return the distances the market sees: ``d`` divided by its off-diagonal median, or ``d``.

    Distances beyond the market's numeric domain (:data:`D_MAX` = 1e6, a million times
    the median when scaled) are clipped to it: such a model, an attacker's that drifted
    far away, is priced out by any ``lam`` > 0 (its import weight ``c_j + lam N_j/N_i
    1e6`` dwarfs every gain in the domain), and the round is settled rather than refused.
    Non-finite distances (a model holding NaN) are left as they are and refused by
    :class:`mechanism.Market`.

    Examples
    --------
    >>> market_distances(np.array([[0, 2.0, 4], [2, 0, 6], [4, 6, 0]]), "median").tolist()
    [[0.0, 0.5, 1.0], [0.5, 0.0, 1.5], [1.0, 1.5, 0.0]]
    >>> float(market_distances(np.array([[0, 1.0, 1e9], [1.0, 0, 1], [1e9, 1, 0]]), "median")[0, 2])
    1000000.0
    """
    if d_scale != "none" and d.shape[0] >= 2:
        off = d[~np.eye(d.shape[0], dtype=bool)]
        med = float(np.median(off))
        if med > 0:
            d = d / med
    return np.where(d > D_MAX, D_MAX, d)


#: distances a projection preserves (squared L2): Johnson-Lindenstrauss
PROJECTABLE = ("sqeuclidean", "sqeuclidean_mean")
#: parameters per block of the projection (bounds the random matrix in memory)
PROJECTION_BLOCK = 4096


def project_uploads(theta: torch.Tensor, k: int, seed: int,
                    distance: str = "sqeuclidean_mean") -> NDArray[np.float64]:
    r"""Return a seeded Johnson-Lindenstrauss projection of the uploads: shape (m, k).

    :math:`y_i = \theta_i R / \sqrt{k}` with :math:`R \in \mathbb R^{P \times k}` of
    independent standard normals drawn from ``seed`` (in blocks of
    ``PROJECTION_BLOCK`` rows, so the matrix is never held whole), times
    :math:`1/\sqrt P` for ``sqeuclidean_mean``. Then
    :math:`\mathbb E \|y_i - y_j\|^2 = d(\theta_i, \theta_j)` and, for ``k`` of
    order :math:`\varepsilon^{-2} \log m`, every pair is within a factor
    :math:`1 \pm \varepsilon` with high probability (measured in docs/scale.md).
    """
    name = get_distance(distance).name
    if name not in PROJECTABLE:
        raise ValueError(f"distance_projection needs a squared-L2 distance {PROJECTABLE}, "
                         f"got distance = {name!r}")
    th = theta.detach().to(torch.float64).cpu().numpy()
    m, P = th.shape
    rng = np.random.default_rng([int(seed), 23])
    Y = np.zeros((m, k))
    for s in range(0, P, PROJECTION_BLOCK):
        e = min(s + PROJECTION_BLOCK, P)
        Y += th[:, s:e] @ rng.standard_normal((e - s, k))
    scale = 1.0 / math.sqrt(k) / (math.sqrt(P) if name == "sqeuclidean_mean" else 1.0)
    return Y * scale


def market_points(Y: NDArray[np.float64], d_scale: str) -> NDArray[np.float64]:
    r"""Return the points the market sees: ``Y`` over the square root of the median distance.

    As :func:`market_distances` for a matrix (``d_scale = "median"``: the median of
    :math:`\|y_i - y_j\|^2` over pairs becomes 1; ``"none"``: ``Y``).
    """
    if d_scale != "none" and Y.shape[0] >= 2:
        from scipy.spatial.distance import pdist

        med = float(np.median(pdist(Y, "sqeuclidean")))
        if med > 0:
            return Y / math.sqrt(med)
    return Y


def _weights(A: NDArray, N: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    N = np.asarray(N, dtype=float)
    W = np.asarray(A, dtype=float) * (N[None, :] / N[:, None])
    return W, W.sum(axis=1)


def own_weights(A: NDArray, N: NDArray, *, eta: float,
                distance: str = "sqeuclidean_mean") -> NDArray[np.float64]:
    r"""Return the weight of each client's own model in its prox-centre (eq. (6)).

    For the squared-L2 distances the centre is the mix
    :math:`(1 - \eta)\theta_i + \eta \sum_j W_{ij}\theta_j / S_i`, so the weight is
    :math:`1 - \eta` for a client that imports and 1 for one that does not. For the
    cosine distance the centre is not linear in :math:`\theta_i`; 1 is its first-order
    weight (the gradient term is taken at the sent model).

    Examples
    --------
    >>> own_weights(np.array([[0, 1], [0, 0]]), np.array([1.0, 1.0]), eta=0.25).tolist()
    [0.75, 1.0]
    """
    _, S = _weights(A, N)
    if get_distance(distance).name == "cosine":
        return np.ones_like(S)
    return np.where(S > 0, 1.0 - eta, 1.0)


def prox_centers(theta: torch.Tensor, A: NDArray, N: NDArray, *, eta: float,
                 distance: str = "sqeuclidean_mean") -> torch.Tensor:
    r"""Return eq. (6)'s prox-centres with the relative step :math:`\eta_i = \eta / (2 s_i S_i)`.

    Clients that import nobody keep their own model.

    Examples
    --------
    >>> th = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    >>> A = np.array([[0, 1, 1], [0, 0, 0], [0, 0, 0]])
    >>> prox_centers(th, A, np.array([1.0, 1.0, 1.0]), eta=0.5)[:, 0].tolist()
    [1.0, 1.0, 3.0]
    """
    dist = get_distance(distance)
    W_np, S = _weights(A, N)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(S > 0, eta / (2.0 * S), 0.0)  # eta_i times s_i
    W = torch.as_tensor(W_np, dtype=theta.dtype)
    step_t = torch.as_tensor(step, dtype=theta.dtype)
    if hasattr(dist, "mixing"):  # squared L2: one (m, m) @ (m, P) product
        return dist.mixing(W, step_t) @ theta
    grad = dist.weighted_grad(theta, W)
    return theta - (step_t / dist.metric(theta))[:, None] * grad


def prox_weights(theta: torch.Tensor, A: NDArray, N: NDArray, *, eta: float, lam_prox: float,
                 distance: str = "sqeuclidean_mean") -> NDArray[np.float64]:
    r"""Return eq. (7)'s weights :math:`\mu_i = \lambda_{\text{prox}}\, 2 s_i S_i / \eta`.

    A client that imports nobody gets 0.
    """
    _, S = _weights(A, N)
    s = get_distance(distance).metric(theta).numpy()
    return lam_prox * 2.0 * s * S / eta


def ipfl_market(reports: Reports, theta: torch.Tensor, *, lam: float,
                distance: str = "sqeuclidean_mean", d_scale: str = "median",
                solver: str = "paper", true: Reports | None = None, defence: str = "none",
                estimate_noise: float = 0.0, estimate_band: float = 0.0,
                seed: int = 0, estimator: str = "oracle",
                observed: NDArray | None = None, projection: int = 0) -> MarketCall:
    r"""Return the market of one round of Algorithm 1 on ``k`` clients' reports and uploads.

    The distances between the uploads (``distance``, scaled by :func:`market_distances`)
    price each import at ``lam`` (eqs. (4), (8), (10)); the session settles it
    (:func:`mechanism.settle`). ``true``: the true profiles, when someone lied.
    A defence (docs/defence.md, :data:`mechanism.DEFENCES`) runs the market on an
    estimate of each client's effective data size (``"checked"``: on the reports within a
    factor ``exp(estimate_band)`` of it), from ``estimator``:

    * ``"displacement"``: :func:`mechanism.size_from_displacement` of ``observed``
      (each client's round-0 displacement, :func:`displacements`) and the reports;
    * ``"oracle"``: a simulation, :func:`estimate_sizes` of the *true* data sizes with
      log-normal error ``estimate_noise`` drawn from ``seed`` (no server has the truth).

    ``projection = k > 0`` (``[ipfl] distance_projection``, docs/scale.md): the market
    is given points instead of a matrix, :func:`project_uploads` drawn from ``seed``
    and scaled by :func:`market_points`. If the scaled points spread beyond the
    market's domain (a far-off model), the matrix of their distances is used instead,
    clipped as :func:`market_distances` clips.
    """
    th = theta.detach().to(torch.float64)
    if projection:
        Y = market_points(project_uploads(th, int(projection), seed, distance), d_scale)
        if float(np.sum((Y.max(axis=0) - Y.min(axis=0)) ** 2)) <= D_MAX:
            market = Market(N=reports.N, c=reports.c, K=reports.K, points=Y, lam=lam)
        else:
            d = market_distances(pairwise_distances(Y), "none")
            market = Market(N=reports.N, c=reports.c, K=reports.K, d=d, lam=lam)
    else:
        d = market_distances(get_distance(distance).pairwise(th).numpy(), d_scale)
        market = Market(N=reports.N, c=reports.c, K=reports.K, d=d, lam=lam)
    truth = None if true is None else market.replace(N=true.N, c=true.c, K=true.K)
    if defence not in DEFENCES:
        raise ValueError(f"ipfl_market: defence = {defence!r} is not one of {sorted(DEFENCES)}")
    if estimator not in ESTIMATORS:
        raise ValueError(f"ipfl_market: estimator = {estimator!r} is not one of "
                         f"{sorted(ESTIMATORS)}")
    estimate = obs = None
    if defence in NEEDS_ESTIMATE and estimator == "displacement":
        if observed is None:
            raise ValueError("ipfl_market: estimator = 'displacement' needs observed (the "
                             "clients' round-0 displacements)")
        # a client that did not move at all (uploaded theta0) is estimated at the least size
        obs = np.maximum(np.asarray(observed, dtype=float), np.finfo(float).tiny)
        estimate = size_from_displacement(obs, reports.N)
    elif defence in NEEDS_ESTIMATE:
        estimate = estimate_sizes((reports if true is None else true).N, estimate_noise, seed)
    return MarketCall(market=market, budget=reports.budget, solver=solver, truth=truth,
                      defence=defence, estimate=estimate,
                      band=estimate_band if defence == "checked" else 0.0,
                      estimator=estimator if defence in NEEDS_ESTIMATE else "",
                      observed=obs)


def displacements(uploads: torch.Tensor, theta0: torch.Tensor) -> NDArray[np.float64]:
    r"""Return each upload's Euclidean distance from the common initial model.

    :math:`\delta_i = \lVert\theta_i - \theta^0\rVert_2`, computed in float64 on the
    shared parameters: on round 0's uploads, the observation
    :func:`mechanism.size_from_displacement` estimates data size from.

    Examples
    --------
    >>> displacements(torch.tensor([[3.0, 4.0], [0.0, 1.0]]), torch.zeros(2)).tolist()
    [5.0, 1.0]
    """
    th = uploads.detach().to(torch.float64)
    return (th - theta0.detach().to(torch.float64)[None, :]).norm(dim=1).numpy()


def estimate_sizes(N_true: NDArray, noise: float, seed: int) -> NDArray[np.float64]:
    r"""Return a simulated estimate of each client's effective data size: the ``"oracle"``.

    :math:`\hat N_i = N_i \exp(\sigma z_i)`, :math:`z_i \sim \mathcal N(0, 1)` drawn
    from ``seed``, clipped to ``N``'s numeric domain: a noisy oracle of the truth, which
    a server does not have; it stands for an estimator of log-normal error ``sigma``
    (docs/defence.md; the estimator from observations is ``"displacement"``).
    ``noise = 0`` returns the true sizes.

    Examples
    --------
    >>> estimate_sizes(np.array([100.0, 50.0]), 0.0, seed=1).tolist()
    [100.0, 50.0]
    """
    N_true = np.asarray(N_true, dtype=float)
    if noise == 0:
        return N_true.copy()
    z = np.random.default_rng([int(seed), 24]).standard_normal(N_true.shape[0])
    lo, hi = DOMAIN["N"]
    return np.clip(N_true * np.exp(noise * z), lo, hi)


def ipfl_messages(reports: Reports, theta: torch.Tensor, settlement: Settlement, *,
                  lam_prox: float, eta: float,
                  distance: str = "sqeuclidean_mean") -> ServerOutput:
    r"""Return eq. (6)'s prox-centres and eq. (7)'s weights for the settled graph.

    Parameters
    ----------
    reports : Reports
        Reported profiles of the ``k`` clients passed in (their ``N`` weigh the centres).
    theta : torch.Tensor, shape (k, P)
        Shared parameters uploaded this round (computed in float64).
    settlement : mechanism.Settlement
        The round's settled market: its graph decides who is mixed into whose centre.
    lam_prox, eta : float
        Proximal weight (eq. (7)); relative step of eq. (6), in (0, 1].
    distance : str
        Distance name (:data:`training.distance.DISTANCES`).

    Returns
    -------
    ServerOutput
        Starts and centres (the prox-centres), proximal weights, the graph, the weight of
        each client's own upload in its centre and the ``eta_i`` column.
    """
    th = theta.detach().to(torch.float64)
    A = settlement.A
    centers = prox_centers(th, A, reports.N, eta=eta, distance=distance).to(theta.dtype)
    mu = prox_weights(th, A, reports.N, eta=eta, lam_prox=lam_prox, distance=distance)
    metric = get_distance(distance).metric(th).numpy()
    _, S = _weights(A, reports.N)
    with np.errstate(divide="ignore"):
        eta_i = np.where(S > 0, eta / (2.0 * metric * S), math.nan)
    own = own_weights(A, reports.N, eta=eta, distance=distance)
    return ServerOutput(starts=centers, centers=centers, prox=mu, A=A,
                        columns={"eta": eta_i}, own_start=own, own_center=own)


def ipfl_server_step(reports: Reports, theta: torch.Tensor, *, lam: float, lam_prox: float,
                     eta: float, distance: str = "sqeuclidean_mean", d_scale: str = "median",
                     solver: str = "paper", true: Reports | None = None,
                     defence: str = "none", estimate_noise: float = 0.0,
                     estimate_band: float = 0.0, seed: int = 0,
                     ) -> tuple[ServerOutput, Settlement]:
    r"""Run one server round of Algorithm 1 by hand: market, settlement, messages.

    What :class:`training.session.Session` does for iPFL each round, in one call (for
    examples and tests): :func:`ipfl_market`, :func:`mechanism.settle`,
    :func:`ipfl_messages`. Parameters as theirs.

    Returns
    -------
    (ServerOutput, mechanism.Settlement)
    """
    call = ipfl_market(reports, theta, lam=lam, distance=distance, d_scale=d_scale,
                       solver=solver, true=true, defence=defence,
                       estimate_noise=estimate_noise, estimate_band=estimate_band, seed=seed)
    s = settle(call.market, call.budget, solver=call.solver, true=call.truth,
               defence=call.defence, estimate=call.estimate, band=call.band)
    if s.N is not None:  # under a defence the centres weigh the sizes the market priced
        reports = Reports(N=s.N, c=reports.c, K=reports.K, budget=reports.budget)
    return ipfl_messages(reports, theta, s, lam_prox=lam_prox, eta=eta, distance=distance), s
