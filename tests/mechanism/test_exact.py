"""Tests of mechanism/exact.py: three independent exact solvers of eq. (8) agree."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from worked_markets import three_clients

from mechanism import (
    Market,
    greedy_graph,
    objective,
    optimal_social_welfare,
    random_market,
    social_welfare,
)
from mechanism.exact import BRUTEFORCE_MAX_M, exact_graph, exact_row, prune_row
from proofs_checks.strategies import markets


def _family():
    """Markets of varied size, spreads, lambda and roles (seeds are just indices)."""
    for k in range(240):
        m = 3 + k % 8  # 3..10
        yield random_market(
            m,
            np.random.default_rng([2024, k]),
            c_range=[(0.01, 1.0), (1e-3, 0.1), (0.1, 3.0)][k % 3],
            K_range=[(1e3, 1e5), (1e2, 1e6)][k % 2],
            lam=[0.1, 0.0, 1.0, 0.01][k % 4],
            spread=[1.0, 0.1, 3.0][k % 3],
            buyers=0.15 if k % 5 == 0 else 0.0,
            sellers=0.15 if k % 7 == 0 else 0.0,
        )


FAMILY = list(_family())


def _close(a, b):
    return np.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_three_solvers_agree_on_random_markets():
    """milp, bruteforce and dp give the same optimal phi on 240 markets (~1,560 rows)."""
    # Prepare / Execute
    for mk in FAMILY:
        milp = exact_graph(mk)
        brute = exact_graph(mk, solver="bruteforce")
        dp = exact_graph(mk, solver="dp")
        # Assert
        assert milp.success and milp.status == "optimal", milp.message
        assert np.all(milp.gap <= 1e-9)
        assert _close(milp.objective, brute.objective), (mk, milp.objective, brute.objective)
        assert _close(dp.objective, brute.objective), (mk, dp.objective, brute.objective)
        # objectives are re-evaluated from the graphs
        for res in (milp, brute, dp):
            np.testing.assert_array_equal(res.objective, objective(mk, res.A))
        # bound <= objective and, for the MILP, within the certified gap
        assert np.all(milp.bound <= milp.objective)


def test_exact_never_worse_than_greedy():
    """The optimum is at most Algorithm 2's phi, row by row, for both variants."""
    for mk in FAMILY[:60]:
        opt = exact_graph(mk, solver="bruteforce").objective
        for variant in ("paper", "skip"):
            assert np.all(opt <= objective(mk, greedy_graph(mk, variant)) + 1e-12)


def test_bruteforce_matches_naive_enumeration():
    """The bit-mask brute force agrees with a plain itertools loop on small markets."""
    for mk in FAMILY[:30]:
        res = exact_graph(mk, solver="bruteforce")
        for i in range(mk.m):
            others = [j for j in range(mk.m) if j != i]
            best = 0.0
            for r in range(len(others) + 1):
                for subset in itertools.combinations(others, r):
                    a = np.zeros((mk.m, mk.m), dtype=np.int8)
                    a[i, list(subset)] = 1
                    best = min(best, float(objective(mk, a)[i]))
            assert res.objective[i] == pytest.approx(best, rel=1e-12, abs=1e-15)


def test_graphs_equal_up_to_ties():
    """Without ties (continuous random data) the three solvers return the same graph."""
    for mk in FAMILY[:40]:
        A = exact_graph(mk).A
        np.testing.assert_array_equal(A, exact_graph(mk, solver="bruteforce").A)
        np.testing.assert_array_equal(A, exact_graph(mk, solver="dp").A)


def test_greedy_is_not_always_optimal():
    """The family contains rows where Algorithm 2 is strictly worse (so the comparison bites)."""
    worse = sum(
        int(np.sum(objective(mk, greedy_graph(mk)) > exact_graph(mk, solver="dp").objective
                   + 1e-9))
        for mk in FAMILY[:40]
    )
    assert worse > 0


def test_pure_seller_row_is_empty_even_with_free_models():
    """K_i = 0: phi_i = sum w >= 0; all solvers pick the empty row (tie rule), also w = 0."""
    mk = Market(N=[100, 200, 300], c=[0.0, 0.0, 0.5], K=[0.0, 400, 400])
    for solver in ("milp", "bruteforce", "dp"):
        res = exact_graph(mk, solver=solver)
        assert res.A[0].tolist() == [0, 0, 0]
        assert res.objective[0] == 0.0


def test_free_models_always_imported_by_traders():
    """w_ij = 0 and K_i > 0: j is in every optimal set (prune_row's forced mask)."""
    mk = Market(N=[100, 200, 300], c=[0.0, 0.0, 50.0], K=[400, 400, 400])
    excluded, forced = prune_row(mk, 2)
    assert forced.tolist() == [True, True, False]
    assert not excluded[:2].any()
    for solver in ("milp", "bruteforce", "dp"):
        assert exact_graph(mk, solver=solver).A[2].tolist() == [1, 1, 0]


