"""Every public function that takes a market refuses a non-Market with a TypeError."""

import numpy as np
import pytest

import mechanism
from mechanism.compare import compare_market, eq9_violations
from mechanism.exact import exact_row, prune_row
from mechanism.report import market_table

A2 = np.zeros((2, 2), dtype=np.int8)

#: name -> call with a non-Market first argument
CALLS = {
    "greedy_graph": lambda bad: mechanism.greedy_graph(bad),
    "thresholds": lambda bad: mechanism.thresholds(bad),
    "check_graph": lambda bad: mechanism.check_graph(bad, A2),
    "imported_data": lambda bad: mechanism.imported_data(bad, A2),
    "marginal_gains": lambda bad: mechanism.marginal_gains(bad, A2),
    "payments": lambda bad: mechanism.payments(bad, A2),
    "sharing_costs": lambda bad: mechanism.sharing_costs(bad, A2),
    "utilities": lambda bad: mechanism.utilities(bad, A2),
    "social_welfare": lambda bad: mechanism.social_welfare(bad, A2),
    "objective": lambda bad: mechanism.objective(bad, A2),
    "solve_graph": lambda bad: mechanism.solve_graph(bad),
    "exact_graph": lambda bad: mechanism.exact_graph(bad),
    "exact_row": lambda bad: exact_row(bad, 0),
    "optimal_social_welfare": lambda bad: mechanism.optimal_social_welfare(bad),
    "prune_row": lambda bad: prune_row(bad, 0),
    "eq9_violations": lambda bad: eq9_violations(bad, A2),
    "compare_market": lambda bad: compare_market(bad),
    "market_table": lambda bad: market_table(bad, A2),
    "settle": lambda bad: mechanism.settle(bad),
    "defended_payments": lambda bad: mechanism.defended_payments(bad, A2),
    "priced_market": lambda bad: mechanism.priced_market(bad),
    "sharing_utilities": lambda bad: mechanism.sharing_utilities(bad, A2),
    "explain": lambda bad: mechanism.explain(bad, 0),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("bad", [None, "market", {"N": [1, 2]}, np.ones(2)])
def test_non_market_is_a_type_error_naming_the_argument(name, bad):
    # Execute / Assert
    with pytest.raises(TypeError, match=rf"^{name}: market must be a Market, got "):
        CALLS[name](bad)


def test_every_public_function_taking_a_market_is_covered():
    """A new public function with a ``market`` parameter must join CALLS."""
    import inspect

    public = {n for n in mechanism.__all__ if inspect.isfunction(getattr(mechanism, n))}
    takes_market = {n for n in public
                    if "market" in inspect.signature(getattr(mechanism, n)).parameters}
    assert takes_market <= set(CALLS), sorted(takes_market - set(CALLS))
