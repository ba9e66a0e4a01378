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


def recompute_round(inputs: dict) -> dict[str, np.ndarray]:
    """Recompute a round's outputs (stays, A, r, p, U) from its recorded inputs.

    The recomputation is :func:`mechanism.settle`, the same function the server step
    called: the audit cannot drift from the run.
    """
    N, c, K = (np.asarray(inputs[k], dtype=float) for k in ("N", "c", "K"))
    budget, d = np.asarray(inputs["budget"], dtype=float), np.asarray(inputs["d"], dtype=float)
    market = Market(N=N, c=c, K=K, d=d, lam=inputs["lam"])
    true = inputs.get("true")
    truth = None if true is None else market.replace(
        **{k: np.asarray(true[k], dtype=float) for k in ("N", "c", "K")})
    s = settle(market, budget, solver=inputs["solver"], true=truth)
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
    records = {}
    for p in sorted(rd.rounds.glob("[0-9][0-9][0-9][0-9].json")):
        try:
            rec = json.loads(p.read_bytes().decode("utf-8"))
            if not isinstance(rec, dict) or not isinstance(rec.get("clients"), list):
                raise ValueError
            records[int(p.stem)] = rec
        except ValueError:  # includes bad UTF-8 and bad JSON
            problems.append(f"round {int(p.stem)}: rounds/{p.name} is not a round record")
    ledger = None
    if rd.ledger.is_file() and not any(x.startswith("ledger.sqlite") for x in problems):
        ledger = Ledger(rd.ledger, create=False)
    for t, rec in sorted(records.items()):
        if rec.get("kind") == "sharing":
            problems += _check_sharing(t, rec, atol)
            continue
        try:
            got = recompute_round(rec["inputs"])
            out = rec["outputs"]
            np.asarray([out[k] for k in ("stays", "A", "r", "p", "U")], dtype=object)
        except (KeyError, ValueError, TypeError) as exc:
            problems.append(f"round {t}: inputs cannot be recomputed ({exc})")
            continue
        for key in ("stays", "A", "r", "p", "U"):
            try:
                want = np.asarray(out[key], dtype=float)
            except (ValueError, TypeError):
                problems.append(f"round {t}: recorded {key} is not numeric")
                continue
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
        clients = rec["clients"]
        try:
            r = np.asarray(out["r"], dtype=float)
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


def _check_sharing(t: int, rec: dict, atol: float) -> list[str]:
    """Check a baseline's recorded utilities against eq. (1) on its recorded graph."""
    try:
        inp = rec["inputs"]
        mk = Market(N=inp["N"], c=np.asarray(inp["c"], dtype=float), K=inp["K"])
        want = sharing_utilities(mk, np.asarray(rec["outputs"]["A"]))
        have = np.asarray(rec["outputs"]["U"], dtype=float)
    except (KeyError, ValueError, TypeError) as exc:
        return [f"round {t}: sharing record cannot be recomputed ({exc})"]
    if have.shape != want.shape or not np.allclose(have, want, rtol=0, atol=atol):
        return [f"round {t}: recorded U differs from eq. (1) on the recorded sharing graph"]
    return []


def _ledger_matches(entries: list[tuple], t: int, r: np.ndarray, clients: list[int],
                    atol: float) -> bool:
    """Compare booked entries with the double entries of ``r`` up to ``atol``."""
    want = {(i, j, acc): a for _, i, j, acc, a in Ledger.double_entries(t, r, clients)}
    have = {(i, j, acc): a for _, i, j, acc, a in entries}
    return set(have) == set(want) and all(abs(have[k] - want[k]) <= atol for k in have)
