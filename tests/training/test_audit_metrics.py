"""`ipfl audit-run` checks the metric columns against the round records and the ledger.

A run whose session committed wrong metric rows (here: a patched ``absorb``, standing
for a bug or a lying client) has a consistent hash chain, so only this check finds it.
"""

import math
import shutil

import pytest

from training import Config, Session, audit_run, train


@pytest.mark.parametrize("algorithm", ["ipfl", "fedavg", "local"])
def test_clean_runs_have_consistent_metrics(tiny_runs, algorithm):
    report = audit_run(tiny_runs[algorithm])
    assert report.ok, report.problems


#: (column, how the committed row is changed, what the audit says)
CORRUPTIONS = [
    ("acc", lambda r: 5.0, "metrics acc outside [0, 1] for clients [0]"),
    ("val_acc", lambda r: 1e9, "metrics val_acc outside [0, 1] for clients [0]"),
    ("val_acc", lambda r: math.nan, "metrics val_acc outside [0, 1] for clients [0]"),
    ("received", lambda r: r["received"] + 1.0, "metrics received differs from the round "
                                               "record for clients [0]"),
    ("paid", lambda r: r["paid"] + 0.5, "received - paid differs from the ledger"),
    ("cum_U", lambda r: r["cum_U"] + 1.0, "metrics cum_U is not the sum of U over rounds"),
    ("U", lambda r: r["U"] - 1.0, "metrics U differs from the round record"),
    ("importers", lambda r: r["importers"] + 1, "metrics importers differs from the round"),
    ("best_acc", lambda r: 0.99, "metrics best_acc is not the test accuracy at the best"),
    ("ir", lambda r: not r["ir"], "metrics ir disagrees with U >= -IR_TOL"),
    ("shared_params", lambda r: r["shared_params"] - 1, "metrics shared_params/total_params "
                                                       "differ from the run's other rows"),
    ("total_params", lambda r: r["shared_params"] - 1, "metrics shared_params/total_params "
                                                      "are not counts with shared <= total"),
]


@pytest.mark.parametrize("column,change,phrase", CORRUPTIONS,
                         ids=[f"{c}-{k}" for k, (c, _, _) in enumerate(CORRUPTIONS)])
def test_a_committed_wrong_metric_is_found(tmp_path, monkeypatch, column, change, phrase):
    """Round 1's row of client 0 is changed before the commit: the chain binds it, the
    audit finds it (exit 1), naming round, column and client."""
    # Prepare: a session that commits one wrong cell
    real = Session.absorb

    def absorb(self, plan, results, drops=None):
        record, state = real(self, plan, results, drops)
        if record.round == 1:
            row = record.rows[0]
            row[column] = change(row)
        return record, state

    monkeypatch.setattr(Session, "absorb", absorb)
    cfg = Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5)
    # Execute
    train(cfg, tmp_path / "run", progress=False)
    report = audit_run(tmp_path / "run")
    # Assert
    assert not any("hash chain" in p or "MAC" in p for p in report.problems)
    assert any(p.startswith("round 1: ") and phrase in p for p in report.problems), \
        report.problems


def test_missing_rows_and_a_resurrected_client_are_found(tiny_runs, tmp_path):
    """Rows checked per round: all clients present; active never comes back."""
    from training.audit_metrics import check_metrics
    from training.rundir import RunDir

    rd = RunDir(shutil.copytree(tiny_runs["fedavg"], tmp_path / "run"))
    rows = rd.read_metrics()
    records = {t: rec.exchange for t, rec in rd.read_records().items() if rec.exchange}
    assert check_metrics(rows, records, 4, 2, None, 1e-9) == []
    short = [r for r in rows if not (r["round"] == 2 and r["client"] == 3)]
    assert check_metrics(short, records, 4, 2, None, 1e-9) == [
        "round 2: metrics rows missing for clients [3]"]
    flip = [dict(r) for r in rows]
    for r in flip:
        if r["client"] == 1 and r["round"] == 1:
            r["active"] = False
    problems = check_metrics(flip, records, 4, 2, None, 1e-9)
    assert any("round 2: metrics active for a client that quit or was dropped for clients "
               "[1]" in p for p in problems), problems


def test_parameter_counts_are_held_to_the_checkpoints_upload_width(tiny_runs, tmp_path):
    """Every row claiming another shared count than the uploads' width is found; rows
    written before the columns existed (neither key) are not problems."""
    from training.audit_metrics import check_metrics
    from training.rundir import RunDir

    # Prepare
    rd = RunDir(shutil.copytree(tiny_runs["ipfl"], tmp_path / "run"))
    rows = rd.read_metrics()
    records = {t: rec.exchange for t, rec in rd.read_records().items() if rec.exchange}
    width = int(rd.load_checkpoint()["uploads"].shape[1])
    shifted = [{**r, "shared_params": r["shared_params"] - 1} for r in rows]
    old = [{k: v for k, v in r.items() if k not in ("shared_params", "total_params")}
           for r in rows]
    # Execute / Assert
    assert rows[0]["shared_params"] == width <= rows[0]["total_params"]
    assert check_metrics(rows, records, 4, 2, None, 1e-9, width) == []
    assert check_metrics(old, records, 4, 2, None, 1e-9, width) == []
    problems = check_metrics(shifted, records, 4, 2, None, 1e-9, width)
    assert [p.split(":")[0] for p in problems] == ["round 0", "round 1", "round 2"]
    assert all("shared_params differs from the checkpoint's upload width for clients "
               f"[0, 1, 2, 3] (client 0: {width - 1} vs {width})" in p for p in problems)
    assert check_metrics(shifted, records, 4, 2, None, 1e-9, None) == []  # no checkpoint


def test_drops_jsonl_must_match_the_rows_marked_dropped(tmp_path):
    """drops.jsonl is outside the hash chain: the audit holds it to the (chained) rows."""
    from training import prepare
    from training.loop import client_results

    # Prepare: a 2-round run in which client 2 is dropped in round 1
    cfg = Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5)
    s = Session.open(tmp_path / "run", cfg)
    s.start(prepare(cfg))
    for t in s.rounds():
        plan = s.plan(t)
        results = dict(client_results(s, plan))
        drops = {2: "timeout"} if t == 1 else {}
        for i in drops:
            results.pop(i)
        s.commit(*s.absorb(plan, results, drops))
    assert audit_run(tmp_path / "run").ok
    # Execute / Assert: the drop line removed, then one invented
    drops = tmp_path / "run" / "drops.jsonl"
    drops.write_text("")
    assert any("drops.jsonl names (round, client) [(1, 2)]" in p
               for p in audit_run(tmp_path / "run").problems)
    drops.write_text('{"client": 2, "round": 1, "why": "timeout"}\n'
                     '{"client": 0, "round": 2, "why": "timeout"}\n')
    assert any("drops.jsonl names (round, client) [(2, 0)]" in p
               for p in audit_run(tmp_path / "run").problems)
