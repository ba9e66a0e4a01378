"""``ipfl key``: this machine's run-chain key (``training.keys``): show, export, import.

``ipfl key id`` prints the key's id (creating the key on first use); ``ipfl key export
FILE`` writes the key to a new file (mode 600) to carry to the machine that audits or
resumes a run; ``ipfl key import FILE`` keeps such a key there (``trusted/``), so
``ipfl audit-run`` and ``ipfl train --resume`` authenticate the runs it signed.
"""

from __future__ import annotations

import click

from ..cli import InputError


@click.group("key")
def command() -> None:
    """Show, export or import this machine's run-chain key."""


@command.command("id")
def key_id() -> None:
    """Print this machine's key id and where the key is kept (created on first use)."""
    from training.keys import own_key

    try:
        key = own_key()
    except ValueError as exc:
        raise InputError(f"key: {exc}") from None
    click.echo(f"{key.id} {key.where}")


@command.command("export")
@click.argument("path", type=click.Path(dir_okay=False))
def key_export(path: str) -> None:
    """Write this machine's key to a new file PATH (mode 600); anyone holding it can sign."""
    from training.keys import export_key

    try:
        key = export_key(path)
    except (ValueError, OSError) as exc:
        raise InputError(f"key export: {exc}") from None
    click.echo(f"key {key.id} written to {path}; keep it secret: it can sign runs as this "
               "machine")


@command.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
def key_import(path: str) -> None:
    """Trust the key in PATH (exported elsewhere) for audits and resumes on this machine."""
    from training.keys import import_key

    try:
        key = import_key(path)
    except (ValueError, OSError) as exc:
        raise InputError(f"key import: {exc}") from None
    click.echo(f"key {key.id} imported")
