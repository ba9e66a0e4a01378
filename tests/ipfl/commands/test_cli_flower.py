"""``ipfl flower``: bad input is one ``Error:`` line, never a traceback (no Flower run here)."""

from importlib import metadata

import pytest
from click.testing import CliRunner

from ipfl.cli import main


@pytest.mark.parametrize("sub", ["simulate", "deploy-local"])
def test_missing_flower_is_one_line_naming_the_extra(monkeypatch, tmp_path, sub):
    """Without flwr the command names the extra to install, on one line."""
    def fake(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", fake)
    out = CliRunner().invoke(main, ["flower", sub, "--run-dir", str(tmp_path / "r")])
    assert out.exit_code == 2
    extra = "ipfl[flower-sim]" if sub == "simulate" else "ipfl[flower]"
    assert out.output == (f"Error: Flower is not installed: pip install '{extra}' "
                          "(flwr>=1.42,<1.43, Python >= 3.11)\n")


def test_used_run_dir_and_bad_config_are_refused_before_flower_starts(tmp_path):
    """A non-empty run directory or a bad key stops the command before any process starts."""
    pytest.importorskip("flwr")
    (tmp_path / "metrics.jsonl").write_text("")
    used = CliRunner().invoke(main, ["flower", "deploy-local", "--run-dir", str(tmp_path)])
    bad = CliRunner().invoke(main, ["flower", "deploy-local", "--set", "clients=1",
                                    "--run-dir", str(tmp_path / "new")])
    assert used.exit_code == 2 and "is not empty; use --resume" in used.output
    assert bad.exit_code == 2 and "clients = 1 must be >= 2" in bad.output
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("sub", ["simulate", "deploy-local"])
def test_resume_with_a_structural_or_unsendable_set_is_refused_before_flower_starts(tmp_path,
                                                                                   sub):
    """--resume --set takes the keys ipfl train --resume takes, checked before any process."""
    pytest.importorskip("flwr")
    if sub == "simulate":
        pytest.importorskip("ray")
    from training import Config

    (tmp_path / "config.json").write_text(Config(clients=4).dumps())
    before = sorted(p.name for p in tmp_path.iterdir())
    args = ["flower", sub, "--run-dir", str(tmp_path), "--resume"]
    structural = CliRunner().invoke(main, [*args, "--set", "clients=6"])
    unsendable = CliRunner().invoke(main, [*args, "--set", "fedprox.mu=1|2"])
    with_config = CliRunner().invoke(main, [*args, "--config", str(tmp_path / "x.toml")])
    assert structural.exit_code == 2 and "--set clients: cannot change on resume" in \
        structural.output
    assert unsendable.exit_code == 2 and "may not contain |" in unsendable.output
    assert with_config.exit_code == 2 and "drop --config" in with_config.output
    assert "Traceback" not in structural.output + unsendable.output + with_config.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # not even flower/


def test_resume_cannot_shrink_a_run_below_its_committed_rounds(tmp_path):
    """Checked against the run's hash chain before any Flower process starts."""
    pytest.importorskip("flwr")
    from training import Config, train

    run = tmp_path / "run"
    train(Config(clients=3, rounds=2, epochs=1, hidden=8, max_samples=200), run,
          progress=False)
    out = CliRunner().invoke(main, ["flower", "deploy-local", "--run-dir", str(run),
                                    "--resume", "--set", "rounds=1"])
    assert out.exit_code == 2
    assert "--set rounds = 1: the run has already committed round 2" in out.output
    assert not (run / "flower").exists()


def test_bad_poll_interval_is_refused_before_any_process_starts(monkeypatch, tmp_path):
    """IPFL_FLOWER_POLL outside 0.01..3 s: one Error line naming it; nothing written."""
    pytest.importorskip("flwr")
    monkeypatch.setenv("IPFL_FLOWER_POLL", "10")
    out = CliRunner().invoke(main, ["flower", "deploy-local", "--set", "rounds=1",
                                    "--run-dir", str(tmp_path / "r")])
    assert out.exit_code == 2
    assert out.output.splitlines()[-1] == ("Error: IPFL_FLOWER_POLL = '10' is outside "
                                           "0.01 .. 3 seconds")
    assert "Traceback" not in out.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag, insecure", [([], False), (["--insecure"], True)])
def test_deploy_local_is_secure_unless_insecure_is_asked(monkeypatch, tmp_path, flag,
                                                         insecure):
    """The command asks for TLS + node auth by default, the plain mode only on --insecure."""
    pytest.importorskip("flwr")
    import ipfl.flower_runs as runs

    seen = {}

    def fake(cfg, path, **kw):
        seen.update(kw)
        return {"error": "stopped here"}

    monkeypatch.setattr(runs, "deploy_local", fake)
    out = CliRunner().invoke(main, ["flower", "deploy-local", "--set", "rounds=1",
                                    "--run-dir", str(tmp_path / "r"), *flag])
    assert out.output.splitlines()[-1] == "Error: stopped here"
    assert seen["insecure"] is insecure
