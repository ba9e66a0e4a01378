"""Tests of ``ipfl experiment`` and ``ipfl reproduce`` (ipfl/experiments/).

Every experiment runs once in its tiny configuration (synthetic data, 4 clients, 2
rounds, one seed), so CI covers each code path; a second call must redo nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ipfl.cli import main
from ipfl.experiments import EXPERIMENTS, run_experiment
from ipfl.experiments.reproduce import NOT_RUN, build, verdicts

ROOT = Path(__file__).resolve().parents[3]

OUTPUTS = {
    "performance": ("performance.csv", "performance.png"),
    "utility": ("clients.csv", "utility.csv", "utility.png"),
    "robustness": ("robustness.csv", "importers.csv", "robustness.png", "importers.png"),
    "truthfulness": ("truthfulness.csv", "truthfulness.png"),
    "market": ("market.csv", "money.csv", "market.png"),
    "similarity": ("similarity.csv", "within.csv", "similarity.png"),
    "regimes": ("regimes.csv", "lies.csv", "cells.csv", "regimes.png"),
}


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    """The seven experiments in the tiny preset, one seed, sharing one run store.

    ``instruct`` (an LLM, the [llm] extra) has its own tests: tests/ipfl/experiments/
    test_instruct.py.
    """
    root = tmp_path_factory.mktemp("experiments")
    for name in OUTPUTS:
        run_experiment(name, "tiny", seeds=1, out=root / name, progress=False)
    return root


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(OUTPUTS))
def test_every_experiment_writes_config_runs_csv_figures_summary(tiny_root, name):
    out = tiny_root / name
    meta = json.loads((out / "experiment.json").read_text())
    assert meta["experiment"] == name and meta["preset"] == "tiny" and meta["seeds"] == [0]
    assert meta["config"]["dataset"] == "synthetic"
    for f in (*OUTPUTS[name], "summary.md"):
        assert (out / f).stat().st_size > 0, f
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == meta["runs"]
    assert all((r / "done.json").is_file() and (r / "config.json").is_file() for r in runs)
    assert not any((r / "checkpoint.pt").exists() for r in runs)


def test_performance_and_utility_share_their_runs(tiny_root):
    a = {p.name: p.resolve() for p in (tiny_root / "performance" / "runs").iterdir()}
    b = {p.name: p.resolve() for p in (tiny_root / "utility" / "runs").iterdir()}
    assert a == b and len(a) == 27  # 9 methods x 3 settings x 1 seed


def test_a_finished_experiment_is_not_redone(tiny_root):
    runs = sorted((tiny_root / "market" / "runs").iterdir())
    before = [(r / "metrics.jsonl").stat().st_mtime_ns for r in runs]
    res = run_experiment("market", "tiny", seeds=1, out=tiny_root / "market", progress=False)
    assert [(r / "metrics.jsonl").stat().st_mtime_ns for r in runs] == before
    assert res["seconds"] < 30


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_unfinished_run_is_redone_identically(tmp_path):
    out = tmp_path / "market"
    run_experiment("market", "tiny", seeds=1, out=out, progress=False)
    run = (out / "runs" / "ipfl-s0").resolve()
    rows = (run / "metrics.jsonl").read_text()
    (run / "done.json").unlink()  # as if killed before it finished
    run_experiment("market", "tiny", seeds=1, out=out, progress=False)
    assert (run / "done.json").is_file()
    assert (run / "metrics.jsonl").read_text() == rows


def test_reproduce_builds_one_row_per_claim(tiny_root, tmp_path):
    md = build(tiny_root, preset="tiny")
    rows = verdicts(md)
    assert len(rows) == 8
    for r in rows:
        assert any(v in r["verdict"] for v in ("holds", "mixed", "does not hold")), r
        assert r["command"].startswith("`ipfl experiment ")
    assert "lying about N" in rows[4]["claim"] and "lying about c" in rows[5]["claim"]
    assert "Thm. 2" in rows[5]["paper"] and "Thm. 2" not in rows[4]["paper"]
    for r in rows[4:6]:  # each lie: the liar's gain and who pays for it
        assert "liar's gain" in r["numbers"] and "the others: Δ welfare" in r["numbers"]
    assert "welfare / eq. (3) optimum" in rows[0]["numbers"]
    for r in (rows[0], rows[1], rows[2], rows[4], rows[5]):
        assert "Over lam x c (NIID, regimes): holds" in r["numbers"], r
    assert "## Where the verdicts hold" in md and "regimes.png" in md
    empty_md = build(tmp_path)
    assert all(r["verdict"] == NOT_RUN for r in verdicts(empty_md))
    assert "(not yet run: `ipfl experiment regimes --repro`)" in empty_md


def test_regimes_rules_on_known_cells():
    """The rules of docs/experiments-regimes.md on a hand-made table of two cells."""
    from ipfl.experiments.regimes import NO_TRADE, cell_verdicts

    def row(lam, c, method, U, neg, acc, share):
        return {"lam": lam, "c": c, "seed": 0, "method": method, "mean_cum_U": U,
                "neg_clients": neg, "acc": acc, "best_acc": acc, "sw_share": share}

    table = [row(0.0, 1.0, "ipfl", 10.0, 0, 0.90, 0.8), row(0.0, 1.0, "fedavg", 5.0, 2, 0.93, 0.9),
             row(0.0, 1.0, "local", 0.0, 0, 0.95, 0.0),
             row(5.0, 1.0, "ipfl", 0.0, 0, 0.95, 0.0), row(5.0, 1.0, "fedavg", 5.0, 0, 0.91, 0.9),
             row(5.0, 1.0, "local", 0.0, 0, 0.95, 0.0)]
    lies = [{"lam": 0.0, "c": 1.0, "seed": 0, "lie": "N", "d_liar_cum_U": 3.0},
            {"lam": 5.0, "c": 1.0, "seed": 0, "lie": "N", "d_liar_cum_U": 0.0}]
    got = {(r["claim"], r["lam"]): r for r in cell_verdicts(table, lies)}
    # 1: 10 > 5 holds; 0 < 5 fails, and iPFL traded nothing there
    assert got[("utility", 0.0)]["holds"] and got[("utility", 0.0)]["value"] == 5.0
    assert not got[("utility", 5.0)]["holds"] and got[("utility", 5.0)]["note"] == NO_TRADE
    # 2: within 2 points of the best baseline (local excluded): -3 fails, +4 holds
    assert not got[("accuracy", 0.0)]["holds"]
    assert got[("accuracy", 0.0)]["value"] == pytest.approx(-3.0)
    assert got[("accuracy", 5.0)]["holds"]
    # 3: iPFL has none below zero; a baseline must have some for the claim to hold
    assert got[("ir", 0.0)]["holds"] and got[("ir", 0.0)]["note"] == "baselines 2"
    assert not got[("ir", 5.0)]["holds"]
    # 5: a gain pays (fails), no gain holds
    assert not got[("lie_N", 0.0)]["holds"] and got[("lie_N", 5.0)]["holds"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_regimes_grid_rows_and_cells(tiny_root):
    """Every lam x c x seed x method has a row; baselines are the same along lam; 16 cells."""
    from ipfl.experiments import regimes
    from ipfl.experiments.core import read_csv

    out = tiny_root / "regimes"
    table = read_csv(out / "regimes.csv")
    assert {"lam", "c", "seed", "method", "mean_cum_U", "neg_clients", "acc",
            "sw_share"} <= set(table[0])
    cells = {(r["lam"], r["c"]) for r in table}
    assert cells == {(lam, c) for lam in regimes.LAMS for c in regimes.CS}
    fedavg = {(r["lam"], r["c"]): r["mean_cum_U"] for r in table if r["method"] == "fedavg"}
    for c in regimes.CS:  # eq. (1) has no lam: one number per c column
        assert len({fedavg[(lam, c)] for lam in regimes.LAMS}) == 1
    assert len({fedavg[(0.0, c)] for c in regimes.CS}) == len(regimes.CS)  # c does act
    lies = read_csv(out / "lies.csv")
    assert len(lies) == len(regimes.LAMS) * len(regimes.CS) * len(regimes.LIES)
    assert {"d_liar_cum_U", "d_honest_welfare", "honest_below_zero"} <= set(lies[0])
    verdict_cells = read_csv(out / "cells.csv")
    assert {r["claim"] for r in verdict_cells} == set(regimes.CLAIM_RULES)
    assert all(sum(1 for r in verdict_cells if r["claim"] == c) == 16
               for c in regimes.CLAIM_RULES)


def test_reproduction_md_matches_its_csvs():
    """The committed REPRODUCTION.md is what `ipfl reproduce` builds from the committed CSVs."""
    md = ROOT / "REPRODUCTION.md"
    if not md.is_file():
        pytest.skip("REPRODUCTION.md not generated yet")
    assert md.read_text() == build(ROOT / "experiments-out" / "repro",
                                   shown="experiments-out/repro")


@pytest.mark.parametrize(("args", "message"), [
    (["nope"], "experiment 'nope' is unknown"),
    (["performance", "--methods", "fedavg,magic"], "unknown method"),
    (["performance", "--settings", "IID"], "unknown setting"),
    (["market", "--methods", "ipfl"], "takes no --methods"),
    (["performance", "--seeds", "0"], "'--seeds': 0 is not in [1, 1000]"),
    (["performance", "--seeds", "-2"], "'--seeds': -2 is not in [1, 1000]"),
    (["performance", "--dataset", "fashion_mnist", "--data-dir", "/nonexistent/fmnist"],
     "apt-get install dataset-fashion-mnist"),
    (["performance", "--dataset", "mnist"], "dataset = 'mnist' is not one of"),
    (["performance", "--device", "tpu"], "--device"),
    (["performance", "--set", "seed=3"], "--set seed=3: the experiment sets seed run by run"),
    (["performance", "--set", "algorithm=fedavg"], "the experiment sets algorithm run by run"),
    (["utility", "--set", "beta=0.3"], "the experiment sets beta run by run"),
    (["robustness", "--set", "roles=trader:5"], "the experiment sets roles run by run"),
    (["truthfulness", "--set", "liar_c=3"], "the experiment sets liar_c run by run"),
    (["market", "--set", "rounds=3"], "the experiment sets rounds run by run"),
    (["similarity", "--set", "ipfl.lam=0.5"], "the experiment sets ipfl.lam run by run"),
    (["truthfulness", "--set", "fedprox.mu=0.1"], "no run of this experiment uses 'fedprox'"),
    (["performance", "--set", "nope=1"], "unknown key 'nope'"),
    (["performance", "--set", "c=-1"], "c = -1.0 must be >= 0"),
    (["performance", "--set", "magic.x=1"], "'magic' is not an algorithm"),
    (["performance", "--set", "ipfl.nope=1"], "[ipfl] has no key 'nope'"),
    (["performance", "--set", "rounds"], "expected key=value"),
    (["regimes", "--set", "c=1"], "the experiment sets c run by run"),
    (["regimes", "--methods", "ipfl,local"], "needs ipfl and at least one baseline"),
    (["regimes", "--methods", "fedavg"], "needs ipfl and at least one baseline"),
])
def test_bad_input_is_one_clear_error_before_any_run(tmp_path, args, message):
    out = tmp_path / "exp"
    result = CliRunner().invoke(main, ["experiment", *args, "--tiny", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("Error") == 1
    assert not out.exists()


def test_out_holding_another_experiment_is_refused(tiny_root):
    result = CliRunner().invoke(main, ["experiment", "utility", "--tiny", "--out",
                                       str(tiny_root / "market")])
    assert result.exit_code == 2 and "holds a different experiment" in result.output
    result = CliRunner().invoke(main, ["experiment", "market", "--quick", "--out",
                                       str(tiny_root / "market")])
    assert result.exit_code == 2 and "holds a different experiment" in result.output


def test_reproduce_cli_writes_and_checks(tiny_root, tmp_path):
    out = tmp_path / "R.md"
    result = CliRunner().invoke(main, ["reproduce", "--from", str(tiny_root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1. Fig. 2 (empirical):" in result.output
    result = CliRunner().invoke(main, ["reproduce", "--from", str(tiny_root), "--out", str(out),
                                       "--check"])
    assert result.exit_code == 0, result.output
    out.write_text("stale")
    result = CliRunner().invoke(main, ["reproduce", "--from", str(tiny_root), "--out", str(out),
                                       "--check"])
    assert result.exit_code == 1 and "out of date" in result.output


def test_a_run_the_mechanism_stops_is_recorded_not_fatal(tmp_path, monkeypatch):
    from ipfl.experiments import core

    def boom(cfg, path, progress):
        path.mkdir(parents=True, exist_ok=True)
        raise ValueError("Market: d[0, 1] = 2e6 is outside the numeric domain")

    monkeypatch.setattr(core, "_run_locked", boom)
    assert core.run_one(None, tmp_path / "run") == 0.0
    assert "numeric domain" in core.failure(tmp_path / "run")
    assert core.run_one(None, tmp_path / "run") == 0.0  # a failed run is not retried


def test_set_overrides_every_run_and_is_recorded(tmp_path):
    """--set c=0.5 reaches every run, ipfl.lam=0 the iPFL runs only; new store folders."""
    from ipfl.experiments import check_request, performance
    from ipfl.experiments.core import PRESETS, config_hash
    from training import RunDir

    # Prepare
    out = tmp_path / "perf"
    plain = performance.specs(PRESETS["tiny"], [0], check_request("performance", "tiny")["common"],
                              methods=("fedavg", "ipfl"), settings=("NIID",))
    # Execute
    result = CliRunner().invoke(main, [
        "experiment", "performance", "--tiny", "--seeds", "1", "--methods", "fedavg,ipfl",
        "--settings", "NIID", "--out", str(out), "--quiet", "--set", "c=0.5",
        "--set", "ipfl.lam=0"])
    # Assert
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "experiment.json").read_text())
    assert meta["overrides"] == {"c": 0.5, "ipfl.lam": 0}
    assert meta["config"]["c"] == 0.5 and meta["config"]["ipfl"]["lam"] == 0.0
    configs = {p.name: RunDir(p).read_config() for p in (out / "runs").iterdir()}
    assert configs["NIID-fedavg-s0"]["c"] == configs["NIID-ipfl-s0"]["c"] == 0.5
    assert configs["NIID-ipfl-s0"]["ipfl"]["lam"] == 0.0 and "ipfl" not in configs[
        "NIID-fedavg-s0"]
    stored = {(out / "runs" / s.label).resolve().name for s in plain}
    assert not stored & {config_hash(s.cfg) for s in plain}  # other configs, other folders
    # the same folder with other overrides (or none) is refused before any run
    for sets in (["--set", "c=0.6"], []):
        again = CliRunner().invoke(main, [
            "experiment", "performance", "--tiny", "--seeds", "1", "--methods", "fedavg,ipfl",
            "--settings", "NIID", "--out", str(out), "--quiet", *sets])
        assert again.exit_code == 2 and "holds a different experiment" in again.output


def test_keys_that_vary_between_runs_are_refused_by_set():
    """Every key whose value differs between two runs of an experiment is a per-run key."""
    import importlib.util

    from ipfl.experiments import check_request, per_run_keys
    from ipfl.experiments.core import PRESETS

    for name, mod in EXPERIMENTS.items():
        if name == "instruct" and importlib.util.find_spec("peft") is None:
            continue  # needs the [llm] extra (tests/ipfl/experiments/test_instruct.py)
        common = check_request(name, "tiny")["common"]
        docs = [s.cfg.to_dict() for s in mod.specs(PRESETS["tiny"], [0, 1], common)]
        varied = {k for k in docs[0] if not isinstance(docs[0][k], dict)
                  and len({json.dumps(d[k]) for d in docs}) > 1}
        for alg in {d["algorithm"] for d in docs}:
            same = [d[alg] for d in docs if d["algorithm"] == alg]
            varied |= {f"{alg}.{k}" for k in same[0]
                       if len({json.dumps(t[k]) for t in same}) > 1}
        assert varied <= set(per_run_keys(name)), (name, varied - set(per_run_keys(name)))



def test_performance_reports_welfare_over_the_optimum(tiny_root, tmp_path):
    """sw_share per run is rescore_run's welfare share: local 0, none above 1."""
    import math
    import shutil

    from ipfl.experiments.core import read_csv
    from ipfl.experiments.performance import welfare_share
    from ipfl.rescore import rescore_run

    out = tiny_root / "performance"
    rows = read_csv(out / "performance.csv")
    assert len(rows) == 27
    for r in rows:
        label = f"{r['setting']}-{r['method']}-s{int(r['seed'])}"
        want = rescore_run(out / "runs" / label).welfare_share
        assert r["sw_share"] == pytest.approx(want, rel=1e-5)  # the CSV keeps 6 digits
        assert 0.0 <= r["sw_share"] <= 1.0 + 1e-9
        if r["method"] == "local":
            assert r["sw_share"] == 0.0
    summary = (out / "summary.md").read_text()
    assert "| welfare / optimum |" in summary and "n/a for" not in summary
    # a run finished by an older ipfl (no chain.json) cannot be verified: nan, not a crash
    run = tmp_path / "old"
    shutil.copytree((out / "runs" / "NIID-fedavg-s0").resolve(), run)
    (run / "chain.json").unlink()
    assert math.isnan(welfare_share(run))


