"""A round that breaks individual rationality must be announced loudly, not just recorded."""

import dataclasses

import pytest

from training import ALGORITHMS, IRViolationWarning, train
from training.algorithms.ipfl import IPFL


class IRBreaker(IPFL):
    """iPFL with a deliberately wrong bill: client 0 is charged 10 more than eq. (10) says."""

    name = "ipfl-ir-breaker"

    def server_step(self, inp, state):
        out, state = super().server_step(inp, state)
        U = out.settlement.U.copy()
        U[0] -= 10.0
        out.settlement = dataclasses.replace(out.settlement, U=U)
        return out, state


@pytest.fixture
def breaker():
    ALGORITHMS[IRBreaker.name] = IRBreaker
    yield IRBreaker.name
    del ALGORITHMS[IRBreaker.name]


def test_negative_utility_raises_a_loud_warning_and_is_recorded(tiny, tmp_path, breaker):
    match = r"round 1: individual rationality .* clients \[0\]"
    with pytest.warns(IRViolationWarning, match=match):
        rows = train(tiny.replace(algorithm=breaker, rounds=1), tmp_path / "run")
    assert [r["client"] for r in rows if not r["ir"]] == [0]


def test_honest_ipfl_run_raises_no_ir_warning(tiny, tmp_path, recwarn):
    rows = train(tiny.replace(rounds=1), tmp_path / "run")
    assert all(r["ir"] for r in rows)
    assert not [w for w in recwarn if issubclass(w.category, IRViolationWarning)]
