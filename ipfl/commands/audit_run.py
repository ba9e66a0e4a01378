"""``ipfl audit-run RUN_DIR``: verify a run's hash chain and recompute every recorded round.

Exit codes: 0 verified; 1 a mismatch (an artefact differs from what the run committed,
or a recorded market differs from its recomputation); 2 not a run directory, or one
whose config cannot be read.
"""

from __future__ import annotations

import click

from ..cli import InputError
from ..options import Float


@click.command("audit-run")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--atol", type=Float(0, 1), default=1e-9, show_default=True,
              help="Tolerance for money amounts (the graph must match exactly).")
def command(run_dir: str, atol: float) -> None:
    """Verify RUN_DIR's hash chain and recompute its rounds: exit 0 ok, 1 mismatch, 2 not a run.

    Every artefact (config.json, rounds/*.json, metrics.jsonl, the ledger's rows,
    checkpoint.pt) must be what the run committed, and every recorded market must equal
    its recomputation by the mechanism layer.
    """
    from training.audit import audit_run

    try:
        report = audit_run(run_dir, atol=atol)
    except ValueError as exc:
        raise InputError(f"audit-run: {exc}") from None
    for line in report.problems:
        click.echo(f"MISMATCH {line}")
    click.echo(f"{report.committed + 1} committed rounds verified against the hash chain "
               f"(head {report.head or 'none'}), {len(report.rounds)} round records "
               f"recomputed, {len(report.problems)} mismatches")
    if not report.ok:
        raise SystemExit(1)
