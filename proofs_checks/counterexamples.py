r"""Committed minimal counterexamples to the refuted claims, with their arithmetic.

Each function returns the (true) market Hypothesis shrank to, plus the
misreport or client involved. All use the paper's gain (eq. (2)),
:math:`g_i(x) = \sqrt{K_i/N_i} - \sqrt{K_i/(N_i + x)}`, and
:math:`w_{ij} = c_j + \lambda (N_j/N_i) d_{ij}`. ``tests/proofs_checks/
test_counterexamples.py`` replays each one against the properties and checks
the numbers printed here.
"""

from __future__ import annotations

import math

import numpy as np

from mechanism import Market

from .strategies import Misreport

__all__ = [
    "REGRESSIONS",
    "checked_N_over",
    "checked_N_under",
    "checked_ir_noisy",
    "estimate_ir_noisy",
    "eq9_add_paper",
    "misreport_K_under",
    "misreport_N_over",
    "misreport_N_under",
    "theorem3_flat_weight",
]


def theorem3_flat_weight() -> tuple[Market, int]:
    r"""Theorem 3 fails when :math:`w_{ji}` does not grow with :math:`N_i` (all solvers).

    ``N = [1, 1]``, ``c = [0, 0]``, ``K = [0, 1]``, :math:`\lambda = 0`, ``i = 0``.
    Then :math:`w_{10} = c_0 + 0 = 0` for every :math:`N_0`, while
    :math:`g_1(N_0) = 1 - 1/\sqrt{1 + N_0} > 0`: importing 0 always lowers
    :math:`\phi_1` (Algorithm 2's threshold is :math:`+\infty`; the exact optimum
    of row 1 is :math:`\{0\}` with :math:`\phi_1 = -g_1(N_0) < 0`). At
    :math:`N_0 = 10^9`, :math:`g_1 = 1 - 1/\sqrt{10^9 + 1} \approx 0.99997` and
    client 1 still imports 0. The same holds whenever :math:`\lambda d_{j0} = 0`
    and :math:`c_0 < \sqrt{K_j/N_j}`.
    """
    return Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0), 0


def eq9_add_paper() -> Market:
    r"""Eq. (9)'s second half fails for Algorithm 2 as printed (variant ``"paper"``).

    ``N = [1, 1, 100, 1]``, ``c = 0``, ``K = [0, 0, 0, 2000]``, :math:`\lambda = 2`,
    points ``[0, 0.2, 0, 0.2]`` on a line so ``d_30 = 0.2``, ``d_31 = 0``,
    ``d_32 = 0.2``. Row 3, :math:`g_3(x) = \sqrt{2000}(1 - 1/\sqrt{1 + x})`
    (:math:`\sqrt{2000} = 44.72`):

    * :math:`w_{31} = 0`: threshold :math:`+\infty`;
    * :math:`w_{32} = 2 \cdot 100 \cdot 0.2 = 40`: threshold just above 100
      (:math:`g_3(100) = 44.72 (1 - 1/\sqrt{101}) = 40.27 > 40`);
    * :math:`w_{30} = 2 \cdot 1 \cdot 0.2 = 0.4`: threshold :math:`\approx 14.6`.

    Order 1, 2, 0. Import 1 (``n = 1``); then :math:`1 + 100 \ge T_{32}`: break.
    Client 0 is never tried, yet adding it changes :math:`\phi_3` by
    :math:`0.4 - [g_3(2) - g_3(1)] = 0.4 - 44.72 (1/\sqrt 2 - 1/\sqrt 3)`
    :math:`= 0.4 - 5.803 = -5.403 < 0`.
    """
    return Market(N=[1, 1, 100, 1], c=[0, 0, 0, 0], K=[0, 0, 0, 2000], lam=2.0,
                  d=[[0, .2, 0, .2], [.2, 0, .2, 0], [0, .2, 0, .2], [.2, 0, .2, 0]])


def misreport_N_over() -> tuple[Market, Misreport]:
    r"""Over-reporting :math:`N_i` pays (all solvers).

    ``N = [1, 1]``, ``c = [0, 0]``, ``K = [0, 1]``, :math:`\lambda = 0`; client 0
    (a zero-cost seller) reports :math:`\hat N_0 = 2`. Client 1 imports 0 either
    way (:math:`w_{10} = 0`) and pays :math:`r_{10} = g_1(n_1) - g_1(0)`:

    * truthful: :math:`U_0 = r_{10} = 1 - 1/\sqrt 2 = 0.292893`;
    * lying: :math:`n_1 = 2`, :math:`\hat U_0 = 1 - 1/\sqrt 3 = 0.422650`.
    """
    return Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0), Misreport(0, "N", 2.0, 2.0)


def misreport_N_under() -> tuple[Market, Misreport]:
    r"""Under-reporting :math:`N_i` pays (all solvers): a lower price per model.

    ``N = [1, 100]``, ``c = [0, 0]``, ``K = [1, 0]``, :math:`\lambda = 0.01`,
    ``d_01 = 1``; client 1 (a seller) reports :math:`\hat N_1 = 50`. Row 0:
    :math:`g_0(x) = 1 - 1/\sqrt{1 + x}`.

    * truthful: :math:`w_{01} = 0.01 \cdot 100 \cdot 1 = 1 > g_0(100) = 0.9005`,
      nobody imports 1, :math:`U_1 = 0`;
    * lying: :math:`\hat w_{01} = 0.5 < g_0(50) = 0.859972`, so 0 imports 1 and
      pays :math:`r_{01} = 0.859972 - 0.5 = 0.359972 = \hat U_1` (no cost, no gain).
    """
    return (Market(N=[1, 100], c=[0, 0], K=[1, 0], lam=0.01, d=[[0, 1], [1, 0]]),
            Misreport(1, "N", 50.0, 0.5))


