"""Markets of roles (Results 2.3): buyers never sell, sellers never buy, attackers, liars."""

import numpy as np
import pytest
import torch

from mechanism import Market
from training import ATTACKS, Config, RunDir, audit_run, train
from training.attacks import apply_attack
from training.ledger import Ledger
from training.profiles import build_profiles

ROLES = "trader:3,buyer:1,seller:1,attacker:1"
BASE = dict(clients=6, rounds=2, epochs=1, hidden=16, max_samples=600, roles=ROLES)


@pytest.fixture(scope="module")
def market_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("roles") / "run"
    rows = train(Config(attack="random_init", **BASE), out, progress=False)
    return out, rows


def test_roles_draw_their_profiles():
    prof = build_profiles(np.array([10.0, 20, 30, 40]), c=0.2, K_per_sample=100, budget=np.inf,
                          roles=("trader", "buyer", "seller", "attacker"), liars=[],
                          liar_N=1, liar_c=1, liar_K=1, rng=np.random.default_rng(0))
    t = prof.true
    assert 0.1 <= t.c[0] <= 0.3 and 500 <= t.K[0] <= 1500
    assert np.isinf(t.c[1]) and t.K[1] > 0
    assert t.c[2] == 0 and t.K[2] == 0 and t.c[3] == 0 and t.K[3] == 0
    assert Market(N=t.N, c=t.c, K=t.K).roles == ("trader", "buyer", "seller", "seller")


def test_buyers_never_sell_sellers_never_buy_and_money_balances(market_run):
    out, rows = market_run
    records = RunDir(out).read_rounds()
    led = Ledger(out / "ledger.sqlite")
    for t, rec in records.items():
        A = np.asarray(rec["outputs"]["A"])
        roles = [rows[i]["role"] for i in rec["clients"]]
        for k, role in enumerate(roles):
            if role == "buyer":
                assert A[:, k].sum() == 0, "a buyer (c = inf) was imported"
            if role in ("seller", "attacker"):
                assert A[k].sum() == 0, "a seller (K = 0) imported"
        assert abs(led.round_sum(t)) < 1e-9
        assert abs(sum(rec["outputs"]["p"])) < 1e-9
    assert audit_run(out).ok


def test_attackers_upload_is_poisoned_and_its_metrics_are_marked(market_run):
    out, rows = market_run
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    attacker = [r["client"] for r in rows if r["role"] == "attacker"][0]
    honest = ckpt["clients"][attacker]["params"]
    assert not torch.allclose(ckpt["uploads"][attacker], honest)


@pytest.mark.parametrize("name", sorted(k for k, v in ATTACKS.items() if v is not None))
def test_every_attack_changes_the_upload_deterministically(name):
    w0 = torch.randn(50, generator=torch.Generator().manual_seed(0))
    w = w0 + 0.1 * torch.randn(50, generator=torch.Generator().manual_seed(1))
    a = apply_attack(name, w, w0, torch.Generator().manual_seed(2))
    b = apply_attack(name, w, w0, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, w)
    if name.endswith("_update"):  # update attacks keep the honest update's scale
        assert (a - w0).norm() < 10 * (w - w0).norm()


def test_liar_reports_scaled_values_and_is_scored_truthfully(tmp_path):
    cfg = Config(clients=4, rounds=1, epochs=1, hidden=16, max_samples=400, liar=(2,),
                 liar_N=10.0)
    train(cfg, tmp_path / "run", progress=False)
    rec = RunDir(tmp_path / "run").read_rounds()[1]
    true_N = rec["inputs"]["true"]["N"]
    assert rec["inputs"]["N"][2] == 10 * true_N[2]
    assert [rec["inputs"]["N"][i] for i in (0, 1, 3)] == [true_N[i] for i in (0, 1, 3)]
    assert audit_run(tmp_path / "run").ok


@pytest.mark.parametrize("algorithm", ["local", "fedavg", "fedprox", "ditto", "cfl"])
def test_an_attacker_trains_from_the_message_its_honest_upload_would_get(algorithm):
    """For a linear aggregation the correction is exact: the attacker's own poison is undone.

    The attacker (client 2) uploaded a poisoned model; its corrected message equals the
    message the server sends when the attacker's upload is its honest model, while the
    other clients' messages still carry the poison.
    """
    from training import ALGORITHMS
    from training.algorithms import ServerInput
    from training.client import ClientContext, attacker_message
    from training.profiles import Reports

    g = torch.Generator().manual_seed(0)
    k, P = 3, 5
    honest = torch.randn(k, P, generator=g, dtype=torch.float64)
    sent = honest.clone()
    sent[2] = -7.0 * honest[2]  # the attacker's poisoned upload
    reports = Reports.make(N=[100.0, 300.0, 200.0], c=[0.2] * 3, K=[1e4] * 3)
    algo = ALGORITHMS[algorithm](Config(algorithm=algorithm, clients=k))

    def step(uploads):
        inp = ServerInput(round=2, clients=np.arange(k), m=k, reports=reports, true=reports,
                          uploads=uploads, infos={}, theta0=torch.zeros(P, dtype=torch.float64),
                          seed=0)
        state = algo.init_server_state(k, inp.theta0)
        return algo.server_step(inp, state)[0]

    poisoned, clean = step(sent), step(honest)
    ctx = ClientContext(model=torch.nn.Linear(1, 1), shared=torch.ones(P, dtype=torch.bool),
                        client=2, round=2, seed=0, epochs=1, batch_size=1, lr=0.1,
                        role="attacker", attack="sign_flip_update")
    msg = attacker_message(poisoned.message(2), {"params": honest[2], "sent": sent[2]}, ctx)
    assert torch.allclose(msg.start, clean.message(2).start)
    assert torch.allclose(msg.center, clean.message(2).center)
    if algorithm != "local":  # the others still receive the poison
        assert not torch.allclose(poisoned.message(0).start, clean.message(0).start)
