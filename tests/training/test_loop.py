import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import RunDir, audit_run, train
from training.ledger import Ledger


def test_same_seed_same_metrics_and_different_seed_differs(tiny, tmp_path):
    a = train(tiny, tmp_path / "a", progress=False)
    b = train(tiny, tmp_path / "b", progress=False)
    c = train(tiny.replace(seed=1), tmp_path / "c", progress=False)
    assert a == b
    assert a != c


def test_run_records_everything_and_ledger_balances(tiny, tmp_path):
    rows = train(tiny, tmp_path / "r", progress=False)
    rd = RunDir(tmp_path / "r")
    assert len(rows) == tiny.clients * (tiny.rounds + 1)
    keys = {"acc", "U", "cum_U", "p", "paid", "received", "ir", "active", "imports",
            "shared_params", "total_params"}
    assert keys <= set(rows[0])
    # a fully shared MLP: every parameter is shared
    assert rows[0]["shared_params"] == rows[0]["total_params"] > 0
    assert json.loads(rd.config.read_text())["clients"] == tiny.clients
    records = rd.read_rounds()
    assert sorted(records) == list(range(1, tiny.rounds + 1))
    led = Ledger(rd.ledger)
    for t, rec in records.items():
        assert set(rec["inputs"]) >= {"N", "c", "K", "d", "lam", "budget"}
        assert abs(led.round_sum(t)) < 1e-9
        p = {r["client"]: r["p"] for r in rows if r["round"] == t}
        for client, bal in led.balances(t).items():
            assert bal == pytest.approx(-p[client], abs=1e-9)
        # utilities in the metrics are the recorded ones
        assert list(rec["outputs"]["p"]) == [p[i] for i in rec["clients"]]


def test_budget_zero_makes_payers_quit_and_keep_their_best(tiny, tmp_path):
    rows = train(tiny.replace(budget=0.0, rounds=3), tmp_path / "q", progress=False)
    quit_ = [r for r in rows if r["round"] >= 1 and not r["active"]]
    assert quit_, "someone with a positive bill must quit"
    for r in quit_:
        assert r["best_acc"] == r["acc"]  # a quitter reports its best-validation model
        assert r["p"] == 0.0


def test_local_runs_without_market(tiny, tmp_path):
    rows = train(tiny.replace(algorithm="local"), tmp_path / "l", progress=False)
    assert all(r["U"] == 0.0 and r["p"] == 0.0 and r["imports"] == 0 for r in rows)
    assert not (tmp_path / "l" / "ledger.sqlite").exists()


def test_new_run_refuses_a_nonempty_dir(tiny, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "f").write_text("")
    with pytest.raises(ValueError, match="not empty"):
        train(tiny, tmp_path / "x", progress=False)


CLI = [sys.executable, "-m", "ipfl.cli"]


SETS = ["--set", "clients=4", "--set", "rounds=3", "--set", "epochs=1", "--set", "hidden=16",
        "--set", "max_samples=400"]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """An uninterrupted run of the same config and seed."""
    out = tmp_path_factory.mktemp("ref") / "run"
    subprocess.run([*CLI, "train", *SETS, "--run-dir", str(out), "--quiet"], check=True)
    return out


CRASH = [sys.executable, str(Path(__file__).with_name("crash_run.py"))]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["record:2", "ledger:2", "metrics:2", "checkpoint:1"])
def test_sigkill_then_resume_gives_identical_metrics(tmp_path, ref, point):
    """Kill -9 the training process inside round 2 (or right after round 1), resume, compare.

    The kill is injected by wrapping the run directory's writers (tests/training/crash_run.py),
    so no test hook lives in the commit path.
    """
    run = tmp_path / "run"
    killed = subprocess.run([*CRASH, point, "train", *SETS, "--run-dir", str(run), "--quiet"])
    assert killed.returncode == -9
    partial = RunDir(run).read_metrics()
    assert max(r["round"] for r in partial) < 3
    subprocess.run([*CLI, "train", "--resume", str(run), "--quiet"], check=True)
    assert RunDir(run).read_metrics() == RunDir(ref).read_metrics()
    led_a, led_b = Ledger(run / "ledger.sqlite"), Ledger(ref / "ledger.sqlite")
    assert led_a.rounds() == led_b.rounds() == [1, 2, 3]
    for t in (1, 2, 3):
        assert led_a.entries(t) == led_b.entries(t)
    assert np.isclose(sum(led_a.round_sum(t) for t in (1, 2, 3)), 0.0)
    report = audit_run(run)  # the resumed run's hash chain equals the uninterrupted one's
    assert report.ok, report.problems
    assert report.head == audit_run(ref).head
