"""The session: one way to open a run, a round as plan -> absorb -> commit, typed records.

``data/runs-before-session`` holds two 2-round runs (iPFL and FedAvg, one sign-flip
attacker) written by the code before the session existed (commit de8adf1), and the
metrics of the same configs run for 3 rounds by that code: a resumed old run must
continue exactly as the old code would have.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from training import Config, Exchange, RunDir, RunState, Session, audit_run, prepare, train
from training.rundir import RunDirError, digest_state

OLD = Path(__file__).parent / "data" / "runs-before-session"


@pytest.mark.parametrize("algorithm", ["ipfl", "fedavg"])
def test_a_run_written_before_the_session_resumes_as_the_old_code_continued(algorithm,
                                                                            tmp_path):
    run = tmp_path / algorithm
    shutil.copytree(OLD / algorithm, run)
    assert audit_run(run).ok
    rows = train(None, run, resume=True, progress=False, overrides=["rounds=3"])
    want = [json.loads(line) for line in
            (OLD / f"{algorithm}-metrics-3-rounds.jsonl").read_text().splitlines()]
    assert rows == want
    assert audit_run(run).ok


@pytest.mark.parametrize("algorithm", ["ipfl", "fedavg"])
def test_old_round_files_parse_and_write_back_byte_for_byte(algorithm):
    for path in sorted((OLD / algorithm / "rounds").glob("*.json")):
        doc = json.loads(path.read_text())
        assert json.dumps(Exchange.from_json(doc).to_json(), indent=1) == path.read_text()


def test_a_checkpoint_without_a_run_state_key_is_refused_in_one_line():
    doc = {k: 0 for k in RunState.keys() if k != "cum_U"}
    with pytest.raises(RunDirError, match=r"x.pt: the checkpoint lacks \['cum_U'\] .* cannot be "
                                          r"resumed"):
        RunState.from_checkpoint(doc, "x.pt")


@pytest.fixture
def session(tiny, tmp_path):
    cfg = tiny.replace(rounds=3)
    s = Session.open(tmp_path / "run", cfg)
    s.start(prepare(cfg))
    return s


def _round(session, t):
    from training.loop import client_results

    plan = session.plan(t)
    return plan, dict(client_results(session, plan))


def test_plan_and_absorb_change_nothing_and_commit_moves_the_run(session):
    before = digest_state(session.state.to_checkpoint())
    plan, results = _round(session, 0)
    again = session.plan(0)
    record, state = session.absorb(plan, results)
    assert digest_state(session.state.to_checkpoint()) == before  # pure so far
    assert np.array_equal(plan.trains, again.trains) and session.rd.read_metrics() == []
    assert record.round == 0 and record.exchange is None and len(record.rows) == 4
    session.commit(record, state)
    assert session.state is state and session.next_round == 1
    assert session.rd.read_metrics() == list(record.rows)
    plan, results = _round(session, 1)
    record, state = session.absorb(plan, results)
    assert record.exchange.kind == "market" and record.exchange.round == 1
    session.commit(record, state)
    assert session.rd.read_records()[1].exchange == record.exchange
    assert audit_run(session.rd.path).ok


def test_absorb_refuses_a_missing_result_and_records_a_drop(session):
    plan, results = _round(session, 0)
    missing = dict(results)
    del missing[2]
    with pytest.raises(ValueError, match=r"round 0: no result from clients \[2\]"):
        session.absorb(plan, missing)
    record, state = session.absorb(plan, missing, drops={2: "timeout"})
    assert [r["dropped"] for r in record.rows] == [None, None, 1.0, None]
    assert not bool(state.active[2]) and record.rows[2]["active"] is False


def test_a_new_session_refuses_a_folder_that_holds_something(tmp_path, tiny):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError):
        Session.open(tmp_path / "run", tiny)


def test_resume_overrides_and_a_differing_config_are_checked(tmp_path, tiny):
    train(tiny, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="config differs"):
        Session.open(tmp_path / "run", tiny.replace(lr=0.5), resume=True)
    s = Session.open(tmp_path / "run", resume=True, overrides=["rounds=4"])
    assert s.cfg.rounds == 4 and RunDir(tmp_path / "run").read_config()["rounds"] == 2
    assert isinstance(s.cfg, Config)
