r"""Effective data size estimated from what the server observes: the first upload's displacement.

Issue 24's defences (:mod:`mechanism.defence`) price an estimate :math:`\hat N` of each
client's effective data size instead of its report. This module turns an observation
the server holds into that estimate; it is pure numpy (collecting the observation is
:mod:`training.server`'s business).

The observation
---------------
In round 0 of Algorithm 1 every client starts from the same initial model
:math:`\theta^0`, trains ``epochs`` passes of SGD (fixed learning rate and batch size,
set by the server's config) on its own data, with no proximal term, and uploads
:math:`\theta_i^0`. A client with :math:`N_i` examples takes
:math:`\text{epochs}\cdot\lceil N_i / B\rceil` steps, so the distance it moved,

.. math:: \delta_i = \lVert \theta_i^0 - \theta^0 \rVert_2,

grows with :math:`N_i`. Nothing the client *reports* enters :math:`\delta_i`; only what
it *did* does.

The map from displacement to size
---------------------------------
The curve :math:`\delta(N)` depends on the model, the data and the learning rate, so it
is calibrated each round on the clients of the market. Its shape: SGD from a common
start moves fast at first and then slows down as the local loss flattens, so
:math:`\delta` grows about linearly in :math:`\ln N` (on the quick preset's round-0
uploads a power law :math:`\ln\delta = a + \alpha\ln N` left a log error of sd 0.53
over three seeds, this form 0.34: docs/defence.md). The line
:math:`\delta = a + \alpha\ln N` is fitted robustly (Theil-Sen: :math:`\alpha` the
median of the pairwise slopes, :math:`a` the median of :math:`\delta_j - \alpha\ln
N_j`) on the *other* clients' reports and displacements, then inverted for client
``i``:

.. math:: \hat N_i = \exp\big((\delta_i - a_{-i}) / \alpha_{-i}\big),

with :math:`(a_{-i}, \alpha_{-i})` fitted leaving client ``i`` out. Consequences:

* a client's own report never enters its own estimate (leave-one-out): over- or
  under-reporting moves its estimate by exactly nothing;
* its report enters the other clients' calibrations as one point among ``k - 1``; a
  median of pairwise slopes has a breakdown point of about 29 %, so a minority of liars
  moves the calibration only by the spread of the honest points, not by the size of
  the lie;
* fewer than three clients cannot calibrate a curve: with ``k < 3`` the estimate is
  the reports (the defence is then the paper's mechanism; documented in
  docs/defence.md);
* a slope below :data:`MIN_SLOPE` times the others' median displacement (the
  displacement barely depends on the size: e.g. every client trained to convergence) is
  raised to it, which bounds how far a small difference of displacement can move an
  estimate; estimates are clipped to :data:`mechanism.market.DOMAIN`'s range of ``N``.

What it cannot see (docs/defence.md): a client that pads its displacement (more epochs,
a larger learning rate, duplicated examples, a model trained elsewhere) fakes a larger
size; one that trains less fakes a smaller one. It measures SGD steps taken, not the
worth of the data.

References
----------
Zhang et al., "Incentivizing Inclusive Contributions in Model Sharing Markets",
arXiv:2505.02462, Algorithm 1 (round 0), eq. (2) (the size a gain curve is read at).
Sen, "Estimates of the regression coefficient based on Kendall's tau", JASA 63 (1968).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .market import DOMAIN

__all__ = ["ESTIMATORS", "MIN_CLIENTS", "MIN_SLOPE", "size_from_displacement", "theil_sen"]

#: the estimators of effective data size a run can use: ``"oracle"`` is a simulation
#: (the true size times log-normal noise, drawn by :func:`training.server.estimate_sizes`:
#: a server has no such thing); ``"displacement"`` is :func:`size_from_displacement`
ESTIMATORS = ("displacement", "oracle")
#: fewest clients whose displacements can calibrate a curve leaving one out
MIN_CLIENTS = 3
#: smallest slope of the displacement in ln(N) the inversion uses, relative to the
#: calibrating clients' median displacement
MIN_SLOPE = 0.1


def _positive(x: ArrayLike, name: str) -> NDArray[np.float64]:
    """Return ``x`` as a float vector of finite positive numbers; else one-line ValueError."""
    a = np.asarray(x, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"size_from_displacement: {name} must be a vector, got shape {a.shape}")
    bad = np.flatnonzero(~(np.isfinite(a) & (a > 0)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"size_from_displacement: {name}[{i}] = {float(a[i])!r} must be finite "
                         "and > 0")
    return a


def theil_sen(x: ArrayLike, y: ArrayLike) -> tuple[float, float]:
    r"""Return the Theil-Sen line ``(a, alpha)`` of ``y = a + alpha x``.

    :math:`\alpha` is the median of :math:`(y_j - y_l)/(x_j - x_l)` over the pairs with
    :math:`x_j \ne x_l`; :math:`a` the median of :math:`y_j - \alpha x_j`. NaN slope
    when every ``x`` is equal.

    Examples
    --------
    >>> a, alpha = theil_sen([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 5.0, 7.0, 100.0])
    >>> (round(a, 6), round(alpha, 6))
    (1.0, 2.0)
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    j, h = np.triu_indices(x.shape[0], k=1)
    dx = x[j] - x[h]
    keep = dx != 0
    if not keep.any():
        return float(np.median(y)), float("nan")
    alpha = float(np.median((y[j] - y[h])[keep] / dx[keep]))
    return float(np.median(y - alpha * x)), alpha


