"""``ipfl demo`` (the README's main job) on a tiny setting: table, IR line, plots."""

import json

from click.testing import CliRunner

from ipfl.cli import main


def test_demo_prints_the_table_from_the_run_it_made(tmp_path):
    run = tmp_path / "demo"
    args = ["demo", "--run-dir", str(run), "--set", "clients=4", "--set", "rounds=1",
            "--set", "epochs=1", "--set", "hidden=16", "--set", "max_samples=400"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    record = json.loads((run / "ipfl" / "rounds" / "0001.json").read_text())
    rows = [ln.split() for ln in out.output.splitlines() if ln[:6].strip().isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3]
    assert [r[1] for r in rows] == ["trader"] * 4
    assert [float(r[2]) for r in rows] == record["inputs"]["N"]  # N_i as the market saw it
    last = {json.loads(ln)["client"]: json.loads(ln)
            for ln in (run / "ipfl" / "metrics.jsonl").read_text().splitlines()
            if json.loads(ln)["round"] == 1}
    assert [float(r[4]) for r in rows] == [round(last[i]["acc"], 3) for i in range(4)]
    assert [float(r[5]) for r in rows] == [round(last[i]["best_acc"], 3) for i in range(4)]
    assert "individual rationality (U_i >= 0) held in all 4 recorded client-rounds" in out.output
    assert (run / "curves.png").stat().st_size > 0 and (run / "graph.png").stat().st_size > 0


def test_demo_refuses_a_used_run_dir(tmp_path):
    (tmp_path / "demo" / "local").mkdir(parents=True)
    (tmp_path / "demo" / "local" / "x").write_text("taken")
    out = CliRunner().invoke(main, ["demo", "--run-dir", str(tmp_path / "demo")])
    assert out.exit_code != 0 and "is not empty; use --resume" in out.output
