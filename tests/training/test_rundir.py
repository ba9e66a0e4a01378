"""The run directory's guarantees: hash chain, no code run, one writer, recoverable runs.

Each test names the guarantee it demonstrates (README, "Run directories you can trust").
"""

import json
import os
import pickle
import shutil
import sqlite3
import stat
import subprocess
import sys

import pytest
import torch

from training import NonFiniteRound, RunDir, audit_run, train
from training.rundir import RunDirError, RunLocked


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A finished tiny iPFL run (two market rounds with payments), copied per test."""
    from training import Config

    out = tmp_path_factory.mktemp("clean") / "run"
    train(Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5), out,
          progress=False)
    return out


@pytest.fixture
def run(clean_run, tmp_path):
    shutil.copytree(clean_run, tmp_path / "run")
    return tmp_path / "run"


class Payload:
    """Unpickling this would create ``path``: a stand-in for any code planted in a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_clean_run_is_verified_with_a_chain_per_round(run):
    """Every round 0..T has a chain entry; the audit verifies them and returns the head."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert [e["round"] for e in state["chain"]] == [0, 1, 2]
    assert state["chain"][0]["record"] is None and state["chain"][1]["record"] is not None
    report = audit_run(run)
    assert report.ok, report.problems
    assert report.committed == 2 and len(report.head) == 64


def test_a_dropped_checkpoint_keeps_the_chain_and_the_run_verified(run):
    """A finished run without its model states (drop_checkpoint) still verifies every
    other artefact against chain.json; an edit is still found; it cannot be resumed."""
    # Prepare
    head = audit_run(run).head
    rd = RunDir(run)
    # Execute
    rd.drop_checkpoint()
    # Assert
    assert not rd.checkpoint.exists() and rd.chain_file.is_file()
    report = audit_run(run)
    assert report.ok, report.problems
    assert report.committed == 2 and report.head == head
    path = run / "rounds" / "0002.json"
    rec = json.loads(path.read_text())
    rec["outputs"]["U"][0] += 1.0
    path.write_text(json.dumps(rec))
    assert "round 2: rounds/0002.json was edited" in audit_run(run).problems
    with pytest.raises(RunDirError, match="fails verification"):
        train(None, run, resume=True, progress=False)


def test_an_edited_chain_json_is_reported(run):
    RunDir(run).drop_checkpoint()
    (run / "chain.json").write_text('{"chain": "gone"}')
    problems = audit_run(run).problems
    assert "chain.json holds no hash chain (edited)" in problems


def test_files_get_the_mode_the_umask_gives(run):
    """JSON outputs are 0o666 less the umask (0o644 under the usual 0o022), not 0o600."""
    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("config.json", "metrics.jsonl", "rounds/0001.json", "checkpoint.pt"):
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o666 & ~umask, name


@pytest.mark.parametrize("how", ["raw pickle", "torch.save"])
def test_planted_payload_is_refused_without_running(run, tmp_path, how):
    """A checkpoint carrying a pickle payload is refused by resume and audit; it never runs."""
    marker = tmp_path / "pwned"
    if how == "raw pickle":
        (run / "checkpoint.pt").write_bytes(pickle.dumps({"round": 2, "x": Payload(marker)}))
    else:
        torch.save({"round": 2, "x": Payload(marker)}, run / "checkpoint.pt")
    # the payload is live: an unsafe load would run it
    if how == "raw pickle":
        pickle.loads((run / "checkpoint.pt").read_bytes())
    else:
        torch.load(run / "checkpoint.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    # Execute / Assert: refused unread, the file is not created
    with pytest.raises(RunDirError, match="refused unread"):
        RunDir(run).load_checkpoint()
    with pytest.raises(RunDirError, match="not a checkpoint"):
        train(None, run, resume=True, progress=False)
    assert any("not a checkpoint" in p for p in audit_run(run).problems)
    assert not marker.exists()


def test_second_writer_is_refused_naming_the_holder_and_kill_releases(run):
    """A lock held for the run's life refuses `train --resume`; kill -9 releases it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from training.rundir import RunDir\n"
         "with RunDir(sys.argv[1]).lock():\n print('held', flush=True); time.sleep(120)",
         str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=f"pid {holder.pid} on host .*, since 20"):
            train(None, run, resume=True, progress=False)
        res = subprocess.run([sys.executable, "-m", "ipfl.cli", "train", "--resume", str(run),
                              "--quiet"], capture_output=True, text=True)
        assert res.returncode == 2
        assert f"pid {holder.pid}" in res.stderr and "Traceback" not in res.stderr
    finally:
        holder.kill()
        holder.wait()
    with RunDir(run).lock():  # the kernel released the dead holder's lock
        pass


