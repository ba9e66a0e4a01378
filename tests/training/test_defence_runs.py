"""Issue 24's defences in a training run: config keys, the round record, the audit."""

import json

import numpy as np
import pytest

from mechanism import size_from_displacement
from training import Config, Exchange, audit_run, train
from training.server import estimate_sizes


@pytest.fixture
def liar(tiny) -> Config:
    """The tiny run with client 0 reporting ten times its data size."""
    return tiny.replace(liar=(0,), liar_N=10.0)


def _defended(cfg: Config, defence: str, noise: float = 0.25, band: float = 0.5) -> Config:
    return cfg.replace(hyper={"defence": defence, "estimate_noise": noise,
                              "estimate_band": band})


def test_paper_configs_carry_no_defence_keys(tiny):
    """The paper's config is as it always was: the defence keys appear only when given."""
    assert "defence" not in tiny.hyper and "defence" not in tiny.to_dict()["ipfl"]
    cfg = tiny.replace(hyper={"defence": "estimate"})
    assert cfg.hyper["estimate_noise"] == 0.0 and cfg.hyper["estimate_band"] == 0.5


def test_bad_defence_is_one_line_naming_the_key(tiny):
    with pytest.raises(ValueError, match=r"\[ipfl\] defence = 'nope' is not one of"):
        tiny.replace(hyper={"defence": "nope"})
    with pytest.raises(ValueError, match=r"\[ipfl\] estimate_noise"):
        tiny.replace(hyper={"estimate_noise": -1.0})


@pytest.mark.parametrize("defence", ["estimate", "checked"])
def test_a_defended_run_records_its_estimate_and_passes_the_audit(liar, tmp_path, defence):
    """The estimate is in every market round file; audit-run recomputes the settlement."""
    # Execute
    train(_defended(liar, defence), tmp_path / "run", progress=False)
    # Assert
    doc = json.loads((tmp_path / "run" / "rounds" / "0001.json").read_text())
    ins = doc["inputs"]
    assert ins["defence"] == defence and len(ins["estimate"]) == 4
    assert ("band" in ins) == (defence == "checked")
    ex = Exchange.from_json(doc)
    assert ex.defence == defence and Exchange.from_json(ex.to_json()) == ex
    assert ins["N"][0] == 10 * ins["true"]["N"][0]  # the report is the lie
    assert audit_run(tmp_path / "run").ok


def test_a_tampered_estimate_is_detected(liar, tmp_path):
    """Changing the recorded estimate makes audit-run's recomputation differ."""
    train(_defended(liar, "estimate"), tmp_path / "run", progress=False)
    path = tmp_path / "run" / "rounds" / "0001.json"
    doc = json.loads(path.read_text())
    doc["inputs"]["estimate"][0] *= 3
    path.write_text(json.dumps(doc, indent=1))
    assert not audit_run(tmp_path / "run").ok


def test_exact_estimate_defence_ignores_the_report_of_N(tiny, liar, tmp_path):
    """With an exact estimate, 'estimate' runs the same market whatever client 0 reports."""
    honest = train(_defended(tiny, "estimate", noise=0.0), tmp_path / "h", progress=False)
    lying = train(_defended(liar, "estimate", noise=0.0), tmp_path / "l", progress=False)
    for a, b in zip(honest, lying, strict=True):
        assert (a["U"], a["cum_U"], a["acc"]) == (b["U"], b["cum_U"], b["acc"])


def test_estimate_sizes_is_seeded_and_log_normal():
    N = np.full(20000, 100.0)
    a, b = estimate_sizes(N, 0.25, seed=3), estimate_sizes(N, 0.25, seed=3)
    assert np.array_equal(a, b) and not np.array_equal(a, estimate_sizes(N, 0.25, seed=4))
    assert np.log(a / N).std() == pytest.approx(0.25, rel=0.03)


# ----- the displacement estimator (docs/defence.md, "Where the estimate comes from") ---------


def _displaced(cfg: Config, defence: str = "checked", band: float = 0.7) -> Config:
    return cfg.replace(hyper={"defence": defence, "estimator": "displacement",
                              "estimate_band": band})