def size_from_displacement(displacement: ArrayLike, reported: ArrayLike) -> NDArray[np.float64]:
    r"""Return each client's estimated effective data size from its round-0 displacement.

    Parameters
    ----------
    displacement : array_like (k,)
        :math:`\delta_i = \lVert\theta_i^0 - \theta^0\rVert_2`, each finite and > 0.
    reported : array_like (k,)
        The reported data sizes :math:`N_i`, each finite and > 0; client ``i``'s own
        report is not used for its own estimate.

    Returns
    -------
    ndarray (k,)
        :math:`\hat N_i = \exp((\delta_i - a_{-i})/\alpha_{-i})` with the Theil-Sen
        line of :math:`\delta` on :math:`\ln N` over the other clients (slope at least
        :data:`MIN_SLOPE` times their median displacement), clipped to ``DOMAIN["N"]``;
        the reports themselves when ``k`` < :data:`MIN_CLIENTS`.

    Raises
    ------
    ValueError
        Naming the argument, the index and the value: a shape mismatch, a displacement or
        a report that is not finite and > 0.

    Examples
    --------
    Displacements that follow :math:`\delta = 0.5 + 0.3\ln N` exactly give the sizes
    back:

    >>> N = np.array([20.0, 50.0, 100.0, 200.0])
    >>> size_from_displacement(0.5 + 0.3 * np.log(N), N).round(6).tolist()
    [20.0, 50.0, 100.0, 200.0]

    A report ten times too large changes nothing of its own estimate:

    >>> size_from_displacement(0.5 + 0.3 * np.log(N), [200.0, 50.0, 100.0, 200.0])[0].round(6)
    np.float64(20.0)
    """
    delta = _positive(displacement, "displacement")
    N = _positive(reported, "reported")
    if delta.shape != N.shape:
        raise ValueError(f"size_from_displacement: displacement has {delta.shape[0]} entries, "
                         f"reported {N.shape[0]}")
    k = N.shape[0]
    if k < MIN_CLIENTS:
        return N.copy()
    x, y = np.log(N), delta
    out = np.empty(k)
    idx = np.arange(k)
    for i in range(k):
        others = idx != i
        a, alpha = theil_sen(x[others], y[others])
        least = MIN_SLOPE * float(np.median(y[others]))
        if not alpha >= least:  # NaN (all others report one size) included
            alpha = least
            a = float(np.median(y[others] - alpha * x[others]))
        out[i] = (y[i] - a) / alpha
    lo, hi = DOMAIN["N"]
    return np.exp(np.clip(out, np.log(lo), np.log(hi)))
