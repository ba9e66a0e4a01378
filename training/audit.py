"""Re-check a run: verify its hash chain, then recompute every recorded round.

First every artefact is checked against the run's hash chain (:meth:`RunDir.verify`):
config, round records, metrics rows, ledger rows and checkpoint must be those the run
committed. Then, for each ``rounds/NNNN.json``, the recorded market inputs (reported N,
c, K, budgets, distance matrix, lambda, solver, clients still in) are fed to
:mod:`mechanism` again, including the quit-and-recompute rule, by
:func:`mechanism.settle` (as the run did); the recomputed graph, remittances, payments
and utilities must equal the recorded outputs (graph exactly, money to ``atol``), and
the ledger must hold exactly the recorded remittances and sum to zero per round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mechanism import Market, settle, sharing_utilities

from .ledger import Ledger
from .records import Exchange
from .rundir import RunDir

__all__ = ["AuditReport", "audit_run", "recompute_round"]


@dataclass
class AuditReport:
    """Result of :func:`audit_run`: rounds recomputed, problems found, the chain's head.

    ``committed`` is the last committed round (-1 for none), ``head`` the SHA-256 of the
    last chain entry: publish it to make a wholesale rewrite of the run detectable.
    """

    rounds: list[int]
    problems: list[str]
    committed: int = -1
    head: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.problems


def recompute_round(ex: Exchange) -> dict[str, np.ndarray]:
    """Recompute a market round's outputs (stays, A, r, p, U) from its recorded inputs.

    The recomputation is :func:`mechanism.settle`, the same function the session
    called: the audit cannot drift from the run.
    """
    s = settle(ex.market(), ex.budget, solver=ex.solver, true=ex.truth(), defence=ex.defence,
               estimate=ex.estimate, band=ex.band)
    return {"stays": s.stays, "A": s.A, "r": s.r, "p": s.p, "U": s.U}


def audit_run(run_dir: str | Path, atol: float = 1e-9) -> AuditReport:
    """Verify ``run_dir``'s hash chain, recompute every recorded round, report what differs.

    Raises
    ------
    RunDirError
        When ``run_dir`` is not a run directory (no folder, no ``config.json``) or its
        config cannot be read.
    """
    rd = RunDir(run_dir)
    check = rd.verify()
    problems = list(check.problems)
    records: dict[int, Exchange] = {}
    for p in sorted(rd.rounds.glob("[0-9][0-9][0-9][0-9].json")):
        try:
            records[int(p.stem)] = Exchange.from_json(json.loads(p.read_bytes().decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            problems.append(f"round {int(p.stem)}: rounds/{p.name} is not a round record")
        except ValueError as exc:
            problems.append(f"round {int(p.stem)}: rounds/{p.name} cannot be recomputed ({exc})")
    ledger = None
    if rd.ledger.is_file() and not any(x.startswith("ledger.sqlite") for x in problems):
        ledger = Ledger(rd.ledger, create=False)
    for t, ex in sorted(records.items()):
        if ex.kind == "sharing":
            problems += _check_sharing(t, ex, atol)
            continue
        try:
            got = recompute_round(ex)
        except (ValueError, TypeError) as exc:
            problems.append(f"round {t}: inputs cannot be recomputed ({exc})")
            continue
        out = {"stays": ex.stays, "A": ex.A, "r": ex.r, "p": ex.p, "U": ex.U}
        for key in ("stays", "A", "r", "p", "U"):
            want = np.asarray(out[key], dtype=float)
            have = np.asarray(got[key], dtype=float)
            exact = key in ("stays", "A")
            if want.shape != have.shape or not (
                np.array_equal(want, have) if exact else np.allclose(want, have, rtol=0, atol=atol)
            ):
                diff = "shape" if want.shape != have.shape else (
                    f"max |diff| = {np.max(np.abs(want - have)):.3g}")
                problems.append(
                    f"round {t}: recorded {key} differs from the recomputed one ({diff})")
        if ledger is None:
            problems.append(f"round {t}: no ledger.sqlite in the run directory")
            continue
        clients = list(ex.clients)
        try:
            r = np.asarray(ex.r, dtype=float)
            want_entries = Ledger.double_entries(t, r, clients)
        except (ValueError, TypeError, IndexError):
            problems.append(f"round {t}: recorded r and clients do not fit together")
            continue
        entries = ledger.entries(t)
        if abs(sum(a for *_, a in entries)) > atol:
            problems.append(f"round {t}: ledger entries sum to {sum(a for *_, a in entries)!r}")
        if sorted(entries) != want_entries:
            if not _ledger_matches(entries, t, r, clients, atol):
                problems.append(f"round {t}: ledger entries differ from the recorded r_ij")
    return AuditReport(rounds=sorted(records), problems=problems, committed=check.committed,
                       head=check.head)


def _check_sharing(t: int, ex: Exchange, atol: float) -> list[str]:
    """Check a baseline's recorded utilities against eq. (1) on its recorded graph."""
    try:
        want = sharing_utilities(Market(N=ex.N, c=ex.c, K=ex.K), ex.A)
    except (ValueError, TypeError) as exc:
        return [f"round {t}: sharing record cannot be recomputed ({exc})"]
    if ex.U.shape != want.shape or not np.allclose(ex.U, want, rtol=0, atol=atol):
        return [f"round {t}: recorded U differs from eq. (1) on the recorded sharing graph"]
    return []


def _ledger_matches(entries: list[tuple], t: int, r: np.ndarray, clients: list[int],
                    atol: float) -> bool:
    """Compare booked entries with the double entries of ``r`` up to ``atol``."""
    want = {(i, j, acc): a for _, i, j, acc, a in Ledger.double_entries(t, r, clients)}
    have = {(i, j, acc): a for _, i, j, acc, a in entries}
    return set(have) == set(want) and all(abs(have[k] - want[k]) <= atol for k in have)