def test_dominated_candidates_are_excluded():
    """w_ij > g_i(N_j) (here c_j = 50 > g <= 2): excluded, and never chosen."""
    mk = Market(N=[100, 200, 300], c=[0.0, 0.0, 50.0], K=[400, 400, 400])
    excluded, _ = prune_row(mk, 0)
    assert excluded.tolist() == [True, False, True]


def test_ties_bruteforce_fewest_then_lexicographic():
    """Two identical sellers: either alone is optimal; brute force picks the lower index."""
    # Prepare: clients 1 and 2 identical; K chosen so exactly one import pays
    mk = Market(N=[100, 300, 300], c=[1.0, 1.0, 1.0], K=[900, 900, 900])
    res = exact_graph(mk, solver="bruteforce")
    # Assert: phi({1}) = phi({2}) < phi({1,2}), pick {1}
    assert res.A[0].tolist() == [0, 1, 0]
    assert exact_graph(mk).objective[0] == pytest.approx(res.objective[0], rel=1e-12)


def test_time_limit_reports_honest_status():
    """A tiny time limit stops rows with status 'time_limit' and a valid bound, not a hang."""
    mk = random_market(60, seed=5, c_range=(1e-3, 1e-2), K_range=(1e5, 1e6))
    res = exact_row(mk, 0, time_limit=1e-3)
    assert res.status == "time_limit"
    assert res.bound <= res.objective
    assert res.gap > 0


def test_gap_option_stops_early_with_gap_limit_status():
    """gap=0.5 accepts the first iterate within 50 % (or certifies optimality)."""
    mk = random_market(10, seed=1)
    res = exact_graph(mk, gap=0.5)
    assert set(res.row_status) <= {"optimal", "gap_limit"}
    assert np.all(res.gap <= 0.5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"solver": "cplex"}, "solver = 'cplex' is not one of"),
        ({"time_limit": -1.0}, "time_limit = -1.0 must be a positive number"),
        ({"gap": 2.0}, r"gap = 2.0 must be in \[0, 1\)"),
        ({"max_iter": 0}, "max_iter = 0 must be a positive integer"),
    ],
)
def test_exact_iv(kwargs, match):
    with pytest.raises(ValueError, match=match):
        exact_graph(random_market(4, seed=0), **kwargs)


def test_bruteforce_size_limit():
    mk = random_market(BRUTEFORCE_MAX_M + 1, seed=0)
    with pytest.raises(ValueError, match=r"limited to m <= 16; got m = 17"):
        exact_graph(mk, solver="bruteforce")


def test_dp_needs_integer_sizes():
    mk = Market(N=[100.5, 200, 300], c=[0.1, 0.1, 0.1], K=[400, 400, 400])
    with pytest.raises(ValueError, match=r"integer data sizes; N\[0\] = 100.5"):
        exact_graph(mk, solver="dp")