def test_truthfulness_reports_every_lie_under_every_market(tiny_root):
    """Issue 24: one row per market x lie x seed, the issue's columns first, Δ within a market."""
    from ipfl.experiments import truthfulness as T
    from ipfl.experiments.core import read_csv

    rows = read_csv(tiny_root / "truthfulness" / "truthfulness.csv")
    assert list(rows[0])[:len(T.FIRST)] == list(T.FIRST)
    assert len(rows) == len(T.DEFENCES) * len(T.LIES)  # one seed
    honest = {r["defence"]: r for r in rows if r["lie"] == "honest"}
    for r in rows:
        h = honest[r["defence"]]
        assert r["d_liar_cum_U"] == pytest.approx(r["liar_cum_U"] - h["liar_cum_U"], abs=1e-4)
        assert r["d_honest_cum_U"] == pytest.approx(r["honest_cum_U"] - h["honest_cum_U"],
                                                    abs=1e-4)
    # 'estimate' never prices the report of N: every lie about N is the honest run
    for r in rows:
        if r["defence"] == "estimate" and r["lie"] == "N":
            assert r["liar_cum_U"] == honest["estimate"]["liar_cum_U"]
    summary = (tiny_root / "truthfulness" / "summary.md").read_text()
    assert "## Issue 24's targets per defended market" in summary
    md = build(tiny_root, preset="tiny")
    assert "## Defended markets (issue 24, ours: not in the paper)" in md
    assert "**Preset `--tiny`**" in md and "**checked**: (1) N x10 paid in" in md
