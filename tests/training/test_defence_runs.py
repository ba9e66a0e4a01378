"""Issue 24's defences in a training run: config keys, the round record, the audit."""

import json

import numpy as np
import pytest

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