def misreport_K_under() -> tuple[Market, Misreport]:
    r"""Under-reporting :math:`K_i` pays (all solvers): the buyer is billed less.

    ``N = [1, 1]``, ``c = [0, 0]``, ``K = [1, 0]``, :math:`\lambda = 0`; client 0
    reports :math:`\hat K_0 = 0.5`. It imports 1 either way (:math:`w_{01} = 0`).

    * truthful: pays :math:`g_0(1) = 1 - 1/\sqrt 2 = 0.292893`, :math:`U_0 = 0`;
    * lying: billed :math:`\sqrt{0.5}(1 - 1/\sqrt 2) = 0.207107`, true gain
      :math:`0.292893`, :math:`\hat U_0 = 0.085786`.
    """
    return Market(N=[1, 1], c=[0, 0], K=[1, 0], lam=0.0), Misreport(0, "K", 0.5, 0.5)


def estimate_ir_noisy() -> tuple[Market, np.ndarray]:
    r"""Defence ``"estimate"``: an estimate below the truth bills a buyer more than it gains.

    ``N = [1, 1]``, ``c = [0, 0]``, ``K = [0, 1]``, :math:`\lambda = 0`; the estimate is
    :math:`\hat N = [1, e^{-1}]`. Client 1 imports 0 and is billed on its gain curve at
    :math:`\hat N_1 = 0.367879`: :math:`\sqrt{1/0.367879} - \sqrt{1/1.367879} = 0.793702`;
    its true gain is :math:`1 - 1/\sqrt 2 = 0.292893`, so :math:`U_1 = -0.500808`
    (all solvers).
    """
    return (Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0),
            np.array([1.0, math.exp(-1.0)]))


def checked_ir_noisy() -> tuple[Market, np.ndarray]:
    r"""Defence ``"checked"`` (band 0.5): an estimate far above an honest report overbills.

    ``N = [1, 1]``, ``c = [0, 0]``, ``K = [1, 0]``, :math:`\lambda = 0`;
    :math:`\hat N = [1, e]`. Client 1's report disagrees with its estimate
    (:math:`|\ln(1/e)| = 1 > 0.5`), so it is priced at :math:`e \cdot e^{-0.5} = 1.648721`;
    client 0 imports it and pays :math:`1 - 1/\sqrt{2.648721} = 0.385557` for a true gain
    of :math:`0.292893`: :math:`U_0 = -0.092663` (all solvers).
    """
    return (Market(N=[1, 1], c=[0, 0], K=[1, 0], lam=0.0),
            np.array([1.0, math.e]))


def _checked_lie(value: float) -> tuple[Market, Misreport]:
    return (Market(N=[1e6, 1], c=[0, 0], K=[100, 0], lam=1.0,
                   d=[[0, 0.005], [0.005, 0]]),
            Misreport(0, "N", value, value / 1e6))


def checked_N_over() -> tuple[Market, Misreport]:
    r"""Defence ``"checked"`` (band 0.5, exact estimate): a caught over-report can pay.

    ``N = [1e6, 1]``, ``c = [0, 0]``, ``K = [100, 0]``, :math:`\lambda = 1`,
    :math:`d_{01} = 0.005`; client 0 reports :math:`2 \cdot 10^6`, twice its size, beyond
    the band, so it is priced at :math:`10^6 e^{-0.5} = 606530.7`. Truthful, importing 1
    is worth :math:`g_0(1) = 10(10^{-3} - (10^6 + 1)^{-1/2}) = 5.0 \cdot 10^{-9}` against
    :math:`w_{01} = 0.005/10^6 = 5 \cdot 10^{-9}` (not more): no import, :math:`U_0 = 0`.
    Priced low, the marginal gain on the steeper curve is :math:`1.0585 \cdot 10^{-8}`
    against :math:`w_{01} = 8.244 \cdot 10^{-9}`: it imports, is billed the difference
    :math:`2.341 \cdot 10^{-9}` and gains its true :math:`5.0 \cdot 10^{-9}`:
    :math:`\hat U_0 = 2.66 \cdot 10^{-9} > 0`. Pricing a refuted report low is an
    under-report, and under-reporting can pay (:func:`misreport_N_under`).
    """
    return _checked_lie(2e6)


def checked_N_under() -> tuple[Market, Misreport]:
    r"""Return the market of :func:`checked_N_over`, client 0 reporting half its size.

    Refuted the same way: it is priced at :math:`10^6 e^{-0.5}` and gains
    :math:`2.66 \cdot 10^{-9}`.
    """
    return _checked_lie(5e5)


#: claim key -> committed counterexamples, each returning what the claim's strategy draws
#: (a market, ``(market, client)`` or ``(market, Misreport)``). The audit replays them
#: whenever its random search finds nothing, so a known refutation is never reported as
#: "holds" because of an unlucky example budget.
REGRESSIONS: dict[str, tuple] = {
    "theorem3": (theorem3_flat_weight,),
    "eq9_add": (eq9_add_paper,),
    "misreport_N_under": (misreport_N_under,),
    "misreport_N_over": (misreport_N_over,),
    "misreport_K": (misreport_K_under,),
    "estimate_ir_noisy": (estimate_ir_noisy,),
    "checked_ir_noisy": (checked_ir_noisy,),
    "checked_N_over": (checked_N_over,),
    "checked_N_under": (checked_N_under,),
}
