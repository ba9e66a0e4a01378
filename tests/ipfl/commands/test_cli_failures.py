"""No traceback, anywhere: every bad input or damaged run is one line, exit 2, no file written.

One table of cases for ``ipfl train`` and ``ipfl audit-run``; each names what it sets up,
the arguments, and a phrase the one-line message must contain.
"""

import json
import shutil

import pytest
from click.testing import CliRunner

from ipfl.cli import main
from training import Config, train

SMALL = ["--set", "clients=4", "--set", "rounds=1", "--set", "epochs=1", "--set", "hidden=16",
         "--set", "max_samples=400", "--quiet"]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean") / "run"
    train(Config(clients=4, rounds=1, epochs=1, hidden=16, max_samples=400), out, progress=False)
    return out


def _set_config(text: bytes):
    return lambda run: (run / "config.json").write_bytes(text)


def _edit_config(run):
    doc = json.loads((run / "config.json").read_text())
    doc["colour"] = "blue"
    (run / "config.json").write_text(json.dumps(doc))


#: (id, setup(tmp) -> args, phrase)
CASES = [
    ("config file missing", lambda d: ["train", "--config", str(d / "nope.toml")],
     "does not exist"),
    ("config not UTF-8", lambda d: (d.joinpath("c.toml").write_bytes(b"rounds = \xff\xfe\n"),
                                    ["train", "--config", str(d / "c.toml")])[1], "not UTF-8"),
    ("config not TOML", lambda d: (d.joinpath("c.toml").write_text("rounds = = 3"),
                                   ["train", "--config", str(d / "c.toml")])[1], "not valid TOML"),
    ("bad type", lambda d: ["train", "--set", "clients='x'"], "clients = 'x' must be an integer"),
    ("lr overflows", lambda d: ["train", *SMALL, "--set", "lr=1e300", "--run-dir",
                                str(d / "run")], "lr = 1e+300 overflows"),
    ("K overflows", lambda d: ["train", *SMALL, "--set", "K_per_sample=1e308", "--run-dir",
                               str(d / "run")], "numeric domain"),
    ("model too large", lambda d: ["train", *SMALL, "--set", "hidden=1000000000000",
                                   "--run-dir", str(d / "run")], "GiB available"),
    ("run dir unwritable", lambda d: (d.joinpath("file").write_text(""),
                                      ["train", *SMALL, "--run-dir", str(d / "file" / "run")])[1],
     "not writable"),
    ("run dir not empty", lambda d: (d.joinpath("run").mkdir(), d.joinpath("run", "x").touch(),
                                     ["train", *SMALL, "--run-dir", str(d / "run")])[2],
     "not empty"),
    ("resume missing dir", lambda d: ["train", "--resume", str(d / "nope")], "does not exist"),
    ("resume empty dir", lambda d: (d.joinpath("run").mkdir(),
                                    ["train", "--resume", str(d / "run")])[1], "no config.json"),
    ("resume partial first write", lambda d: (d.joinpath("run", "rounds").mkdir(parents=True),
                                              ["train", "--resume", str(d / "run")])[1],
     "start the run again"),
    ("resume with --config", lambda d: ["train", "--resume", str(d), "--config", "x.toml"],
     "drop --config"),
]

#: (id, damage to a finished run, extra args, phrase) for `train --resume RUN`
DAMAGED = [
    ("config.json not UTF-8", _set_config(b'{"rounds": "\xff"}'), [], "not UTF-8"),
    ("config.json not JSON", _set_config(b"{rounds"), [], "not valid JSON"),
    ("config.json not an object", _set_config(b"[1, 2]"), [], "JSON object"),
    ("config.json unknown key", _edit_config, [], "unknown key 'colour'"),
    ("config.json deleted", lambda r: (r / "config.json").unlink(), [], "config.json' is missing"),
    ("checkpoint junk", lambda r: (r / "checkpoint.pt").write_bytes(b"junk"), [],
     "not a checkpoint"),
    ("record deleted", lambda r: (r / "rounds" / "0001.json").unlink(), [],
     "fails verification: round 1: rounds/0001.json was deleted"),
    ("metrics garbage", lambda r: (r / "metrics.jsonl").write_text("{{\n"), [],
     "metrics.jsonl line 1 is not a metric row"),
    ("structural --set", lambda r: None, ["--set", "clients=5"], "cannot change on resume"),
    ("bad --set value", lambda r: None, ["--set", "lr=-1"], "lr = -1.0 must be finite and > 0"),
]

#: (id, setup(tmp) -> path, phrase) for `audit-run PATH`: exit 2, not a run
NOT_A_RUN = [
    ("missing", lambda d: d / "nope", "not a folder"),
    ("empty folder", lambda d: (d.joinpath("e").mkdir(), d / "e")[1], "no config.json"),
    ("some folder", lambda d: (d.joinpath("e").mkdir(), d.joinpath("e", "a.txt").touch(),
                               d / "e")[2], "not a run"),
]


def _snapshot(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns, p.stat().st_size)
                  for p in root.rglob("*") if p.name != "run.lock")


def _one_line_error(res, phrase):
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    assert phrase in lines[0], lines[0]


@pytest.mark.parametrize("setup,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, setup, phrase):
    monkeypatch.chdir(tmp_path)
    args = setup(tmp_path)
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    _one_line_error(res, phrase)
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("damage,extra,phrase", [c[1:] for c in DAMAGED],
                         ids=[c[0] for c in DAMAGED])
def test_damaged_run_is_one_line_exit_2_and_left_as_it_was(clean_run, tmp_path, damage, extra,
                                                           phrase):
    run = tmp_path / "run"
    shutil.copytree(clean_run, run)
    damage(run)
    before = _snapshot(run)
    res = CliRunner().invoke(main, ["train", "--resume", str(run), "--quiet", *extra],
                             catch_exceptions=False)
    _one_line_error(res, phrase)
    assert _snapshot(run) == before


@pytest.mark.parametrize("setup,phrase", [c[1:] for c in NOT_A_RUN], ids=[c[0] for c in NOT_A_RUN])
def test_audit_of_a_folder_that_is_not_a_run_exits_2(tmp_path, setup, phrase):
    res = CliRunner().invoke(main, ["audit-run", str(setup(tmp_path))], catch_exceptions=False)
    _one_line_error(res, phrase)


def test_audit_of_a_clean_run_exits_0(clean_run):
    res = CliRunner().invoke(main, ["audit-run", str(clean_run)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "2 committed rounds verified" in res.output and "0 mismatches" in res.output


def test_unexpected_exception_is_one_line(monkeypatch, tmp_path):
    """A bug surfaces as one line with exit 2 (IPFL_TRACEBACK=1 shows the traceback)."""
    import training

    def boom(*a, **k):
        raise KeyError("surprise")

    monkeypatch.setattr(training, "train", boom)
    res = CliRunner().invoke(main, ["train", *SMALL, "--run-dir", str(tmp_path / "r")],
                             catch_exceptions=False)
    _one_line_error(res, "KeyError")
    monkeypatch.setenv("IPFL_TRACEBACK", "1")
    with pytest.raises(KeyError):
        CliRunner().invoke(main, ["train", *SMALL, "--run-dir", str(tmp_path / "r")],
                           catch_exceptions=False)
