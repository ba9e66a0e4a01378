r"""``ipfl audit``: run every claim against every solver and write CLAIMS.md / CLAIMS.json.

For each claim of :data:`~proofs_checks.claims.CLAIMS` and each solver of
:data:`~proofs_checks.claims.SOLVERS`, :func:`run_audit` runs the property
through Hypothesis (derandomized, so the report is reproducible) and, when it
fails, keeps the shrunk minimal counterexample. :func:`render_markdown` prints
it as a small table of the market with the utilities before and after.
Both files are written atomically (temporary file + ``os.replace``).
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from hypothesis import settings

from atomicio import atomic_write_text

from .claims import (
    BUILTIN_CLAIMS,
    CLAIMS,
    MECHANISMS,
    SOLVER_CLAIMS,
    SOLVERS,
    ClaimResult,
    run_claim,
)
from .profiles import load_profile
from .properties import Violation

__all__ = ["DEFAULT_EXAMPLES", "render_markdown", "run_audit", "to_json"]

#: default example budget per property (finishes in well under 3 minutes on 2 cores)
DEFAULT_EXAMPLES = 200

HEADER = (
    "<!-- GENERATED FILE: do not edit by hand. Regenerate with `ipfl audit` "
    "(or `ipfl audit --thorough`). -->\n"
)


def _one(job: tuple[str, str, int, str]) -> ClaimResult:
    claim, solver, examples, profile = job
    load_profile(profile)
    return run_claim(claim, solver, max_examples=examples, base_settings=settings())


def run_audit(
    examples: int = DEFAULT_EXAMPLES,
    profile: str = "ci",
    solvers: tuple[str, ...] | None = None,
    claims: tuple[str, ...] | None = None,
    jobs: int = 2,
) -> list[ClaimResult]:
    """Run every claim x solver; return the results in report order.

    Claims and mechanisms registered with
    :func:`~proofs_checks.claims.register_claim` and
    :func:`~proofs_checks.claims.register_mechanism` are included (by default)
    and run in this process (worker processes would not know them).

    Parameters
    ----------
    examples : int
        Examples per property.
    profile : str
        Hypothesis profile to start from (``"ci"`` or ``"thorough"``).
    solvers, claims : tuple of str
        Subsets to run (default: all, registered ones included).
    jobs : int
        Worker processes (1 runs in this process).
    """
    solvers = tuple(solvers or (*SOLVERS, *MECHANISMS))
    claims = tuple(claims or CLAIMS)
    for name in solvers:
        if name not in SOLVERS and name not in MECHANISMS:
            raise ValueError(f"run_audit: solver {name!r} is not one of "
                             f"{[*SOLVERS, *MECHANISMS]}")
    for key in claims:
        if key not in CLAIMS:
            raise ValueError(f"run_audit: claim {key!r} is not one of {list(CLAIMS)}")
    todo = [(c, s, examples, profile) for s in solvers for c in claims]
    builtin = [job for job in todo if job[0] in BUILTIN_CLAIMS and job[1] in SOLVERS]
    if jobs <= 1 or len(builtin) < 2:
        done = {}
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            done = dict(zip(builtin, pool.map(_one, builtin), strict=True))
    load_profile(profile)
    return [done[job] if job in done else _one(job) for job in todo]


def _fmt(x: float) -> str:
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.6g}"


def _market_table(v: Violation) -> list[str]:
    mk = v.market
    det = v.details
    rows = ["| client | N | c | K | " + ("U before | U after |" if "before" in det else "")]
    rows.append("|---" * (4 + (2 if "before" in det else 0)) + "|")
    for i in range(mk.m):
        line = f"| {i} | {_fmt(mk.N[i])} | {_fmt(mk.c[i])} | {_fmt(mk.K[i])} |"
        if "before" in det:
            liar = det["misreport"]["i"]
            line += (f" {_fmt(det['before']['U'])} | {_fmt(det['after']['U'])} |" if i == liar
                     else " | |")
        rows.append(line)
    out = rows + ["", f"lambda = {_fmt(mk.lam)}; d = {np.round(mk.d, 6).tolist()}"]
    for key in ("A", "A_hat"):
        if key in det:
            out.append(f"{'A (truthful)' if key == 'A' else 'A (under the report)'} = {det[key]}")
    if "before" in det:
        b, a = det["before"], det["after"]
        out.append(
            f"liar's utility terms (gain - sharing cost - payment): truthful "
            f"{_fmt(b['gain'])} - {_fmt(b['cost'])} - {_fmt(b['p'])} = {_fmt(b['U'])}; "
            f"lying {_fmt(a['gain'])} - {_fmt(a['cost'])} - {_fmt(a['p'])} = {_fmt(a['U'])}"
        )
    return out


def render_markdown(results: list[ClaimResult], *, examples: int, profile: str,
                    seconds: float) -> str:
    """Render the audit as Markdown: a verdict grid, then each minimal counterexample."""
    by = {(r.claim, r.solver): r for r in results}
    solvers = list(dict.fromkeys(r.solver for r in results))
    lines = [HEADER, "# Claims audit: does each incentive claim hold for each graph solver?", ""]
    lines += [
        f"Generated by `ipfl audit` (profile `{profile}`, up to {examples} Hypothesis examples "
        f"per claim x solver, derandomized; {seconds:.0f} s). Markets have 2-12 clients "
        "(see `proofs_checks/strategies.py`); utilities are compared with relative tolerance "
        "1e-9 (see `proofs_checks/properties.py`). A liar's utility is always its true-profile "
        "utility under the graph and bill computed from its report. The exact solver is "
        "`solve_graph(market, 'exact', solver='bruteforce')`.",
        "",
        "| claim | source | " + " | ".join(solvers) + " |",
        "|---|---|" + "---|" * len(solvers),
    ]
    shown = {r.claim for r in results}
    for key, claim in CLAIMS.items():
        if key not in shown:
            continue
        cells = []
        for s in solvers:
            r = by.get((key, s))
            if r is None:
                cells.append("-")
                continue
            known = r.extra.get("known_counterexamples")
            cell = {"holds": f"holds ({r.examples} examples{'; ' + known if known else ''})",
                    "refuted": (f"**refuted** (after {r.examples} examples)"
                                if "found_by" not in r.extra else
                                f"**refuted** (committed counterexample; {r.examples} "
                                "random examples found none)"),
                    "skipped": f"skipped ({r.reason})"}[r.verdict]
            expected = SOLVER_CLAIMS.get(s, {}).get(key)
            if r.verdict != "skipped" and expected and expected != r.verdict:
                cell += f" [expected {expected}!]"
            cells.append(cell)
        lines.append(f"| `{key}`: {claim.statement} | {claim.source} | " + " | ".join(cells) + " |")
    lines += ["", "## Minimal counterexamples", ""]
    for r in results:
        if r.verdict != "refuted" or r.violation is None:
            continue
        lines += [f"### `{r.claim}` x `{r.solver}`", "", str(r.violation.message), ""]
        lines += _market_table(r.violation) + [""]
    return "\n".join(lines)


def _jsonable(x: object) -> object:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    return x


def to_json(results: list[ClaimResult], *, examples: int, profile: str, seconds: float) -> str:
    """Serialise the audit (verdicts, counts, counterexample markets) as JSON."""
    out = []
    for r in results:
        row: dict = {"claim": r.claim, "solver": r.solver, "verdict": r.verdict,
                     "examples": r.examples, "seconds": round(r.seconds, 3),
                     "found_by": r.extra.get("found_by", "search" if r.violation else None),
                     "expected": SOLVER_CLAIMS.get(r.solver, {}).get(r.claim)}
        if "known_counterexamples" in r.extra:
            row["known_counterexamples"] = r.extra["known_counterexamples"]
        if r.reason:
            row["reason"] = r.reason
        if r.violation is not None:
            mk = r.violation.market
            row["counterexample"] = {
                "message": r.violation.message,
                "market": {"N": mk.N.tolist(), "c": mk.c.tolist(), "K": mk.K.tolist(),
                           "d": mk.d.tolist(), "lam": mk.lam},
                "details": r.violation.details,
            }
        out.append(row)
    doc = {"generated_by": "ipfl audit", "profile": profile, "examples": examples,
           "seconds": round(seconds, 1), "results": out}
    return json.dumps(_jsonable(doc), indent=1) + "\n"


def audit(out_md: Path, out_json: Path, *, examples: int, profile: str, jobs: int,
          solvers: tuple[str, ...] | None = None) -> list[ClaimResult]:
    """Run the audit and write both reports; return the results.

    Registered claims and mechanisms appear in both reports with their verdicts.
    """
    start = time.perf_counter()
    results = run_audit(examples, profile, solvers=solvers, jobs=jobs)
    for path in (out_md, out_json):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    seconds = time.perf_counter() - start
    atomic_write_text(out_md, render_markdown(results, examples=examples, profile=profile,
                                         seconds=seconds))
    atomic_write_text(out_json,
                      to_json(results, examples=examples, profile=profile, seconds=seconds))
    return results
