import math

import numpy as np
import pytest

from mechanism import Market, payments, settle, sharing_utilities, solve_graph, utilities
from mechanism.sampling import random_market


@pytest.mark.parametrize("seed", range(5))
def test_unlimited_budgets_settle_to_the_plain_market(seed):
    mk = random_market(6, np.random.default_rng(seed))
    s = settle(mk)
    A = solve_graph(mk, "paper")
    assert s.stays.all()
    np.testing.assert_array_equal(s.A, A)
    np.testing.assert_allclose(s.p, payments(mk, A).p)
    np.testing.assert_allclose(s.U, utilities(mk, A))
    assert s.ir.all()


@pytest.mark.parametrize("seed", range(5))
def test_quitters_leave_and_the_rest_balance_and_accept(seed):
    mk = random_market(7, np.random.default_rng(seed))
    s = settle(mk, budget=np.zeros(7))
    assert abs(s.p.sum()) < 1e-9
    assert (s.p[s.stays] <= 0).all()
    out = ~s.stays
    assert s.A[out].sum() == 0 and s.A[:, out].sum() == 0 and (s.U[out] == 0).all()
    # the settled graph is the market of the stayers alone
    idx = np.flatnonzero(s.stays)
    if len(idx) >= 2:
        sub = mk.replace(N=mk.N[idx], c=mk.c[idx], K=mk.K[idx], d=mk.d[np.ix_(idx, idx)])
        np.testing.assert_array_equal(s.A[np.ix_(idx, idx)], solve_graph(sub, "paper"))


def test_bad_budget_and_non_market_are_refused():
    mk = Market(N=[1, 2], c=[0, 0], K=[1, 1])
    with pytest.raises(ValueError, match="budget must be 2 numbers"):
        settle(mk, budget=[1.0])
    with pytest.raises(TypeError, match="settle: market must be a Market"):
        settle({"N": [1, 2]})
    with pytest.raises(ValueError, match="true must be a Market of the same 2 clients"):
        settle(mk, true=Market(N=[1, 2, 3], c=[0] * 3, K=[1] * 3))


def test_sharing_utilities_of_the_complete_graph_can_break_ir():
    """A baseline that shares everything with everyone has no payments: a costly seller loses."""
    mk = Market(N=[100, 300, 100], c=[5.0, 0.1, 0.1], K=[400, 400, 0])
    U = sharing_utilities(mk, 1 - np.eye(3, dtype=int))
    assert U[0] < 0 and math.isclose(U[2], -0.2)  # a pure seller only pays its cost
