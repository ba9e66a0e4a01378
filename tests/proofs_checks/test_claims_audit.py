"""The audit: report rendering, atomic writes, the CLI."""

import json

from click.testing import CliRunner

from atomicio import atomic_write_text
from ipfl.commands.audit import command
from proofs_checks.audit import HEADER, render_markdown, run_audit


def test_run_audit_and_render(tmp_path):
    results = run_audit(examples=5, solvers=("paper",), claims=("theorem1", "misreport_N_over"),
                        jobs=1)
    assert [r.verdict for r in results] == ["holds", "refuted"]
    md = render_markdown(results, examples=5, profile="ci", seconds=1.0)
    assert md.startswith(HEADER) and "misreport_N_over" in md and "U before" in md
    atomic_write_text(tmp_path / "x.md", md)
    assert (tmp_path / "x.md").read_text() == md
    assert [p.name for p in tmp_path.iterdir()] == ["x.md"]  # no temporary left


def test_cli_writes_both_reports_into_the_folder_it_is_given(tmp_path):
    out = tmp_path / "audit"
    res = CliRunner().invoke(command, ["--examples", "3", "--solver", "skip", "--jobs", "1",
                                       "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "CLAIMS.json").read_text())
    assert {r["solver"] for r in doc["results"]} == {"skip"}
    assert "ipfl audit" in (out / "CLAIMS.md").read_text().splitlines()[0]
    assert sorted(p.name for p in out.iterdir()) == ["CLAIMS.json", "CLAIMS.md"]


def test_committed_counterexample_keeps_a_refutation_when_the_search_misses_it():
    """One random example cannot refute eq. (9)'s addition half; the regression does."""
    from proofs_checks.claims import run_claim

    searched = run_claim("eq9_add", "paper", max_examples=1, regressions=False)
    assert searched.verdict == "holds"  # the search alone misses it at this budget
    replayed = run_claim("eq9_add", "paper", max_examples=1)
    assert replayed.verdict == "refuted"
    assert replayed.extra["found_by"] == "committed counterexample eq9_add_paper"
    assert run_claim("eq9_add", "skip", max_examples=1).verdict == "holds"
    md = render_markdown([replayed], examples=1, profile="ci", seconds=0.0)
    assert "committed counterexample; 1 random examples found none" in md


def test_committed_claims_files_agree_with_the_verified_expectations():
    """CLAIMS.md/json are generated, never hand-edited; if code changes a verdict and
    nobody reruns `ipfl audit`, this test sees the stale file."""
    import json
    from pathlib import Path

    from proofs_checks.claims import CLAIMS, SOLVER_CLAIMS, SOLVERS

    root = Path(__file__).resolve().parents[2]
    doc = json.loads((root / "CLAIMS.json").read_text(encoding="utf-8"))
    assert doc["generated_by"] == "ipfl audit"
    got = {(r["claim"], r["solver"]): r["verdict"] for r in doc["results"]}
    assert set(got) == {(c, s) for c in CLAIMS for s in SOLVERS}
    assert got == {(c, s): SOLVER_CLAIMS[s][c] for c in CLAIMS for s in SOLVERS}
    md = (root / "CLAIMS.md").read_text(encoding="utf-8")
    assert md.startswith(HEADER.splitlines()[0])
    assert f"up to {doc['examples']} Hypothesis examples" in md
