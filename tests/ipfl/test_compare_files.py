"""ipfl/compare_files.py: a comparison's outputs written atomically and read back."""

from __future__ import annotations

import json

from ipfl.compare_files import write_outputs
from mechanism.compare import compare


def test_compare_writes_outputs(tmp_path):
    res = compare(sizes=[3, 5], markets=3, seed=1, solver="dp")
    paths = write_outputs(res, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["summary"]["exact"]["certified_rows"] == 24
    assert paths["rows"].read_text().count("\n") == len(res.rows) + 1
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind
