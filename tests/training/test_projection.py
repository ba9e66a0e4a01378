"""Issue 23 part 2: projected (Johnson-Lindenstrauss) distances handed to the market."""

import json
import re
import shutil

import numpy as np
import pytest
import torch

from mechanism import Market, greedy_graph, settle
from training import Config, Exchange, audit_run, train
from training.distance import get_distance
from training.server import market_points, project_uploads


def test_projection_is_seeded_and_unbiased():
    theta = torch.randn(6, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = project_uploads(theta, 64, seed=3), project_uploads(theta, 64, seed=3)
    assert a.shape == (6, 64) and np.array_equal(a, b)
    assert not np.array_equal(a, project_uploads(theta, 64, seed=4))
    exact = get_distance("sqeuclidean_mean").pairwise(theta).numpy()
    off = ~np.eye(6, dtype=bool)
    # one projection's relative error has standard deviation sqrt(2 / k) = 0.177 at
    # k = 64, the mean of 200 seeds 0.0125: within five of those (0.0625) of the exact
    mean = np.mean([Market(N=[1] * 6, c=[0] * 6, K=[1] * 6,
                           points=project_uploads(theta, 64, seed=s)).dense().d
                    for s in range(200)], axis=0)
    assert np.abs(mean[off] / exact[off] - 1).max() < 5 * np.sqrt(2 / 64) / np.sqrt(200)


def test_projection_of_sqeuclidean_is_not_divided_by_p():
    theta = torch.randn(4, 500, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y_mean = project_uploads(theta, 8, seed=0)
    y_plain = project_uploads(theta, 8, seed=0, distance="sqeuclidean")
    np.testing.assert_allclose(y_plain, y_mean * np.sqrt(500))


def test_cosine_cannot_be_projected():
    with pytest.raises(ValueError, match="distance_projection needs a squared-L2 distance"):
        project_uploads(torch.zeros(3, 4), 2, seed=0, distance="cosine")


def test_market_points_make_the_median_distance_one():
    Y = np.random.default_rng(0).normal(size=(9, 5))
    Z = market_points(Y, "median")
    d = Market(N=[1] * 9, c=[0] * 9, K=[1] * 9, points=Z).dense().d
    assert np.median(d[~np.eye(9, dtype=bool)]) == pytest.approx(1.0)
    assert market_points(Y, "none") is Y


def test_settle_takes_a_points_market_as_its_dense_twin():
    rng = np.random.default_rng(2)
    mk = Market(N=rng.integers(50, 500, 8), c=rng.uniform(0.01, 0.5, 8),
                K=rng.uniform(1e3, 1e4, 8), points=rng.normal(size=(8, 3)), lam=0.5)
    a, b = settle(mk), settle(mk.dense())
    assert (a.A == b.A).all() and np.array_equal(a.p, b.p)
    assert (a.A == greedy_graph(mk.dense())).all()


def test_config_refuses_a_projection_of_cosine(tiny):
    with pytest.raises(ValueError, match=r"\[ipfl\] distance_projection = 8 needs distance"):
        tiny.replace(hyper={"distance": "cosine", "distance_projection": 8})
    assert "distance_projection" not in tiny.hyper  # the paper's configs are unchanged
    with pytest.raises(ValueError, match=r"\[ipfl\] distance_projection"):
        tiny.replace(hyper={"distance_projection": -1})


@pytest.fixture(scope="module")
def projected_run(tmp_path_factory):
    """The tiny run (tests/training/conftest.py) with distance_projection = 16, trained once."""
    cfg = Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5,
                 hyper={"distance_projection": 16})
    run = tmp_path_factory.mktemp("projected") / "run"
    train(cfg, run, progress=False)
    return run


def _round1(run):
    return json.loads((run / "rounds" / "0001.json").read_text())


def test_a_projected_run_records_points_and_passes_the_audit(projected_run, tmp_path):
    doc = _round1(projected_run)
    assert "d" not in doc["inputs"]
    k = len(doc["clients"])
    assert np.shape(doc["inputs"]["points"]) == (k, 16)
    ex = Exchange.from_json(doc)
    assert ex.market().points is not None and ex.to_json() == doc
    assert Exchange.from_json(ex.to_json()) == ex
    report = audit_run(projected_run)
    assert report.problems == [] and len(report.rounds) == 2
    # a moved point changes the recomputed market: the audit notices
    run = tmp_path / "run"
    shutil.copytree(projected_run, run)
    doc["inputs"]["points"][0] = [p + 5.0 for p in doc["inputs"]["points"][0]]
    (run / "rounds" / "0001.json").write_text(json.dumps(doc))
    problems = audit_run(run).problems
    assert any("recorded A differs from the recomputed one" in p for p in problems), problems


@pytest.mark.parametrize(("points", "says"), [
    ([[0.0]], "points has shape (1, 1), not (4, p) for 4 clients"),
    ("x", "points is not numeric"),
    ([[float("nan")] * 16] * 4, "points[0, 0] = nan is not finite"),
    (None, "lacks 'd'"),
])
def test_a_tampered_points_entry_is_refused_naming_it(projected_run, points, says):
    doc = _round1(projected_run)
    doc["inputs"]["points"] = points
    with pytest.raises(ValueError, match=re.escape(says)):
        Exchange.from_json(doc)
