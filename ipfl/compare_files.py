"""Files of ``ipfl compare``: the measured rows and markets as CSV and JSON, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from atomicio import atomic_write_text
from mechanism.compare import CompareResult

__all__ = ["write_outputs"]


def write_outputs(res: CompareResult, outdir: str | os.PathLike) -> dict[str, Path]:
    """Write ``markets.csv``, ``rows.csv`` and ``compare.json`` atomically; return their paths."""
    outdir = Path(outdir)
    paths = {}
    for name, records in (("markets", res.markets), ("rows", res.rows)):
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
        paths[name] = outdir / f"{name}.csv"
        atomic_write_text(paths[name], buf.getvalue())
    paths["json"] = outdir / "compare.json"
    payload = {"options": res.options, "summary": res.summary, "example": res.example,
               "markets": res.markets}
    atomic_write_text(paths["json"], json.dumps(payload, indent=1, allow_nan=True))
    return paths
