"""A run's hash chain is keyed (issue 21): an edit plus a re-hash is detected.

The attacker can write the run directory but cannot read this machine's key (kept in
``$IPFL_KEY_DIR``, a tmp folder in the tests: ``tests/conftest.py``). A run moved to
another machine verifies there with the key exported explicitly; without it the audit
says it cannot verify authenticity. Older, unkeyed runs stay readable and resumable.
"""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ipfl.cli import main
from training import RunDir, audit_run, train
from training.keys import KeyError_, export_key, load_key_file, own_key
from training.rundir import ChainNote, RunDirError, _entry_hash, config_text, sha256

OLD = Path(__file__).parent / "data" / "runs-before-session" / "ipfl"


@pytest.fixture(scope="module")
def keyed_run(tmp_path_factory):
    """A finished tiny iPFL run signed with this machine's (the tests') key."""
    from training import Config

    out = tmp_path_factory.mktemp("keyed") / "run"
    train(Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5), out,
          progress=False)
    return out


@pytest.fixture
def run(keyed_run, tmp_path):
    shutil.copytree(keyed_run, tmp_path / "run")
    return tmp_path / "run"


def _rehash(run: Path, *, strip: bool) -> None:
    """Do what an attacker without the key can: recompute every hash of the chain from the
    files on disk and re-link it (keeping or stripping the MAC fields)."""
    rd = RunDir(run)
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    config = sha256((run / "config.json").read_bytes())
    prev, chain = None, []
    for e in state["chain"]:
        e = {**e, "prev": prev, "config": config}
        rec = rd.round_path(e["round"])
        e["record"] = sha256(rec.read_bytes()) if rec.exists() else None
        if strip:
            e.pop("mac"), e.pop("key")
        chain.append(e)
        prev = _entry_hash(e)
    state["chain"] = chain
    torch.save(state, run / "checkpoint.pt")


def _edit_config(run: Path, **change) -> None:
    doc = json.loads((run / "config.json").read_text())
    doc.update(change)
    (run / "config.json").write_text(config_text(doc))


def test_a_new_run_is_keyed_and_authenticated(run):
    """Every entry names this machine's key and its MAC verifies."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert {e["key"] for e in state["chain"]} == {own_key().id}
    report = audit_run(run)
    assert report.ok and report.authenticated and not report.notes, report.problems
    res = CliRunner().invoke(main, ["audit-run", str(run)])
    assert res.exit_code == 0 and f"authenticated with key {own_key().id}" in res.output


def test_an_edit_plus_a_rehash_is_detected(run):
    """lr changed in config.json, every hash recomputed: the MACs do not verify."""
    _edit_config(run, lr=0.5)
    assert any("config.json differs" in p for p in audit_run(run).problems)
    _rehash(run, strip=False)
    report = audit_run(run)
    assert not report.ok and not report.authenticated
    assert sum("MAC does not verify" in p for p in report.problems) == 3, report.problems
    assert not any("config.json differs" in p for p in report.problems)  # the rehash worked
    with pytest.raises(RunDirError, match="MAC does not verify"):
        train(None, run, resume=True, progress=False, overrides=["rounds=3"])


def test_a_stripped_chain_reads_as_unkeyed_and_fails_when_a_key_is_asked_for(run, tmp_path):
    """Stripping every MAC makes the run look unkeyed: the audit says it is not
    authenticated, and with --key (authenticity asked for) it is a mismatch."""
    _edit_config(run, lr=0.5)
    _rehash(run, strip=True)
    report = audit_run(run)
    assert report.ok and not report.authenticated
    assert any("unkeyed hash chain" in n for n in report.notes)
    export_key(tmp_path / "k.key")
    res = CliRunner().invoke(main, ["audit-run", str(run), "--key", str(tmp_path / "k.key")])
    assert res.exit_code == 1 and "MISMATCH authenticity was asked for" in res.output


def test_a_partly_stripped_chain_is_a_problem(run):
    """A MAC missing after keyed entries (only the edited round re-hashed) is a mismatch."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    last = state["chain"][-1]
    last.pop("mac"), last.pop("key")
    torch.save(state, run / "checkpoint.pt")
    assert any("has no MAC though earlier ones do" in p for p in audit_run(run).problems)


