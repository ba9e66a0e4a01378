"""FedFomo: weights from the validation split only, positive and normalised; the server side."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from training import Config, prepare
from training.algorithms import Message, ServerInput, get_algorithm
from training.algorithms.fedfomo import choose_candidates, fomo_weights
from training.client import LocalData, evaluate, local_sgd
from training.profiles import Reports

CFG = Config(algorithm="fedfomo", clients=4, rounds=2, epochs=1, hidden=16, max_samples=400,
             beta=100.0)


@pytest.fixture(scope="module")
def setting():
    """A federation, client 0's state at theta0, and three candidates (two trained, one noisy)."""
    fed = prepare(CFG)
    algo = get_algorithm(CFG)
    state = algo.init_client_state(0, fed.theta0, fed.buffers0)
    shared = fed.shared
    cands = []
    for j in (1, 2):  # other clients' models after one epoch from theta0
        ctx = fed.context(j, 0)
        st = algo.init_client_state(j, fed.theta0, fed.buffers0)
        params, _ = local_sgd(ctx, fed.data[j], st, fed.theta0[shared], fed.theta0[shared], 0.0,
                              algo.local_objective)
        cands.append(params[shared])
    gen = torch.Generator().manual_seed(0)
    cands.append(fed.theta0[shared] + torch.randn(int(shared.sum()), generator=gen))
    msg = Message(start=fed.theta0[shared], center=fed.theta0[shared], prox=0.0,
                  extras={"fomo_models": torch.stack(cands),
                          "fomo_ids": torch.tensor([1, 2, 3])})
    return fed, algo, state, msg


def _step(setting, data: LocalData | None = None, epochs: int = 1):
    fed, algo, state, msg = setting
    ctx = dataclasses.replace(fed.context(0, 1), epochs=epochs)
    return algo.client_step(msg, state, fed.data[0] if data is None else data, ctx)


def test_weights_positive_and_normalised(setting) -> None:
    """The used weights are >= 0, sum to 1, sit at the candidates' ids; the noisy one gets 0."""
    out = _step(setting)
    w = out.info["fomo_w"]
    assert w.shape == (4,) and (w >= 0).all() and w[0] == 0
    assert float(w.sum()) == pytest.approx(1.0)
    assert w[1] > 0 and w[2] > 0 and w[3] == 0
    s = out.info["fomo_score"]
    assert s[3] < 0 and float(s.abs().sum()) > 0


def test_update_is_eq_6_on_validation_losses(setting) -> None:
    """With no local epoch the upload is own + sum_n w_n (theta_n - own), w from eq. (5)."""
    fed, algo, state, msg = setting
    data = fed.data[0]
    own = state["params"][fed.shared]
    _, l_own = evaluate(fed.model, state["params"], state["buffers"], data.X_val, data.y_val)
    losses = []
    for theta in msg.extras["fomo_models"]:
        full = state["params"].clone()
        full[fed.shared] = theta
        losses.append(evaluate(fed.model, full, state["buffers"], data.X_val, data.y_val)[1])
    diff = msg.extras["fomo_models"].double() - own.double()
    s = (l_own - torch.tensor(losses, dtype=torch.float64)) / diff.abs().sum(dim=1)
    w = s.clamp_min(0) / s.clamp_min(0).sum()
    # Execute
    out = _step(setting, epochs=0)
    # Assert
    torch.testing.assert_close(out.upload.double(), own.double() + w @ diff)
    torch.testing.assert_close(out.info["fomo_w"][1:], w)


def test_never_reads_the_test_split(setting) -> None:
    """Garbage test inputs and labels leave the weights and the trained model unchanged."""
    fed = setting[0]
    d = fed.data[0]
    gen = torch.Generator().manual_seed(1)
    garbage = dataclasses.replace(
        d, X_test=torch.randn(d.X_test.shape, generator=gen) * 100,
        y_test=torch.randint(0, 10, d.y_test.shape, generator=gen))
    a, b = _step(setting), _step(setting, garbage)
    torch.testing.assert_close(a.info["fomo_w"], b.info["fomo_w"], rtol=0, atol=0)
    torch.testing.assert_close(a.info["fomo_score"], b.info["fomo_score"], rtol=0, atol=0)
    torch.testing.assert_close(a.upload, b.upload, rtol=0, atol=0)


