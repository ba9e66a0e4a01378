"""The explorer's Algorithm 2 step-through and liar (ipfl/explorer/compute.py), no browser."""

import json
from pathlib import Path

import numpy as np
import pytest

from ipfl.explorer.compute import compute, liar_report, step_through
from ipfl.explorer.presets import presets
from mechanism import Market, explain, greedy_graph, payments, thresholds, utilities
from mechanism.market_dict import market_from_dict
from proofs_checks import liar_utility

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "market.json"


def _markets():
    yield "example", market_from_dict(json.loads(EXAMPLE.read_text()))
    for p in presets():
        yield p["name"], market_from_dict(p["market"])
    rng = np.random.default_rng(7)
    for k in range(5):
        m = int(rng.integers(2, 9))
        yield f"random{k}", Market(N=rng.integers(10, 500, m), c=rng.uniform(0, 0.5, m),
                                   K=rng.uniform(0, 2000, m), d=None, lam=0.0)


@pytest.mark.parametrize("variant", ["paper", "skip"])
def test_step_through_follows_the_greedy_rule(variant):
    """Frames come in threshold order, test exactly n + N_j < N^Th_ij, and end on row i of A."""
    for name, mk in _markets():
        th = thresholds(mk)
        A = greedy_graph(mk, variant)
        for i in range(mk.m):
            frames = step_through(mk, i, variant)
            # Assert: one frame per other client, thresholds descending (ties: lower index)
            assert [f["j"] for f in frames] == sorted(
                (j for j in range(mk.m) if j != i), key=lambda j: (-th[i, j], j)), name
            assert [f["action"] for f in frames] == [s.action for s in explain(mk, i,
                                                                               variant=variant).steps]
            n = 0.0
            for f in frames:
                if f["action"] == "not tried":
                    assert f["passed"] is None and f["test"].startswith("not tested")
                    continue
                assert f["passed"] == bool(n + mk.N[f["j"]] < th[i, f["j"]]), (name, i, f)
                assert f["test"].startswith(f"n + N_{f['j']} = {n:g} + {mk.N[f['j']]:g} = ")
                assert (" < " in f["test"]) == f["passed"]
                if f["passed"]:
                    n += mk.N[f["j"]]
                assert f["after"] == f["before"] + ([f["j"]] if f["passed"] else [])
            final = frames[-1]["after"] if frames else []
            assert sorted(final) == np.flatnonzero(A[i]).tolist(), (name, i)


def test_step_price_shows_the_weight_formula():
    mk = market_from_dict(json.loads(EXAMPLE.read_text()))
    frames = {f["j"]: f for f in step_through(mk, 0)}
    assert frames[1]["price"] == ("w_01 = c_1 + lambda N_1/N_0 d_01 = 0.1 + 0.2 x 300/120 x "
                                  f"{mk.d[0, 1]:.4g} = {mk.weights[0, 1]:.4g}")
    assert frames[4]["price"].startswith("w_04 = inf: client 4 is a pure buyer")


def test_compute_sends_the_step_through():
    doc = json.loads(EXAMPLE.read_text())
    res = compute({"market": doc, "client": 1, "variant": "skip"})
    assert res["steps"] == json.loads(json.dumps(step_through(market_from_dict(doc), 1, "skip")))


def test_liar_market_is_what_the_mechanism_sees():
    """With a liar the graphs and bills come from the report; the liar box from the truth."""
    doc = json.loads(EXAMPLE.read_text())
    true = market_from_dict(doc)
    res = compute({"market": doc, "client": 0, "misreport": "N",
                   "liar": {"client": "0", "N": "10"}})
    assert res["ok"]
    seen = true.with_report(0, N=10 * true.N[0])
    A = greedy_graph(seen)
    assert res["greedy"]["A"] == A.tolist()
    np.testing.assert_array_equal(res["greedy"]["p"], payments(seen, A).p)
    assert res["N"][0] == 1200.0
    box = res["liar"]
    assert box["lying"] == liar_utility(true, seen, 0, A)
    assert box["truthful"]["U"] == pytest.approx(utilities(true, greedy_graph(true))[0])
    assert box["reported"]["N"] == 1200.0 and box["true"]["N"] == 120.0
    assert box["pays"] == (box["lying"]["U"] > box["truthful"]["U"])
    # the curve is the truth's, with the report marked
    curve = res["misreport"]
    assert curve["truth"] == 120.0 and curve["report"] == 1200.0
    assert curve["reports"][-1] == 1200.0 and curve["reports"][0] == pytest.approx(30.0)
    assert curve["U"][curve["reports"].index(1200.0)] == box["lying"]["U"]


def test_liar_factor_one_is_the_truth():
    doc = json.loads(EXAMPLE.read_text())
    res = compute({"market": doc, "liar": {"client": 2, "N": 1}})
    plain = compute({"market": doc})
    assert res["greedy"] == plain["greedy"]
    assert res["liar"]["lying"] == res["liar"]["truthful"] and res["liar"]["pays"] is False


@pytest.mark.parametrize("liar, field, message", [
    ({"client": "9", "N": 2}, "liar-client",
     "liar.client = '9' is not a client index (0 <= i < 5)"),
    ({"client": True, "N": 2}, "liar-client", "liar.client = True is not a client index"),
    ({"client": 0, "N": "-1"}, "liar-N", "liar.N = -1.0 must be finite and > 0"),
    ({"client": 0, "N": "abc"}, "liar-N", "liar.N = 'abc' is not a number"),
    ({"client": 0, "c": "inf"}, "liar-c", "liar.c = inf must be finite and > 0"),
])
def test_bad_liar_names_the_field(liar, field, message):
    res = compute({"market": json.loads(EXAMPLE.read_text()), "liar": liar})
    assert not res["ok"]
    assert res["errors"][0]["field"] == field
    assert res["errors"][0]["message"].startswith(message)


def test_liar_report_factors():
    mk = Market(N=[100, 200], c=[0.1, 0.2], K=[400, 0])
    seen, i, factors = liar_report(mk, {"client": 1, "N": 0.5, "c": 2})
    assert i == 1 and factors == {"N": 0.5, "c": 2.0}
    assert seen.N.tolist() == [100, 100] and seen.c.tolist() == [0.1, 0.4]
