"""Tests of ipfl/rescore.py: a run's eq. (1) utilities and eq. (3) welfare from its records."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

import ipfl.rescore as rescore_module
from ipfl.rescore import (
    BASELINE_LAM,
    UnverifiedRun,
    check_overrides,
    parse_overrides,
    rescore_run,
)
from mechanism import Market, optimal_social_welfare, sharing_utilities, social_welfare
from training import RunDir
from training.rundir import RunDirError


def _last_rows(run):
    rows = RunDir(run).read_metrics()
    T = max(r["round"] for r in rows)
    return {r["client"]: r for r in rows if r["round"] == T}, rows


def _copy(run, tmp_path):
    shutil.copytree(run, tmp_path / run.name)
    return tmp_path / run.name


def _unchecked(monkeypatch):
    """Skip the hash chain for tests that edit records on purpose (the chain would refuse)."""
    monkeypatch.setattr(rescore_module, "_verified", lambda rd: 2)


@pytest.mark.parametrize("algorithm", ["fedavg", "ipfl", "local"])
def test_rescoring_at_the_runs_own_setting_reproduces_the_metrics(tiny_runs, algorithm):
    """cum_U, the rounds with U < 0 and the imports per round are the metrics' own."""
    # Prepare
    run = tiny_runs[algorithm]
    last, rows = _last_rows(run)
    # Execute
    res = rescore_run(run)
    # Assert
    assert res.rounds == 2 and res.recorded == 2 and res.overrides == {}
    assert res.kind == ("market" if algorithm == "ipfl" else "sharing")
    for s in res.clients:
        mine = [r for r in rows if r["client"] == s.client and r["round"] >= 1]
        assert s.cum_U == pytest.approx(last[s.client]["cum_U"], rel=1e-12, abs=1e-12)
        assert s.neg_rounds == sum(r["U"] < -1e-9 for r in mine)
        assert s.mean_imports == pytest.approx(np.mean([r["imports"] for r in mine]))
        assert s.role == last[s.client]["role"] and s.N == last[s.client]["N"]
    assert res.mean_cum_U == pytest.approx(np.mean([r["cum_U"] for r in last.values()]))
    # payments cancel: the welfare is the sum of the recorded utilities
    assert res.welfare == pytest.approx(sum(r["U"] for r in rows), rel=1e-9, abs=1e-12)


def test_welfare_share_is_welfare_over_the_per_round_optimum(tiny_runs):
    """SW*_t is optimal_social_welfare of round t's true market; the share is at most 1."""
    for algorithm, run in tiny_runs.items():
        # Prepare: the optimum round by round, straight from the records
        optimum = 0.0
        for rec in RunDir(run).read_rounds().values():
            inp = rec["inputs"] if rec.get("kind") == "sharing" else rec["inputs"]["true"]
            mk = Market(N=inp["N"], c=np.asarray(inp["c"], dtype=float), K=inp["K"])
            optimum += optimal_social_welfare(mk, solver="milp")[0]
        # Execute
        res = rescore_run(run)
        # Assert
        assert res.optimal_welfare == pytest.approx(optimum, rel=1e-9)
        assert res.welfare_share == pytest.approx(res.welfare / optimum)
        assert 0.0 <= res.welfare_share <= 1.0 + 1e-12, algorithm
    assert rescore_run(tiny_runs["local"]).welfare_share == 0.0


