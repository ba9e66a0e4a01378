r"""The guarantees of the mechanism's numeric domain, as checks on one market (issue 12).

Inside :data:`mechanism.market.DOMAIN` every output is finite (thresholds may be
``+inf`` by convention, never NaN), payments balance to :data:`BB_RTOL` relative
(:math:`|\sum_i p_i| \le` ``BB_RTOL`` :math:`\sum_{ij} |r_{ij}|`, eq. (10)),
:math:`U_i \ge -\tau_i` for both greedy variants (:math:`\tau_i` from
:func:`mechanism.payments.ir_tolerance`: relative to the magnitudes of the terms of
eq. (1), plus a few units of the smallest subnormal per term), the greedy graphs
equal the unfiltered computation and the scalar reference
(:mod:`mechanism.reference`), and the exact solver is finite and no worse than
greedy or brute force.

Each check raises ``AssertionError`` with the offending values. The test suite
(``tests/mechanism/test_domain_fuzz.py``) and the long fuzz driver
(:mod:`proofs_checks.fuzz`) both call these functions, so they check the same
thing.
"""

from __future__ import annotations

import numpy as np

from mechanism import (
    Market,
    exact_graph,
    greedy_graph,
    objective,
    payments,
    social_welfare,
    solve_graph,
    thresholds,
    utilities,
)
from mechanism.graph import _greedy_graph_unfiltered
from mechanism.payments import ir_tolerance
from mechanism.reference import reference_graph, reference_thresholds

__all__ = ["BB_RTOL", "EXACT_RTOL", "check_exact", "check_guarantees", "check_market"]

#: budget balance tolerance, relative to the sum of the remittances' magnitudes
BB_RTOL = 1e-9
#: exact solver against brute force and greedy:
#: ``|phi - phi_brute| <= EXACT_RTOL (1 + |phi_brute|)``
EXACT_RTOL = 1e-9

VARIANTS = ("paper", "skip")


def check_guarantees(mk: Market, variant: str) -> np.ndarray:
    """Assert every guarantee of the numeric domain for one greedy variant.

    Returns the greedy graph (``int8``, ``m x m``) so callers can compare it
    further (e.g. with the scalar reference).
    """
    A = greedy_graph(mk, variant)
    np.testing.assert_array_equal(A, _greedy_graph_unfiltered(mk, variant), err_msg=variant)
    np.testing.assert_array_equal(A, solve_graph(mk, variant), err_msg=variant)
    pay = payments(mk, A)
    U = utilities(mk, A)
    for name, out in (("r", pay.r), ("p", pay.p), ("U", U), ("phi", objective(mk, A)),
                      ("SW", np.array([social_welfare(mk, A)]))):
        assert np.all(np.isfinite(out)), (variant, name, out)
    scale = np.abs(pay.r).sum()
    assert abs(pay.p.sum()) <= BB_RTOL * scale, (variant, pay.p.sum(), scale)
    tol = ir_tolerance(mk, A)
    assert np.all(U >= -tol), (variant, U, tol)
    return A


def check_market(mk: Market) -> None:
    """Assert the domain's guarantees for both variants, graphs equal to the reference.

    The scalar reference's thresholds are computed once and shared by both
    variants (they do not depend on the variant).
    """
    th = thresholds(mk)
    assert not np.isnan(th).any() and (th >= 0).all(), th
    ref_th = reference_thresholds(mk)
    for variant in VARIANTS:
        A = check_guarantees(mk, variant)
        np.testing.assert_array_equal(A, reference_graph(mk, variant, thresholds=ref_th),
                                      err_msg=variant)


def check_exact(mk: Market) -> None:
    """Assert the exact solver ("milp") is finite and equals brute force, no worse than greedy.

    Compares differences, not ``res < brute + tol``: rounding that sum failed once
    at the tolerance's edge (a row 3.16227684e-8 above brute force with
    ``tol = 3.16227756e-8``). Brute force enumerates ``2^(m-1)`` rows: keep ``m``
    small.
    """
    res = exact_graph(mk)
    brute = exact_graph(mk, solver="bruteforce")
    assert res.success and np.all(np.isfinite(res.objective)), res
    tol = EXACT_RTOL * (1.0 + np.abs(brute.objective))
    assert np.all(np.abs(res.objective - brute.objective) <= tol), (res.objective, brute.objective)
    for variant in VARIANTS:
        assert np.all(brute.objective <= objective(mk, greedy_graph(mk, variant)) + tol), variant
