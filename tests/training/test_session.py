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
    # the rounds this code runs add the parameter counts; the rest is as the old code wrote
    added = ("shared_params", "total_params")
    assert [{k: v for k, v in r.items() if k not in added} for r in rows] == want
    assert all(set(added) <= set(r) for r in rows if r["round"] == 3)
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
    assert record.drops == {2: "timeout"}
    session.rd.drops_file.write_text('{"client": 1, "round": 0, "why": "stale"}\n')
    session.commit(record, state)  # a killed attempt's line of this round is replaced
    assert session.rd.drops_file.read_text() == '{"client": 2, "round": 0, "why": "timeout"}\n'


def test_commit_refuses_a_record_of_another_round(session):
    plan, results = _round(session, 0)
    record, state = session.absorb(plan, results)
    session.commit(record, state)
    with pytest.raises(ValueError, match="commit: the record is of round 0 and the state of "
                                         "round 0; the next round is 1"):
        session.commit(record, state)
    with pytest.raises(ValueError, match=r"round 1: client 9 is not in \(clients in"):
        session.plan(1).message(9)


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


class _Killed(BaseException):
    """Stands in for kill -9 inside a commit."""


def test_a_changed_config_cannot_resume_a_round_the_ledger_booked(tmp_path, tiny, monkeypatch):
    """A kill after the ledger booked round 2, before its checkpoint: the ledger is
    append-only, so resuming with --set is refused before any write; a plain resume
    completes the round, then the change applies."""
    run = tmp_path / "run"
    train(tiny.replace(algorithm="ipfl", rounds=1), run, progress=False)

    def killed(self, doc):
        raise _Killed

    monkeypatch.setattr(RunDir, "save_checkpoint", killed)
    with pytest.raises(_Killed):
        train(None, run, resume=True, progress=False, overrides=["rounds=2"])
    monkeypatch.undo()
    files = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    round_file = (run / "rounds" / "0002.json").read_bytes()
    with pytest.raises(RunDirError, match="round 2 was booked in the ledger by an interrupted "
                                          "attempt; resume it once without --set"):
        train(None, run, resume=True, progress=False, overrides=["rounds=2", "ipfl.lam=3"])
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == files
    assert (run / "rounds" / "0002.json").read_bytes() == round_file
    train(None, run, resume=True, progress=False, overrides=["rounds=2"])
    train(None, run, resume=True, progress=False, overrides=["rounds=3", "ipfl.lam=3"])
    assert audit_run(run).ok
