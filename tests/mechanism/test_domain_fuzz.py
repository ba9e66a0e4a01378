"""Fuzz the whole public mechanism API over its numeric domain and just outside it (issue 12).

Inside :data:`mechanism.market.DOMAIN` every output is finite (thresholds may be
``+inf`` by convention, never NaN), payments balance to ``1e-9`` relative,
``U_i >= -IR_RTOL * s_i`` for both greedy variants (``s_i`` the magnitudes of the
terms of eq. (1)), the greedy graphs equal the unfiltered computation and the
scalar reference, and the exact solver is finite and no worse than greedy.
Outside it, :class:`Market` raises a ValueError naming the field, index and value.

The checks live in :mod:`proofs_checks.domain` (shared with the long driver
``python -m proofs_checks.fuzz``); markets come from
``proofs_checks.strategies.domain_markets``; the budget is the Hypothesis profile's.
"""

import re

import numpy as np
import pytest
from hypothesis import given, settings

from mechanism import Market, greedy_graph, thresholds
from mechanism.reference import reference_graph
from proofs_checks.domain import check_exact, check_guarantees, check_market
from proofs_checks.strategies import domain_markets, outside_domain


@given(domain_markets())
def test_inside_the_domain_every_guarantee_holds(mk):
    # Execute / Assert
    check_market(mk)


@settings(max_examples=max(5, settings().max_examples // 4))
@given(domain_markets(max_m=5))
def test_inside_the_domain_exact_graph_is_finite_and_no_worse(mk):
    # Execute / Assert
    check_exact(mk)


@given(outside_domain())
def test_just_outside_the_domain_is_a_value_error_naming_the_field(case):
    kw, field, where = case
    # Execute / Assert
    with pytest.raises(ValueError, match=rf"^Market: {re.escape(where)} = "):
        Market(**kw)


def test_exact_graph_within_the_milp_gap_of_brute_force_at_the_tolerance_edge():
    # thorough fuzz: the milp row is 1.03e-9 relative above brute force (within its
    # certified gap and the test's tolerance, but not after rounding brute + tol)
    mk = Market(N=[1e-3, 1e12, 1e-3, 8.31218582e9], c=[0.0, 1.0, 0.0, 0.99999],
                K=[0.0, 0.0, 1.0, 0.0], lam=0.0)
    test_inside_the_domain_exact_graph_is_finite_and_no_worse.hypothesis.inner_test(mk)


def test_issue_market_with_a_subnormal_log_gain_matches_the_reference():
    # pair (2, 0): K_2 = 1e-300 makes g_2(N_0) = w_20 = 1.008e-312 (subnormal) and the
    # increment flat from N_0 to about 2.6; the smallest root N_0 means "never import"
    mk = Market(N=[1.0083251838187839, 1e12, 1e12, 1538.8256936319901], c=[0.0, 0.001, 0.0, 0.001],
                K=[0.0, 1e-250, 1e-300, 1e-250],
                d=[[1e-300, 1e6, 1.0, 500000.5], [1e6, 0.001, 0.0, 500000.0],
                   [1.0, 0.0, 0.0, 500000.0005], [500000.5, 500000.0, 500000.0005, 1.0]],
                lam=1e-300, gain="log")
    assert thresholds(mk)[2, 0] == mk.N[0]
    for variant in ("paper", "skip"):
        check_guarantees(mk, variant)
        np.testing.assert_array_equal(greedy_graph(mk, variant), reference_graph(mk, variant))


def test_fuzz_market_with_subnormal_remittances_is_ir_up_to_underflow():
    """Found by the 10^6-market fuzz (chunk 45): a relative tolerance underflows to 0.

    Client 5 (log gain, K = 2.2e-308, N = 1e12) imports four sellers of N = 1e-3 at
    c = 0: its gain and remittances are subnormal, and the rounded remittances exceed
    the rounded gain by two units of 2^-1074. IR holds within ir_tolerance's
    absolute term, not within IR_RTOL * s alone.
    """
    from mechanism.payments import IR_RTOL, ir_tolerance, payments, sharing_costs, utilities

    mk = Market(N=[1e-3] * 5 + [1e12], c=[0.0, 0.0, 0.0, np.inf, 0.0, np.inf],
                K=[0.0] * 5 + [2.2250738585072014e-308], d=np.zeros((6, 6)), lam=0.0,
                gain="log")
    A = greedy_graph(mk, "paper")
    U, pay = utilities(mk, A), payments(mk, A)
    s = (mk.gain.value(A @ mk.N, mk.N, mk.K) + sharing_costs(mk, A)
         + np.abs(pay.r).sum(axis=1) + np.abs(pay.r).sum(axis=0))
    assert A[5].sum() == 4 and U[5] < 0  # the finding: U_5 = -2 x 2^-1074 on this machine
    assert not U[5] >= -IR_RTOL * s[5]
    assert np.all(U >= -ir_tolerance(mk, A))
    for variant in ("paper", "skip"):
        check_guarantees(mk, variant)


def test_review_market_with_a_lambda_tie_is_ir_up_to_the_parts_of_the_remittance():
    """Marginal gain and lambda term nearly tie (both about 3694): r_01 cancels to ~0.

    Its rounding error is relative to the parts, not to r_01: a scale built on |r_ij|
    gave tau_1 = 4.5e-22 against U_1 = -4.5e-13 (found by a review of the change).
    """
    d = np.zeros((2, 2))
    d[0, 1] = 1.38433974584227e-10
    mk = Market(N=[0.8555348293815157, 378060451943.8903], c=[0.0, 0.0],
                K=[11675129.443589672, 0.0], d=d, lam=60.38723002540078, gain="sqrt")
    for variant in ("paper", "skip"):
        check_guarantees(mk, variant)