def test_priced_welfare_by_hand_and_which_lam(tiny_runs):
    """SW - lam sum a_ij N_j/N_i d_ij over rounds; lam: iPFL's own, 1 for a baseline."""
    for algorithm, run in tiny_runs.items():
        # Prepare
        total, dist = 0.0, 0.0
        for rec in RunDir(run).read_rounds().values():
            inp, A = rec["inputs"], np.asarray(rec["outputs"]["A"])
            true = inp if rec.get("kind") == "sharing" else inp["true"]
            N, d = np.asarray(true["N"]), np.asarray(inp["d"])
            mk = Market(N=N, c=np.asarray(true["c"], dtype=float), K=true["K"])
            total += social_welfare(mk, A)
            dist += sum(A[i, j] * N[j] / N[i] * d[i, j] for i in range(len(N))
                        for j in range(len(N)))
        # Execute
        res = rescore_run(run)
        zero = rescore_run(run, lam=0.0) if algorithm != "ipfl" else None
        # Assert
        assert res.lam == 1.0
        assert res.lam_source == ("the run's own" if algorithm == "ipfl"
                                  else f"default {BASELINE_LAM:g} for a baseline, which has no lam")
        assert res.priced_welfare == pytest.approx(total - 1.0 * dist, rel=1e-9, abs=1e-12)
        if zero is not None:  # lam changes the priced line only
            assert zero.priced_welfare == pytest.approx(zero.welfare)
            assert zero.welfare == res.welfare and zero.clients == res.clients
            assert zero.lam_source == "given"


def test_a_baseline_is_rescored_under_other_c_and_K(tiny_runs):
    """c and K_per_sample replace every client's profile; U is eq. (1) on the same graph."""
    # Prepare
    run = tiny_runs["fedavg"]
    want = np.zeros(4)
    for rec in RunDir(run).read_rounds().values():
        N = np.asarray(rec["inputs"]["N"])
        mk = Market(N=N, c=np.full(4, 2.0), K=30.0 * N)
        want[rec["clients"]] += sharing_utilities(mk, rec["outputs"]["A"])
    # Execute
    res = rescore_run(run, c=2.0, K_per_sample=30.0)
    # Assert
    assert res.overrides == {"c": 2.0, "K_per_sample": 30.0}
    assert [s.c for s in res.clients] == [2.0] * 4
    assert [s.K for s in res.clients] == [30.0 * s.N for s in res.clients]
    np.testing.assert_allclose([s.cum_U for s in res.clients], want, rtol=1e-12)
    assert res.neg_clients == int((want < -1e-9).sum()) > 0  # FedAvg at c = 2 hurts someone
    assert res.welfare_share < rescore_run(run).welfare_share


def test_an_ipfl_run_refuses_another_setting_and_accepts_its_own(tiny_runs):
    run = tiny_runs["ipfl"]
    for key, value, train_key in (("lam", 0.5, "ipfl.lam"), ("c", 0.3, "c"),
                                  ("K_per_sample", 50.0, "K_per_sample")):
        with pytest.raises(ValueError, match=rf"^rescore: an iPFL run cannot be rescored under "
                                             rf"another {key} .*--set {train_key}={value:g}`$"):
            rescore_run(run, **{key: value})
    own = rescore_run(run, lam=1.0, c=0.2, K_per_sample=100.0)  # the run's config
    plain = rescore_run(run)
    assert own.clients == plain.clients and own.welfare == plain.welfare
    assert own.lam_source == "given"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"beta": 1.0}, r"^rescore: unknown key 'beta' \(value 1.0\); allowed keys: c, "
                    r"K_per_sample, lam$"),
    ({"c": -1}, r"^rescore: c = -1 must be a number in \[0, 1e\+09\]; allowed keys"),
    ({"lam": math.inf}, r"^rescore: lam = inf must be a number in \[0, 1e\+06\]"),
    ({"lam": math.nan}, r"^rescore: lam = nan must be a number"),
    ({"K_per_sample": "many"}, r"^rescore: K_per_sample = 'many' must be a number"),
    ({"c": True}, r"^rescore: c = True must be a number"),
])
def test_bad_overrides_are_one_line_naming_key_value_and_allowed_keys(overrides, message):
    with pytest.raises(ValueError, match=message):
        check_overrides(overrides)


def test_overrides_parse_like_train_set():
    assert parse_overrides(["c=0.5", "K_per_sample=10"]) == {"c": 0.5, "K_per_sample": 10.0}
    with pytest.raises(ValueError, match=r"^rescore: lam = inf must be a number"):
        parse_overrides(["lam=inf"])
    with pytest.raises(ValueError, match=r"^rescore: --set 'lam': expected key=value; allowed"):
        parse_overrides(["lam"])