def test_a_moved_run_is_verified_with_the_exported_key(run, tmp_path, monkeypatch):
    """On another machine (another key folder): a NOTE without the key, authenticated with
    --key FILE, resumable after `ipfl key import`; a wrong key is a mismatch."""
    exported = tmp_path / "origin.key"
    assert CliRunner().invoke(main, ["key", "export", str(exported)]).exit_code == 0
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    monkeypatch.setenv("IPFL_KEY_DIR", str(tmp_path / "other-machine"))
    # Without the key: consistent, not authenticated, said clearly
    res = CliRunner().invoke(main, ["audit-run", str(run)])
    assert res.exit_code == 0, res.output
    assert "NOTE the chain is keyed with key" in res.output and "NOT authenticated" in res.output
    # With it: authenticated
    res = CliRunner().invoke(main, ["audit-run", str(run), "--key", str(exported)])
    assert res.exit_code == 0 and "authenticated with key" in res.output, res.output
    # With another machine's key: a mismatch
    other = tmp_path / "other.key"
    export_key(other)
    res = CliRunner().invoke(main, ["audit-run", str(run), "--key", str(other)])
    assert res.exit_code == 1 and "MISMATCH authenticity was asked for" in res.output
    # Resume needs the run's key here
    with pytest.raises(RunDirError, match="not available here"):
        train(None, run, resume=True, progress=False, overrides=["rounds=3"])
    assert CliRunner().invoke(main, ["key", "import", str(exported)]).exit_code == 0
    train(None, run, resume=True, progress=False, overrides=["rounds=3"])
    report = audit_run(run)
    assert report.ok and report.authenticated and report.committed == 3, report.problems
    assert report.keys == [load_key_file(exported).id]


def test_an_unkeyed_old_run_is_read_and_resumed_with_a_note(tmp_path):
    """A run from before keyed chains: audited (consistent, a note that it is unkeyed),
    resumed with a one-line note; the rounds it adds are keyed."""
    run = tmp_path / "old"
    shutil.copytree(OLD, run)
    report = audit_run(run)
    assert report.ok and not report.authenticated
    assert report.notes == ["rounds 0..2 have an unkeyed hash chain (written before ipfl keyed "
                            "its chains): their internal consistency was checked, their "
                            "authenticity cannot be"]
    res = CliRunner().invoke(main, ["train", "--resume", str(run), "--set", "rounds=3",
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    assert "note: " in res.output and "unkeyed hash chain" in res.output
    with pytest.warns(ChainNote, match="unkeyed"):
        train(None, run, resume=True, progress=False, overrides=["rounds=4"])
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ["mac" in e for e in state["chain"]] == [False, False, False, True, True]
    report = audit_run(run)
    assert report.ok and report.notes[0].startswith("rounds 0..2 have an unkeyed")


def test_a_history_item_may_change_only_what_set_allows(run):
    """An edited config that records a structural change (data_dir) as if resumed is refused."""
    doc = json.loads((run / "config.json").read_text())
    before = sha256((run / "config.json").read_bytes())
    doc["history"] = [{"round": 3, "set": {"data_dir": {"was": doc["data_dir"],
                                                        "now": "/tmp/elsewhere"}},
                       "sha256": before, "at": "2026-01-01T00:00:00+0000"}]
    doc["data_dir"] = "/tmp/elsewhere"
    (run / "config.json").write_text(config_text(doc))
    problems = audit_run(run).problems
    assert any("history item 0 changes data_dir, which a resume may not change" in p
               for p in problems), problems
    with pytest.raises(RunDirError, match="fails verification"):
        train(None, run, resume=True, progress=False, overrides=["rounds=3"])


def test_the_key_is_created_private_and_one_open_to_others_is_refused(tmp_path, monkeypatch):
    """chain.key: mode 600 in a 700 folder; a key readable by others or a link is refused."""
    monkeypatch.setenv("IPFL_KEY_DIR", str(tmp_path / "keys"))
    key = own_key()
    path = tmp_path / "keys" / "chain.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert own_key().id == key.id and key.secret.hex() not in repr(key)
    path.chmod(0o644)
    with pytest.raises(KeyError_, match="mode 644 .* others could read"):
        own_key()
    path.chmod(0o600)
    path.rename(tmp_path / "real.key")
    path.symlink_to(tmp_path / "real.key")
    with pytest.raises(KeyError_, match="symbolic link"):
        own_key()
    res = CliRunner().invoke(main, ["key", "id"])
    assert res.exit_code == 2 and "symbolic link" in res.output


def test_first_runs_at_once_agree_on_one_key(tmp_path):
    """Four processes creating the key at once all get the same one."""
    import subprocess
    import sys

    env = {**os.environ, "IPFL_KEY_DIR": str(tmp_path / "k")}
    code = "from training.keys import own_key; print(own_key().id)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(4)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(ids) == 1 and len(ids.pop()) == 16


def test_a_key_folder_that_cannot_be_written_refuses_the_run_before_any_write(tmp_path,
                                                                              monkeypatch,
                                                                              tiny):
    """No key can be created: one line naming IPFL_KEY_DIR, and the run folder stays empty."""
    (tmp_path / "ro").mkdir(mode=0o500)
    monkeypatch.setenv("IPFL_KEY_DIR", str(tmp_path / "ro" / "keys"))
    if os.access(tmp_path / "ro", os.W_OK):  # root writes anywhere: use a file as parent
        (tmp_path / "ro").chmod(0o700)
        (tmp_path / "ro" / "file").write_text("")
        monkeypatch.setenv("IPFL_KEY_DIR", str(tmp_path / "ro" / "file" / "keys"))
    with pytest.raises(RunDirError, match="cannot create the run-chain key in .* set "
                                          "IPFL_KEY_DIR"):
        train(tiny, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
