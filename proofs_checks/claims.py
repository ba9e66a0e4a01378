r"""The registry of claims and solvers, and a runner that finds minimal counterexamples.

A :class:`Claim` pairs a property of :mod:`proofs_checks.properties` with the
Hypothesis strategy that feeds it. :data:`SOLVER_CLAIMS` records, for every
graph solver, what we expect of each claim (``"holds"`` or ``"refuted"``): the
shared test base in ``tests/proofs_checks`` is driven by it, as Axelrod's
``TestPlayer`` is driven by each strategy's classifier, and ``ipfl audit``
reports when a run disagrees with it.

:func:`run_claim` runs one claim against one mechanism through Hypothesis and,
if it fails, returns the shrunk (minimal) counterexample.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from mechanism import Market

from . import properties as P
from .strategies import (
    MAX_M,
    market_and_client,
    market_and_estimate,
    market_and_misreport,
    markets,
)

__all__ = [
    "CLAIMS",
    "MECHANISMS",
    "SOLVERS",
    "SOLVER_CLAIMS",
    "Claim",
    "ClaimResult",
    "in_default_family",
    "register_claim",
    "register_mechanism",
    "run_claim",
]

SOLVERS: tuple[str, ...] = ("paper", "skip", "exact")


@dataclass(frozen=True)
class Claim:
    """One claim: where the paper states it, what it says, how to check it.

    Attributes
    ----------
    key : str
        Identifier, e.g. ``"theorem1"``.
    source : str
        Where it comes from ("Theorem 1", "eq. (9)", "not in the paper").
    statement : str
        The claim in one sentence.
    strategy : callable
        ``strategy(max_m) -> SearchStrategy`` of the check's extra arguments.
    check : callable
        ``check(mechanism, *drawn) -> Violation | None``.
    family : callable or None
        ``family(drawn) -> bool``: whether a drawn value (e.g. a stored
        counterexample) belongs to the family of markets ``strategy`` draws.
        Stored counterexamples of :data:`~proofs_checks.counterexamples.REGRESSIONS`
        are replayed only when it says yes; ``None`` (the default for a claim
        you write, whose family we cannot know) replays none.
    """

    key: str
    source: str
    statement: str
    strategy: Callable[[int], st.SearchStrategy]
    check: Callable[..., P.Violation | None]
    family: Callable[[object], bool] | None = None


def _in(x: np.ndarray, lo: float, hi: float, zero: bool = True, inf: bool = False) -> bool:
    ok = ((x >= lo) & (x <= hi)) | ((x == 0) if zero else False) | (np.isinf(x) if inf else False)
    return bool(np.all(ok))


def in_default_family(drawn: object, max_m: int = MAX_M) -> bool:
    """Whether ``drawn`` (a market, or a tuple starting with one) is in the default family.

    That is the family :func:`~proofs_checks.strategies.markets` draws: 2..``max_m``
    clients, the paper's gain and its ranges of ``N``, ``c``, ``K`` and lambda.

    Examples
    --------
    >>> from mechanism import Market
    >>> in_default_family(Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0))
    True
    >>> in_default_family(Market(N=[1, 1], c=[0, 0], K=[0, 1], lam=0.0, gain="log"))
    False
    """
    mk = drawn[0] if isinstance(drawn, tuple) else drawn
    if not isinstance(mk, Market) or not 2 <= mk.m <= max_m or mk.gain.name != "sqrt":
        return False
    return (_in(mk.N, 1.0, 1e7, zero=False) and _in(mk.c, 1e-4, 1e3, inf=True)
            and _in(mk.K, 1e-2, 1e7) and _in(np.array([mk.lam]), 1e-4, 1e2))


def _graph_check(fn: Callable) -> Callable:
    def check(mech: P.Mechanism, market: Market) -> P.Violation | None:
        return fn(market, np.asarray(mech.graph(market), dtype=np.int8))

    return check


def _paid_graph_check(fn: Callable) -> Callable:
    def check(mech: P.Mechanism, market: Market) -> P.Violation | None:
        return fn(market, np.asarray(mech.graph(market), dtype=np.int8), mech.pay)

    return check


def _lie_check(fn: Callable, claim: str | None = None) -> Callable:
    def check(mech: P.Mechanism, drawn: tuple) -> P.Violation | None:
        market, lie = drawn
        return fn(market, mech, lie) if claim is None else fn(market, mech, lie, claim=claim)

    return check


def _client_check(mech: P.Mechanism, drawn: tuple) -> P.Violation | None:
    market, i = drawn
    return P.check_theorem3(market, mech, i)


def _markets(max_m: int) -> st.SearchStrategy:
    return markets(max_m=max_m)


#: every claim, in report order (built-in ones first; see :func:`register_claim`)
CLAIMS: dict[str, Claim] = {
    c.key: dataclasses.replace(c, family=in_default_family)
    for c in [
        Claim("theorem1", "Theorem 1", "U_i >= 0 for every client (individual rationality).",
              _markets, _paid_graph_check(P.check_individual_rationality)),
        Claim("lemma1", "Lemma 1", "Reporting c_i' > c_i never adds an importer of i's model.",
              lambda m: market_and_misreport("c", "over", m), _lie_check(P.check_lemma1)),
        Claim("theorem2", "Theorem 2", "Overstating c_i never raises i's one-round utility.",
              lambda m: market_and_misreport("c", "over", m), _lie_check(P.check_truthfulness)),
        Claim("theorem3", "Theorem 3", "As N_i grows without bound, nobody imports i.",
              lambda m: market_and_client(m), _client_check),
        Claim("eq9_remove", "eq. (9), first half",
              "a_ij = 1 => removing j strictly raises phi_i.",
              _markets, _graph_check(P.check_local_optimality_remove)),
        Claim("eq9_add", "eq. (9), second half", "a_ij = 0 => adding j does not lower phi_i.",
              _markets, _graph_check(P.check_local_optimality_add)),
        Claim("budget_balance", "Definition 4", "Payments sum to zero (to 1e-9).",
              _markets, _paid_graph_check(P.check_budget_balance)),
        Claim("misreport_N_under", "Table 2 (empirical only)",
              "Under-reporting N_i never raises i's utility.",
              lambda m: market_and_misreport("N", "under", m),
              _lie_check(P.check_misreport, "misreport_N_under")),
        Claim("misreport_N_over", "Table 2 (empirical only)",
              "Over-reporting N_i never raises i's utility.",
              lambda m: market_and_misreport("N", "over", m),
              _lie_check(P.check_misreport, "misreport_N_over")),
        Claim("misreport_K", "not in the paper",
              "Misreporting K_i (either way) never raises i's utility.",
              lambda m: market_and_misreport("K", "any", m),
              _lie_check(P.check_misreport, "misreport_K")),
    ]
}

#: issue 24's defences checked by the audit, with their band (docs/defence.md's markets)
DEFENCE_BANDS: dict[str, float] = {"estimate": 0.0, "checked": 0.5}
#: the noisy claims' largest |ln(estimate / N)|: beyond ``checked``'s band, so that it acts
NOISY_SPREAD = 1.0


def _defended_estimate_check(fn: Callable, defence: str, claim: str) -> Callable:
    def check(mech: P.Mechanism, drawn: tuple) -> P.Violation | None:
        market, estimate = drawn
        return fn(market, mech, defence, estimate, DEFENCE_BANDS[defence], claim=claim)

    return check


def _defended_lie_check(defence: str, claim: str) -> Callable:
    def check(mech: P.Mechanism, drawn: tuple) -> P.Violation | None:
        market, lie = drawn
        return P.check_defended_misreport(market, mech, lie, defence, DEFENCE_BANDS[defence],
                                          claim=claim)

    return check


def _defence_claims(defence: str) -> list[Claim]:
    src = f"defence {defence!r} (issue 24, ours)"
    d = defence
    return [
        Claim(f"{d}_ir_noisy", src,
              "With the size estimate off by up to a factor e, every client's "
              "true-profile U_i >= 0.",
              lambda m: market_and_estimate(m, spread=NOISY_SPREAD),
              _defended_estimate_check(P.check_defended_ir, d, f"{d}_ir_noisy")),
        Claim(f"{d}_budget_balance", src,
              "Payments sum to zero (to 1e-9), the estimate off by up to a factor e.",
              lambda m: market_and_estimate(m, spread=NOISY_SPREAD),
              _defended_estimate_check(P.check_defended_budget_balance, d,
                                       f"{d}_budget_balance")),
        Claim(f"{d}_N_over", src,
              "With an exact size estimate, over-reporting N_i never raises i's utility.",
              lambda m: market_and_misreport("N", "over", m),
              _defended_lie_check(d, f"{d}_N_over")),
        Claim(f"{d}_N_under", src,
              "With an exact size estimate, under-reporting N_i never raises i's utility.",
              lambda m: market_and_misreport("N", "under", m),
              _defended_lie_check(d, f"{d}_N_under")),
        Claim(f"{d}_c_over", src,
              "With an exact size estimate, overstating c_i never raises i's utility "
              "(Theorem 2 under the defence).",
              lambda m: market_and_misreport("c", "over", m),
              _defended_lie_check(d, f"{d}_c_over")),
    ]


CLAIMS.update({c.key: dataclasses.replace(c, family=in_default_family)
               for d in DEFENCE_BANDS for c in _defence_claims(d)})

_H, _R = "holds", "refuted"
#: what each solver is expected to satisfy (verified by the audit and the test suite)
SOLVER_CLAIMS: dict[str, dict[str, str]] = {
    "paper": {"theorem1": _H, "lemma1": _H, "theorem2": _H, "theorem3": _R, "eq9_remove": _H,
              "eq9_add": _R, "budget_balance": _H, "misreport_N_under": _R,
              "misreport_N_over": _R, "misreport_K": _R},
    "skip": {"theorem1": _H, "lemma1": _H, "theorem2": _H, "theorem3": _R, "eq9_remove": _H,
             "eq9_add": _H, "budget_balance": _H, "misreport_N_under": _R,
             "misreport_N_over": _R, "misreport_K": _R},
    "exact": {"theorem1": _H, "lemma1": _H, "theorem2": _H, "theorem3": _R, "eq9_remove": _H,
              "eq9_add": _H, "budget_balance": _H, "misreport_N_under": _R,
              "misreport_N_over": _R, "misreport_K": _R},
}


#: what each solver is expected to satisfy under issue 24's defences (docs/defence.md)
DEFENCE_EXPECTED: dict[str, str] = {
    "estimate_ir_noisy": _R, "estimate_budget_balance": _H, "estimate_N_over": _H,
    "estimate_N_under": _H, "estimate_c_over": _H,
    "checked_ir_noisy": _R, "checked_budget_balance": _H, "checked_N_over": _R,
    "checked_N_under": _R, "checked_c_over": _H,
}
for _solver in SOLVER_CLAIMS.values():
    _solver.update(DEFENCE_EXPECTED)


#: the built-in claims and solvers (run in worker processes; user ones run in-process)
BUILTIN_CLAIMS: tuple[str, ...] = tuple(CLAIMS)
#: mechanisms registered by name with :func:`register_mechanism` (besides SOLVERS)
MECHANISMS: dict[str, P.Mechanism] = {}


def register_claim(claim: Claim, expected: dict[str, str] | None = None) -> Claim:
    """Add ``claim`` to :data:`CLAIMS` so that ``run_audit`` checks it and the report shows it.

    Parameters
    ----------
    claim : Claim
        Its ``family`` decides which stored counterexamples are replayed (none if ``None``).
    expected : dict, optional
        ``{solver: "holds" | "refuted"}``; the report flags a run that disagrees.

    Raises
    ------
    ValueError
        When the key is a built-in claim's (choose another key).
    """
    if not isinstance(claim, Claim):
        raise ValueError(f"register_claim: expected a Claim, got {type(claim).__name__}")
    if claim.key in BUILTIN_CLAIMS:
        raise ValueError(f"register_claim: key {claim.key!r} is a built-in claim; choose another")
    CLAIMS[claim.key] = claim
    for solver, verdict in (expected or {}).items():
        SOLVER_CLAIMS.setdefault(solver, {})[claim.key] = verdict
    return claim


def register_mechanism(mech: P.Mechanism, expected: dict[str, str] | None = None) -> P.Mechanism:
    """Add ``mech`` (a graph rule and a payment rule) to the audit under ``mech.name``.

    ``expected`` maps claim keys to ``"holds"``/``"refuted"``; the report flags
    a run that disagrees.
    """
    if not isinstance(mech, P.Mechanism):
        raise ValueError(f"register_mechanism: expected a Mechanism, got {type(mech).__name__}")
    if mech.name in SOLVERS:
        raise ValueError(f"register_mechanism: name {mech.name!r} is a built-in solver")
    MECHANISMS[mech.name] = mech
    SOLVER_CLAIMS[mech.name] = dict(expected or {})
    return mech


@dataclass
class ClaimResult:
    """Outcome of :func:`run_claim`.

    Attributes
    ----------
    claim, solver : str
    verdict : {"holds", "refuted", "skipped"}
    examples : int
        Examples generated before the first failure (all of them if none failed).
    seconds : float
    violation : Violation or None
        The shrunk counterexample.
    reason : str
        Why it was skipped, if it was.
    """

    claim: str
    solver: str
    verdict: str
    examples: int
    seconds: float
    violation: P.Violation | None = None
    reason: str = ""
    shrink_calls: int = 0
    extra: dict = field(default_factory=dict)


class _Falsified(AssertionError):
    pass


def run_claim(
    claim: Claim | str,
    mech: P.Mechanism | str,
    *,
    max_examples: int | None = None,
    shrink: bool = True,
    max_m: int = MAX_M,
    base_settings: settings | None = None,
    regressions: bool = True,
) -> ClaimResult:
    """Run ``claim`` against ``mech`` with Hypothesis; shrink a failure to a minimal market.

    Parameters
    ----------
    claim : Claim or str
        A :class:`Claim` or a key of :data:`CLAIMS`.
    mech : Mechanism or str
        A mechanism or a solver name (see :func:`~proofs_checks.properties.mechanism_for`).
    max_examples : int, optional
        Example budget; default: that of the loaded Hypothesis profile.
    shrink : bool
        Shrink a counterexample (the audit) or stop at the first one (quick tests).
    max_m : int
        Largest market drawn.
    base_settings : hypothesis.settings, optional
        Settings to start from (default: the loaded profile).
    regressions : bool
        When the search finds no counterexample, replay the committed ones of
        :data:`~proofs_checks.counterexamples.REGRESSIONS` for this claim; a hit
        makes the verdict ``"refuted"`` with ``extra["found_by"]`` naming it.

    Returns
    -------
    ClaimResult
        ``verdict`` is ``"refuted"`` with the last (i.e. shrunk) failing example
        (``examples`` counts the search up to its first failure), else ``"holds"``.
    """
    claim = CLAIMS[claim] if isinstance(claim, str) else claim
    if isinstance(mech, str):
        mech = MECHANISMS[mech] if mech in MECHANISMS else P.mechanism_for(mech)
    base = base_settings or settings()
    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    cfg = settings(
        base,
        max_examples=max_examples or base.max_examples,
        phases=phases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        print_blob=False,
    )
    state: dict = {"calls": 0, "first_fail": 0, "last": None}

    @cfg
    @given(claim.strategy(max_m))
    def prop(drawn: object) -> None:
        state["calls"] += 1
        violation = claim.check(mech, drawn)
        if violation is not None:
            if not state["first_fail"]:
                state["first_fail"] = state["calls"]
            state["last"] = violation
            raise _Falsified(str(violation))

    start = time.perf_counter()
    try:
        prop()
    except _Falsified:
        return ClaimResult(claim.key, mech.name, "refuted", state["first_fail"],
                           time.perf_counter() - start, state["last"],
                           shrink_calls=state["calls"] - state["first_fail"])
    extra: dict = {}
    if regressions:
        from .counterexamples import REGRESSIONS  # late: it imports the strategies

        stored = [case() for case in REGRESSIONS.get(claim.key, ())]
        names = [case.__name__ for case in REGRESSIONS.get(claim.key, ())]
        inside = [k for k, drawn in enumerate(stored)
                  if claim.family is not None and claim.family(drawn)]
        for k in inside:
            violation = claim.check(mech, stored[k])
            if violation is not None:
                return ClaimResult(claim.key, mech.name, "refuted", state["calls"],
                                   time.perf_counter() - start, violation,
                                   extra={"found_by": f"committed counterexample {names[k]}"})
        if not inside:
            extra["known_counterexamples"] = (
                "the family contains no known counterexample" if not stored else
                f"the family contains no known counterexample ({len(stored)} stored, "
                "outside it)")
    return ClaimResult(claim.key, mech.name, "holds", state["calls"], time.perf_counter() - start,
                       extra=extra)
