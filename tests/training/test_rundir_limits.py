"""Limits on run directories (issue 21): regular files only, size caps, bounded rounds.

An attacker who can write a run directory plants a FIFO (an audit that reads it would
wait forever), a link to /dev/zero (endless bytes), an oversized file, or a checkpoint
whose chain claims round 10**12. Each is refused at once, naming the file.
"""

import os
import shutil
import subprocess
import sys

import pytest
import torch

from training import audit_run, train
from training.rundir import RunDirError

AUDIT = [sys.executable, "-m", "ipfl.cli", "audit-run"]


@pytest.fixture
def run(tiny_runs, tmp_path):
    shutil.copytree(tiny_runs["ipfl"], tmp_path / "run")
    return tmp_path / "run"


def _fifo(p):
    p.unlink(missing_ok=True)
    os.mkfifo(p)


def _zero(p):
    p.unlink(missing_ok=True)
    p.symlink_to("/dev/zero")


PLANTS = [
    ("rounds/0003.json", _fifo, "is a FIFO"),
    ("rounds/0002.json", _fifo, "is a FIFO"),
    ("rounds/0001.json", _zero, "is a symbolic link"),
    ("metrics.jsonl", _fifo, "is a FIFO"),
    ("metrics.jsonl", _zero, "is a symbolic link"),
    ("checkpoint.pt", _zero, "is a symbolic link"),
    ("checkpoint.pt", _fifo, "is a FIFO"),
    ("ledger.sqlite", _fifo, "is a FIFO"),
    ("ledger.sqlite", _zero, "is a symbolic link"),
]


@pytest.mark.parametrize("name,plant,phrase", PLANTS, ids=[f"{n}:{p.__name__}"
                                                           for n, p, _ in PLANTS])
def test_a_fifo_or_dev_zero_in_a_run_is_refused_at_once(run, name, plant, phrase):
    """`ipfl audit-run` reports the file and exits 1 within seconds; resume refuses it."""
    plant(run / name)
    res = subprocess.run([*AUDIT, str(run)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert phrase in res.stdout and "Traceback" not in res.stderr
    with pytest.raises(RunDirError, match=phrase):
        train(None, run, resume=True, progress=False, overrides=["rounds=3"])


@pytest.mark.parametrize("plant", [_fifo, _zero])
def test_a_config_that_is_not_a_regular_file_is_exit_2(run, plant):
    plant(run / "config.json")
    res = subprocess.run([*AUDIT, str(run)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "not a regular file" in res.stderr, res.stderr


@pytest.mark.parametrize("name,kind", [("metrics.jsonl", "metrics"), ("rounds/0001.json",
                                                                       "record"),
                                       ("checkpoint.pt", "checkpoint")])
def test_a_file_over_its_cap_is_refused_unread(run, monkeypatch, name, kind):
    from training import safeio

    size = (run / name).stat().st_size
    monkeypatch.setitem(safeio.CAPS, kind, size - 1)
    report = audit_run(run)
    assert any(f"holds {size} bytes, more than the {size - 1}" in p for p in report.problems), \
        report.problems


def test_a_checkpoint_claiming_round_10_to_the_12_is_refused_without_allocating(run):
    """The chain's last entry and the run state say round 10**12: the audit and resume
    refuse it in seconds (the committed round is the chain's length, never a claim)."""
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    state["round"] = 10**12
    state["chain"][-1]["round"] = 10**12
    torch.save(state, run / "checkpoint.pt")
    res = subprocess.run([*AUDIT, str(run)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "entry 2 is not linked" in res.stdout and "round counter 1000000000000" in res.stdout
    with pytest.raises(RunDirError, match="fails verification"):
        train(None, run, resume=True, progress=False)


def test_metric_rows_and_ledger_rounds_claiming_huge_rounds_are_reported(run):
    import sqlite3

    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"round": 1000000000000}\n')
    con = sqlite3.connect(run / "ledger.sqlite")
    con.execute("INSERT INTO booked VALUES (999999999999)")
    con.commit()
    con.close()
    problems = audit_run(run).problems
    assert any("round 1000000000000: metrics rows of a round that was never" in p
               for p in problems)
    assert any("round 999999999999: ledger rows of a round that was never" in p
               for p in problems)


def test_a_symlinked_rounds_folder_is_refused(run, tmp_path):
    shutil.move(run / "rounds", tmp_path / "elsewhere")
    (run / "rounds").symlink_to(tmp_path / "elsewhere")
    assert "rounds/ is a symbolic link, not the run's folder" in audit_run(run).problems
