"""``ipfl rescore RUN_DIR``: a run's economics from its records, optionally under other c, K, lam.

Exit codes: 0 rescored; 2 bad input (not a run, a run that fails verification, an
unknown key or bad value, an override an iPFL run cannot take).
"""

from __future__ import annotations

import json
import math

import click

from ..cli import InputError

#: printed under every table: what lam does and does not change
LAM_NOTE = ("eq. (1)'s utilities and eq. (3)'s welfare do not depend on lam; for a baseline, "
            "lam only changes the priced-welfare line (for iPFL it also chose the graph)")


def _num(x: float, spec: str = ".2f") -> str:
    return "n/a" if math.isnan(x) else "inf" if math.isinf(x) else format(x, spec)


def report(res: object) -> str:
    """Return the economic table of a :class:`ipfl.rescore.Rescored` as text."""
    kind = {"market": "iPFL market records", "sharing": "sharing records (no payments)",
            "none": "no round records"}[res.kind]
    given = ", ".join(f"{k} = {v:g}" for k, v in res.overrides.items()) or "none"
    lines = [f"{res.run_dir}: {res.algorithm}, {kind}; {res.rounds} market rounds, "
             f"{res.recorded} recorded; overrides: {given}", "",
             f"{'client':>6} {'role':<8} {'N_i':>7} {'c_i':>8} {'K_i':>10} {'cum U':>9} "
             f"{'rounds U<0':>10} {'imports/round':>13}"]
    for s in res.clients:
        lines.append(f"{s.client:>6} {s.role:<8} {_num(s.N, '.0f'):>7} {_num(s.c, '.3g'):>8} "
                     f"{_num(s.K, '.6g'):>10} {_num(s.cum_U):>9} {s.neg_rounds:>10} "
                     f"{_num(s.mean_imports):>13}")
    priced = ("n/a (the records lack the distances)" if res.priced_welfare is None
              else _num(res.priced_welfare))
    lines += [
        "",
        f"mean cumulative utility (eq. (1)): {_num(res.mean_cum_U)}; clients with cumulative "
        f"U < 0: {res.neg_clients} of {len(res.clients)}",
        f"social welfare (eq. (3), summed over rounds): {_num(res.welfare)}",
        f"optimum (eq. (3) over all graphs, per round): {_num(res.optimal_welfare)}; "
        f"welfare / optimum: {_num(res.welfare_share, '.3f')}",
        f"priced welfare (eq. (4): SW - lam sum a_ij N_j/N_i d_ij) at lam = "
        f"{_num(res.lam, 'g')} ({res.lam_source}): {priced}",
        f"note: {LAM_NOTE}",
    ]
    lines += [f"note: {n}" for n in res.notes]
    return "\n".join(lines)


@click.command("rescore")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="c=0.5 (one sharing cost for every client), K_per_sample=50 (K_i = 50 N_i) "
                   "or lam=0.1 (the priced-welfare line); repeatable. A baseline takes any; "
                   "an iPFL run only its own values.")
@click.option("--json", "as_json", is_flag=True, help="Print the numbers as JSON.")
def command(run_dir: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Score RUN_DIR's utilities and welfare from its round records, without retraining.

    Verifies the run's hash chain, then prints per client the cumulative utility of
    eq. (1), the rounds with U < 0 and the imports per round, and per run the social
    welfare of eq. (3), its share of the optimum over all graphs (round by round) and
    eq. (4)'s welfare priced at lam.
    """
    from ..rescore import parse_overrides, rescore_run

    try:
        res = rescore_run(run_dir, **parse_overrides(overrides))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if as_json:
        click.echo(json.dumps(res.to_dict() | {"lam_note": LAM_NOTE}, indent=2))
    else:
        click.echo(report(res))
