"""Tests for mechanism/points.py: markets given by points equal the dense path; certificates."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mechanism import Market, greedy_graph, payments
from mechanism.payments import graph_edges
from mechanism.points import (
    check_certificate,
    pair_distances,
    pairwise_distances,
    price_bound,
    random_point_market,
    solve_points,
)
from proofs_checks.strategies import point_markets


def seeded_point_market(m: int, seed: int, *, dim: int = 2, lam: float = 1.0,
                        gain: str = "sqrt") -> Market:
    return random_point_market(m, seed, dim=dim, lam=lam, gain=gain)


def assert_same_as_dense(mk: Market, variant: str, index: str = "balltree",
                         k0: int | None = None) -> None:
    out = solve_points(mk, variant, index=index, k0=k0)
    dense = mk.dense()
    A = greedy_graph(dense, variant)
    i, j = graph_edges(A)
    assert np.array_equal(out.i, i) and np.array_equal(out.j, j)
    pay = payments(dense, A)
    np.testing.assert_allclose(out.pay.edges[2], pay.edges[2], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.pay.p, pay.p, rtol=1e-9, atol=1e-12)
    assert (out.graph.toarray() == A).all()
    check_certificate(mk, out.certificate)


@settings(max_examples=150, deadline=None)
@given(point_markets(), st.sampled_from(("paper", "skip")),
       st.sampled_from((("balltree", None), ("kdtree", None), ("kdtree", 1), ("kdtree", 16))))
def test_points_path_equals_dense_path(mk, variant, search):
    assert_same_as_dense(mk, variant, *search)


@pytest.mark.parametrize("m,dim,lam,gain", [(1500, 2, 1.0, "sqrt"), (1200, 3, 0.3, "sqrt"),
                                            (600, 1, 2.0, "log")])
def test_points_path_equals_dense_path_at_the_cut_sizes(m, dim, lam, gain):
    """m >= 1024 takes the dense path's cuts and float32 pre-filter: still the same graph."""
    mk = seeded_point_market(m, seed=m, dim=dim, lam=lam, gain=gain)
    for variant in ("paper", "skip"):
        for index in ("balltree", "kdtree"):
            assert_same_as_dense(mk, variant, index)


def test_distances_are_the_same_doubles_pair_by_pair_and_dense():
    X = np.random.default_rng(3).normal(size=(40, 5)) * 7.3
    D = pairwise_distances(X)
    i, j = np.nonzero(np.ones((40, 40)))
    assert np.array_equal(pair_distances(X, i, j), D[i, j])
    assert np.allclose(D, ((X[:, None] - X[None]) ** 2).sum(-1))


def test_nothing_beyond_the_bound_passes_the_test():
    """The bound itself, by brute force: w_ij <= g_i(N_j) only where d_ij <= R_i."""
    mk = seeded_point_market(400, seed=5)
    R = price_bound(mk)
    dense = mk.dense()
    w = dense.weights
    gn = mk.gain.value(mk.N[None, :], mk.N[:, None], mk.K[:, None])
    passes = (gn > 0) & (w <= gn)
    assert passes.any() and (dense.d[passes] <= np.repeat(R, passes.sum(1))).all()
    # and it prunes: most pairs lie beyond it
    assert (dense.d > R[:, None]).mean() > 0.9


@pytest.mark.parametrize("index", ["balltree", "kdtree"])
def test_pure_sellers_search_nothing_and_lam_zero_searches_everyone(index):
    mk = Market(N=[100, 200, 300], c=[0.1, 0.1, 0.1], K=[0, 400, 400],
                points=[[0.0], [1.0], [2.0]], lam=0.0)
    cert = solve_points(mk, index=index).certificate
    assert cert.bound[0] == -1 and cert.candidates(0).size == 0
    assert np.isinf(cert.bound[1]) and cert.candidates(1).tolist() == [0, 2]
    assert (cert.searched[1:] == 3).all()


def test_the_search_doubles_k_until_certified():
    mk = seeded_point_market(300, seed=2, lam=0.05)  # big radii: many candidates per row
    cert = solve_points(mk, index="kdtree", k0=1).certificate
    assert cert.searched.max() > 2
    live = (cert.bound >= 0) & (cert.searched < mk.m)
    assert (cert.radius2[live] > cert.bound[live]).all()


