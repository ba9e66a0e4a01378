"""Tests of ``ipfl compare`` (click command in ipfl/commands/compare.py)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ipfl.cli import main


def test_compare_cli_writes_table_csv_json_figures(tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(main, ["compare", "--sizes", "3,4", "--markets", "4", "--seed", "2",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "row opt%" in result.output and "certified optimal" in result.output
    for name in ("markets.csv", "rows.csv", "compare.json", "gap_vs_m.png"):
        assert (out / name).stat().st_size > 0
    data = json.loads((out / "compare.json").read_text())
    assert data["options"]["sizes"] == [3, 4]


def test_compare_cli_bad_option_fails_before_work(tmp_path):
    out = tmp_path / "never"
    result = CliRunner().invoke(main, ["compare", "--c-range", "2,1", "--out", str(out)])
    assert result.exit_code != 0
    assert "c_range" in result.output
    assert not out.exists()
    result = CliRunner().invoke(main, ["compare", "--sizes", "a,b"])
    assert result.exit_code != 0 and "comma-separated list of integers" in result.output
