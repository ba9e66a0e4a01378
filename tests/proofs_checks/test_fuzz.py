"""The long domain fuzz driver (proofs_checks/fuzz.py): counts, resume, failures kept."""

import json

import pytest

import proofs_checks.fuzz as fuzz
from mechanism.market_dict import market_from_dict


def test_a_small_run_counts_every_market_and_resumes_without_rerunning(tmp_path):
    # Prepare
    out = tmp_path / "fuzz.json"
    kw = dict(workers=1, chunk=6, seed=3, exact_every=3, outside_every=2, progress=False)
    # Execute
    first = fuzz.run_fuzz(12, out, **kw)
    before = out.read_text()
    again = fuzz.run_fuzz(12, out, **kw)
    more = fuzz.run_fuzz(18, out, **kw)
    # Assert
    assert first == again
    assert first["chunks"] == 2 and first["failures"] == 0
    c = first["counts"]
    assert c["inside"] >= 12 and c["exact"] >= 4 and c["outside"] >= 6
    assert sum(v for k, v in c.items() if k.startswith("m=")) == c["inside"]
    assert sum(v for k, v in c.items() if k.startswith("gain=")) == c["inside"]
    assert more["chunks"] == 3
    doc = json.loads(out.read_text())
    assert doc["chunks"]["0"] == json.loads(before)["chunks"]["0"]  # not rerun


def test_chunks_are_reproducible_from_their_seed(tmp_path):
    cfg = dict(chunk=5, seed=1, exact_every=5, outside_every=5)
    a, b = fuzz.run_chunk(0, cfg), fuzz.run_chunk(0, cfg)
    assert a["counts"] == b["counts"] and a["seed"] == b["seed"]
    assert fuzz.run_chunk(1, cfg)["seed"] != a["seed"]


def test_a_failure_is_shrunk_and_kept_as_a_market_file(tmp_path, monkeypatch):
    # Prepare: a planted defect, "no market of 3 or more clients passes"
    def planted(mk):
        assert mk.m < 3, "planted"

    monkeypatch.setattr(fuzz, "check_market", planted)
    out = tmp_path / "fuzz.json"
    # Execute
    summary = fuzz.run_fuzz(20, out, workers=1, chunk=20, progress=False)
    # Assert: Hypothesis shrank it to 3 clients, stored as a replayable market
    assert summary["failures"] == 1
    (failure,) = json.loads(out.read_text())["chunks"]["0"]["failures"]
    assert failure["test"] == "inside" and "planted" in failure["error"]
    assert market_from_dict(failure["market"]).m == 3
    assert fuzz.main(["--markets", "20", "--chunk", "20", "--out", str(out)]) == 1


def test_resuming_with_other_settings_or_a_foreign_file_is_refused(tmp_path, capsys):
    out = tmp_path / "fuzz.json"
    fuzz.run_fuzz(3, out, workers=1, chunk=3, progress=False)
    with pytest.raises(ValueError, match="was run with .* not .*resume with the same settings"):
        fuzz.run_fuzz(3, out, workers=1, chunk=4, progress=False)
    other = tmp_path / "other.json"
    other.write_text('{"schema": "something else"}')
    assert fuzz.main(["--markets", "3", "--out", str(other)]) == 2
    assert "is not a fuzz run's file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="fuzz: chunk = 0 must be an integer >= 1"):
        fuzz.run_fuzz(3, tmp_path / "x.json", chunk=0)
    with pytest.raises(ValueError, match="fuzz: workers = 0 must be an integer >= 1"):
        fuzz.run_fuzz(3, tmp_path / "x.json", workers=0)


def test_two_workers_give_the_counts_of_one(tmp_path):
    kw = dict(chunk=4, seed=2, exact_every=4, outside_every=4, progress=False)
    one = fuzz.run_fuzz(8, tmp_path / "one.json", workers=1, **kw)
    two = fuzz.run_fuzz(8, tmp_path / "two.json", workers=2, **kw)
    assert one == {**two, "cpu_seconds": one["cpu_seconds"]}


def test_report_prints_the_counts_as_a_table(tmp_path, capsys):
    out = tmp_path / "fuzz.json"
    fuzz.run_fuzz(6, out, workers=1, chunk=6, exact_every=3, outside_every=2, progress=False)
    assert fuzz.main(["--report", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| markets inside the domain, every guarantee, both greedy variants | 6 |" in table
    assert "| failures | 0 |" in table
    (tmp_path / "bad.json").write_text("[]")
    assert fuzz.main(["--report", "--out", str(tmp_path / "bad.json")]) == 2
    assert "is not a fuzz run's file" in capsys.readouterr().err