# --- wrong certificates are detected -------------------------------------------------


def _solved():
    mk = seeded_point_market(200, seed=11)
    out = solve_points(mk)
    check_certificate(mk, out.certificate)
    return mk, out


def test_a_missing_candidate_is_detected():
    mk, out = _solved()
    cert = out.certificate
    i = int(out.i[0])  # an importer with an accepted candidate
    drop = int(out.j[0])
    keep = np.ones(cert.indices.size, dtype=bool)
    keep[cert.indptr[i] + np.flatnonzero(cert.candidates(i) == drop)] = False
    indptr = cert.indptr.copy()
    indptr[i + 1:] -= 1
    bad = dataclasses.replace(cert, indices=cert.indices[keep], indptr=indptr)
    with pytest.raises(ValueError, match=f"importer {i}: client {drop} at d = .* is not a cand"):
        check_certificate(mk, bad)


def test_a_lowered_bound_is_detected():
    mk, out = _solved()
    bound = out.certificate.bound.copy()
    i = int(out.i[0])
    bound[i] = 0.5 * bound[i]
    with pytest.raises(ValueError, match=f"importer {i}: bound .* is below the price bound"):
        check_certificate(mk, dataclasses.replace(out.certificate, bound=bound))


def test_a_search_short_of_the_bound_is_detected():
    mk, out = _solved()
    radius2 = out.certificate.radius2.copy()
    i = int(out.i[0])
    radius2[i] = out.certificate.bound[i]
    with pytest.raises(ValueError, match=f"importer {i}: searched radius"):
        check_certificate(mk, dataclasses.replace(out.certificate, radius2=radius2))


def test_a_wrong_bound_formula_is_caught_by_the_claim_itself(monkeypatch):
    """If price_bound itself were wrong (too small), rules 1-3 agree with it; rule 4,
    the dense path's test on every left-out pair, still catches the pruned candidate."""
    from mechanism import points as points_module

    mk = seeded_point_market(200, seed=11)
    right = points_module.price_bound(mk)
    monkeypatch.setattr(points_module, "price_bound", lambda market: np.where(
        right >= 0, 0.25 * right, right))
    cert = points_module.solve_points(mk).certificate
    with pytest.raises(ValueError, match=r"is left out but passes w_ij <= g_i\(N_j\)"):
        check_certificate(mk, cert)


# --- markets given by points: construction -------------------------------------------


def test_market_refuses_d_and_points_together():
    with pytest.raises(ValueError, match="give d or points, not both"):
        Market(N=[1, 2], c=[0, 0], K=[1, 1], d=[[0, 1], [1, 0]], points=[[0.0], [1.0]])


@pytest.mark.parametrize("points,match", [
    ([[0.0], [np.nan]], r"points\[1, 0\] = nan must be finite"),
    ([[0.0, 1.0]], r"points has shape \(1, 2\), expected \(2, p\)"),
    ([0.0, 1.0], r"points has shape \(2,\), expected \(2, p\)"),
    ([[0.0], [2000.0]], r"squared bounding-box diagonal of 4e\+06"),
    ([["a"], [1]], "points must be an m x p array of numbers"),
])
def test_market_refuses_bad_points_naming_them(points, match):
    with pytest.raises(ValueError, match=match):
        Market(N=[1, 2], c=[0, 0], K=[1, 1], points=points)


def test_dense_functions_refuse_a_points_market_clearly():
    mk = seeded_point_market(5, seed=0)
    assert mk.d is None
    with pytest.raises(ValueError, match="greedy_graph: this market is given by points"):
        greedy_graph(mk)
    with pytest.raises(ValueError, match="market.dense()"):
        payments(mk, np.zeros((5, 5), dtype=np.int8))
    with pytest.raises(ValueError, match="solve_points: market has no points"):
        solve_points(mk.dense())


def test_solve_points_refuses_bad_arguments():
    mk = seeded_point_market(5, seed=0)
    with pytest.raises(ValueError, match="variant = 'greedy'"):
        solve_points(mk, "greedy")
    with pytest.raises(ValueError, match="k0 = 0"):
        solve_points(mk, index="kdtree", k0=0)
    with pytest.raises(ValueError, match="index = 'faiss' is not one of"):
        solve_points(mk, index="faiss")
