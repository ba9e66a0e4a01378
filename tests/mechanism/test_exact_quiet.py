"""exact_graph(solver="highs") prints nothing: HiGHS's banner goes to fd 1 unless silenced."""

import importlib.util
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("highspy") is None, reason="highspy not installed")
def test_highs_prints_no_banner():
    code = ("from mechanism import exact_graph, random_market; "
            "print(exact_graph(random_market(5, seed=1), solver='highs').success)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True\n"
    assert "HiGHS" not in done.stderr
