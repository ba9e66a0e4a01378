"""training/records.py: round files read back exactly, and a tampered one refused by name."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from training.audit import audit_run
from training.records import Exchange, RoundRecord

OLD = Path(__file__).parent / "data" / "runs-before-session"


def _doc(algorithm: str, t: int = 1) -> dict:
    return json.loads((OLD / algorithm / "rounds" / f"{t:04d}.json").read_text())


@pytest.mark.parametrize("algorithm", ["ipfl", "fedavg"])
def test_round_files_round_trip(algorithm):
    doc = _doc(algorithm)
    ex = Exchange.from_json(doc)
    assert ex.kind == ("market" if algorithm == "ipfl" else "sharing")
    assert ex.to_json() == doc
    assert Exchange.from_json(ex.to_json()) == ex


def test_round_record_round_trips():
    ex = Exchange.from_json(_doc("ipfl"))
    rows = ({"round": 1, "client": 0, "acc": 0.5},)
    rec = RoundRecord(round=1, exchange=ex, rows=rows, drops={2: "timeout"})
    back = RoundRecord.from_json(json.loads(json.dumps(rec.to_json())))
    assert back == rec
    assert RoundRecord.from_json(RoundRecord(round=0, exchange=None).to_json()).exchange is None


def _set(where: str, key: str, value):
    """Return an edit of a round file: ``doc[where][key] = value(old value)``."""
    def edit(doc: dict) -> dict:
        doc = json.loads(json.dumps(doc))
        doc[where][key] = value(doc[where][key])
        return doc
    return edit


def _entry(value):
    """Return an edit of a graph: its entry (0, 1) set to ``value``."""
    def edit(A):
        A[0][1] = value
        return A
    return edit


@pytest.mark.parametrize(("edit", "says"), [
    (_set("outputs", "A", _entry(300)), "A[0, 1] = 300 is not 0 or 1"),
    (_set("outputs", "A", _entry(1.5)), "A[0, 1] = 1.5 is not 0 or 1"),
    (_set("outputs", "A", _entry(1e400)), "A[0, 1] = inf is not 0 or 1"),
    (_set("outputs", "stays", lambda s: [5] * len(s)), "stays is not a list of true/false"),
    (_set("outputs", "stays", lambda s: "all"), "stays is not a list of true/false"),
    (_set("inputs", "N", lambda n: n[:1]), "N has shape (1,)"),
    (_set("inputs", "d", lambda d: [[0.0]]), "d has shape (1, 1)"),
    (_set("inputs", "budget", lambda b: ["x"] * len(b)), "budget is not numeric"),
])
def test_a_tampered_market_file_is_refused_naming_the_field(edit, says):
    with pytest.raises(ValueError, match=re.escape(says)):
        Exchange.from_json(edit(_doc("ipfl")))


def test_an_unknown_kind_or_a_missing_key_is_refused():
    doc = _doc("fedavg")
    with pytest.raises(ValueError, match="kind 'sharin' is not one of"):
        Exchange.from_json({**doc, "kind": "sharin"})
    with pytest.raises(ValueError, match="lacks 'outputs'"):
        Exchange.from_json({k: v for k, v in doc.items() if k != "outputs"})
    with pytest.raises(ValueError, match="not a JSON object"):
        Exchange.from_json([doc])


def test_audit_lists_a_wrapped_graph_entry_instead_of_crashing(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD / "ipfl", run)
    doc = _doc("ipfl")
    doc["outputs"]["A"][0][1] = 300
    (run / "rounds" / "0001.json").write_text(json.dumps(doc, indent=1))
    report = audit_run(run)
    assert any("rounds/0001.json cannot be recomputed (A[0, 1] = 300 is not 0 or 1)" in p
               for p in report.problems), report.problems
