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
