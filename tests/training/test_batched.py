"""Clients trained together (training/batched.py) equal the per-client loop (issue 10)."""

import numpy as np
import pytest
import torch
from torch import nn

from training import ALGORITHMS, Config, prepare, train
from training.algorithms import get_algorithm
from training.algorithms.base import Message
from training.batched import algorithm_obstacle, check_batching, model_obstacle, train_batched

BATCHED = sorted(name for name, cls in ALGORITHMS.items() if algorithm_obstacle(cls) is None)

#: the reviewed algorithms that train batched: one of them falling back to the per-client
#: loop (silently slower) fails test_reviewed_algorithms_keep_their_batched_path
REVIEWED_BATCHED = {"cfl", "fedamp", "fedavg", "fedprox", "ipfl", "local", "pfedgraph"}
REVIEWED_LOOPED = {"ditto", "fedfomo"}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithm_is_batched_or_says_why_not(name, tiny):
    """A registered algorithm either trains batched (equal to the loop: tested below for
    every such one) or, asked to with ``client_batching = "on"``, refuses naming why."""
    reason = algorithm_obstacle(ALGORITHMS[name])
    if reason is None:
        check_batching("on", ALGORITHMS[name])  # accepted
        return
    with pytest.raises(ValueError, match="client_batching = 'on' but"):
        check_batching("on", ALGORITHMS[name])
    assert name in reason


def test_reviewed_algorithms_keep_their_batched_path():
    """The known algorithms batch as reviewed; a new one is held to its own declaration."""
    known = set(BATCHED) & (REVIEWED_BATCHED | REVIEWED_LOOPED)
    assert known == REVIEWED_BATCHED


def test_ditto_and_fedfomo_fall_back_to_the_loop():
    """Their own client step (two models; candidate weighting) has no batched form."""
    assert "own client step" in algorithm_obstacle(ALGORITHMS["ditto"])
    assert "own client step" in algorithm_obstacle(ALGORITHMS["fedfomo"])


@pytest.mark.parametrize("name", ["fedprox", "pfedgraph", "fedavg"])
def test_one_batched_step_equals_each_clients_own_step(name):
    """Same start, centre and proximal weight per client: the parameters agree to rounding.

    Clients have different data sizes (Dirichlet split), so the shorter ones are padded;
    one client has prox = 0 (its term must vanish).
    """
    # Prepare
    cfg = Config(algorithm=name, clients=5, epochs=2, hidden=16, max_samples=500, batch_size=8)
    fed = prepare(cfg)
    algo = get_algorithm(cfg)
    assert len({d.n_train for d in fed.data}) > 1
    gen = torch.Generator().manual_seed(0)
    P = int(fed.shared.sum())
    msgs, states, ctxs = [], [], []
    for i in range(fed.m):
        start = fed.theta0[fed.shared] + 0.01 * torch.randn(P, generator=gen)
        center = fed.theta0[fed.shared] + 0.01 * torch.randn(P, generator=gen)
        msgs.append(Message(start=start, center=center, prox=0.0 if i == 2 else 0.3 + 0.1 * i))
        states.append(algo.init_client_state(i, fed.theta0, fed.buffers0))
        ctxs.append(fed.context(i, 1))
    # Execute
    batched = train_batched(algo, msgs, states, fed.data, ctxs)
    looped = [algo.client_step(msgs[i], states[i], fed.data[i], ctxs[i]) for i in range(fed.m)]
    # Assert
    for b, lo in zip(batched, looped, strict=True):
        torch.testing.assert_close(b.evaluated, lo.evaluated, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(b.upload, lo.upload, rtol=1e-5, atol=1e-5)
        assert not torch.equal(b.evaluated, fed.theta0)


@pytest.mark.parametrize("name", BATCHED)
def test_batched_run_equals_the_loop_and_each_mode_is_deterministic(name, tiny, tmp_path):
    # Prepare
    cfg = tiny.replace(algorithm=name)
    # Execute
    loop = train(cfg.replace(client_batching="off"), tmp_path / "off", progress=False)
    on = train(cfg.replace(client_batching="on"), tmp_path / "on", progress=False)
    again = train(cfg.replace(client_batching="on"), tmp_path / "on2", progress=False)
    # Assert
    assert on == again
    for a, b in zip(loop, on, strict=True):
        assert a["acc"] == pytest.approx(b["acc"], abs=0.02)
        assert a["U"] == pytest.approx(b["U"], rel=1e-4, abs=1e-6)
    acc_loop = np.mean([r["acc"] for r in loop if r["round"] == cfg.rounds])
    acc_on = np.mean([r["acc"] for r in on if r["round"] == cfg.rounds])
    assert abs(acc_loop - acc_on) <= 0.005


def test_batched_run_with_roles_and_attackers_equals_the_loop(tiny, tmp_path):
    """Attackers' uploads are poisoned after the batched step exactly as after the loop's."""
    cfg = tiny.replace(clients=6, roles="trader:3,attacker:3", attack="random_init")
    loop = train(cfg.replace(client_batching="off"), tmp_path / "off", progress=False)
    on = train(cfg.replace(client_batching="auto"), tmp_path / "on", progress=False)
    for a, b in zip(loop, on, strict=True):
        assert a["acc"] == pytest.approx(b["acc"], abs=0.02)


def test_auto_falls_back_for_ditto(tiny, tmp_path):
    rows = train(tiny.replace(algorithm="ditto", rounds=1), tmp_path / "d", progress=False)
    assert len(rows) == 2 * tiny.clients


def test_on_refuses_an_algorithm_that_cannot_be_batched():
    with pytest.raises(ValueError, match="client_batching = 'on' but algorithm 'ditto' has its "
                                         "own client step"):
        Config(algorithm="ditto", client_batching="on")


def test_on_refuses_a_model_with_batch_norm(tiny, tmp_path):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10))
    assert "buffers" in model_obstacle(model)
    assert not check_batching("auto", ALGORITHMS["ipfl"], model)
    with pytest.raises(ValueError, match="client_batching = 'on' but model Sequential has "
                                         "buffers"):
        train(tiny.replace(client_batching="on"), tmp_path / "bn", progress=False, model=model)
    # auto trains it with the loop
    rows = train(tiny.replace(rounds=1), tmp_path / "bn2", progress=False, model=model)
    assert len(rows) == 2 * tiny.clients


def test_auto_leaves_convolutions_on_the_cpu_to_the_loop():
    """Measured slower batched on one CPU thread (bench_clients.py); "on" batches them."""
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(10))
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    ipfl = ALGORITHMS["ipfl"]
    assert not check_batching("auto", ipfl, cnn, "cpu")
    assert check_batching("on", ipfl, cnn, "cpu")
    assert check_batching("auto", ipfl, cnn, "cuda")
    assert check_batching("auto", ipfl, mlp, "cpu")


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="client_batching = 'yes' is not one of"):
        Config(client_batching="yes")
    with pytest.raises(ValueError, match="device = 'tpu' is not one of"):
        Config(device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused():
    with pytest.raises(ValueError, match="device = 'cuda' but torch finds no CUDA GPU"):
        Config(device="cuda")


def test_batching_on_with_an_unbatchable_model_writes_nothing(tmp_path):
    """client_batching = "on" with a model vmap cannot train is refused before any file."""
    import torch.nn as nn

    from training import Config, train

    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Dropout(0.1), nn.Linear(16, 10))
    with pytest.raises(ValueError, match="client_batching = 'on' but"):
        train(Config(clients=4, rounds=1, max_samples=200, client_batching="on"),
              tmp_path / "run", progress=False, model=model)
    assert not (tmp_path / "run").exists()
