"""Ctrl-C (SIGINT) stops a run cleanly: exit 130, one line naming the resume command.

A real ``ipfl train`` subprocess gets SIGINT once it has committed a round; it must
exit with 130 and no traceback, name the last committed round, and resume to the
metrics and ledger of a run never interrupted.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training import Config, Ledger, RunDir, train
from training.loop import _sigint_deferred

TINY = dict(clients=4, epochs=1, hidden=16, max_samples=400)
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]


def _wait_for_round(run, t, proc, timeout=60.0):
    """Wait until ``run``'s metrics hold round ``t`` (the process still running)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        path = run / "metrics.jsonl"
        if path.exists() and f'"round": {t},' in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"round {t} never committed")


@pytest.mark.slow
def test_sigint_stops_after_a_committed_round_and_resumes_to_the_same_metrics(tmp_path):
    """SIGINT mid-run: exit 130, `stopped after round t; resume with: ...`, same result."""
    # Prepare: a run far too long to finish before the signal
    run = tmp_path / "run"
    root = str(Path(__file__).resolve().parents[3])  # this checkout's ipfl, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "ipfl.cli", "train", *SETS,
                             "--set", "rounds=100000", "--run-dir", str(run), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # Execute
    _wait_for_round(run, 1, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    # Assert: the message, the exit code, no traceback, and only whole rounds on disk
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err and "Aborted" not in out + err
    assert err.startswith("training ipfl on digits: 4 clients, rounds 0..100000"), err
    t = max(r["round"] for r in RunDir(run).read_metrics())
    assert err.rstrip().endswith(f"stopped after round {t}; resume with: "
                                 f"ipfl train --resume {run}"), err
    assert sorted(int(p.stem) for p in (run / "rounds").glob("*.json")) == list(range(1, t + 1))
    assert Ledger(run / "ledger.sqlite").rounds() == list(range(1, t + 1))
    # resume to two rounds past the stop; compare with a run of that length never stopped
    done = subprocess.run([sys.executable, "-m", "ipfl.cli", "train", "--resume", str(run),
                           "--set", f"rounds={t + 2}", "--quiet"], capture_output=True,
                          text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"resuming ipfl on digits: 4 clients, rounds {t + 1}..{t + 2}")
    ref = tmp_path / "ref"
    train(Config(rounds=t + 2, **TINY), ref, progress=False)
    assert RunDir(run).read_metrics() == RunDir(ref).read_metrics()
    led, led_ref = Ledger(run / "ledger.sqlite"), Ledger(ref / "ledger.sqlite")
    assert led.rounds() == led_ref.rounds() == list(range(1, t + 3))
    assert all(led.entries(k) == led_ref.entries(k) for k in led.rounds())


def test_a_sigint_inside_a_commit_is_held_until_the_commit_ends():
    """The commit is not cut in two: the interrupt is raised right after it."""
    done = []
    with pytest.raises(KeyboardInterrupt):
        with _sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a real handler would have raised by now
            done.append("the rest of the commit")
    assert done == ["the rest of the commit"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_a_sigint_the_commit_runs_and_the_handler_is_restored():
    with _sigint_deferred():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_keyboard_interrupt_outside_a_run_is_one_line_and_130(monkeypatch):
    """Ctrl-C in any command: no 'Aborted!', no traceback, exit 130."""
    from click.testing import CliRunner

    import ipfl.commands.market as market
    from ipfl.cli import main

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(market, "random_market", interrupted)
    res = CliRunner().invoke(main, ["market"])
    assert res.exit_code == 130
    assert res.output == "stopped (Ctrl-C)\n"


def test_a_run_stopped_before_it_wrote_anything_says_nothing_was_saved(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import training
    from ipfl.cli import main

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "train", interrupted)
    res = CliRunner().invoke(main, ["train", *SETS, "--run-dir", str(tmp_path / "r")])
    assert res.exit_code == 130
    assert res.output.strip() == "stopped before the run started; nothing was saved"


def test_an_experiment_says_what_it_will_run_and_how_to_resume_after_ctrl_c(monkeypatch,
                                                                           tmp_path):
    """The start line names the runs and folders; Ctrl-C names the command that resumes."""
    from click.testing import CliRunner

    import ipfl.experiments as experiments
    from ipfl.cli import main

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiments, "run_specs", interrupted)
    monkeypatch.setattr(sys, "argv", ["ipfl", "experiment", "utility", "--tiny"])
    res = CliRunner().invoke(main, ["experiment", "utility", "--tiny", "--seeds", "1",
                                    "--out", str(tmp_path / "u")])
    assert res.exit_code == 130
    first, *_, last = res.output.strip().splitlines()
    assert first.startswith("experiment utility (tiny): ")
    assert f"results in {tmp_path / 'u'}, run directories in {tmp_path / 'run-store'}" in first
    assert last == ("stopped; finished runs are kept; resume with: "
                    "ipfl experiment utility --tiny")
