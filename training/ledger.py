"""An append-only SQLite ledger of the money transfers of eq. (10).

Each remittance :math:`r_{ij}` (client ``i`` pays ``j``) is booked twice, as in double
entry: ``-r_ij`` on ``i``'s account and ``+r_ij`` on ``j``'s. A round's entries therefore
sum to zero, which :meth:`Ledger.round_sum` lets anyone check; a client's entries sum to
``-p_i``. Triggers make the table append-only (``UPDATE`` and ``DELETE`` abort). Booking
a round that is already booked (a round re-run after a crash) inserts nothing: the
entries must equal the booked ones, else :class:`ValueError`.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .safeio import CAPS, check_regular

__all__ = ["Ledger"]

_SELECT = ("SELECT round, payer, payee, account, amount FROM entries "
           "WHERE round = ? ORDER BY payer, payee, account")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    round INTEGER NOT NULL, payer INTEGER NOT NULL, payee INTEGER NOT NULL,
    account INTEGER NOT NULL, amount REAL NOT NULL,
    PRIMARY KEY (round, payer, payee, account));
CREATE TABLE IF NOT EXISTS booked (round INTEGER PRIMARY KEY);
CREATE TRIGGER IF NOT EXISTS no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
"""


class Ledger:
    """The ledger file of a run directory."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        """Open (with ``create``, create) the ledger; ``create=False`` opens it read-only."""
        self.path = Path(path)
        self.readonly = not create
        if os.path.lexists(self.path):  # never a link, a FIFO or a device (issue 21)
            check_regular(self.path, CAPS["ledger"], "ledger")
        if create:
            con = self._connect()
            try:
                con.executescript(_SCHEMA)
            finally:
                con.close()

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                   isolation_level=None)
        return sqlite3.connect(self.path, isolation_level=None)

    @staticmethod
    def double_entries(round_: int, r: NDArray[np.float64], clients: list[int]) -> list[tuple]:
        """Return the sorted double entries of remittances ``r`` (local -> global ``clients``)."""
        rows = []
        for a, b in zip(*np.nonzero(r), strict=True):
            i, j, amount = clients[a], clients[b], float(r[a, b])
            rows += [(round_, i, j, i, -amount), (round_, i, j, j, amount)]
        return sorted(rows)

    def entries(self, round_: int) -> list[tuple]:
        """Return the round's entries ``(round, payer, payee, account, amount)``, sorted."""
        con = self._connect()
        try:
            return con.execute(_SELECT,
                               (round_,)).fetchall()
        finally:
            con.close()

    def book(self, round_: int, r: NDArray[np.float64], clients: list[int]) -> bool:
        """Book the remittances ``r`` (local indices -> global ``clients``) in one transaction.

        Returns True if booked now, False if the round was already booked identically.
        """
        rows = self.double_entries(round_, np.asarray(r, dtype=float), clients)
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            have = con.execute(_SELECT,
                               (round_,)).fetchall()
            if have or con.execute("SELECT 1 FROM booked WHERE round = ?", (round_,)).fetchone():
                con.execute("ROLLBACK")
                if sorted(have) != rows:
                    raise ValueError(f"ledger: round {round_} is booked with different entries")
                return False
            con.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?)", rows)
            con.execute("INSERT INTO booked VALUES (?)", (round_,))
            con.execute("COMMIT")
            return True
        finally:
            con.close()

    def round_sum(self, round_: int) -> float:
        """Return the sum of the round's entries (zero when balanced)."""
        return float(sum(a for *_, a in self.entries(round_)))

    def balances(self, round_: int) -> dict[int, float]:
        """Return each client's net amount received in the round (``-p_i``)."""
        out: dict[int, float] = {}
        for *_, account, amount in self.entries(round_):
            out[account] = out.get(account, 0.0) + amount
        return out

    def rounds(self) -> list[int]:
        """Return the booked rounds."""
        con = self._connect()
        try:
            return [r for (r,) in con.execute("SELECT round FROM booked ORDER BY round")]
        finally:
            con.close()
