"""``ipfl audit-run RUN_DIR``: verify a run's hash chain and recompute every recorded round.

Exit codes: 0 verified; 1 a mismatch (an artefact differs from what the run committed,
a chain entry's MAC does not verify, a recorded market differs from its recomputation,
or, with ``--key``, a chain that cannot be authenticated with the keys given); 2 not a
run directory, one whose config cannot be read, or an unusable key file.

A chain that is internally consistent but cannot be authenticated here (an unkeyed
chain of an older run; a key this machine does not hold) passes with a ``NOTE`` line,
unless ``--key`` is given: naming a key asks for authenticity.
"""

from __future__ import annotations

import click

from ..cli import InputError
from ..options import Float


@click.command("audit-run")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--atol", type=Float(0, 1), default=1e-9, show_default=True,
              help="Tolerance for money amounts (the graph must match exactly).")
@click.option("--key", "key_files", multiple=True, type=click.Path(dir_okay=False),
              metavar="FILE",
              help="A chain key (from `ipfl key export` on the machine that ran the run); "
                   "the chain must then authenticate (repeatable).")
def command(run_dir: str, atol: float, key_files: tuple[str, ...]) -> None:
    """Verify RUN_DIR's hash chain and recompute its rounds: exit 0 ok, 1 mismatch, 2 not a run.

    Every artefact (config.json, rounds/*.json, metrics.jsonl, the ledger's rows,
    checkpoint.pt) must be what the run committed, every chain entry's MAC must verify
    under the run's key, every recorded market must equal its recomputation by the
    mechanism layer, and the metric rows must agree with the round records and the
    ledger.
    """
    from training.audit import audit_run
    from training.keys import load_key_file

    try:
        keys = tuple(load_key_file(f) for f in key_files)
        report = audit_run(run_dir, atol=atol, keys=keys)
    except ValueError as exc:
        raise InputError(f"audit-run: {exc}") from None
    problems = list(report.problems)
    if keys and not report.authenticated and not problems:
        problems.append("authenticity was asked for (--key) but the chain cannot be "
                        "authenticated: " + ("; ".join(report.notes) or "no chain entry"))
    for line in problems:
        click.echo(f"MISMATCH {line}")
    for line in report.notes:
        click.echo(f"NOTE {line}")
    how = (f"authenticated with key {', '.join(report.keys)}" if report.authenticated
           else "NOT authenticated")
    click.echo(f"{report.committed + 1} committed rounds verified against the hash chain "
               f"(head {report.head or 'none'}; {how}), {len(report.rounds)} round records "
               f"recomputed, {len(problems)} mismatches")
    if problems:
        raise SystemExit(1)
