"""``ipfl audit``: property-based audit of the paper's incentive claims -> OUT/CLAIMS.md."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from ipfl.cli import InputError
from ipfl.options import Int
from proofs_checks.audit import DEFAULT_EXAMPLES, audit
from proofs_checks.profiles import THOROUGH_EXAMPLES


@click.command(name="audit")
@click.option("--examples", type=Int(1, 10**7), default=None,
              help=f"Hypothesis examples per claim x solver, >= 1 (default {DEFAULT_EXAMPLES}; "
                   f"{THOROUGH_EXAMPLES} with --thorough).")
@click.option("--thorough", is_flag=True, help="Use the 'thorough' profile (10,000 examples).")
@click.option("--solver", "solvers", multiple=True,
              help="Only these solvers (repeatable; default all, registered ones included).")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Import this Python module first; it may call register_claim / "
                   "register_mechanism (repeatable).")
@click.option("--jobs", type=Int(1, 256), default=2, show_default=True,
              help="Worker processes (>= 1).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("audit-out"),
              show_default=True,
              help="Output folder for CLAIMS.md and CLAIMS.json (the repository's committed "
                   "copies are regenerated with --out .).")
def command(examples: int | None, thorough: bool, solvers: tuple[str, ...],
            plugins: tuple[str, ...], jobs: int, out: Path) -> None:
    """Check every claim for every graph solver; write OUT/CLAIMS.md and OUT/CLAIMS.json."""
    from proofs_checks.claims import MECHANISMS, SOLVERS

    if examples is not None and examples < 1:
        raise InputError(f"--examples: {examples} must be >= 1")
    if jobs < 1:
        raise InputError(f"--jobs: {jobs} must be >= 1")
    if out.suffix.lower() in (".md", ".json"):
        raise InputError(f"--out: {str(out)!r} looks like a file; give a folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out: {str(out)!r} exists and is not a folder")
    for name in plugins:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's module, one line
            raise InputError(f"--plugin: cannot import {name!r} ({type(exc).__name__}: "
                             f"{exc})") from None
    known = [*SOLVERS, *MECHANISMS]
    for s in solvers:
        if s not in known:
            raise InputError(f"--solver: {s!r} is not one of {known}")
    profile = "thorough" if thorough else "ci"
    n = examples or (THOROUGH_EXAMPLES if thorough else DEFAULT_EXAMPLES)
    md, js = out / "CLAIMS.md", out / "CLAIMS.json"
    results = audit(md, js, examples=n, profile=profile, jobs=jobs, solvers=solvers or None)
    for r in results:
        how = f"; {r.extra['found_by']}" if "found_by" in r.extra else ""
        click.echo(f"{r.claim:>18} x {r.solver:<5}: {r.verdict:<8} ({r.examples} examples, "
                   f"{r.seconds:.1f} s{how})")
    click.echo(f"wrote {md} and {js}")
