"""The audit is extensible: user claims and mechanisms reach the report; stored
counterexamples are replayed only inside the family a claim is tested on; the CLI
validates its options before any work."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ipfl.commands.audit import command
from mechanism import Market, greedy_graph
from proofs_checks import claims as C
from proofs_checks import properties as P
from proofs_checks.audit import render_markdown, run_audit, to_json
from proofs_checks.strategies import market_and_client


@pytest.fixture
def clean_registry():
    claims, mechs = dict(C.CLAIMS), dict(C.MECHANISMS)
    expected = {k: dict(v) for k, v in C.SOLVER_CLAIMS.items()}
    yield
    C.CLAIMS.clear(), C.CLAIMS.update(claims)
    C.MECHANISMS.clear(), C.MECHANISMS.update(mechs)
    C.SOLVER_CLAIMS.clear(), C.SOLVER_CLAIMS.update(expected)


def _few_edges(mech, market):
    A = np.asarray(mech.graph(market))
    if A.sum() > market.m * (market.m - 1):
        return P.Violation("few_edges", "too many edges", market, {})
    return None


def test_registered_claim_and_mechanism_appear_in_the_report(clean_registry):
    C.register_claim(C.Claim("few_edges", "my lecture", "No more than m(m-1) imports.",
                             lambda m: C._markets(m), _few_edges),
                     expected={"paper": "holds"})
    C.register_mechanism(P.Mechanism("nobody", lambda mk: np.zeros((mk.m, mk.m), np.int8)),
                         expected={"few_edges": "holds", "theorem1": "holds"})
    results = run_audit(examples=3, solvers=("paper", "nobody"),
                        claims=("theorem1", "few_edges"), jobs=2)
    got = {(r.claim, r.solver): r.verdict for r in results}
    assert got == {("theorem1", "paper"): "holds", ("few_edges", "paper"): "holds",
                   ("theorem1", "nobody"): "holds", ("few_edges", "nobody"): "holds"}
    md = render_markdown(results, examples=3, profile="ci", seconds=0.0)
    assert "| `few_edges`: No more than m(m-1) imports. | my lecture |" in md
    assert "| claim | source | paper | nobody |" in md
    assert {r["solver"] for r in json.loads(to_json(results, examples=3, profile="ci",
                                                     seconds=0.0))["results"]} == {"paper",
                                                                                   "nobody"}


def test_stored_counterexample_outside_the_family_is_not_replayed(clean_registry):
    """Theorem 3's stored counterexample has lambda = 0; on markets with lambda >= 1 it
    is outside the family, so it must not refute the claim there."""
    def lam_at_least_1(max_m):
        return market_and_client(max_m).map(lambda t: (t[0].replace(lam=max(t[0].lam, 1.0)),
                                                       t[1]))

    base = C.CLAIMS["theorem3"]
    mine = C.Claim("theorem3_lam1", base.source, base.statement, lam_at_least_1, base.check,
                   family=lambda drawn: drawn[0].lam >= 1.0)
    C.register_claim(mine)
    from proofs_checks.counterexamples import REGRESSIONS
    REGRESSIONS_BEFORE = dict(REGRESSIONS)
    REGRESSIONS["theorem3_lam1"] = REGRESSIONS["theorem3"]
    try:
        res = C.run_claim("theorem3_lam1", "paper", max_examples=1)
        assert res.verdict == "holds"
        assert "no known counterexample (1 stored, outside it)" in \
            res.extra["known_counterexamples"]
        md = render_markdown([res], examples=1, profile="ci", seconds=0.0)
        assert "the family contains no known counterexample" in md
        # inside the family (the built-in claim), the same stored market refutes it
        assert C.run_claim("theorem3", "paper", max_examples=1).verdict == "refuted"
        # a claim with no declared family replays nothing
        C.register_claim(C.Claim("theorem3_nofam", base.source, base.statement,
                                 base.strategy, base.check))
        REGRESSIONS["theorem3_nofam"] = REGRESSIONS["theorem3"]
        assert C.run_claim("theorem3_nofam", "paper", max_examples=1).verdict == "holds"
    finally:
        REGRESSIONS.clear()
        REGRESSIONS.update(REGRESSIONS_BEFORE)


def test_default_family_membership():
    assert C.in_default_family(Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0))
    assert not C.in_default_family(Market(N=[1] * 13, c=[0] * 13, K=[1] * 13))
    assert not C.in_default_family(Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=500.0))


def test_register_refuses_builtin_names():
    with pytest.raises(ValueError, match="'theorem1' is a built-in claim"):
        C.register_claim(C.CLAIMS["theorem1"])
    with pytest.raises(ValueError, match="'paper' is a built-in solver"):
        C.register_mechanism(P.Mechanism("paper", greedy_graph))


@pytest.mark.parametrize("args, needle", [
    (["--examples", "0"], "'--examples': 0 is not in [1,"),
    (["--examples", "-5"], "'--examples': -5 is not in [1,"),
    (["--jobs", "0"], "'--jobs': 0 is not in [1,"),
    (["--solver", "greedy"], "--solver: 'greedy' is not one of"),
    (["--out", "x/CLAIMS.md"], "looks like a file; give a folder"),
    (["--plugin", "no_such_module_xyz"], "--plugin: cannot import 'no_such_module_xyz'"),
])
def test_cli_refuses_bad_options_in_one_line(tmp_path, args, needle):
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()  # click's usage lines may come first
    errors = [x for x in lines if x.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and needle in errors[0], res.output
    assert not (tmp_path / "audit-out").exists()

