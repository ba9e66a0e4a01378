"""Property-based checks of the paper's incentive claims (Methods 4.3), per graph solver.

Pure: numpy, hypothesis and :mod:`mechanism`; never torch.

>>> from proofs_checks import check_individual_rationality
>>> from mechanism import Market, greedy_graph
>>> mk = Market(N=[100, 300], c=[0.5, 0.5], K=[400, 400])
>>> check_individual_rationality(mk, greedy_graph(mk)) is None
True
"""

from .claims import CLAIMS, SOLVER_CLAIMS, SOLVERS, Claim, ClaimResult, run_claim
from .properties import (
    Mechanism,
    Violation,
    check_budget_balance,
    check_individual_rationality,
    check_lemma1,
    check_local_optimality_add,
    check_local_optimality_remove,
    check_misreport,
    check_theorem3,
    check_truthfulness,
    liar_utility,
)

__all__ = [
    "CLAIMS",
    "SOLVERS",
    "SOLVER_CLAIMS",
    "Claim",
    "ClaimResult",
    "Mechanism",
    "Violation",
    "check_budget_balance",
    "check_individual_rationality",
    "check_lemma1",
    "check_local_optimality_add",
    "check_local_optimality_remove",
    "check_misreport",
    "check_theorem3",
    "check_truthfulness",
    "liar_utility",
    "run_claim",
]
