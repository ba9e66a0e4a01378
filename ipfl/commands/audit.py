"""``ipfl audit``: property-based audit of the paper's incentive claims -> CLAIMS.md."""

from __future__ import annotations

from pathlib import Path

import click

from proofs_checks.audit import DEFAULT_EXAMPLES, audit
from proofs_checks.claims import SOLVERS
from proofs_checks.profiles import THOROUGH_EXAMPLES


@click.command(name="audit")
@click.option("--examples", type=int, default=None,
              help=f"Hypothesis examples per claim x solver (default {DEFAULT_EXAMPLES}; "
                   f"{THOROUGH_EXAMPLES} with --thorough).")
@click.option("--thorough", is_flag=True, help="Use the 'thorough' profile (10,000 examples).")
@click.option("--solver", "solvers", multiple=True, type=click.Choice(SOLVERS),
              help="Only these solvers (repeatable; default all).")
@click.option("--jobs", type=int, default=2, show_default=True, help="Worker processes.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("CLAIMS.md"),
              show_default=True, help="Markdown report; the JSON goes next to it.")
def command(examples: int | None, thorough: bool, solvers: tuple[str, ...], jobs: int,
            out: Path) -> None:
    """Check every claim for every graph solver; write CLAIMS.md and CLAIMS.json."""
    profile = "thorough" if thorough else "ci"
    n = examples or (THOROUGH_EXAMPLES if thorough else DEFAULT_EXAMPLES)
    results = audit(out, out.with_suffix(".json"), examples=n, profile=profile, jobs=jobs,
                    solvers=solvers or SOLVERS)
    for r in results:
        how = f"; {r.extra['found_by']}" if "found_by" in r.extra else ""
        click.echo(f"{r.claim:>18} x {r.solver:<5}: {r.verdict:<8} ({r.examples} examples, "
                   f"{r.seconds:.1f} s{how})")
    click.echo(f"wrote {out} and {out.with_suffix('.json')}")
