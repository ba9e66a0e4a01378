"""The README's code that drives the training layer runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(starting: str) -> str:
    """Return the README's python block whose first line is ``starting``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    found = [b for b in blocks if b.startswith(starting)]
    assert len(found) == 1, f"README: {len(found)} python blocks start with {starting!r}"
    return found[0]


def test_the_round_by_hand_runs_and_leaves_an_audited_run(tmp_path, monkeypatch):
    from training import audit_run

    monkeypatch.chdir(tmp_path)
    code = _block("from training import Config, RunDir, Session, prepare")
    code = code.replace("Config(clients=4, rounds=2)",
                        "Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400)")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["session"].next_round == 3
    assert audit_run(tmp_path / "runs" / "by-hand").ok
