"""A round that breaks individual rationality must be announced loudly, not just recorded."""

import dataclasses

import pytest

from training import IRViolationWarning, train
from training import session as session_module


@pytest.fixture
def broken_settlement(monkeypatch):
    """The session's settlement with a deliberately wrong bill: client 0 loses 10 utility."""
    real = session_module.settle

    def settle(*args, **kwargs):
        s = real(*args, **kwargs)
        U = s.U.copy()
        U[0] -= 10.0
        return dataclasses.replace(s, U=U)

    monkeypatch.setattr(session_module, "settle", settle)


def test_negative_utility_raises_a_loud_warning_and_is_recorded(tiny, tmp_path,
                                                                broken_settlement):
    match = r"round 1: individual rationality .* clients \[0\]"
    with pytest.warns(IRViolationWarning, match=match):
        rows = train(tiny.replace(rounds=1), tmp_path / "run")
    assert [r["client"] for r in rows if not r["ir"]] == [0]


def test_honest_ipfl_run_raises_no_ir_warning(tiny, tmp_path, recwarn):
    rows = train(tiny.replace(rounds=1), tmp_path / "run")
    assert all(r["ir"] for r in rows)
    assert not [w for w in recwarn if issubclass(w.category, IRViolationWarning)]
