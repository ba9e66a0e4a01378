"""``ipfl demo``: iPFL versus plain local training on the bundled digits, with plots."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ipfl.options import SEED_MAX, Int

from ..vocabulary import deprecated, seed_overrides


@click.command("demo")
@click.option("--seed", type=Int(0, SEED_MAX), default=None,
              help="Master seed; the same as --set seed=S (default 0).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a training key (see configs/demo.toml), e.g. --set rounds=5.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder: the run directories local/ and ipfl/ and the figures "
                   "(default runs/demo-<timestamp>).")
@click.option("--run-dir", "old_run_dir", type=click.Path(file_okay=False), default=None,
              hidden=True, help="Deprecated spelling of --out.")
def command(seed: int | None, overrides: tuple[str, ...], out: str | None,
            old_run_dir: str | None) -> None:
    """Train iPFL and local models on digits; print a per-client table and write plots.

    OUT holds two run directories, OUT/local and OUT/ipfl (each resumable with
    ipfl train --resume), and the figures curves.png and graph.png.
    """
    from training import load_config, train

    from ..cli import InputError
    from ..run_control import announce, stops_cleanly
    from ..run_report import client_table, ir_summary, table_legend, write_plots

    if old_run_dir is not None:
        deprecated("ipfl demo --run-dir DIR", "--out DIR (a folder of two run directories)")
        if out is not None:
            raise InputError("--run-dir: give --out only")
        out = old_run_dir
    try:
        base = load_config(None, seed_overrides(seed, overrides))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    folder = Path(out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    runs = {}
    t0 = time.perf_counter()
    for algo in ("local", "ipfl"):
        cfg = base if algo == base.algorithm else base.replace(algorithm=algo)
        path = folder / algo

        def start(session: object, path: Path = path) -> None:
            click.echo(announce(session.cfg, path, next_round=session.next_round), err=True)
        try:
            with stops_cleanly(path):
                runs[algo] = train(cfg, path, progress=True, on_start=start)
        except (ValueError, OSError) as exc:
            raise InputError(str(exc)) from None
    click.echo(f"\n{base.clients} clients, digits, {base.partition} beta={base.beta}, "
               f"{base.rounds} rounds, seed {base.seed}\n")
    click.echo(client_table(runs["ipfl"], local=runs["local"]))
    click.echo(table_legend(runs["ipfl"], local=True))
    line, held = ir_summary(runs["ipfl"])
    if held:
        click.echo("\n" + line)
    else:
        click.secho("\n" + line.upper().replace("U_I", "U_i"), fg="red", bold=True)
    plots = write_plots(runs, folder / "ipfl", folder)
    click.echo(f"\nfigures: {', '.join(str(p) for p in plots)}\nrun directories: "
               f"{folder / 'local'}, {folder / 'ipfl'} ({time.perf_counter() - t0:.0f} s)")
