"""The explorer's JSON (ipfl/explorer/compute.py) and app (ipfl/explorer/app.py), no browser."""

import json
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from ipfl.explorer.app import DEFAULT_MARKET, create_app
from ipfl.explorer.compute import compute, field_of, misreport_curve
from mechanism import exact_graph, explain, greedy_graph, payments, thresholds, utilities
from mechanism.market_dict import market_from_dict
from proofs_checks import liar_utility

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "market.json"


def test_default_market_is_the_example_file():
    doc = json.loads(EXAMPLE.read_text())
    doc.pop("description")
    assert doc == DEFAULT_MARKET


@pytest.mark.parametrize("variant", ["paper", "skip"])
def test_compute_is_the_mechanism(variant):
    doc = json.loads(EXAMPLE.read_text())
    doc["clients"][1]["c"] = "0.5"  # strings, as the page sends them
    res = compute({"market": doc, "client": 2, "variant": variant, "misreport": "N"})
    assert res["ok"]
    mk = market_from_dict(doc)
    A = greedy_graph(mk, variant)
    opt = exact_graph(mk, solver="bruteforce").A
    assert res["greedy"]["A"] == A.tolist() and res["exact"]["A"] == opt.tolist()
    np.testing.assert_array_equal(res["greedy"]["p"], payments(mk, A).p)
    np.testing.assert_array_equal(res["exact"]["U"], utilities(mk, opt))
    th = np.array(res["thresholds"], dtype=object)
    assert th[0, 1] == thresholds(mk)[0, 1]
    assert res["trace"] == explain(mk, 2, variant=variant).to_dict()
    json.dumps(res)  # JSON-ready, inf as strings


def test_misreport_curve_is_liar_utility():
    mk = market_from_dict(json.loads(EXAMPLE.read_text()))
    cur = misreport_curve(mk, 1, "c")
    k = 7
    lie = mk.with_report(1, c=cur["reports"][k])
    assert cur["U"][k] == liar_utility(mk, lie, 1, greedy_graph(lie))["U"]
    assert cur["U_truth"] == pytest.approx(utilities(mk, greedy_graph(mk))[1])
    assert misreport_curve(mk, 4, "c")["reports"] == []  # a pure buyer


@pytest.mark.parametrize("edit, field, message", [
    (("clients", 0, "N", "-5"), "N-0", "clients[0].N = -5.0 must be finite and > 0"),
    (("clients", 3, "K", "x"), "K-3", "clients[3].K = 'x' is not a number"),
    (("points", 2, 1, ""), "y-2", "points[2][1] = '' is not a number"),
    (("lam", None, None, "-1"), "lam", "lam = -1.0 must be finite and >= 0"),
])
def test_bad_fields_come_back_with_the_field(edit, field, message):
    doc = json.loads(EXAMPLE.read_text())
    key, i, f, value = edit
    if i is None:
        doc[key] = value
    else:
        doc[key][i][f] = value
    assert compute({"market": doc}) == {"ok": False,
                                        "errors": [{"field": field, "message": message}]}


def test_nine_clients_refused():
    doc = {"clients": [{"N": 1, "c": 0, "K": 1}] * 9}
    res = compute({"market": doc})
    assert not res["ok"] and res["errors"][0]["field"] == "clients"
    assert "2-8 clients, got 9" in res["errors"][0]["message"]


def test_field_of_unknown_message():
    assert field_of("something else") == "market"


def test_app_endpoints():
    client = TestClient(create_app(), base_url="http://127.0.0.1:8765")
    assert "iPFL market explorer" in client.get("/").text
    assert client.get("/api/market").json() == DEFAULT_MARKET
    assert "recompute" in client.get("/static/app.js").text
    ok = client.post("/api/compute", json={"market": DEFAULT_MARKET}).json()
    assert ok["ok"] and ok["m"] == 5
    bad = client.post("/api/compute", content=b"not json").json()
    assert bad == {"ok": False, "errors": [{"field": "market",
                                            "message": "the request body is not JSON"}]}
    assert client.post("/api/compute", json=[1, 2]).json()["ok"] is False


@pytest.mark.parametrize("defence", ["estimate", "checked"])
def test_compute_shows_a_defence(defence):
    """Issue 24: under a defence the greedy graph and bills run on the priced sizes."""
    from mechanism import priced_market
    from proofs_checks.properties import defended_outcome, mechanism_for

    doc = json.loads(EXAMPLE.read_text())
    mk = market_from_dict(doc)
    est = (mk.N * np.linspace(0.5, 3.0, mk.m)).tolist()  # some reports refuted
    res = compute({"market": doc, "client": 1, "defence": defence, "estimate": est,
                   "band": 0.5, "misreport": "N"})
    assert res["ok"] and res["defence"] == defence
    priced = priced_market(mk, defence, est, 0.5)
    out = defended_outcome(mk, mechanism_for("paper"), defence, np.array(est), 0.5)
    assert res["greedy"]["A"] == out["A"].tolist()
    np.testing.assert_allclose(res["greedy"]["U"], out["U"])
    assert res["priced_N"] == priced.N.tolist()
    assert res["trace"]["defence"] == defence and res["trace"]["priced"] == priced.N.tolist()
    json.dumps(res)


def test_compute_estimate_defence_makes_the_N_curve_flat():
    """With an exact estimate the report of N is not priced: the liar's curve is flat."""
    doc = json.loads(EXAMPLE.read_text())
    res = compute({"market": doc, "client": 0, "defence": "estimate", "misreport": "N"})
    U = np.array(res["misreport"]["U"], dtype=float)
    assert np.all(U == U[0])


def test_compute_refuses_a_bad_estimate_naming_it():
    doc = json.loads(EXAMPLE.read_text())
    res = compute({"market": doc, "defence": "checked", "estimate": [1.0]})
    assert not res["ok"] and res["errors"][0]["field"] == "defence"
    assert "estimate has shape (1,)" in res["errors"][0]["message"]


@pytest.mark.parametrize("defence", ["estimate", "checked"])
def test_liar_box_and_step_through_follow_the_defence(defence):
    """Under a defence the liar's box is the defended round's true utility, and the
    step-through walks the priced market (the one the trace and the graph use)."""
    from ipfl.explorer.compute import step_through
    from mechanism.defence import priced_market
    from proofs_checks.properties import defended_outcome, mechanism_for

    form = {"market": DEFAULT_MARKET, "client": 0, "variant": "paper", "misreport": "N",
            "defence": defence, "liar": {"client": 0, "N": 10}}
    out = compute(form)
    assert out["ok"]
    true = market_from_dict(DEFAULT_MARKET)
    seen = true.with_report(0, N=float(true.N[0]) * 10)
    band = 0.5 if defence == "checked" else 0.0
    lying = defended_outcome(seen, mechanism_for("paper"), defence, true.N, band, true=true)
    truthful = defended_outcome(true, mechanism_for("paper"), defence, true.N, band, true=true)
    assert out["liar"]["lying"]["U"] == pytest.approx(float(lying["U"][0]))
    assert out["liar"]["gain_from_lying"] == pytest.approx(
        float(lying["U"][0] - truthful["U"][0]))
    priced = priced_market(seen, defence, true.N, band)
    assert out["steps"] == step_through(priced, 0, "paper")
