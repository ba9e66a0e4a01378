"""Every property can fail: deliberately broken mechanisms must be caught."""

import numpy as np
import pytest
from hypothesis import settings

from mechanism import Market, Payments, greedy_graph, payments
from proofs_checks import properties as P
from proofs_checks.claims import run_claim
from proofs_checks.strategies import Misreport


def complete_graph(mk):
    """Everybody imports everybody: imports too-expensive sellers."""
    return (1 - np.eye(mk.m)).astype(np.int8)


def extra_edge(mk):
    """Algorithm 2 plus one extra edge (first missing off-diagonal entry)."""
    A = greedy_graph(mk, "skip").copy()
    for i, j in zip(*np.nonzero((A == 0) & ~np.eye(mk.m, dtype=bool)), strict=False):
        A[i, j] = 1
        break
    return A


def flipped_payments(mk, A):
    """Eq. (10) with the sign of every remittance flipped."""
    P_ = payments(mk, A)
    return Payments(r=-P_.r, p=-P_.p)


def leaky_payments(mk, A):
    """Eq. (10) plus a fee of 1 paid to nobody: not budget balanced."""
    P_ = payments(mk, A)
    return Payments(r=P_.r, p=P_.p + 1.0)


def cost_plus_payments(mk, A):
    """Sellers are paid their reported cost twice on top of eq. (10) (rewards overstating c)."""
    P_ = payments(mk, A)
    A = np.asarray(A)
    bonus = 2.0 * np.where(A.sum(axis=0) > 0, A.sum(axis=0) * np.where(np.isinf(mk.c), 0, mk.c), 0)
    return Payments(r=P_.r, p=P_.p - bonus + bonus.sum() / mk.m)


def cost_seeking_graph(mk):
    """Everybody imports every client whose finite cost is >= 1.5 (pricier = more sold)."""
    c = np.where(np.isinf(mk.c), -1.0, mk.c)
    A = np.tile(c >= 1.5, (mk.m, 1)).astype(np.int8)
    np.fill_diagonal(A, 0)
    return A


def fewer_edges(mk):
    """Algorithm 2 minus every import: empty graph (misses profitable additions)."""
    return np.zeros((mk.m, mk.m), dtype=np.int8)


def _refuted(claim, mech):
    return run_claim(claim, mech, shrink=False, base_settings=settings(max_examples=200))


def test_ir_catches_flipped_payments_and_too_expensive_sellers():
    mk = Market(N=[100, 300], c=[0.5, 0.5], K=[400, 400])
    assert P.check_individual_rationality(mk, greedy_graph(mk), flipped_payments) is not None
    expensive = Market(N=[1, 1], c=[10.0, 10.0], K=[1.0, 1.0])
    assert P.check_individual_rationality(expensive, complete_graph(expensive)) is not None
    flip = P.Mechanism("flip", greedy_graph, flipped_payments)
    assert _refuted("theorem1", flip).verdict == "refuted"
    assert _refuted("theorem1", P.Mechanism("complete", complete_graph)).verdict == "refuted"


def test_budget_balance_catches_a_leak():
    mk = Market(N=[100, 300], c=[0.5, 0.5], K=[400, 400])
    assert P.check_budget_balance(mk, greedy_graph(mk), leaky_payments) is not None
    leak = P.Mechanism("leak", greedy_graph, leaky_payments)
    assert _refuted("budget_balance", leak).verdict == "refuted"


def test_eq9_catches_an_extra_and_a_missing_edge():
    assert _refuted("eq9_remove", P.Mechanism("extra", extra_edge)).verdict == "refuted"
    assert _refuted("eq9_add", P.Mechanism("empty", fewer_edges)).verdict == "refuted"


def test_lemma1_and_theorem2_catch_cost_rewarding_mechanisms():
    mk = Market(N=[1, 1, 1], c=[1.0, 1.0, 1.0], K=[1.0, 1.0, 1.0])
    lie = Misreport(0, "c", 2.0, 2.0)
    assert P.check_lemma1(mk, P.Mechanism("seek", cost_seeking_graph), lie) is not None
    assert P.check_truthfulness(mk, P.Mechanism("bonus", complete_graph, cost_plus_payments),
                                lie) is not None
    assert _refuted("lemma1", P.Mechanism("seek", cost_seeking_graph)).verdict == "refuted"
    bonus = P.Mechanism("bonus", greedy_graph, cost_plus_payments)
    assert _refuted("theorem2", bonus).verdict == "refuted"


def test_theorem3_catches_a_graph_ignoring_data_size():
    mk = Market(N=[1, 1], c=[0.1, 0.1], K=[1, 1], d=[[0, 1], [1, 0]], lam=1.0)
    assert P.check_theorem3(mk, P.Mechanism("paper", greedy_graph), 0) is None
    assert P.check_theorem3(mk, P.Mechanism("complete", complete_graph), 0) is not None


def test_misreport_check_is_silent_for_a_truthful_report():
    mk = Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0)
    assert P.check_misreport(mk, P.mechanism_for("paper"), Misreport(0, "N", 1.0, 1.0)) is None


@pytest.mark.parametrize("solver", ["paper", "skip"])
def test_liar_utility_equals_honest_utility_without_a_lie(solver):
    mk = Market(N=[100, 200, 300], c=[0.1, 0.2, 0.3], K=[400, 400, 900], lam=0.1,
                d=[[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    A = greedy_graph(mk, solver)
    honest = P.utility_breakdown(mk, A)["U"]
    for i in range(mk.m):
        assert P.liar_utility(mk, mk, i, A)["U"] == pytest.approx(honest[i], rel=1e-12)
