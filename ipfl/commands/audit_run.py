"""``ipfl audit-run RUN_DIR``: recompute every recorded round with the mechanism layer."""

from __future__ import annotations

import click


@click.command("audit-run")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--atol", type=float, default=1e-9, show_default=True,
              help="Tolerance for money amounts (the graph must match exactly).")
def command(run_dir: str, atol: float) -> None:
    """Recompute every recorded round of RUN_DIR; exit 1 if any recorded output differs."""
    from training.audit import audit_run

    try:
        report = audit_run(run_dir, atol=atol)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.problems:
        click.echo(f"MISMATCH {line}")
    click.echo(f"{len(report.rounds)} rounds checked, {len(report.problems)} mismatches")
    if not report.ok:
        raise SystemExit(1)
