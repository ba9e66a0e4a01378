"""Property: the vectorised mechanism equals the line-by-line reference on any market.

Markets come from the shared strategies (proofs_checks/strategies.py): 2-12 clients, N,
c, K, lambda over many orders of magnitude, pure buyers and sellers, zero costs and
distances (exact ties, thresholds of +inf).
"""

import numpy as np
from hypothesis import given

from mechanism import greedy_graph, payments
from mechanism.reference import reference_graph, reference_payments
from proofs_checks.strategies import markets


@given(markets())
def test_graph_equals_the_printed_algorithm(market):
    for variant in ("paper", "skip"):
        np.testing.assert_array_equal(greedy_graph(market, variant),
                                      reference_graph(market, variant), err_msg=variant)


@given(markets())
def test_payments_equal_the_pairwise_formula(market):
    A = greedy_graph(market)
    r, p = reference_payments(market, A)
    pay = payments(market, A)
    scale = max(1.0, float(np.abs(r).max()))
    np.testing.assert_allclose(pay.r, r, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(pay.p, p, rtol=1e-9, atol=1e-12 * scale)