def test_highs_missing_names_install(monkeypatch):
    """Without highspy, solver='highs' says what to install (before PuLP is touched:
    hiding highspy from sys.modules would poison PuLP's cached HiGHS import)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "highspy" else real(name, *a))
    with pytest.raises(RuntimeError, match="pip install highspy"):
        exact_graph(random_market(4, seed=0), solver="highs")


def test_solver_registry_exact_entry():
    """mechanism.solve_graph('exact') goes through exact_graph."""
    from mechanism import solve_graph

    mk = random_market(7, seed=11)
    np.testing.assert_array_equal(solve_graph(mk, "exact"), exact_graph(mk).A)


def test_milp_retries_without_eq9_cuts_when_cbc_fails_with_them(monkeypatch):
    """Seen on market 214 of the family: CBC called a feasible row 'Infeasible' with the
    big-M eq. (9) rows at tight tolerances. The row must still be solved, and say how."""
    import mechanism.exact as ex

    real = ex._oa_row

    def flaky(market, i, *, eq9_cuts, **options):
        if eq9_cuts:
            raise RuntimeError("exact_graph: milp failed on row 2 (status 'Infeasible')")
        return real(market, i, eq9_cuts=eq9_cuts, **options)

    monkeypatch.setattr(ex, "_oa_row", flaky)
    mk = FAMILY[214]
    row = exact_row(mk, 2)
    assert row.status == "optimal" and "retried without eq. (9) cuts" in row.message
    assert row.objective == pytest.approx(exact_row(mk, 2, solver="bruteforce").objective,
                                          rel=1e-9)


def test_highs_backend_agrees_with_brute_force():
    """solver='highs' (PuLP -> HiGHS) certifies the same optima as the brute force."""
    pytest.importorskip("highspy", reason="the dev extra installs highspy; CI runs this")
    for mk in FAMILY[:30]:
        highs = exact_graph(mk, solver="highs")
        brute = exact_graph(mk, solver="bruteforce")
        assert highs.success and highs.status == "optimal", highs.message
        assert _close(highs.objective, brute.objective), (mk, highs.objective, brute.objective)


# ---------------------------------------------------------------- optimal social welfare


def _every_graph_welfare(mk: Market) -> np.ndarray:
    """Social welfare (eq. (3)) of every graph of a market with m <= 4, by enumeration.

    Independent of the per-row solvers: all 2**(m(m-1)) graphs at once, vectorised.
    """
    m = mk.m
    off = [(i, j) for i in range(m) for j in range(m) if i != j]
    masks = np.arange(1 << len(off), dtype=np.int64)
    A = np.zeros((masks.size, m, m), dtype=bool)
    for bit, (i, j) in enumerate(off):
        A[:, i, j] = (masks >> bit) & 1
    gains = mk.gain.value(A.astype(float) @ mk.N, mk.N, mk.K).sum(axis=1)
    costs = np.where(A, mk.c[None, None, :], 0.0).sum(axis=(1, 2))  # sum_ij a_ij c_j
    return gains - costs


@given(markets(max_m=4))
def test_optimal_social_welfare_is_the_best_of_every_graph(mk):
    """SW* equals the largest eq. (3) over all 2**(m(m-1)) graphs, for milp and brute force."""
    # Prepare
    best = float(_every_graph_welfare(mk).max())
    for solver in ("milp", "bruteforce"):
        # Execute
        sw, A = optimal_social_welfare(mk, solver=solver)
        # Assert: the value is the optimum, and the returned graph attains it
        assert sw == pytest.approx(best, rel=1e-9, abs=1e-12), (mk, solver)
        assert social_welfare(mk, A) == sw
        assert np.all(np.diag(A) == 0)


def test_optimal_social_welfare_by_hand():
    """Two clients 10 apart at lam = 1: Algorithm 2 trades nothing, the optimum both ways.

    g(x) = 2 - 20/sqrt(100 + x), so g(100) = 2 - 20/sqrt(200) = 0.585786...; each import
    costs the exporter c = 0.1: SW* = 2 (g(100) - 0.1) = 0.971572875. The distance term
    (w_01 = 0.1 + 10 = 10.1 > g(100)) stops Algorithm 2 but is not part of eq. (3).
    """
    # Prepare
    mk = Market(N=[100, 100], c=[0.1, 0.1], K=[400, 400], d=[[0, 10], [10, 0]], lam=1.0)
    # Execute
    sw, A = optimal_social_welfare(mk)
    # Assert
    assert greedy_graph(mk).sum() == 0 and social_welfare(mk, greedy_graph(mk)) == 0.0
    assert A.tolist() == [[0, 1], [1, 0]]
    assert sw == pytest.approx(2 * (2 - 20 / np.sqrt(200) - 0.1), rel=1e-12)
    assert sw == pytest.approx(0.971572875, abs=1e-9)
    assert optimal_social_welfare(mk.replace(lam=0.0, d=None))[0] == sw


def test_optimal_social_welfare_worked_market_with_buyer_and_seller():
    """The worked 3-client market: the seller imports nothing, nobody imports the buyer.

    Client 2 (g = g_0) may take {1}: 1 - 0.25 = 0.75, {0}: 0.586 - 1 < 0, {0, 1}:
    2 - 20/sqrt(500) - 1.25 = -0.144, so {1}; client 0 takes {1}: 0.75. SW* = 1.5, which
    Algorithm 2 also reaches here.
    """
    mk = three_clients()
    sw, A = optimal_social_welfare(mk, solver="bruteforce")
    assert A.tolist() == [[0, 1, 0], [0, 0, 0], [0, 1, 0]]
    assert sw == pytest.approx(1.5, rel=1e-12)


def test_optimal_social_welfare_refuses_an_uncertified_optimum(monkeypatch):
    """A row stopped by a limit is not an optimum: one-line RuntimeError with the message."""
    import mechanism.exact as ex

    real = ex.exact_graph

    def limited(market, **options):
        res = real(market, **options)
        res.success, res.message = False, "milp: 1/2 rows certified optimal; time_limit"
        return res

    monkeypatch.setattr(ex, "exact_graph", limited)
    with pytest.raises(RuntimeError, match=r"^optimal_social_welfare: the optimum is not "
                                           r"certified \(milp: 1/2 rows"):
        ex.optimal_social_welfare(three_clients())
