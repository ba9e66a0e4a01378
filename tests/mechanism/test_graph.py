"""Tests for mechanism/graph.py: Algorithm 2 by hand, against the scalar reference."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from worked_markets import skip_differs_market, three_clients

from mechanism import Market, greedy_graph, objective, random_market, thresholds
from mechanism import graph as graph_module
from mechanism.graph import _greedy_graph_unfiltered
from mechanism.reference import reference_graph
from proofs_checks.strategies import domain_markets, markets


def test_three_client_worked_example():
    A = greedy_graph(three_clients())
    assert A.tolist() == [[0, 1, 0], [0, 0, 0], [0, 1, 0]]
    assert A.dtype == np.int8


def test_paper_stops_at_first_failure_and_skip_continues():
    mk = skip_differs_market()
    paper, skip = greedy_graph(mk, "paper"), greedy_graph(mk, "skip")
    assert paper[0].tolist() == [0, 1, 0, 0]
    assert skip[0].tolist() == [0, 1, 0, 1]
    gain_of_3 = 1 - 20 / math.sqrt(410)  # g_0(310) - g_0(300)
    assert objective(mk, skip)[0] == pytest.approx(objective(mk, paper)[0] - (gain_of_3 - 0.01))


def test_ties_go_to_the_lower_index():
    """Two identical sellers 1 and 2 (N = 300, c = 0.25); only one fits client 0:
    g_0(600) - g_0(300) = 1 - 20/sqrt(700) = 0.244 < 0.25. Client 1 wins the tie."""
    mk = Market(N=[100, 300, 300], c=[1, 0.25, 0.25], K=[400, 0, 0], lam=0.0)
    for variant in ("paper", "skip"):
        assert greedy_graph(mk, variant)[0].tolist() == [0, 1, 0]


@pytest.mark.parametrize("variant", ["paper", "skip"])
@pytest.mark.parametrize("seed", range(40))
def test_vectorised_graph_matches_the_printed_loop(variant, seed):
    rng = np.random.default_rng(seed)
    mk = random_market(int(rng.integers(2, 10)), seed=rng, buyers=0.2, sellers=0.2,
                       c_range=(1e-3, 2.0), K_range=(10, 1e5))
    np.testing.assert_array_equal(greedy_graph(mk, variant), reference_graph(mk, variant))


def test_matches_reference_on_markets_with_zero_weights_and_ties():
    # c = 0 and identical points: many w = 0 (threshold inf) and exact ties
    N = [50, 50, 80, 80, 120]
    mk = Market(N=N, c=[0, 0, 0.1, 0.1, 0], K=[100, 100, 100, 0, 100], lam=0.5)
    for variant in ("paper", "skip"):
        np.testing.assert_array_equal(greedy_graph(mk, variant), reference_graph(mk, variant))


def test_roles_buyers_never_imported_sellers_import_nothing():
    mk = random_market(60, seed=7, buyers=0.3, sellers=0.3)
    A = greedy_graph(mk)
    buyers = np.isinf(mk.c)
    sellers = mk.K == 0
    assert buyers.any() and sellers.any() and A.sum() > 0
    assert A[:, buyers].sum() == 0
    assert A[sellers].sum() == 0


def test_large_market_matches_reference_on_sampled_rows():
    """Row blocks: at m = 1500 the graph is built in several blocks; spot-check rows."""
    mk = random_market(1500, seed=11)
    A = greedy_graph(mk)
    from mechanism.reference import reference_threshold

    for i in (0, 699, 700, 1499):
        th = np.array([reference_threshold(mk, i, j) for j in range(mk.m)])
        order = np.argsort(-th, kind="stable")
        n, expected = 0.0, np.zeros(mk.m, dtype=np.int8)
        for k in order:
            if k == i or not n + mk.N[k] < th[k]:
                break
            expected[k], n = 1, n + mk.N[k]
        np.testing.assert_array_equal(A[i], expected)


def test_bad_variant():
    with pytest.raises(ValueError, match="variant = 'greedy' is not one of"):
        greedy_graph(three_clients(), "greedy")


def test_indifferent_candidate_is_not_imported():
    """Algorithm 2's test is strict, n + N_k < N^Th_k: a candidate exactly worth its price
    is left out. Client 0: g_0(300) = 2 - 20/sqrt(400) = 1 = c_1, so N^Th_01 = 300 = N_1
    and importing 1 would change phi_0 by exactly 0."""
    mk = Market(N=[100, 300], c=[1.0, 1.0], K=[400, 0], lam=0.0)
    assert thresholds(mk)[0, 1] == 300.0
    for variant in ("paper", "skip"):
        assert greedy_graph(mk, variant).sum() == 0
    # a hair cheaper, and it is imported
    assert greedy_graph(mk.replace(c=[1.0, 1.0 - 1e-9]))[0, 1] == 1


def _with_cuts(market, variant):
    """greedy_graph with the cut path forced on at small m (2 sampled columns)."""
    from unittest import mock

    with mock.patch.object(graph_module, "CUT_MIN_M", 0), mock.patch.object(
            graph_module, "SAMPLE", 2):
        return greedy_graph(market, variant)


@given(markets())
def test_filtered_graph_equals_unfiltered_and_reference(market):
    """The closed-form filter and the cuts change nothing (Algorithm 2, issue 10)."""
    for variant in ("paper", "skip"):
        # Execute
        unfiltered = _greedy_graph_unfiltered(market, variant)
        # Assert
        np.testing.assert_array_equal(greedy_graph(market, variant), unfiltered, err_msg=variant)
        np.testing.assert_array_equal(_with_cuts(market, variant), unfiltered, err_msg=variant)
        np.testing.assert_array_equal(unfiltered, reference_graph(market, variant),
                                      err_msg=variant)


@pytest.mark.parametrize("variant", ["paper", "skip"])
@pytest.mark.parametrize("seed", [0, 1])
def test_filtered_graph_equals_unfiltered_at_scale(variant, seed):
    """At m = 1,100 the default cut path runs (m >= CUT_MIN_M); graphs are identical."""
    mk = random_market(1100, seed=seed, c_range=(0.001, 0.5), buyers=0.05, sellers=0.05)
    assert mk.m >= graph_module.CUT_MIN_M
    np.testing.assert_array_equal(greedy_graph(mk, variant),
                                  _greedy_graph_unfiltered(mk, variant))


def _with_cuts_in_chunks(market, variant):
    """greedy_graph with the cut path forced on, 2 sampled columns and 1-row chunks."""
    from unittest import mock

    with mock.patch.object(graph_module, "CUT_MIN_M", 0), mock.patch.object(
            graph_module, "SAMPLE", 2), mock.patch.object(graph_module, "CHUNK_ENTRIES", 1):
        return greedy_graph(market, variant)


@given(domain_markets(max_m=12))
def test_float32_prefilter_is_exact_over_the_domain(market):
    """The float32 pre-filter of the cut path changes nothing anywhere in the domain."""
    for variant in ("paper", "skip"):
        # Execute
        cut = _with_cuts_in_chunks(market, variant)
        # Assert
        np.testing.assert_array_equal(cut, _greedy_graph_unfiltered(market, variant),
                                      err_msg=variant)


@given(domain_markets(max_m=12), st.floats(0.0, 1.0), st.floats(-3.0, 3.0))
def test_float32_prefilter_keeps_every_threshold_above_the_cut(market, q, shift):
    """Every candidate the pre-filter drops has a threshold at most x (1 + CUT_RTOL).

    Cuts are drawn near the row's own thresholds (quantile ``q``, times ``10**shift``),
    where rounding matters most.
    """
    # Prepare
    market = market.replace(gain="sqrt")  # the pre-filter is the square-root gain's
    th = thresholds(market)
    finite = np.where(np.isfinite(th), th, 0.0)
    x = np.quantile(finite, q, axis=1) * 10.0 ** shift
    gi = np.arange(market.m)
    pre = graph_module._Prefilter(market)
    ok = pre.eligible(market, gi, x)
    # Execute
    r, j = pre.candidates(market, gi[ok], x[ok])
    # Assert
    kept = np.zeros((market.m, market.m), dtype=bool)
    kept[gi[ok][r], j] = True
    dropped = ~kept & ok[:, None]
    bound = np.broadcast_to(x[:, None] * (1 + graph_module.CUT_RTOL), th.shape)
    assert np.all(th[dropped] <= bound[dropped])
