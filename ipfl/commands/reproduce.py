"""``ipfl reproduce``: write REPRODUCTION.md from the experiments' CSVs (or check it)."""

from __future__ import annotations

from pathlib import Path

import click

from ..vocabulary import deprecated


@click.command("reproduce")
@click.option("--from", "root", type=click.Path(file_okay=False), default="experiments-out/repro",
              show_default=True, help="Folder holding one sub-folder per experiment.")
@click.option("--file", "out", type=click.Path(dir_okay=False), default="REPRODUCTION.md",
              show_default=True, help="The Markdown file to write (or, with --check, to check).")
@click.option("--out", "old_out", type=click.Path(dir_okay=False), default=None, hidden=True,
              help="Deprecated spelling of --file (--out is a folder in every command).")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if --file differs from what the CSVs give.")
def command(root: str, out: str, old_out: str | None, check: bool) -> None:
    """Build REPRODUCTION.md: one row per empirical claim of the paper, with a verdict."""
    from ..experiments.reproduce import build, verdicts

    if old_out is not None:
        deprecated("ipfl reproduce --out FILE", "--file FILE (--out is always a folder)")
        out = old_out

    text = build(root)
    path = Path(out)
    if check:
        if not path.is_file() or path.read_text() != text:
            raise click.ClickException(f"{out} is out of date with the CSVs in {root}; "
                                       "run ipfl reproduce")
        click.echo(f"{out} matches the CSVs in {root}")
        return
    from atomicio import atomic_write_text

    atomic_write_text(path, text)
    for row in verdicts(text):
        click.echo(f"{row['n']}. {row['paper']}: {row['verdict']}")
    click.echo(f"wrote {out}")
