"""Committed minimal counterexamples replay, with the numbers in their docstrings."""

import math

import numpy as np
import pytest

from mechanism import greedy_graph
from proofs_checks import counterexamples as C
from proofs_checks import properties as P

SOLVERS = ["paper", "skip", "exact"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_theorem3_flat_weight(solver):
    mk, i = C.theorem3_flat_weight()
    v = P.check_theorem3(mk, P.mechanism_for(solver), i)
    assert v is not None and v.details["A"][1][0] == 1
    assert math.isinf(P.theorem3_bound(mk, i))


@pytest.mark.parametrize("solver", ["paper", "skip"])
def test_pure_seller_no_longer_imports_free_models(solver):
    """Former eq. (9) 'refutation' (N = [1, 1], c = 0, K = 0): an artifact of our own
    w = 0 -> inf convention, fixed by reading Definition 2 (a pure seller buys nothing)."""
    from mechanism import Market

    mk = Market(N=[1, 1], c=[0, 0], K=[0, 0], lam=0.0)
    A = greedy_graph(mk, solver)
    assert A.sum() == 0
    assert P.check_local_optimality_remove(mk, A) is None


def test_eq9_add_paper_only():
    mk = C.eq9_add_paper()
    v = P.check_local_optimality_add(mk, greedy_graph(mk, "paper"))
    assert v is not None and (v.details["i"], v.details["j"]) == (3, 0)
    assert v.details["delta_phi"] == pytest.approx(0.4 - math.sqrt(2000) * (2**-0.5 - 3**-0.5))
    assert P.check_local_optimality_add(mk, greedy_graph(mk, "skip")) is None


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(
    ("case", "before", "after"),
    [
        (C.misreport_N_over, 1 - 2**-0.5, 1 - 3**-0.5),
        (C.misreport_N_under, 0.0, (1 - 51**-0.5) - 0.5),
        (C.misreport_K_under, 0.0, (1 - 2**-0.5) * (1 - 0.5**0.5)),
    ],
)
def test_misreport_counterexamples(solver, case, before, after):
    mk, lie = case()
    v = P.check_misreport(mk, P.mechanism_for(solver), lie)
    assert v is not None
    assert v.details["before"]["U"] == pytest.approx(before, abs=1e-12)
    assert v.details["after"]["U"] == pytest.approx(after, abs=1e-12)
    assert np.isclose(v.details["after"]["U"] - v.details["before"]["U"], after - before)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("case", "defence", "client", "U"), [
    (C.estimate_ir_noisy, "estimate", 1,
     (1 - 2**-0.5) - (math.exp(0.5) - (1 / (1 + math.exp(-1))) ** 0.5)),
    (C.checked_ir_noisy, "checked", 0, (1 - 2**-0.5) - (1 - (1 + math.exp(0.5)) ** -0.5)),
])
def test_defence_ir_counterexamples(solver, case, defence, client, U):
    """Issue 24: a noisy size estimate can bill an honest client more than it gains."""
    from proofs_checks.claims import DEFENCE_BANDS

    mk, est = case()
    v = P.check_defended_ir(mk, P.mechanism_for(solver), defence, est, DEFENCE_BANDS[defence])
    assert v is not None and v.details["client"] == client
    assert v.details["U"][client] == pytest.approx(U, abs=1e-12)
    assert P.check_defended_ir(mk, P.mechanism_for(solver), defence, mk.N,
                               DEFENCE_BANDS[defence]) is None  # exact estimate: Theorem 1


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("case", [C.checked_N_over, C.checked_N_under])
def test_checked_caught_lie_counterexamples(solver, case):
    """A report beyond the band is priced at 1e6 exp(-0.5): client 0 then imports 1 and gains."""
    mk, lie = case()
    v = P.check_defended_misreport(mk, P.mechanism_for(solver), lie, "checked", 0.5)
    assert v is not None
    assert v.details["A"] == [[0, 0], [0, 0]] and v.details["A_hat"] == [[0, 1], [0, 0]]
    low = 1e6 * math.exp(-0.5)
    bill = 10 * (low**-0.5 - (low + 1) ** -0.5) - 0.005 / low
    gain = 10 * (1e6**-0.5 - (1e6 + 1) ** -0.5)
    assert v.details["after"]["p"] == pytest.approx(bill, rel=1e-9)
    assert v.details["after"]["U"] == pytest.approx(gain - bill, rel=1e-9)
    assert P.check_defended_misreport(mk, P.mechanism_for(solver), lie, "estimate") is None
