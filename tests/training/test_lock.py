"""One writer, always: the run lock cannot be turned against its user (issue 21).

An attacker who can write the run directory links ``run.lock`` elsewhere, or starts
a duplicate writer; writers race for a new run. Each test names what must hold.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from training import RunDir, audit_run, train
from training.rundir import RunDirError, RunLocked

_HOLD = ("import sys, time; from training.rundir import RunDir\n"
         "with RunDir(sys.argv[1]).lock():\n print('held', flush=True); time.sleep(120)")


def _holder(run):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(run)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("kind", ["symlink", "hardlink"])
def test_a_linked_run_lock_leaves_its_target_intact_and_is_refused(tmp_path, tiny, kind):
    """run.lock linked to another file: refused, that file's bytes unchanged, no run."""
    # Prepare
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me\n" * 100)
    run = tmp_path / "run"
    run.mkdir()
    (os.symlink if kind == "symlink" else os.link)(victim, run / "run.lock")
    # Execute / Assert
    with pytest.raises(RunDirError, match="run.lock is (a symbolic link|not a plain file)"):
        train(tiny, run, progress=False)
    with pytest.raises(RunDirError, match="run.lock is (a symbolic link|not a plain file)"):
        with RunDir(run).lock():
            pass
    assert victim.read_text() == "keep me\n" * 100
    assert not (run / "config.json").exists()


def test_a_refused_duplicate_does_not_unlink_or_truncate_the_holders_lock(tmp_path, tiny):
    """A second new run in a folder being written is refused; the holder's lock file keeps
    its inode and its holder record, and a third writer is refused too."""
    run = tmp_path / "run"
    holder = _holder(run)
    try:
        before = os.stat(run / "run.lock")
        record = (run / "run.lock").read_bytes()
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"):
            train(tiny, run, progress=False)
        after = os.stat(run / "run.lock")
        assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
        assert (run / "run.lock").read_bytes() == record
        with pytest.raises(RunLocked, match=f"pid {holder.pid}"):
            train(tiny, run, progress=False)
    finally:
        holder.kill()
        holder.wait()


def test_the_holder_keeps_other_writers_temporary_files(tmp_path):
    """Taking the lock removes a dead writer's .tmp, never a live writer's."""
    from atomicio import temp_owner

    run = tmp_path / "run"
    (run / "rounds").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = temp_owner().split("-")[0]
        live = run / "rounds" / f".0001.json.{host}-{sleeper.pid}.{'a' * 16}.tmp"
        live.write_text("half")
        with RunDir(run).lock():
            assert live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    with RunDir(run).lock():
        assert not live.exists()


_WRITER = textwrap.dedent("""
    import json, sys
    from training import Config, train
    from training.rundir import RunDirError
    cfg = Config(clients=3, rounds=1, epochs=1, hidden=8, max_samples=200)
    try:
        train(cfg, sys.argv[1], progress=False)
        print(json.dumps({"ran": True}))
    except RunDirError as exc:
        print(json.dumps({"ran": False, "why": str(exc)}))
""")


def test_concurrent_new_runs_exactly_one_proceeds_and_the_audit_passes(tmp_path):
    """Four writers started at once on one new run directory: one runs, three are refused
    (held, or not empty), and the run it leaves is verified end to end."""
    run = tmp_path / "run"
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(run)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    ran = [o for o in outs if o["ran"]]
    assert len(ran) == 1, outs
    assert all("in use by another" in o["why"] or "not empty" in o["why"]
               for o in outs if not o["ran"]), outs
    report = audit_run(run)
    assert report.ok and report.committed == 1, report.problems
