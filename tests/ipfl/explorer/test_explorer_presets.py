"""The explorer's presets (ipfl/explorer/presets.py): valid, faithful to training, true."""

import math

import numpy as np
import pytest
from starlette.testclient import TestClient

from ipfl.explorer.app import create_app
from ipfl.explorer.compute import MAX_CLIENTS, compute
from ipfl.explorer.presets import PRESETS, ROLES, ROLES_N, ROLES_SEED, presets, roles_market
from mechanism import explain, greedy_graph
from mechanism.market_dict import market_from_dict


def _by_name(name):
    return next(p for p in presets() if p["name"] == name)


def test_every_preset_computes():
    assert tuple(p["name"] for p in presets()) == PRESETS
    for p in presets():
        mk = market_from_dict(p["market"])
        assert 2 <= mk.m <= MAX_CLIENTS
        assert all(cl.get("name") for cl in p["market"]["clients"])
        res = compute({"market": p["market"], "client": p["client"], "liar": p["liar"]})
        assert res["ok"], (p["name"], res)
        assert (res["liar"] is None) == (p["liar"] is None)


def test_roles_are_the_package_rule_for_eight_clients():
    from ipfl.experiments.market import roles_for
    from training.profiles import parse_roles

    assert ROLES == parse_roles(roles_for(8), 8)
    assert [cl["name"] for cl in roles_market()["clients"]] == list(ROLES)


def test_roles_market_draws_c_and_K_as_training_does():
    from training.profiles import build_profiles

    prof = build_profiles(np.asarray(ROLES_N, dtype=float), c=0.2, K_per_sample=100.0,
                          budget=math.inf, roles=ROLES, liars=[], liar_N=1.0, liar_c=1.0,
                          liar_K=1.0, rng=np.random.default_rng(ROLES_SEED))
    mk = market_from_dict(roles_market())
    np.testing.assert_array_equal(mk.N, prof.true.N)
    np.testing.assert_allclose(mk.c, prof.true.c, rtol=0, atol=5e-5)  # rounded to 4 decimals
    np.testing.assert_allclose(mk.K, prof.true.K, rtol=0, atol=0.5)  # rounded to integers
    # the mechanism sees the attacker as a pure seller
    assert mk.roles == ("trader",) * 3 + ("buyer",) * 2 + ("seller",) * 3


def test_roles_market_prices_distance_as_training_does():
    from scipy.spatial.distance import pdist

    doc = roles_market()
    assert doc["lam"] == 1.0
    assert np.median(pdist(np.array(doc["points"]))) == pytest.approx(1.0, abs=5e-3)


@pytest.mark.parametrize("name", ["roles", "attacker"])
def test_what_the_attacker_presets_say_is_true(name):
    """At lambda = 1 nobody imports the attacker; at lambda = 0 traders do (the page says so)."""
    p = _by_name(name)
    mk = market_from_dict(p["market"])
    att = [cl["name"] for cl in p["market"]["clients"]].index("attacker")
    assert greedy_graph(mk)[:, att].sum() == 0
    free = mk.replace(lam=0.0)
    A0 = greedy_graph(free)
    traders = [i for i, r in enumerate(mk.roles) if r == "trader"]
    assert all(A0[i, att] for i in traders)
    if name == "attacker":  # "the cheapest seller ... every trader imports it first"
        assert all(explain(free, i).steps[0].j == att for i in traders)


def test_liar_preset_is_a_tenfold_over_report_of_N():
    p = _by_name("liar")
    assert p["liar"] == {"client": 0, "N": 10.0}
    res = compute({"market": p["market"], "client": 0, "misreport": "N", "liar": p["liar"]})
    assert res["liar"]["reported"]["N"] == 10 * res["liar"]["true"]["N"]


def test_presets_endpoint():
    client = TestClient(create_app(), base_url="http://127.0.0.1:8765")
    assert client.get("/api/presets").json() == presets()
