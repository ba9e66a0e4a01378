"""The strategies themselves: every draw is a valid market / misreport (no assume())."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from proofs_checks.strategies import MAX_M, market_and_client, market_and_misreport, markets


@given(markets())
def test_markets_are_valid_by_construction(mk):
    """Sizes 2..12, positive finite N, c >= 0, finite K >= 0, client 0 never a pure buyer."""
    # Assert
    assert 2 <= mk.m <= MAX_M
    assert np.all(mk.N > 0) and np.all(np.isfinite(mk.N))
    assert np.all(mk.c >= 0) and np.all(np.isfinite(mk.K)) and np.all(mk.K >= 0)
    assert mk.roles[0] != "buyer" and math.isfinite(mk.c[0])
    assert mk.lam >= 0


@given(markets())
def test_distances_form_a_metric(mk):
    """d is symmetric, zero on the diagonal and satisfies the triangle inequality."""
    d = mk.d
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    assert np.all(d[:, :, None] <= d[:, None, :] + d.T[None, :, :].transpose(0, 2, 1) + 1e-9)
    # d[i, k] <= d[i, j] + d[j, k] for all i, j, k
    lhs = d[:, None, :]
    rhs = d[:, :, None] + d[None, :, :]
    assert np.all(lhs <= rhs + 1e-9)


@given(st.data())
def test_markets_span_orders_of_magnitude_and_roles(data):
    """Across draws we see buyers, sellers, and N over several decades (spot check)."""
    mk = data.draw(markets(min_m=12, max_m=12))
    assert mk.m == 12


def test_strategies_reach_every_role_and_scale():
    """Deterministic sweep: the strategy can produce buyers, sellers, lam = 0 and N >= 1e5."""
    from hypothesis import find

    assert "buyer" in find(markets(), lambda mk: "buyer" in mk.roles).roles
    assert "seller" in find(markets(), lambda mk: "seller" in mk.roles).roles
    assert find(markets(), lambda mk: mk.N.max() >= 1e5).N.max() >= 1e5
    assert find(markets(), lambda mk: mk.c.max() < 1e-3 and mk.c.max() > 0).c.max() > 0
    assert find(markets(), lambda mk: mk.lam == 0).lam == 0


@given(market_and_misreport("c", "over"))
def test_cost_misreports_strictly_overstate(drawn):
    """Lemma 1 / Theorem 2 need c_hat > c_i: guaranteed, never filtered."""
    mk, lie = drawn
    assert lie.field == "c" and math.isfinite(mk.c[lie.i]) and lie.value > mk.c[lie.i]


@given(market_and_misreport("N", "under"), market_and_misreport("N", "over"))
def test_data_misreports_move_in_the_requested_direction(under, over):
    mk, lie = under
    assert 0 < lie.value < mk.N[lie.i]
    mk, lie = over
    assert math.isfinite(lie.value) and lie.value > mk.N[lie.i]
    lie.apply(mk)  # the reported market is valid


@given(market_and_misreport("K", "any"))
def test_eagerness_misreports_change_k_validly(drawn):
    mk, lie = drawn
    assert lie.value >= 0 and math.isfinite(lie.value) and lie.value != mk.K[lie.i]
    assert lie.apply(mk).K[lie.i] == lie.value


@given(market_and_client())
def test_client_is_in_range(drawn):
    mk, i = drawn
    assert 0 <= i < mk.m
