"""The teaching scripts in examples/ run top to bottom; their own asserts check the story."""

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("script", ["payments_and_lies.py", "greedy_vs_optimal.py"])
def test_example_runs(script, capsys):
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    assert "Traceback" not in capsys.readouterr().out
