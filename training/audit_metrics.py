"""The metric rows of a run, checked against its round records and its ledger (issue 21).

``metrics.jsonl`` is bound to the run by the hash chain, but the chain only says the
rows are those committed; this module says they are *right*, given what else the run
recorded. For every committed round ``t`` and client ``i``:

* one row per client ``0 .. m-1`` (``m = clients`` of the config);
* money and graph columns equal the round record (``rounds/NNNN.json``): with ``k`` the
  client's place in the round's clients, ``U = U_k`` (eq. (1)), and for a market round
  ``p = p_k``, ``paid = sum_j r_kj``, ``received = sum_j r_jk`` (eq. (10)),
  ``N = N_k`` (reported); ``imports``/``importers`` are ``A``'s out-/in-degree; a client
  not in the round (or a round without a record) has zeros;
* the ledger: a client's entries of round ``t`` sum to ``received - paid = -p``;
* running columns: ``cum_U(t) = cum_U(t-1) + U(t)``; ``best_acc`` is the test accuracy at
  the round of best validation accuracy so far (strict improvement, active rounds only);
  an inactive client reports its best-validation model (``acc = best_acc``);
* ``active`` never comes back once lost, is false for a client that quit
  (``stays = False``) or was dropped; ``ir = (U >= -IR_TOL)``;
* ``acc``, ``best_acc`` in ``[0, 1]``; ``val_acc`` in ``[0, 1]`` (or ``-inf`` before a
  client's first evaluation);
* ``shared_params`` and ``total_params`` (rows written since they were added; older rows
  lack both): counts with ``0 < shared <= total``, the same pair in every row (a run's
  model does not change), and ``shared_params`` equal to the width of the uploads in the
  checkpoint (``uploads`` is ``(m, shared)``) when the checkpoint is there.

Each kind of mismatch is reported once per round and column, naming the clients.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from mechanism import IR_TOL

from .ledger import Ledger
from .records import Exchange

__all__ = ["check_metrics"]

_MONEY = ("U", "p", "paid", "received", "cum_U")


def _num(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return math.nan
    return float(v)


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _usual_params(rows: list[dict[str, Any]], committed: int) -> tuple[int, int] | None:
    """Return the (shared, total) pair most rows up to ``committed`` carry, if any."""
    pairs: dict[tuple[int, int], int] = defaultdict(int)
    for r in rows:
        sp, tp, t = r.get("shared_params"), r.get("total_params"), r.get("round")
        if isinstance(t, int) and t <= committed and _count(sp) and _count(tp):
            pairs[(sp, tp)] += 1
    return max(pairs, key=lambda k: pairs[k]) if pairs else None


def check_metrics(rows: list[dict[str, Any]], records: dict[int, Exchange], m: int,
                  committed: int, ledger: Ledger | None, atol: float,
                  width: int | None = None) -> list[str]:
    """Return the problems of ``rows`` against the round ``records`` and the ``ledger``.

    Parameters
    ----------
    rows : list of dict
        ``metrics.jsonl``'s rows.
    records : dict of int to Exchange
        The round records that could be read, by round.
    m : int
        The number of clients (the config's ``clients``).
    committed : int
        The last committed round; rows of later rounds are reported elsewhere.
    ledger : Ledger or None
        The run's ledger (None: not a market run, or unreadable).
    atol : float
        Tolerance for money columns.
    width : int, optional
        The checkpoint's upload width (its ``uploads.shape[1]``): ``shared_params``
        must equal it. None: no checkpoint to compare with.
    """
    out: dict[tuple[int, str], list[int]] = defaultdict(list)
    example: dict[tuple[int, str], str] = {}

    def bad(t: int, what: str, i: int, detail: str) -> None:
        out[(t, what)].append(i)
        example.setdefault((t, what), f"client {i}: {detail}")

    by_round: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    problems = []
    for r in rows:
        t, i = r.get("round"), r.get("client")
        if not isinstance(t, int) or t > committed:
            continue
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < m or i in by_round[t]:
            problems.append(f"round {t}: a metrics row names client {i!r} (not one of 0..{m - 1}"
                            ", or twice)")
            continue
        by_round[t][i] = r
    usual = _usual_params(rows, committed)
    cum = np.zeros(m)
    best_val = np.full(m, -math.inf)
    best_acc = np.zeros(m)
    was_active = np.ones(m, dtype=bool)
    for t in range(committed + 1):
        have = by_round.get(t, {})
        if len(have) != m:
            missing = sorted(set(range(m)) - set(have))
            problems.append(f"round {t}: metrics rows missing for clients {missing}")
        ex = records.get(t)
        at = {int(c): k for k, c in enumerate(ex.clients)} if ex is not None else {}
        balances = ledger.balances(t) if ledger is not None and ex is not None \
            and ex.kind == "market" else None
        for i, r in sorted(have.items()):
            vals = {key: _num(r.get(key)) for key in (*_MONEY, "acc", "val_acc", "best_acc",
                                                      "imports", "importers", "N")}
            for key in (*_MONEY, "acc", "best_acc", "imports", "importers"):
                if not math.isfinite(vals[key]):
                    bad(t, f"{key} is not a finite number", i, f"{r.get(key)!r}")
            for key in ("acc", "best_acc"):
                if not 0.0 <= vals[key] <= 1.0:
                    bad(t, f"{key} outside [0, 1]", i, f"{key} = {r.get(key)!r}")
            if not (0.0 <= vals["val_acc"] <= 1.0 or vals["val_acc"] == -math.inf):
                bad(t, "val_acc outside [0, 1]", i, f"val_acc = {r.get('val_acc')!r}")
            # the round record's columns
            k = at.get(i)
            want = {"U": 0.0, "p": 0.0, "paid": 0.0, "received": 0.0, "imports": 0,
                    "importers": 0}
            if k is not None:
                want["U"] = float(ex.U[k])
                want["imports"], want["importers"] = int(ex.A[k].sum()), int(ex.A[:, k].sum())
                if ex.kind == "market":
                    want["p"] = float(ex.p[k])
                    want["paid"], want["received"] = float(ex.r[k].sum()), float(ex.r[:, k].sum())
                    if not math.isclose(vals["N"], float(ex.N[k]), rel_tol=1e-12, abs_tol=atol):
                        bad(t, "N differs from the round record", i,
                            f"{r.get('N')!r} vs {float(ex.N[k])!r}")
                if ex.roles and r.get("role") != ex.roles[k]:
                    bad(t, "role differs from the round record", i,
                        f"{r.get('role')!r} vs {ex.roles[k]!r}")
            for key, w in want.items():
                if not abs(vals[key] - w) <= atol:
                    bad(t, f"{key} differs from the round record", i, f"{r.get(key)!r} vs {w!r}")
            if balances is not None:
                net = balances.get(i, 0.0)
                if not abs(net - (vals["received"] - vals["paid"])) <= atol:
                    bad(t, "received - paid differs from the ledger", i,
                        f"{vals['received'] - vals['paid']!r} vs ledger {net!r}")
            # running columns
            cum[i] += vals["U"]
            if not abs(cum[i] - vals["cum_U"]) <= atol * (t + 1):
                bad(t, "cum_U is not the sum of U over rounds", i,
                    f"{r.get('cum_U')!r} vs {cum[i]!r}")
                cum[i] = vals["cum_U"]  # report a wrong row once, not every later one
            active = r.get("active")
            if not isinstance(active, bool):
                bad(t, "active is not true/false", i, f"{active!r}")
                continue
            gone = (k is not None and ex.kind == "market" and not bool(ex.stays[k])) or \
                r.get("dropped") is not None
            if active and (not was_active[i] or gone):
                bad(t, "active for a client that quit or was dropped", i, "active = true")
            was_active[i] = active
            if active:
                if vals["val_acc"] > best_val[i]:
                    best_val[i], best_acc[i] = vals["val_acc"], vals["acc"]
            elif vals["acc"] != best_acc[i] or vals["val_acc"] != best_val[i]:
                bad(t, "an inactive client's acc/val_acc is not its best-validation model's", i,
                    f"acc {r.get('acc')!r} vs {best_acc[i]!r}")
            if vals["best_acc"] != best_acc[i]:
                bad(t, "best_acc is not the test accuracy at the best validation round", i,
                    f"{r.get('best_acc')!r} vs {best_acc[i]!r}")
                best_acc[i] = vals["best_acc"]
            if r.get("ir") is not (vals["U"] >= -IR_TOL):
                bad(t, "ir disagrees with U >= -IR_TOL", i, f"ir = {r.get('ir')!r}")
            if "shared_params" in r or "total_params" in r:
                sp, tp = r.get("shared_params"), r.get("total_params")
                if not (_count(sp) and _count(tp) and sp <= tp):
                    bad(t, "shared_params/total_params are not counts with shared <= total",
                        i, f"{sp!r} of {tp!r}")
                elif (sp, tp) != usual:
                    bad(t, "shared_params/total_params differ from the run's other rows", i,
                        f"{sp} of {tp} vs {usual[0]} of {usual[1]}" if usual else f"{sp}")
                elif width is not None and sp != width:
                    bad(t, "shared_params differs from the checkpoint's upload width", i,
                        f"{sp} vs {width}")
    for (t, what), who in sorted(out.items()):
        problems.append(f"round {t}: metrics {what} for clients {who} ({example[(t, what)]})")
    return problems
