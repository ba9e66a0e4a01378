"""Every graph solver runs the same claim suite, driven by what it claims (SOLVER_CLAIMS).

A claim the solver is expected to satisfy runs as a Hypothesis property (the
loaded profile: ``ci`` under ``make test``). A claim known to be refuted for it
is an expected-counterexample test: Hypothesis must find a violation (no
shrinking here; the shrunk ones are replayed in test_counterexamples.py).
"""

import pytest
from hypothesis import settings

from proofs_checks.claims import CLAIMS, SOLVER_CLAIMS, run_claim

#: examples allowed to find a counterexample to a claim recorded as refuted
REFUTE_BUDGET = 1500


class ClaimSuite:
    """Base: subclasses set ``solver``; one test per claim."""

    solver: str = ""

    @pytest.mark.parametrize("claim", list(CLAIMS))
    def test_claim(self, claim):
        # Prepare
        expected = SOLVER_CLAIMS[self.solver][claim]
        # Execute
        budget = settings().max_examples
        if expected == "refuted":  # stops at the first counterexample; allow a longer search
            budget = max(budget, REFUTE_BUDGET)
        # regressions=False: a refutation must come from the search itself, not from
        # replaying the committed counterexamples (test_counterexamples.py does that)
        result = run_claim(claim, self.solver, shrink=False, max_examples=budget,
                           base_settings=settings(), regressions=False)
        # Assert
        if expected == "holds":
            assert result.verdict == "holds", str(result.violation)
        else:
            assert result.verdict == "refuted", (
                f"{claim} is recorded as refuted for {self.solver} but no counterexample "
                f"was found in {result.examples} examples"
            )

    def test_every_claim_is_declared(self):
        assert set(SOLVER_CLAIMS[self.solver]) == set(CLAIMS)


class TestPaperVariant(ClaimSuite):
    solver = "paper"


class TestSkipVariant(ClaimSuite):
    solver = "skip"


class TestExactSolver(ClaimSuite):
    solver = "exact"
