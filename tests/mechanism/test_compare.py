"""Tests of mechanism/compare.py: greedy versus exact, measured correctly."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from mechanism import Market, greedy_graph, objective, random_market
from mechanism.compare import compare, compare_market, eq9_violations, jaccard_rows

ROOT = Path(__file__).resolve().parents[2]


def _phi_row(mk, i, members):
    A = np.zeros((mk.m, mk.m), dtype=np.int8)
    A[i, list(members)] = 1
    return float(objective(mk, A)[i])


def test_eq9_violations_match_direct_phi_evaluation():
    """Each flagged pair is exactly a failure of eq. (9), checked by evaluating phi."""
    for seed in range(15):
        mk = random_market(3 + seed % 6, seed=seed, buyers=0.1)
        for variant in ("paper", "skip"):
            A = greedy_graph(mk, variant)
            first, second = eq9_violations(mk, A)
            for i in range(mk.m):
                members = set(np.nonzero(A[i])[0].tolist())
                base = _phi_row(mk, i, members)
                for j in range(mk.m):
                    if j == i:
                        continue
                    if j in members:
                        assert first[i, j] == (_phi_row(mk, i, members - {j}) <= base)
                    elif np.isfinite(mk.weights[i, j]):
                        assert second[i, j] == (_phi_row(mk, i, members | {j}) < base)


def test_paper_variant_can_violate_second_half_of_eq9():
    """Algorithm 2 as printed stops at the first failing candidate: a later one may pay."""
    # client 0: after taking 1, candidate 3 (largest remaining threshold, 500 points) fails,
    # so "paper" stops; candidate 2 (200 points at 0.5) would still lower phi_0.
    # (Found by a search over small markets with round numbers.)
    mk = Market(N=[100, 100, 200, 500], c=[2.0, 0.01, 0.5, 2.0], K=[2500] * 4, lam=0.0)
    A = greedy_graph(mk, "paper")
    _, second = eq9_violations(mk, A)
    assert second[0].tolist() == [False, False, True, False]
    assert _phi_row(mk, 0, {1, 2}) < _phi_row(mk, 0, {1})
    assert not eq9_violations(mk, greedy_graph(mk, "skip"))[1].any()


def test_jaccard_rows():
    A = np.array([[0, 1, 1], [0, 0, 0], [1, 0, 0]])
    B = np.array([[0, 1, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_allclose(jaccard_rows(A, B), [0.5, 1.0, 0.0])


def test_compare_market_gaps_are_nonnegative_and_consistent():
    mk = random_market(8, seed=3)
    out = compare_market(mk)
    for variant in ("paper", "skip"):
        o = out[variant]
        assert np.all(o["gap_abs"] >= -1e-12)
        np.testing.assert_allclose(o["gap_abs"], objective(mk, o["A"]) - out["exact"].objective)
        assert np.all(o["optimal"] == (o["gap_abs"] <= 1e-9 * np.abs(out["exact"].objective)))


def test_compare_is_deterministic():
    res = compare(sizes=[3, 5], markets=3, seed=1, solver="dp")
    again = compare(sizes=[3, 5], markets=3, seed=1, solver="dp")
    assert res.rows == again.rows
    assert len(res.rows) == 2 * 3 * (3 + 5)
    assert "variant" in res.table()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sizes": [1]}, "must be a non-empty list of integers >= 2"),
        ({"markets": 0}, "markets = 0 must be a positive integer"),
        ({"c_range": (1.0, 0.5)}, "c_range = .* needs 0 < low <= high"),
        ({"lam": -1.0}, "lam = -1.0 must be finite and >= 0"),
        ({"buyers": 0.7, "sellers": 0.5}, "buyers \\+ sellers <= 1"),
        ({"solver": "bruteforce", "sizes": [20]}, "needs m <= 16"),
    ],
)
def test_compare_iv(kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare(**kwargs)


def test_example_script_runs_and_shows_suboptimal_greedy(capsys):
    """examples/greedy_vs_optimal.py asserts greedy is suboptimal in its market."""
    runpy.run_path(str(ROOT / "examples" / "greedy_vs_optimal.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Optimal set [1, 3]" in out and "Algorithm 2 imports [1, 2]" in out
