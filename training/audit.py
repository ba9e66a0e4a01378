"""Re-check a run: verify its hash chain, then recompute every recorded round.

First every artefact is checked against the run's hash chain (:meth:`RunDir.verify`):
config, round records, metrics rows, ledger rows and checkpoint must be those the run
committed. Then, for each ``rounds/NNNN.json``, the recorded market inputs (reported N,
c, K, budgets, distance matrix, lambda, solver, clients still in) are fed to
:mod:`mechanism` again, including the quit-and-recompute rule, by
:func:`mechanism.settle` (as the run did); the recomputed graph, remittances, payments
and utilities must equal the recorded outputs (graph exactly, money to ``atol``), and
the ledger must hold exactly the recorded remittances and sum to zero per round.
Last, the metric rows are checked against the round records and the ledger
(:mod:`training.audit_metrics`: ``U``, ``p``, ``paid``, ``received``, ``cum_U``, degrees,
``active``, ``best_acc``, accuracy ranges).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mechanism import Market, settle, sharing_utilities, size_from_displacement

from .audit_metrics import check_metrics
from .keys import ChainKey
from .ledger import Ledger
from .records import Exchange
from .rundir import RunDir, RunDirError

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
    notes: list[str] = field(default_factory=list)
    authenticated: bool = False
    keys: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.problems


def recompute_round(ex: Exchange) -> dict[str, np.ndarray]:
    """Recompute a market round's outputs (stays, A, r, p, U) from its recorded inputs.

    The recomputation is :func:`mechanism.settle`, the same function the session
    called: the audit cannot drift from the run. Under ``estimator = "displacement"``
    the estimate is recomputed too, from the recorded round-0 displacements and reports
    (:func:`mechanism.size_from_displacement`; returned as ``"estimate"``), and the
    market settled on the recomputed one. The displacements themselves are measured on
    round 0's uploads, which the run directory does not keep: the audit takes them as
    recorded (as it takes the distances ``d``). An ``"oracle"`` estimate is a simulated
    draw and is taken as recorded.
    """
    estimate = ex.estimate
    if ex.estimator == "displacement":
        if ex.observed is None:
            raise ValueError("estimator 'displacement' without inputs.observed")
        estimate = size_from_displacement(ex.observed, ex.N)
    s = settle(ex.market(), ex.budget, solver=ex.solver, true=ex.truth(), defence=ex.defence,
               estimate=estimate, band=ex.band)
    out = {"stays": s.stays, "A": s.A, "r": s.r, "p": s.p, "U": s.U}
    if ex.estimator == "displacement":
        out["estimate"] = estimate
    return out


def audit_run(run_dir: str | Path, atol: float = 1e-9,
              keys: tuple[ChainKey, ...] = ()) -> AuditReport:
    """Verify ``run_dir``'s hash chain, recompute every recorded round, report what differs.

    ``keys`` are chain keys to verify the MACs with besides this machine's own and
    imported ones (:func:`training.keys.known_keys`); :attr:`AuditReport.authenticated`
    says whether every chain entry verified under one, :attr:`AuditReport.notes` why not.

    Raises
    ------
    RunDirError
        When ``run_dir`` is not a run directory (no folder, no ``config.json``) or its
        config cannot be read.
    """
    rd = RunDir(run_dir, keys=keys)
    try:
        state = rd.load_checkpoint()
    except RunDirError:
        state = None  # verify loads it again and reports why not
    check = rd.verify(state=state)
    uploads = state.get("uploads") if isinstance(state, dict) else None
    width = int(uploads.shape[1]) if isinstance(uploads, torch.Tensor) and uploads.dim() == 2 \
        else None
    problems = list(check.problems)
    records: dict[int, Exchange] = {}
    for t, p in sorted(rd.record_files([]).items()):
        try:
            records[t] = Exchange.from_json(json.loads(rd.read_file(p, "record").decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            problems.append(f"round {t}: rounds/{p.name} is not a round record")
        except RunDirError:
            continue  # reported by verify
        except ValueError as exc:
            problems.append(f"round {t}: rounds/{p.name} cannot be recomputed ({exc})")
    ledger = None
    if rd.ledger.is_file() and not rd.ledger.is_symlink() and not any(
            x.startswith("ledger.sqlite") for x in problems):
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
        if "estimate" in got and (ex.estimate is None or ex.estimate.shape != got[
                "estimate"].shape or not np.allclose(ex.estimate, got["estimate"],
                                                     rtol=1e-12, atol=0)):
            problems.append(f"round {t}: recorded estimate differs from the one recomputed "
                            "from inputs.observed (mechanism.size_from_displacement)")
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
    problems += _metrics_problems(rd, records, check.committed, ledger, atol, width)
    return AuditReport(rounds=sorted(records), problems=problems, committed=check.committed,
                       head=check.head, notes=check.notes,
                       authenticated=check.authenticated and not problems, keys=check.keys)


def _metrics_problems(rd: RunDir, records: dict[int, Exchange], committed: int,
                      ledger: Ledger | None, atol: float, width: int | None) -> list[str]:
    """Check the metric rows against the round records and the ledger (:mod:`.audit_metrics`)."""
    try:
        rows = rd.read_metrics()
        m = rd.read_config().get("clients")
    except (RunDirError, UnicodeDecodeError):
        return []  # reported by verify
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        return [f"config.json: clients = {m!r} is not a positive integer"]
    if committed >= 0 and m > len(rows):  # never size anything by a number a file claims
        return [f"metrics.jsonl holds {len(rows)} rows, fewer than clients = {m} (round 0 "
                "alone has one row per client)"]
    return check_metrics(rows, records, m, committed, ledger, atol, width) + _drops_problems(
        rd, rows, committed)


def _drops_problems(rd: RunDir, rows: list[dict], committed: int) -> list[str]:
    """``drops.jsonl`` (not in the hash chain) must name exactly the rows marked ``dropped``."""
    marked = {(r["round"], r["client"]) for r in rows
              if r.get("dropped") is not None and isinstance(r.get("round"), int)
              and r["round"] <= committed}
    listed = set()
    if rd.drops_file.exists() or rd.drops_file.is_symlink():
        try:
            text = rd.read_file(rd.drops_file, "drops").decode("utf-8")
            for line in filter(None, text.splitlines()):
                doc = json.loads(line)
                if doc["round"] <= committed:
                    listed.add((doc["round"], doc["client"]))
        except (RunDirError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            return [f"drops.jsonl is not a list of drops ({exc})"]
    if listed == marked:
        return []
    return [f"drops.jsonl names (round, client) {sorted(listed ^ marked)} which the metric "
            "rows do not mark dropped, or misses them"]


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
