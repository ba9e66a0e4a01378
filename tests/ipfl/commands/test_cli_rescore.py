"""Tests of ``ipfl rescore`` (click command in ipfl/commands/rescore.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ipfl.cli import main
from ipfl.rescore import rescore_run


def test_rescore_prints_the_economic_table_and_the_lam_note(tiny_runs):
    # Execute
    result = CliRunner().invoke(main, ["rescore", str(tiny_runs["fedavg"])])
    # Assert
    assert result.exit_code == 0, result.output
    res = rescore_run(tiny_runs["fedavg"])
    out = result.output
    assert "fedavg, sharing records (no payments); 2 market rounds, 2 recorded" in out
    assert "rounds U<0" in out and len([ln for ln in out.splitlines() if "trader" in ln]) == 4
    assert f"welfare / optimum: {res.welfare_share:.3f}" in out
    assert "at lam = 1 (default 1 for a baseline, which has no lam)" in out
    assert "eq. (1)'s utilities and eq. (3)'s welfare do not depend on lam" in out


def test_rescore_a_baseline_under_overrides_as_json(tiny_runs):
    result = CliRunner().invoke(main, ["rescore", str(tiny_runs["fedavg"]), "--set", "c=2",
                                       "--set", "lam=0.5", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    want = rescore_run(tiny_runs["fedavg"], c=2.0, lam=0.5).to_dict()
    assert {k: v for k, v in data.items() if k != "lam_note"} == want
    assert data["overrides"] == {"c": 2.0, "lam": 0.5} and data["lam_source"] == "given"
    assert "do not depend on lam" in data["lam_note"]


def test_rescore_an_ipfl_run_from_its_records(tiny_runs):
    result = CliRunner().invoke(main, ["rescore", str(tiny_runs["ipfl"])])
    assert result.exit_code == 0, result.output
    assert "ipfl, iPFL market records" in result.output
    assert "at lam = 1 (the run's own)" in result.output


@pytest.mark.parametrize(("run", "args", "message"), [
    ("ipfl", ["--set", "lam=0.5"], "rescore: an iPFL run cannot be rescored under another lam "
                                   "(lam = 0.5 differs from the run's own in round 1)"),
    ("ipfl", ["--set", "c=1"], "`ipfl experiment NAME ... --set c=1`"),
    ("fedavg", ["--set", "beta=2"], "rescore: unknown key 'beta' (value 2); allowed keys: c, "
                                    "K_per_sample, lam"),
    ("fedavg", ["--set", "c=cheap"], "rescore: c = 'cheap' must be a number in [0, 1e+09]; "
                                     "allowed keys: c, K_per_sample, lam"),
    ("fedavg", ["--set", "lam"], "rescore: --set 'lam': expected key=value; allowed keys"),
])
def test_refusals_are_one_line_with_exit_code_2(tiny_runs, run, args, message):
    result = CliRunner().invoke(main, ["rescore", str(tiny_runs[run]), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")


def test_not_a_run_is_exit_code_2(tmp_path):
    result = CliRunner().invoke(main, ["rescore", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a run directory" in result.output
