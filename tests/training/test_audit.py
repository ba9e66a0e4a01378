import json
import subprocess
import sys

import pytest

from training import train
from training.audit import audit_run

CLI = [sys.executable, "-m", "ipfl.cli", "audit-run"]


@pytest.fixture
def run_dir(tiny, tmp_path):
    train(tiny, tmp_path / "run", progress=False)
    return tmp_path / "run"


def test_clean_run_passes_audit(run_dir):
    report = audit_run(run_dir)
    assert report.ok, report.problems
    assert report.rounds == [1, 2]
    res = subprocess.run([*CLI, str(run_dir)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 mismatches" in res.stdout


@pytest.mark.parametrize("field,edit", [
    ("p", lambda v: [v[0] + 0.01, *v[1:]]),
    ("A", lambda v: [[1 - x if i != j else x for j, x in enumerate(row)]
                     for i, row in enumerate(v)]),
    ("U", lambda v: [x * 1.5 + 1 for x in v]),
])
def test_tampered_output_is_detected(run_dir, field, edit):
    path = run_dir / "rounds" / "0002.json"
    rec = json.loads(path.read_text())
    rec["outputs"][field] = edit(rec["outputs"][field])
    path.write_text(json.dumps(rec))
    report = audit_run(run_dir)
    assert any(p.startswith("round 2") and field in p for p in report.problems)
    assert not any(p.startswith("round 1") for p in report.problems)
    res = subprocess.run([*CLI, str(run_dir)], capture_output=True, text=True)
    assert res.returncode == 1
    assert "MISMATCH round 2" in res.stdout


def test_tampered_input_is_detected(run_dir):
    path = run_dir / "rounds" / "0001.json"
    rec = json.loads(path.read_text())
    rec["inputs"]["c"] = [x + 5.0 for x in rec["inputs"]["c"]]
    path.write_text(json.dumps(rec))
    assert any(p.startswith("round 1") for p in audit_run(run_dir).problems)