def test_a_run_that_fails_verification_is_refused(tiny_runs, tmp_path):
    # Prepare: one edited utility
    run = _copy(tiny_runs["fedavg"], tmp_path)
    path = run / "rounds" / "0001.json"
    rec = json.loads(path.read_text())
    rec["outputs"]["U"][0] += 1.0
    path.write_text(json.dumps(rec))
    # Execute / Assert
    with pytest.raises(UnverifiedRun, match=r"fails verification: round 1: rounds/0001.json "
                                            r"was edited .*`ipfl audit-run "):
        rescore_run(run)
    with pytest.raises(RunDirError, match="not a folder"):
        rescore_run(tmp_path / "nothing")


def test_a_finished_experiment_run_without_its_checkpoint_is_still_verified(tiny_runs,
                                                                             tmp_path):
    """The experiment runner drops checkpoint.pt but keeps chain.json."""
    run = _copy(tiny_runs["fedavg"], tmp_path)
    RunDir(run).drop_checkpoint()
    assert rescore_run(run).clients == rescore_run(tiny_runs["fedavg"]).clients
    (run / "chain.json").unlink()  # a run finished by an older ipfl: no chain left
    with pytest.raises(UnverifiedRun, match="checkpoint.pt is missing"):
        rescore_run(run)


def test_older_baseline_records_without_distances(tiny_runs, tmp_path, monkeypatch):
    """Records written before 'd' was kept: everything but the priced welfare, and a note."""
    _unchecked(monkeypatch)
    run = _copy(tiny_runs["fedavg"], tmp_path)
    for path in (run / "rounds").glob("*.json"):
        rec = json.loads(path.read_text())
        for key in ("d", "distance", "d_scale"):
            del rec["inputs"][key]
        path.write_text(json.dumps(rec))
    res = rescore_run(run)
    assert res.priced_welfare is None
    assert any("lack the distances 'd'" in n for n in res.notes)
    assert res.welfare == rescore_run(tiny_runs["fedavg"]).welfare


def test_a_run_without_records_scores_zero_and_says_so(tiny_runs, tmp_path, monkeypatch):
    _unchecked(monkeypatch)
    run = _copy(tiny_runs["local"], tmp_path)
    shutil.rmtree(run / "rounds")
    res = rescore_run(run, c=1.0)
    assert res.kind == "none" and res.recorded == 0
    assert res.welfare_share == 0.0 and res.welfare == 0.0 and res.mean_cum_U == 0.0
    assert [s.N for s in res.clients] == [s.N for s in rescore_run(tiny_runs["local"]).clients]
    assert any("no round records" in n for n in res.notes)


def test_malformed_record_is_one_line_naming_round_and_key(tiny_runs, tmp_path, monkeypatch):
    _unchecked(monkeypatch)
    run = _copy(tiny_runs["fedavg"], tmp_path)
    path = run / "rounds" / "0002.json"
    rec = json.loads(path.read_text())
    del rec["outputs"]["A"]
    path.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=r"^rescore: round 2: not a round record \(lacks 'A'\)$"):
        rescore_run(run)


def test_to_dict_is_json_with_inf_and_nan_spelled_out(tiny_runs):
    res = rescore_run(tiny_runs["fedavg"])
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert data["welfare_share"] == res.welfare_share
    assert [c["cum_U"] for c in data["clients"]] == [s.cum_U for s in res.clients]


def test_a_graph_that_is_not_0_1_is_one_line_naming_the_round(tiny_runs, tmp_path,
                                                              monkeypatch):
    _unchecked(monkeypatch)
    run = _copy(tiny_runs["ipfl"], tmp_path)
    path = run / "rounds" / "0001.json"
    rec = json.loads(path.read_text())
    rec["outputs"]["A"][0][1] = 2
    path.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=r"^rescore: round 1: not a round record "
                                         r"\(A\[0, 1\] = 2 is not 0 or 1\)$"):
        rescore_run(run)

