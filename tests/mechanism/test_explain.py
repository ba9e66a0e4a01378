"""Tests for mechanism/explain.py: the trace is Algorithm 2, step by step."""

import numpy as np
import pytest
from worked_markets import skip_differs_market

from mechanism import Market, exact_graph, explain, greedy_graph, objective, random_market


@pytest.mark.parametrize("variant", ["paper", "skip"])
@pytest.mark.parametrize("seed", range(25))
def test_trace_accepts_exactly_the_greedy_row(variant, seed):
    """Every client's accepted candidates are its row of greedy_graph; phi agrees."""
    rng = np.random.default_rng(seed)
    mk = random_market(int(rng.integers(2, 9)), seed=rng, buyers=0.2, sellers=0.2, lam=0.3)
    A = greedy_graph(mk, variant)
    phi = objective(mk, A)
    for i in range(mk.m):
        ex = explain(mk, i, variant=variant)
        assert ex.imports == tuple(np.flatnonzero(A[i]).tolist())
        assert ex.phi == pytest.approx(phi[i], rel=1e-9, abs=1e-12)
        assert [s.j for s in ex.steps if s.action == "accept"] == [
            s.j for s in ex.steps if s.total_after > s.total_before]
        assert sorted(s.j for s in ex.steps) == [j for j in range(mk.m) if j != i]


def test_paper_stops_and_skip_passes_over():
    """The worked market where the variants differ: 'paper' stops at 2, 'skip' goes on to 3."""
    mk = skip_differs_market()
    paper, skip = explain(mk, 0), explain(mk, 0, variant="skip")
    assert [(s.j, s.action) for s in paper.steps] == [(1, "accept"), (2, "stop"),
                                                       (3, "not tried")]
    assert [(s.j, s.action) for s in skip.steps] == [(1, "accept"), (2, "skip"), (3, "accept")]
    assert "stops here" in paper.text() and "passed over" in skip.text()
    step = paper.steps[0]
    assert step.w == mk.weights[0, 1] and step.total_after == mk.N[1]


def test_exact_beside_the_trace():
    mk = random_market(7, seed=1, lam=0.1, buyers=0.125, sellers=0.125)
    ex = explain(mk, 2, exact=True)
    opt = exact_graph(mk, solver="bruteforce")
    assert ex.exact_imports == tuple(np.flatnonzero(opt.A[2]).tolist())
    assert ex.exact_phi == pytest.approx(opt.objective[2])
    assert ex.exact_phi <= ex.phi + 1e-12
    assert "exact optimum" in ex.text()


def test_pure_buyer_and_seller_reasons():
    mk = Market(N=[100, 200, 300], c=[0.1, float("inf"), 0.1], K=[400, 400, 0])
    assert "pure buyer" in explain(mk, 0).steps[-1].reason
    assert "pure seller" in explain(mk, 2).steps[0].reason
    assert explain(mk, 2).imports == ()


@pytest.mark.parametrize("i, variant, match", [
    (3, "paper", r"i = 3 is not a client index"),
    (-1, "paper", r"i = -1 is not a client index"),
    (True, "paper", r"i = True"),
    (0, "greedy", r"variant = 'greedy' is not one of"),
])
def test_bad_arguments(i, variant, match):
    mk = Market(N=[1, 2, 3], c=[0, 0, 0], K=[1, 1, 1])
    with pytest.raises(ValueError, match=match):
        explain(mk, i, variant=variant)
