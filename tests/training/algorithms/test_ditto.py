"""Ditto: two models per client, the personal one evaluated and pulled to the global one."""

import numpy as np
import pytest
import torch

from training import Config, prepare, train
from training.algorithms import Message, ServerInput, get_algorithm
from training.algorithms.base import all_pairs
from training.client import evaluate, local_sgd, run_client
from training.profiles import Reports

CFG = Config(algorithm="ditto", clients=4, rounds=2, epochs=1, hidden=16, max_samples=400)


@pytest.fixture(scope="module")
def fed():
    return prepare(CFG)


def _two_rounds(fed, lam: float = 1.0):
    """Run client 0 through round 0 (plain) and round 1 (start w, prox lam); return both."""
    algo = get_algorithm(CFG)
    state = algo.init_client_state(0, fed.theta0, fed.buffers0)
    theta0 = fed.theta0[fed.shared]
    out0 = algo.client_step(Message(start=theta0, center=theta0, prox=0.0), state,
                            fed.data[0], fed.context(0, 0))
    w = theta0 + 0.05 * torch.randn(theta0.shape, generator=torch.Generator().manual_seed(1))
    msg = Message(start=w, center=w, prox=lam)
    return algo, out0, msg


def test_personal_model_is_evaluated_and_differs_from_global(fed):
    """The evaluated model is the personal one, distinct from the uploaded global copy."""
    # Prepare
    algo, out0, msg = _two_rounds(fed)
    data, ctx = fed.data[0], fed.context(0, 1)
    # Execute
    out, metrics = run_client(algo, msg, out0.state, data, ctx)
    # Assert
    assert torch.equal(out.evaluated, out.state["personal"])
    assert torch.equal(out.upload, out.state["params"][fed.shared])
    assert not torch.allclose(out.state["personal"], out.state["params"])
    acc, _ = evaluate(ctx.model, out.state["personal"], out.state["personal_buffers"],
                      data.X_test, data.y_test)
    assert metrics["acc"] == acc


def test_global_copy_is_plain_sgd_from_the_received_model(fed):
    """The upload is local SGD from msg.start on the data loss only (FedAvg's client)."""
    algo, out0, msg = _two_rounds(fed)
    ctx = fed.context(0, 1)
    out = algo.client_step(msg, out0.state, fed.data[0], ctx)
    expect, _ = local_sgd(ctx, fed.data[0], out0.state, msg.start, msg.start, 0.0,
                          algo.local_objective, purpose=0)
    assert torch.equal(out.state["params"], expect)


def test_personal_model_continues_from_its_own_and_is_pulled_to_the_global(fed):
    """v_k starts from the previous v_k (not w^t) and the proximal term changes it."""
    # Prepare
    algo, out0, msg = _two_rounds(fed)
    ctx, data, st = fed.context(0, 1), fed.data[0], out0.state
    # Execute
    out = algo.client_step(msg, st, data, ctx)
    no_prox = algo.client_step(Message(msg.start, msg.center, 0.0), st, data, ctx)
    from_w, _ = local_sgd(ctx, data, st, msg.start, msg.start, msg.prox, algo.local_objective,
                          params=st["personal"], purpose=1)
    # Assert
    assert not torch.equal(out.state["personal"], from_w)
    assert not torch.allclose(out.state["personal"], no_prox.state["personal"])
    pull = (out.state["personal"][fed.shared] - msg.start).norm()
    free = (no_prox.state["personal"][fed.shared] - msg.start).norm()
    assert pull < free
    # the global copy ignores lam
    assert torch.equal(out.state["params"], no_prox.state["params"])


def test_server_sends_weighted_mean_and_lam():
    """Start = centre = the N-weighted mean of the uploads; prox = lam; complete graph."""
    algo = get_algorithm(CFG.replace(hyper={"lam": 0.5}))
    up = torch.tensor([[0.0, 0.0], [3.0, 6.0]], dtype=torch.float64)
    rep = Reports.make(N=[1, 2], c=[0.2, 0.2], K=[100, 200])
    inp = ServerInput(round=1, clients=np.array([0, 3]), m=4, reports=rep, true=rep,
                      uploads=up, infos={}, theta0=torch.zeros(2, dtype=torch.float64), seed=0)
    out, _ = algo.server_step(inp, {})
    assert torch.allclose(out.starts, torch.tensor([[2.0, 4.0]] * 2, dtype=torch.float64))
    assert torch.equal(out.centers, out.starts)
    assert list(out.prox) == [0.5, 0.5]
    assert (out.A == all_pairs(2)).all()


def test_lam_zero_is_refused():
    """lam = 0 (PFLlib's default) would be local training: refused, naming the key."""
    with pytest.raises(ValueError, match=r"\[ditto\] lam = 0.0 must be > 0"):
        Config(algorithm="ditto", hyper={"lam": 0})


def test_end_to_end(tmp_path):
    """Two rounds run and evaluate the personal models."""
    rows = train(CFG, tmp_path / "run", progress=False)
    assert {r["round"] for r in rows} == {0, 1, 2}
    assert all(0.0 <= r["acc"] <= 1.0 for r in rows)
