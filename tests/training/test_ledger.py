import sqlite3

import numpy as np
import pytest

from training.ledger import Ledger


def test_round_sums_to_zero_and_balances_are_minus_p(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    r = np.array([[0, 1.5, 0], [0.25, 0, 2.0], [0, 0, 0]])
    assert led.book(3, r, [4, 7, 9])
    assert led.round_sum(3) == pytest.approx(0.0, abs=1e-12)
    p = r.sum(1) - r.sum(0)
    bal = led.balances(3)
    assert bal[4] == pytest.approx(-p[0]) and bal[7] == pytest.approx(-p[1])
    assert bal[9] == pytest.approx(-p[2])


def test_rebooking_identical_round_adds_nothing_and_different_is_refused(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    r = np.array([[0, 1.0], [0.5, 0]])
    assert led.book(1, r, [0, 1])
    assert not led.book(1, r, [0, 1])
    assert len(led.entries(1)) == 4
    with pytest.raises(ValueError, match="round 1"):
        led.book(1, 2 * r, [0, 1])


def test_ledger_is_append_only(tmp_path):
    led = Ledger(tmp_path / "l.sqlite")
    led.book(1, np.array([[0, 1.0], [0, 0]]), [0, 1])
    con = sqlite3.connect(tmp_path / "l.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE entries SET amount = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM entries")