def test_estimator_defaults_to_displacement_and_old_configs_keep_the_oracle(tiny):
    """A defence given alone uses the displacement estimator; a config that gives
    estimate_noise without estimator (every config written before the key) is unchanged."""
    assert tiny.replace(hyper={"defence": "checked"}).hyper["estimator"] == "displacement"
    old = tiny.replace(hyper={"defence": "checked", "estimate_noise": 0.25,
                              "estimate_band": 0.5})
    assert "estimator" not in old.hyper and "estimator" not in old.to_dict()["ipfl"]
    assert tiny.replace(hyper={"defence": "checked", "estimator": "oracle",
                               "estimate_noise": 0.25}).hyper["estimator"] == "oracle"


def test_bad_estimator_settings_are_one_line_naming_the_key(tiny):
    with pytest.raises(ValueError, match=r"\[ipfl\] estimator = 'validation' is not one of"):
        tiny.replace(hyper={"defence": "checked", "estimator": "validation"})
    with pytest.raises(ValueError, match=r"\[ipfl\] estimate_noise = 0\.25 applies to "
                                         r"estimator = 'oracle' only"):
        tiny.replace(hyper={"defence": "checked", "estimator": "displacement",
                            "estimate_noise": 0.25})


def test_a_displacement_run_records_its_observations_and_passes_the_audit(liar, tmp_path):
    """Every market round records the round-0 displacements; the estimate is recomputed
    from them and the reports, and audit-run agrees."""
    # Execute
    train(_displaced(liar), tmp_path / "run", progress=False)
    # Assert
    docs = [json.loads((tmp_path / "run" / "rounds" / f"000{t}.json").read_text())
            for t in (1, 2)]
    for doc in docs:
        ins = doc["inputs"]
        assert ins["estimator"] == "displacement" and len(ins["observed"]) == 4
        np.testing.assert_array_equal(size_from_displacement(ins["observed"], ins["N"]),
                                      ins["estimate"])
        ex = Exchange.from_json(doc)
        assert ex.estimator == "displacement" and Exchange.from_json(ex.to_json()) == ex
    assert docs[0]["inputs"]["observed"] == docs[1]["inputs"]["observed"]  # fixed at round 0
    assert audit_run(tmp_path / "run").ok


def test_the_liars_own_estimate_is_the_honest_runs(tiny, liar, tmp_path):
    """Reporting ten times its size leaves the liar's estimate exactly where it was."""
    train(_displaced(tiny), tmp_path / "h", progress=False)
    train(_displaced(liar), tmp_path / "l", progress=False)
    h, lie = (json.loads((tmp_path / r / "rounds" / "0001.json").read_text())["inputs"]
              for r in ("h", "l"))
    assert lie["N"][0] == 10 * h["N"][0]
    assert lie["observed"] == h["observed"] and lie["estimate"][0] == h["estimate"][0]


def test_a_tampered_observation_is_detected(liar, tmp_path):
    """Changing a recorded displacement makes the recomputed estimate differ."""
    train(_displaced(liar), tmp_path / "run", progress=False)
    path = tmp_path / "run" / "rounds" / "0001.json"
    doc = json.loads(path.read_text())
    doc["inputs"]["observed"][1] *= 2
    path.write_text(json.dumps(doc, indent=1))
    report = audit_run(tmp_path / "run")
    assert any("recorded estimate differs from the one recomputed from inputs.observed" in p
               for p in report.problems)


def test_a_displacement_run_resumes_to_the_same_rows(liar, tmp_path):
    """The displacements live in the checkpointed server state: a resumed run is identical."""
    full = train(_displaced(liar), tmp_path / "full", progress=False)
    train(_displaced(liar).replace(rounds=1), tmp_path / "part", progress=False)
    resumed = train(None, tmp_path / "part", resume=True, progress=False,
                    overrides=["rounds=2"])
    assert [(r["U"], r["cum_U"], r["acc"]) for r in full] == \
        [(r["U"], r["cum_U"], r["acc"]) for r in resumed]
