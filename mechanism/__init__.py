"""The iPFL mechanism: market, gains, thresholds, Algorithm 2, payments.

Pure numpy/scipy (networkx and pulp for drawing and exact solving); never torch.

>>> from mechanism import Market, greedy_graph, payments, utilities, social_welfare
>>> mk = Market(N=[100, 200, 300], c=[0.1, 0.1, 0.1], K=[400, 400, 400])
>>> A = greedy_graph(mk)
>>> bool(abs(payments(mk, A).p.sum()) < 1e-12)
True
"""

from .defence import DEFENCES, defended_payments, priced_market
from .estimator import ESTIMATORS, size_from_displacement
from .exact import ExactResult, exact_graph, optimal_social_welfare
from .explain import Explanation, explain
from .gain import GAINS, Gain, LogGain, SqrtGain, get_gain
from .graph import VARIANTS, greedy_graph
from .market import Market
from .payments import (
    Payments,
    check_graph,
    imported_data,
    marginal_gains,
    objective,
    payments,
    sharing_costs,
    social_welfare,
    utilities,
)
from .sampling import random_market
from .settlement import IR_TOL, Settlement, settle, sharing_utilities
from .solvers import GRAPH_SOLVERS, solve_graph
from .thresholds import thresholds

__all__ = [
    "DEFENCES",
    "ESTIMATORS",
    "ExactResult",
    "Explanation",
    "GAINS",
    "GRAPH_SOLVERS",
    "IR_TOL",
    "Gain",
    "LogGain",
    "Market",
    "Payments",
    "Settlement",
    "SqrtGain",
    "VARIANTS",
    "check_graph",
    "defended_payments",
    "exact_graph",
    "explain",
    "get_gain",
    "greedy_graph",
    "imported_data",
    "marginal_gains",
    "objective",
    "optimal_social_welfare",
    "payments",
    "priced_market",
    "random_market",
    "settle",
    "size_from_displacement",
    "sharing_costs",
    "sharing_utilities",
    "social_welfare",
    "solve_graph",
    "thresholds",
    "utilities",
]