def test_reads_the_validation_split(setting) -> None:
    """The converse: garbage validation labels change the weights."""
    fed = setting[0]
    d = fed.data[0]
    gen = torch.Generator().manual_seed(2)
    garbage = dataclasses.replace(d, y_val=torch.randint(0, 10, d.y_val.shape, generator=gen))
    a, b = _step(setting), _step(setting, garbage)
    assert not torch.equal(a.info["fomo_score"], b.info["fomo_score"])


def test_no_positive_weight_keeps_own_model() -> None:
    """All candidates worse: zero weights, so the update leaves the model where it was."""
    used, score = fomo_weights(1.0, torch.tensor([1.5, 2.0]), torch.tensor([3.0, 4.0]))
    assert torch.equal(used, torch.zeros(2))
    torch.testing.assert_close(score, torch.tensor([-0.5 / 3, -1.0 / 4]))
    used, _ = fomo_weights(1.0, torch.tensor([0.5, 2.0, 0.0]), torch.tensor([1.0, 1.0, 0.0]))
    torch.testing.assert_close(used, torch.tensor([1.0, 0.0, 0.0]))  # identical model: 0


def test_candidates_greedy_and_exploring() -> None:
    """epsilon = 0 takes the top-M affinities; every row is distinct and excludes the client."""
    P = np.array([[0, 3, 1, 2, 0], [1, 0, 1, 1, 5], [0, 0, 0, 9, 8], [2, 1, 0, 0, 0],
                  [0, 0, 0, 0, 0]], dtype=float)
    clients = np.arange(5)
    ids = choose_candidates(P, clients, 2, 0.0, np.random.default_rng(0))
    assert ids[0].tolist() == [1, 3] and ids[2].tolist() == [3, 4] and ids[1, 0] == 4
    for eps in (0.0, 0.5, 1.0):
        for seed in range(10):
            ids = choose_candidates(P, clients, 4, eps, np.random.default_rng(seed))
            for i in range(5):
                assert sorted(ids[i]) == [j for j in range(5) if j != i]
    seen = {tuple(choose_candidates(P, clients, 1, 1.0, np.random.default_rng(s))[0])
            for s in range(40)}
    assert seen == {(1,), (2,), (3,), (4,)}  # full exploration reaches every other client


def test_server_step_affinity_graph_and_extras() -> None:
    """P gains last round's scores; A is last round's positive weights; M = min(M, k - 1)."""
    # Prepare: 3 of 4 clients still in (global ids 0, 2, 3)
    algo = get_algorithm(CFG)
    clients = np.array([0, 2, 3])
    uploads = torch.arange(3.0)[:, None].expand(3, 5).clone()
    score = torch.tensor([[0, 0, 0.5, -0.5], [0, 0, 0, 1.0], [1.0, 0, 0, 0]], dtype=torch.float64)
    w = torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 1.0], [0.5, 0.5, 0, 0]], dtype=torch.float64)
    rep = Reports.make(np.ones(3), c=np.full(3, 0.2), K=np.ones(3))
    inp = ServerInput(round=1, clients=clients, m=4, reports=rep, true=rep, uploads=uploads,
                      infos={"fomo_w": w, "fomo_score": score}, theta0=torch.zeros(5), seed=3)
    state = algo.init_server_state(4, torch.zeros(5))
    # Execute
    out, new = algo.server_step(inp, state)
    # Assert
    assert torch.equal(state["P"], torch.zeros(4, 4))  # pure: input state untouched
    torch.testing.assert_close(new["P"][clients], score)
    assert out.A.tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    ids, models = out.extras["fomo_ids"], out.extras["fomo_models"]
    assert ids.shape == (3, 2) and models.shape == (3, 2, 5)
    row = {0: 0, 2: 1, 3: 2}
    for i in range(3):
        assert clients[i] not in ids[i].tolist()
        for s in range(2):
            assert torch.equal(models[i, s], uploads[row[int(ids[i, s])]])
    torch.testing.assert_close(out.starts, uploads)


def test_refuses_no_validation_split() -> None:
    """val_frac = 0 is refused, naming the key and value."""
    with pytest.raises(ValueError, match=r"val_frac = 0\.0 must lie in \(0, 1 - test_frac\)"):
        Config(algorithm="fedfomo", val_frac=0.0)
