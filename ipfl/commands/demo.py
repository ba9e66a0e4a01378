"""``ipfl demo``: iPFL versus plain local training on the bundled digits, with plots."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ipfl.options import SEED_MAX, Int


@click.command("demo")
@click.option("--seed", type=Int(0, SEED_MAX), default=0, show_default=True, help="Master seed.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training key (see configs/demo.toml), e.g. --set rounds=5.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default runs/demo-<timestamp>).")
def command(seed: int, overrides: tuple[str, ...], run_dir: str | None) -> None:
    """Train iPFL and local models on digits; print a per-client table and write plots."""
    from training import load_config, train

    from ..cli import InputError
    from ..run_report import client_table, ir_summary, write_plots

    try:
        base = load_config(None, [f"seed={seed}", *overrides])
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out = Path(run_dir or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    runs = {}
    t0 = time.perf_counter()
    for algo in ("local", "ipfl"):
        cfg = base if algo == base.algorithm else base.replace(algorithm=algo)
        try:
            runs[algo] = train(cfg, out / algo, progress=True)
        except (ValueError, OSError) as exc:
            raise InputError(str(exc)) from None
    click.echo(f"\n{base.clients} clients, digits, {base.partition} beta={base.beta}, "
               f"{base.rounds} rounds, seed {seed}\n")
    click.echo(client_table(runs["ipfl"], local=runs["local"]))
    line, held = ir_summary(runs["ipfl"])
    if held:
        click.echo("\n" + line)
    else:
        click.secho("\n" + line.upper().replace("U_I", "U_i"), fg="red", bold=True)
    plots = write_plots(runs, out / "ipfl", out)
    click.echo(f"\nplots: {', '.join(str(p) for p in plots)}\nrun dirs: {out / 'local'}, "
               f"{out / 'ipfl'} ({time.perf_counter() - t0:.0f} s)")
