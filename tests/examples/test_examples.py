"""The teaching scripts in examples/ run top to bottom; their own asserts check the story.

(examples/greedy_vs_optimal.py is run by tests/mechanism/test_compare.py.)
"""

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_payments_and_lies_tells_its_story(capsys):
    runpy.run_path(str(EXAMPLES / "payments_and_lies.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "r_01 = [g_0(300) - g_0(0)] - lam N_1/N_0 d_01 = 1.0000 - 0.1500 = 0.8500" in out
    assert "buyers of 1: [0, 2] -> [0]" in out and "1.0500 -> 0.6000" in out
    assert "0.2929 when" in out and "0.4226 when" in out
    assert "Why client 2 stops buying" in out and "client 2 imports nobody" in out
