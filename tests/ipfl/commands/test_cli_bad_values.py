"""Every bad value is one line naming its field, exit code 2, before any work (issue 21)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from ipfl.cli import main
from ipfl.market_files import MAX_BYTES


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Write the hostile market files once; return name -> path."""
    tmp = tmp_path_factory.mktemp("hostile")
    deep = tmp / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    many = tmp / "many.json"
    many.write_text(json.dumps({"schema": "ipfl.market/1", "lam": 0.1,
                                "clients": [{"N": 10, "c": 0.1, "K": 100}] * 200_000}))
    latin = tmp / "latin.json"
    latin.write_bytes('{"lam": "\u00e9"}'.encode("latin-1"))
    rows = tmp / "rows.csv"
    rows.write_text("N,c,K,x\n" + "100,0.1,400,0\n" * 20_000)
    huge = tmp / "huge.csv"
    with open(huge, "wb") as fh:  # sparse: its size is over the cap, nothing is written
        fh.truncate(MAX_BYTES + 1)
    fifo = tmp / "fifo.json"
    os.mkfifo(fifo)  # reading it would block forever
    return {"deep": deep, "many": many, "latin": latin, "rows": rows, "huge": huge,
            "fifo": fifo}


#: (arguments, text the one line must contain: the field, and the value or limit)
BAD = [
    (["train", "--set", "clients=99999999999999999999"],
     "config: clients = 99999999999999999999 is out of range"),
    (["train", "--set", "threads=100000"], "config: threads = 100000 is out of range"),
    (["train", "--set", "roles=trader:99999999999999"],
     "count 99999999999999 of 'trader' takes more than the clients = 20"),
    (["train", "--set", "seed=-1"], "config: seed = -1 is out of range"),
    (["train", "--set", "rounds=1_000"], "config: rounds = '1_000' must be an integer"),
    (["train", "--set", "clients=\u0661\u0662"],
     "config: clients = '\u0661\u0662' must be an integer"),
    (["train", "--set", "roles=trader:\u0661\u0662"], "must be a non-negative integer (ASCII"),
    (["train", "--set", "hidden=10000000000000"], "config: hidden = 10000000000000 is out of"),
    (["market", "--seed", "-1"], "'--seed': -1 is not in [0, 9223372036854775807]"),
    (["market", "--clients", "20000"], "'--clients' / '-m': 20000 is not in [2, 2000]"),
    (["market", "--clients", "\u0661\u0662"],
     "'--clients' / '-m': '\u0661\u0662' is not an integer"),
    (["market", "--clients", "1_000"], "'--clients' / '-m': '1_000' is not an integer"),
    (["market", "--lam", "nan"], "'--lam': 'nan' is not a finite number"),
    (["market", "--explain", "99"], "--explain: client 99 is not in 0..7"),
    (["market", "--explain", "\u0661\u0662"], "--explain: '\u0661\u0662' is not a client index"),
    (["market", "--clients", "101", "--exact"], "--exact: m = 101 clients, more than the limit "
     "of 100"),
    (["experiment", "performance", "--seeds", "1e20"], "'--seeds': '1e20' is not an integer"),
    (["experiment", "performance", "--seeds", "100000000000000000000"],
     "'--seeds': 100000000000000000000 is not in [1, 1000]"),
    (["experiment", "performance", "--jobs", "0"], "'--jobs': 0 is not in [1, 256]"),
    (["compare", "--markets", "0"], "'--markets': 0 is not in [1, 100000]"),
    (["compare", "--seed", "-1"], "'--seed': -1 is not in"),
    (["demo", "--seed", "1_0"], "'--seed': '1_0' is not an integer"),
    (["audit", "--examples", "0"], "'--examples': 0 is not in [1, 10000000]"),
    (["audit-run", "x", "--atol", "inf"], "'--atol': 'inf' is not a finite number"),
    (["audit-run", "x", "--atol", "2"], "'--atol': 2.0 is not in [0, 1]"),
    (["explore", "--port", "70000", "--no-browser"], "'--port': 70000 is not in [0, 65535]"),
    (["market", "--file", "{deep}"], "deep.json: JSON nests 100000 levels deep, more than the "
     "limit of 16"),
    (["market", "--file", "{many}"], "many.json: clients: 200,000 clients, more than the limit "
     "of 2,000"),
    (["market", "--file", "{latin}"], "latin.json: is not UTF-8 text (byte 9 is 0xe9)"),
    (["market", "--file", "{rows}"], "rows.csv: rows: 20,000 clients, more than the limit of "
     "2,000"),
    (["market", "--file", "{huge}"], f"huge.csv: {MAX_BYTES + 1:,} bytes, more than the limit "
     f"of {MAX_BYTES:,} (ipfl.market_files.MAX_BYTES)"),
    (["market", "--file", "{fifo}"], "fifo.json: is not a regular file"),
]


@pytest.mark.parametrize(("args", "expect"), BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_bad_value_is_one_line_naming_its_field(tmp_path, monkeypatch, files, args, expect):
    """Exit code 2, one ``Error:`` line naming the field and the value; nothing written."""
    # Prepare
    monkeypatch.chdir(tmp_path)
    args = [a.format(**files) if a.startswith("{") else a for a in args]
    if args[0] == "train":
        args += ["--run-dir", str(tmp_path / "run")]
    # Execute
    out = CliRunner().invoke(main, args)
    # Assert
    lines = out.output.strip().splitlines()
    assert out.exit_code == 2, out.output
    errors = [x for x in lines if x.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], out.output  # click's usage lines first
    error = lines[-1]
    assert error.startswith("Error:") and expect in error, error
    assert "Traceback" not in out.output and "report it" not in out.output
    assert not (tmp_path / "run").exists()
