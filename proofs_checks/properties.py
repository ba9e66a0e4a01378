r"""The paper's incentive claims as checkable properties of one market.

Each ``check_*`` function takes a market (and a mechanism or a graph) and returns
``None`` when the claim holds on it, or a :class:`Violation` with the numbers
that break it. They are plain functions: the Hypothesis tests, the ``ipfl audit``
command and the regression tests of committed counterexamples all call them.

Mechanism
    A :class:`Mechanism` is a graph solver plus a payment rule
    (:func:`mechanism.payments`, eq. (10), by default). Tests swap in deliberately
    broken ones to show that every property can fail.

Liar's utility (used by Lemma 1, Theorem 2 and the misreport checks)
    When client ``i`` reports :math:`\hat x_i` instead of its true
    :math:`x_i \in \{c_i, N_i, K_i\}`, the *mechanism* sees the reported market:
    it builds :math:`\hat A` from it and bills :math:`\hat p = p(\hat M, \hat A)`
    by eq. (10), so others' gains, the terms :math:`\lambda N_j / N_i\,d`, and
    the liar's own marginal benefits inside its remittances all use the report.
    The liar's *utility* is eq. (1) evaluated with its true profile:

    .. math:: \hat U_i = g_i\big(\textstyle\sum_j \hat a_{ij} N_j;\,N_i, K_i\big)
              - c_i \textstyle\sum_j \hat a_{ji} - \hat p_i,

    i.e. its true gain (true :math:`N_i, K_i`, others' data as they are),
    its true sharing cost :math:`c_i` per importer, and the net payment the
    mechanism actually bills. Misreporting pays when
    :math:`\hat U_i > U_i` (the truthful utility).

Tolerance
    Utilities are compared with a relative tolerance: a difference counts only
    if it exceeds ``RTOL * scale``, where ``scale`` is the largest magnitude of
    the finite terms that make up the compared quantities (gains, costs,
    remittances). A "violation" within round-off is not a refutation. The
    strict half of eq. (9) is judged on the exact float difference
    :math:`[g_i(n_i) - g_i(n_i - N_j)] - w_{ij}`, computed without cancellation:
    it fails if that difference is below ``-RTOL * scale`` or exactly ``0.0``
    (an exact tie, e.g. a zero-gain pure seller importing a zero-weight model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from mechanism import Market, Payments, payments, priced_market, sharing_costs, solve_graph
from mechanism.market import DOMAIN

from .strategies import Misreport

__all__ = [
    "RTOL",
    "Mechanism",
    "Violation",
    "check_budget_balance",
    "check_defended_budget_balance",
    "check_defended_ir",
    "check_defended_misreport",
    "check_individual_rationality",
    "check_lemma1",
    "check_local_optimality_add",
    "check_local_optimality_remove",
    "check_misreport",
    "check_theorem3",
    "check_truthfulness",
    "defended_outcome",
    "liar_utility",
    "mechanism_for",
    "theorem3_bound",
    "utility_breakdown",
]

#: relative tolerance of every utility comparison
RTOL = 1e-9
#: budget balance tolerance (absolute, per the issue), times the payment scale when it exceeds 1
BB_ATOL = 1e-9

Graph = NDArray[np.int8]


@dataclass(frozen=True)
class Mechanism:
    """A graph solver and a payment rule: what the server runs each round.

    Attributes
    ----------
    name : str
        ``"paper"``, ``"skip"``, ``"exact"`` or a test's broken variant.
    graph : callable
        ``graph(market) -> A``, the (m, m) 0/1 adjacency.
    pay : callable
        ``pay(market, A) -> Payments``; eq. (10) by default.
    """

    name: str
    graph: Callable[[Market], Graph]
    pay: Callable[[Market, Graph], Payments] = payments


def mechanism_for(solver: str) -> Mechanism:
    """Return the mechanism that uses graph solver ``solver`` with eq. (10)'s payments.

    ``"exact"`` runs :func:`mechanism.solve_graph` with ``solver="bruteforce"``
    (markets here have at most 12 clients).
    """
    if solver == "exact":
        return Mechanism("exact", lambda mk: solve_graph(mk, "exact", solver="bruteforce"))
    return Mechanism(solver, lambda mk: solve_graph(mk, solver))


@dataclass(frozen=True)
class Violation:
    """A market on which a claim fails, with the numbers that show it.

    Attributes
    ----------
    claim : str
        Claim key, e.g. ``"theorem1"``.
    message : str
        One sentence with the offending numbers.
    market : Market
        The (true) market.
    details : dict
        Extra data for reports: graphs, utilities before/after, the misreport.
    """

    claim: str
    message: str
    market: Market = field(repr=False)
    details: dict = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        return f"{self.claim}: {self.message}"


def _scale(*arrays: object) -> float:
    vals = [np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays]
    finite = np.concatenate([v[np.isfinite(v)] for v in vals]) if vals else np.zeros(0)
    return float(finite.max()) if finite.size else 0.0


def utility_breakdown(
    market: Market, A: Graph, pay: Callable[[Market, Graph], Payments] = payments
) -> dict[str, NDArray[np.float64]]:
    """Eq. (1) term by term: ``gain``, ``cost``, ``p`` and ``U = gain - cost - p``."""
    A = np.asarray(A, dtype=np.int8)
    gain = market.gain.value(A @ market.N, market.N, market.K)
    cost = sharing_costs(market, A)
    p = pay(market, A).p
    return {"gain": gain, "cost": cost, "p": p, "U": gain - cost - p}


def liar_utility(
    true: Market, reported: Market, i: int, A_hat: Graph,
    pay: Callable[[Market, Graph], Payments] = payments,
) -> dict[str, float]:
    r"""Client ``i``'s one-round utility when the mechanism saw ``reported``.

    .. math:: \hat U_i = g_i(\hat n_i; N_i, K_i) - c_i \textstyle\sum_j \hat a_{ji}
              - p_i(\hat M, \hat A),\qquad \hat n_i = \textstyle\sum_j \hat a_{ij} N_j

    with the *true* :math:`N_i, K_i, c_i` (``true``) in the gain and the
    sharing cost, and the payment billed on the reported market. Only client
    ``i`` differs between the two markets, so :math:`\hat n_i` is the same
    under both. Returns the terms ``gain``, ``cost``, ``p`` and ``U``.
    """
    A_hat = np.asarray(A_hat, dtype=np.int8)
    n_i = float(A_hat[i] @ true.N)
    gain = float(true.gain.value(n_i, true.N[i], true.K[i]))
    importers = int(A_hat[:, i].sum())
    cost = float(importers * true.c[i]) if importers else 0.0
    p = float(pay(reported, A_hat).p[i])
    return {"gain": gain, "cost": cost, "p": p, "U": gain - cost - p}


# --------------------------------------------------------------------- Theorem 1


def check_individual_rationality(
    market: Market, A: Graph, pay: Callable[[Market, Graph], Payments] = payments
) -> Violation | None:
    r"""Theorem 1: :math:`U_i = g_i(n_i) - c_i \sum_j a_{ji} - p_i \ge 0` for all ``i``.

    Fails when some :math:`U_i < -\text{RTOL} \cdot \text{scale}`.
    """
    t = utility_breakdown(market, A, pay)
    tol = RTOL * _scale(t["gain"], t["cost"], pay(market, A).r)
    bad = np.flatnonzero(t["U"] < -tol)
    if bad.size == 0:
        return None
    i = int(bad[np.argmin(t["U"][bad])])
    return Violation(
        "theorem1",
        f"client {i} has U = {t['U'][i]:.6g} < 0 (gain {t['gain'][i]:.6g}, "
        f"sharing cost {t['cost'][i]:.6g}, payment {t['p'][i]:.6g})",
        market,
        {"A": np.asarray(A).tolist(), "client": i, "U": t["U"].tolist()},
    )


# ----------------------------------------------------------------- budget balance


def check_budget_balance(
    market: Market, A: Graph, pay: Callable[[Market, Graph], Payments] = payments
) -> Violation | None:
    r"""Definition 4: :math:`\sum_i p_i = 0`, to ``1e-9`` times ``max(1, payment scale)``."""
    P = pay(market, A)
    total = float(np.sum(P.p))
    tol = BB_ATOL * max(1.0, _scale(P.r))
    if abs(total) <= tol:
        return None
    return Violation(
        "budget_balance", f"sum of payments = {total:.6g} != 0", market,
        {"A": np.asarray(A).tolist(), "p": P.p.tolist()},
    )


# ------------------------------------------------------------------------ eq. (9)


def _increment(market: Market, A: Graph, i: int, j: int, added: bool) -> float:
    """:math:`g_i(n) - g_i(n - N_j)` for the row with ``j`` present (``added``: after adding)."""
    n = float(A[i] @ market.N) + (market.N[j] if added else 0.0)
    return float(market.gain.increment(n, market.N[j], market.N[i], market.K[i]))


def check_local_optimality_remove(market: Market, A: Graph) -> Violation | None:
    r"""Eq. (9), first half: removing an import strictly raises :math:`\phi_i`.

    :math:`a_{ij} = 1 \Rightarrow \phi_i(\mathbf a_i - \mathbf e_j) > \phi_i(\mathbf a_i)`, where

    :math:`\phi_i(\mathbf a_i - \mathbf e_j) - \phi_i(\mathbf a_i)
    = [g_i(n_i) - g_i(n_i - N_j)] - w_{ij}`
    (eq. (8)); it must be strictly positive. See the module notes for the tolerance.
    """
    A = np.asarray(A, dtype=np.int8)
    w = market.weights
    for i, j in zip(*np.nonzero(A), strict=True):
        inc = _increment(market, A, int(i), int(j), added=False)
        diff = float(inc - w[i, j])
        tol = RTOL * _scale(w[i, j], inc)
        if diff < -tol or diff == 0.0:
            return Violation(
                "eq9_remove",
                f"client {i} imports {j} but removing it changes phi_{i} by {diff:.6g} "
                f"(w = {w[i, j]:.6g}, marginal gain = {inc:.6g}), not > 0",
                market, {"A": A.tolist(), "i": int(i), "j": int(j), "delta_phi": diff},
            )
    return None


def check_local_optimality_add(market: Market, A: Graph) -> Violation | None:
    r"""Eq. (9), second half: no single addition lowers :math:`\phi_i`.

    :math:`a_{ij} = 0 \Rightarrow \phi_i(\mathbf a_i + \mathbf e_j) \ge \phi_i(\mathbf a_i)`, where

    :math:`\phi_i(\mathbf a_i + \mathbf e_j) - \phi_i(\mathbf a_i)
    = w_{ij} - [g_i(n_i + N_j) - g_i(n_i)]`
    must be :math:`\ge -\text{RTOL}\cdot\text{scale}`.
    """
    A = np.asarray(A, dtype=np.int8)
    w = market.weights
    for i in range(market.m):
        for j in range(market.m):
            if i == j or A[i, j] or not math.isfinite(w[i, j]):
                continue
            inc = _increment(market, A, i, j, added=True)
            diff = float(w[i, j] - inc)
            if diff < -RTOL * _scale(w[i, j], inc):
                return Violation(
                    "eq9_add",
                    f"client {i} does not import {j} but adding it changes phi_{i} by "
                    f"{diff:.6g} < 0 (w = {w[i, j]:.6g}, marginal gain = {inc:.6g})",
                    market, {"A": A.tolist(), "i": i, "j": j, "delta_phi": diff},
                )
    return None


# --------------------------------------------------------------- Lemma 1, Thm 2


def _misreport_outcome(market: Market, mech: Mechanism, lie: Misreport) -> dict:
    reported = lie.apply(market)
    A = np.asarray(mech.graph(market), dtype=np.int8)
    A_hat = np.asarray(mech.graph(reported), dtype=np.int8)
    honest = utility_breakdown(market, A, mech.pay)
    lying = liar_utility(market, reported, lie.i, A_hat, mech.pay)
    i = lie.i
    before = {k: float(honest[k][i]) for k in ("gain", "cost", "p", "U")}
    # the liar's own terms (gain, cost, net payment, before and after), and its own
    # remittances: other clients' bills must not loosen the test on this one
    pay, pay_hat = mech.pay(market, A), mech.pay(reported, A_hat)
    tol = RTOL * _scale(list(before.values()), list(lying.values()),
                        pay.r[i], pay.r[:, i], pay_hat.r[i], pay_hat.r[:, i])
    return {"A": A, "A_hat": A_hat, "before": before, "after": lying, "tol": tol,
            "reported": reported}


def _details(market: Market, lie: Misreport, out: dict) -> dict:
    return {
        "misreport": {"i": lie.i, "field": lie.field, "value": lie.value,
                      "true": float(getattr(market, lie.field)[lie.i])},
        "A": out["A"].tolist(), "A_hat": out["A_hat"].tolist(),
        "before": out["before"], "after": out["after"],
    }


def check_lemma1(market: Market, mech: Mechanism, lie: Misreport) -> Violation | None:
    r"""Lemma 1: overstating :math:`c_i` never adds an importer of ``i``.

    Under :math:`\hat c_i > c_i`, :math:`\{j : \hat a_{ji} = 1\} \subseteq \{j : a_{ji} = 1\}`.
    """
    if lie.field != "c" or not lie.value > market.c[lie.i]:
        return None  # the lemma assumes an overstated cost
    reported = lie.apply(market)
    A = np.asarray(mech.graph(market), dtype=np.int8)
    A_hat = np.asarray(mech.graph(reported), dtype=np.int8)
    new = sorted(set(np.flatnonzero(A_hat[:, lie.i])) - set(np.flatnonzero(A[:, lie.i])))
    if not new:
        return None
    out = {"A": A, "A_hat": A_hat,
           "before": {k: float(v[lie.i])
                      for k, v in utility_breakdown(market, A, mech.pay).items()},
           "after": liar_utility(market, reported, lie.i, A_hat, mech.pay)}
    return Violation(
        "lemma1",
        f"{lie.describe(market)}: clients {[int(j) for j in new]} import {lie.i} "
        "only under the lie",
        market, _details(market, lie, out),
    )


def check_truthfulness(market: Market, mech: Mechanism, lie: Misreport) -> Violation | None:
    r"""Theorem 2: overstating :math:`\hat c_i > c_i` never raises the true-profile :math:`U_i`."""
    if lie.field != "c" or not lie.value > market.c[lie.i]:
        return None
    return check_misreport(market, mech, lie, claim="theorem2")


def check_misreport(
    market: Market, mech: Mechanism, lie: Misreport, claim: str = "misreport"
) -> Violation | None:
    r"""No misreport pays: :math:`\hat U_i \le U_i + \text{RTOL}\cdot\text{scale}`.

    :math:`\hat U_i` is :func:`liar_utility` (true profile, reported-market bill).
    Theorem 2 is this check for :math:`\hat c_i > c_i`; for ``N`` and ``K`` it is
    what Table 2 suggests empirically but the paper never states.
    """
    out = _misreport_outcome(market, mech, lie)
    gain = out["after"]["U"] - out["before"]["U"]
    if gain <= out["tol"]:
        return None
    return Violation(
        claim,
        f"{lie.describe(market)} and raises its utility from {out['before']['U']:.6g} "
        f"to {out['after']['U']:.6g}",
        market, _details(market, lie, out),
    )


# ---------------------------------------------------------------------- Theorem 3


def theorem3_bound(market: Market, i: int) -> float:
    r"""Return a data size beyond which nobody can rationally import client ``i`` (Theorem 3).

    With the paper's gain (eq. (2)) :math:`g_j < \sqrt{K_j/N_j}` everywhere, so
    once :math:`w_{ji} = c_i + \lambda (N_i/N_j) d_{ji} \ge \sqrt{K_j/N_j}` (and
    :math:`w_{ji} > 0`) importing ``i`` never lowers :math:`\phi_j`: Algorithm 2's
    threshold is 0 and no optimal row contains ``i``. For each ``j`` with
    :math:`\lambda d_{ji} > 0` this holds when
    :math:`N_i \ge N_j (\sqrt{K_j/N_j} - c_i) / (\lambda d_{ji})`. Returns the
    maximum over ``j``, or ``inf`` when some ``j`` has :math:`\lambda d_{ji} = 0`
    and :math:`c_i < \sqrt{K_j/N_j}` or :math:`c_i = 0` (then :math:`w_{ji}`
    does not grow with :math:`N_i` and no bound exists).
    """
    bound = 0.0
    for j in range(market.m):
        if j == i:
            continue
        cap = math.sqrt(market.K[j] / market.N[j])
        slope = market.lam * market.d[j, i] / market.N[j]
        ci = float(market.c[i])
        if ci >= cap and ci > 0:
            continue
        if slope == 0:
            return math.inf
        bound = max(bound, (cap - ci) / slope * 2.0 + 1.0)  # x2: strictly beyond
    return bound


#: the "large finite N_i" used when no bound exists
THEOREM3_FALLBACK = 1e9


def check_theorem3(market: Market, mech: Mechanism, i: int) -> Violation | None:
    r"""Theorem 3: as :math:`N_i \to \infty`, :math:`a_{ji} = 0` for every ``j``.

    Client ``i`` reports a large finite :math:`N_i^{big}`:
    ``max(theorem3_bound, 10 max_j N_j)`` when the bound is finite, else
    ``1e9 * max_j N_j`` (a sequence that grows without bound would never empty the
    importers then: :math:`w_{ji}` is constant in :math:`N_i` while
    :math:`g_j(N_i) \uparrow \sqrt{K_j/N_j}`), capped at the top of the numeric
    domain (:data:`mechanism.market.DOMAIN`, ``1e12``); a finite bound beyond that
    cannot be tested inside the domain and passes. Fails if anyone imports ``i``.
    """
    bound = theorem3_bound(market, i)
    big_base = float(np.max(market.N))
    N_big = max(bound, 10.0 * big_base) if math.isfinite(bound) else THEOREM3_FALLBACK * big_base
    top = DOMAIN["N"][1]  # the largest N a Market accepts (its numeric domain)
    if N_big > top:
        if math.isfinite(bound) and bound > top:
            return None  # the bound lies outside the domain: not testable inside it
        N_big = top
    big = market.with_report(i, N=N_big)
    A = np.asarray(mech.graph(big), dtype=np.int8)
    importers = [int(j) for j in np.flatnonzero(A[:, i])]
    if not importers:
        return None
    j = importers[0]
    return Violation(
        "theorem3",
        f"with N_{i} = {N_big:.6g} client(s) {importers} still import {i} "
        f"(w_{j}{i} = {big.weights[j, i]:.6g}, "
        f"sup g_{j} = {math.sqrt(market.K[j] / market.N[j]):.6g})",
        market, {"i": i, "N_big": N_big, "A": A.tolist(), "bound": bound},
    )


# --------------------------------------------------------- defences (issue 24)


def defended_outcome(market: Market, mech: Mechanism, defence: str,
                     estimate: NDArray[np.float64], band: float = 0.0,
                     true: Market | None = None) -> dict[str, NDArray]:
    r"""One round under ``defence`` (:mod:`mechanism.defence`), as :func:`mechanism.settle` has it.

    The mechanism's graph and bills run on the priced market
    :math:`\tilde M` (reports replaced as ``defence`` says, given ``estimate``); the
    utility is eq. (1) with the true profiles ``true`` (default: ``market``):
    :math:`U_i = g_i(\sum_j a_{ij} N_j^{\text{true}}) - c_i^{\text{true}}
    \sum_j a_{ji} - p_i(\tilde M, A)`. Returns ``A``, ``r``, ``p``, ``U``, ``gain``, ``cost``.
    """
    true = market if true is None else true
    priced = priced_market(market, defence, estimate, band)
    A = np.asarray(mech.graph(priced), dtype=np.int8)
    pay = mech.pay(priced, A)
    gain = true.gain.value(A @ true.N, true.N, true.K)
    cost = sharing_costs(true, A)
    return {"A": A, "r": pay.r, "p": pay.p, "gain": gain, "cost": cost,
            "U": gain - cost - pay.p}


def check_defended_ir(market: Market, mech: Mechanism, defence: str,
                      estimate: NDArray[np.float64], band: float = 0.0,
                      claim: str = "defence_ir") -> Violation | None:
    r"""Individual rationality under a defence: true-profile :math:`U_i \ge 0` for all ``i``.

    ``market`` holds the true, truthfully reported profiles; ``estimate`` is the
    market's estimate of the data sizes (exact or not).
    """
    out = defended_outcome(market, mech, defence, estimate, band)
    tol = RTOL * _scale(out["gain"], out["cost"], out["r"])
    bad = np.flatnonzero(out["U"] < -tol)
    if bad.size == 0:
        return None
    i = int(bad[np.argmin(out["U"][bad])])
    return Violation(
        claim, f"under defence {defence!r} with estimate {np.round(estimate, 6).tolist()}, "
        f"client {i} has U = {out['U'][i]:.6g} < 0 (gain {out['gain'][i]:.6g}, sharing cost "
        f"{out['cost'][i]:.6g}, payment {out['p'][i]:.6g})",
        market, {"A": out["A"].tolist(), "client": i, "U": out["U"].tolist(),
                 "estimate": np.asarray(estimate).tolist(), "defence": defence,
                 "band": band})


def check_defended_budget_balance(market: Market, mech: Mechanism, defence: str,
                                  estimate: NDArray[np.float64], band: float = 0.0,
                                  claim: str = "defence_budget_balance") -> Violation | None:
    r"""Budget balance under a defence: :math:`\sum_i p_i = 0` (as Definition 4's check)."""
    out = defended_outcome(market, mech, defence, estimate, band)
    total = float(out["p"].sum())
    if abs(total) <= BB_ATOL * max(1.0, _scale(out["r"])):
        return None
    return Violation(claim, f"under defence {defence!r}, sum of payments = {total:.6g} != 0",
                     market, {"A": out["A"].tolist(), "p": out["p"].tolist(),
                              "estimate": np.asarray(estimate).tolist()})


def check_defended_misreport(market: Market, mech: Mechanism, lie: Misreport, defence: str,
                             band: float = 0.0,
                             claim: str = "defence_misreport") -> Violation | None:
    r"""No misreport pays under a defence whose size estimate is exact (:math:`\hat N = N`).

    Truthful: the round on ``market``; lying: the round on the reported market, both
    with the estimate equal to the true sizes, utilities with the true profiles. Fails
    when the liar's :math:`\hat U_i > U_i + \text{RTOL}\cdot\text{scale}`.
    """
    i = lie.i
    reported = lie.apply(market)
    before = defended_outcome(market, mech, defence, market.N, band)
    after = defended_outcome(reported, mech, defence, market.N, band, true=market)
    tol = RTOL * _scale(before["gain"][i], before["cost"][i], after["gain"][i],
                        after["cost"][i], before["r"][i], before["r"][:, i], after["r"][i],
                        after["r"][:, i])
    if after["U"][i] - before["U"][i] <= tol:
        return None
    terms = ("gain", "cost", "p", "U")
    return Violation(
        claim,
        f"under defence {defence!r} (exact estimate), {lie.describe(market)} and raises its "
        f"utility from {before['U'][i]:.6g} to {after['U'][i]:.6g}",
        market, {"misreport": {"i": i, "field": lie.field, "value": lie.value,
                               "true": float(getattr(market, lie.field)[i])},
                 "A": before["A"].tolist(), "A_hat": after["A"].tolist(),
                 "before": {k: float(before[k][i]) for k in terms},
                 "after": {k: float(after[k][i]) for k in terms},
                 "defence": defence, "band": band})