def test_nonfinite_round_is_not_committed_and_resumes_with_a_changed_lr(tiny, tmp_path):
    """lr = 1e30 diverges: round 0 is refused, nothing is committed; --set lr resumes.

    The resumed run equals a run started with the good lr (round 0 was never committed).
    """
    bad = tiny.replace(algorithm="local", lr=1e30)
    with pytest.raises(NonFiniteRound, match="round 0: .* NaN or infinity; round 0 is not "
                                             "committed"):
        train(bad, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
    rows = train(None, tmp_path / "run", resume=True, progress=False, overrides=["lr=0.1"])
    assert rows == train(tiny.replace(algorithm="local"), tmp_path / "ref", progress=False)
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert doc["history"][0]["set"] == {"lr": {"was": 1e30, "now": 0.1}}
    assert audit_run(tmp_path / "run").ok


def test_finished_run_extends_to_the_longer_run(tiny, tmp_path, run):
    """`--resume DIR --set rounds=3` on a 2-round run gives the 3-round run's metrics."""
    rows = train(None, run, resume=True, progress=False, overrides=["rounds=3"])
    assert rows == train(tiny.replace(rounds=3), tmp_path / "ref", progress=False)
    report = audit_run(run)
    assert report.ok, report.problems
    doc = json.loads((run / "config.json").read_text())
    assert doc["rounds"] == 3 and doc["history"][0]["round"] == 3


def test_resume_changes_a_hyper_parameter_and_the_audit_follows_the_history(run):
    """A change of [ipfl] eta and epochs is recorded; edited history is detected."""
    train(None, run, resume=True, progress=False, overrides=["rounds=3", "ipfl.eta=0.5",
                                                             "epochs=2"])
    assert audit_run(run).ok
    doc = json.loads((run / "config.json").read_text())
    assert set(doc["history"][0]["set"]) == {"rounds", "ipfl.eta", "epochs"}
    doc["history"][0]["set"]["epochs"]["was"] = 3
    (run / "config.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
    assert any("history item 0" in p for p in audit_run(run).problems)


@pytest.mark.parametrize("key", ["clients=5", "dataset='synthetic'", "partition='iid'",
                                 "model='mlp'", "hidden=32", "share='net'", "seed=1",
                                 "roles='trader:4'", "c=0.5", "algorithm='fedavg'",
                                 "fedprox.mu=0.1"])
def test_structural_change_on_resume_is_refused(run, key):
    """Keys that fix the data, the model or the market's clients cannot change on resume."""
    with pytest.raises(ValueError, match=f"--set {key.split('=')[0]}: cannot change on resume"):
        train(None, run, resume=True, progress=False, overrides=[key])
    assert "history" not in json.loads((run / "config.json").read_text())


def test_rounds_cannot_shrink_below_what_is_committed(run):
    with pytest.raises(ValueError, match="rounds can only grow"):
        train(None, run, resume=True, progress=False, overrides=["rounds=1"])


def test_partial_first_write_is_restartable_with_a_clear_message(tiny, tmp_path):
    """A kill before config.json leaves `rounds/`: resume says what to do, a new run works."""
    (tmp_path / "run" / "rounds").mkdir(parents=True)
    with pytest.raises(RunDirError, match="no config.json.*start the run again"):
        train(None, tmp_path / "run", resume=True, progress=False)
    train(tiny.replace(rounds=1), tmp_path / "run", progress=False)
    assert audit_run(tmp_path / "run").ok


def test_failed_new_run_leaves_nothing(tiny, tmp_path):
    """A setting refused before work (a model too large for memory) writes no file."""
    with pytest.raises(ValueError, match="hidden = 1000000000000 .* GiB available"):
        train(tiny.replace(hidden=10**12), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_settings_that_overflow_are_refused_before_work(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"lr = 1e\+300 overflows"):
        tiny.replace(lr=1e300)
    with pytest.raises(ValueError, match="K_per_sample = 1e\\+308 gives K_0 .* numeric domain"):
        train(tiny.replace(K_per_sample=1e308), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def _zero_params(p):
    s = torch.load(p, weights_only=True)
    s["uploads"] = torch.zeros_like(s["uploads"])
    torch.save(s, p)


def _round_counter(p):
    s = torch.load(p, weights_only=True)
    s["round"] = 1
    torch.save(s, p)


def _metrics(edit):
    def apply(p):
        lines = p.read_text().splitlines(keepends=True)
        p.write_text("".join(edit(lines)))
    return apply


def _json(edit):
    def apply(p):
        d = json.loads(p.read_text())
        edit(d)
        p.write_text(json.dumps(d, indent=2, sort_keys=True))
    return apply


def _ledger_row(p):
    con = sqlite3.connect(p)
    con.execute("INSERT INTO entries VALUES (7, 0, 1, 0, -1.0), (7, 0, 1, 1, 1.0)")
    con.commit()
    con.close()


#: (file, tampering, a phrase the audit must report)
TAMPERING = [
    ("rounds/0002.json", lambda p: p.unlink(), "0002.json was deleted"),
    ("rounds/0002.json", lambda p: shutil.copy(p, p.with_name("0003.json")),
     "round 3: round record of a round that was never committed"),
    ("rounds/0001.json", lambda p: p.write_text(p.read_text() + " "), "0001.json was edited"),
    ("rounds/0001.json", lambda p: shutil.copy(p, p.with_name("notes.txt")),
     "rounds/notes.txt is not a round record"),
    ("metrics.jsonl", _metrics(lambda ls: ls[:-1]), "round 2: metrics.jsonl rows"),
    ("metrics.jsonl", _metrics(lambda ls: ls + ls[-1:]), "round 2: metrics.jsonl rows"),
    ("metrics.jsonl", _metrics(lambda ls: [ls[0].replace('"acc": ', '"acc": 0.5')] + ls[1:]),
     "round 0: metrics.jsonl rows"),
    ("metrics.jsonl", _metrics(lambda ls: ls + ['{"round": 9}\n']),
     "round 9: metrics rows of a round that was never committed"),
    ("metrics.jsonl", _metrics(lambda ls: ls + ["garbage\n"]), "line 13 is not a metric row"),
    ("checkpoint.pt", _zero_params, "run state differs from what round 2 committed"),
    ("checkpoint.pt", _round_counter, "round counter 1 differs"),
    ("checkpoint.pt", lambda p: p.unlink(), "checkpoint.pt is missing"),
    ("checkpoint.pt", lambda p: p.write_bytes(b"junk"), "not a checkpoint"),
    ("ledger.sqlite", _ledger_row, "round 7: ledger rows of a round that was never committed"),
    ("ledger.sqlite", lambda p: p.unlink(), "ledger rows differ from those committed"),
    ("config.json", _json(lambda d: d.update(lr=0.2)), "config.json differs"),
    ("config.json", lambda p: p.write_text(p.read_text() + "\n"), "config.json differs"),
]


@pytest.mark.parametrize("name,tamper,phrase", TAMPERING,
                         ids=[f"{n}:{ph[:30]}" for n, _, ph in TAMPERING])
def test_tampering_is_reported_with_exit_1(run, name, tamper, phrase):
    """Every kind of edit to a run's artefacts is a mismatch (exit 1), never a traceback."""
    from click.testing import CliRunner

    from ipfl.cli import main

    tamper(run / name)
    report = audit_run(run)
    assert any(phrase in p for p in report.problems), report.problems
    res = CliRunner().invoke(main, ["audit-run", str(run)], catch_exceptions=False)
    assert res.exit_code == 1, res.output
    assert "MISMATCH" in res.output and "Traceback" not in res.output


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_every_output_of_ipfl_train_follows_the_umask(tmp_path, umask):
    """config, records, ledger, checkpoint and both plots (graph.png was 0o600): 0o666 less
    the umask; run.lock too."""
    from click.testing import CliRunner

    from ipfl.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text("clients = 4\nrounds = 1\nepochs = 1\nhidden = 8\nmax_samples = 200\n")
    old = os.umask(umask)
    try:
        res = CliRunner().invoke(main, ["train", "--config", str(cfg), "--run-dir",
                                        str(tmp_path / "run"), "--quiet"])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    modes = {p.relative_to(tmp_path / "run").as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert {"graph.png", "curves.png", "ledger.sqlite", "run.lock"} <= set(modes)
    assert set(modes.values()) == {0o666 & ~umask}, modes
