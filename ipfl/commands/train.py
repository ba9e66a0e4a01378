"""``ipfl train``: run any registered algorithm from a TOML config, or resume a run."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click

from ..options import SEED_MAX, Int
from ..vocabulary import resume_target, run_dir_default, seed_overrides


@click.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file of training keys (see training.Config).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one key, e.g. --set rounds=5 or --set fedprox.mu=0.1 (repeatable). "
                   "Names are case-insensitive (--set algorithm=FedAvg). With --resume, only "
                   "non-structural keys (rounds, epochs, batch_size, lr, threads, the "
                   "algorithm's table); the change is recorded in config.json.")
@click.option("--seed", type=Int(0, SEED_MAX), default=None,
              help="Master seed; the same as --set seed=S (default 0).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory of a new run (default runs/<algorithm>-<timestamp>).")
@click.option("--resume", "resume_dir", is_flag=False, flag_value="", default=None,
              metavar="RUN_DIR",
              help="Continue the run in RUN_DIR from its last completed round.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(config_path: str | None, overrides: tuple[str, ...], seed: int | None,
            run_dir: str | None, resume_dir: str | None, quiet: bool) -> None:
    """Train any algorithm (iPFL, local, FedAvg, ...) from a TOML config; resumable.

    Says at its start what will run and where. Ctrl-C stops it, keeping every completed
    round, and prints the command that resumes it (exit code 130). Every failure on bad
    input or a damaged run is one line and exit code 2; a run another process is
    writing is refused, naming that process.

    Ends with the per-client table (last-round and best-validation test accuracy,
    cumulative utility, money) and a legend line, the individual-rationality summary
    and the figures curves.png and graph.png in the run directory.
    """
    from training import load_config, train
    from training.rundir import ChainNote

    from ..cli import InputError
    from ..run_control import announce, stops_cleanly
    from ..run_report import client_table, ir_summary, table_legend, write_plots

    def start(session: object) -> None:
        click.echo(announce(session.cfg, out, next_round=session.next_round), err=True)

    resume_dir = resume_target(resume_dir, run_dir, config=config_path)
    sets = seed_overrides(seed, overrides, resume=resume_dir is not None)
    try:
        if resume_dir is not None:
            out = Path(resume_dir)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ChainNote)
                try:
                    with stops_cleanly(out):
                        rows = train(None, out, resume=True, progress=not quiet,
                                     overrides=sets, on_start=start)
                finally:
                    for w in caught:  # a chain note is one line; other warnings as usual
                        if issubclass(w.category, ChainNote):
                            click.echo(f"note: {w.message}", err=True)
                        else:
                            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        else:
            cfg = load_config(config_path, sets)
            out = Path(run_dir) if run_dir else run_dir_default(
                cfg.algorithm, time.strftime("%Y%m%d-%H%M%S"))
            with stops_cleanly(out):
                rows = train(cfg, out, progress=not quiet, on_start=start)
    except (ValueError, OSError) as exc:
        raise InputError(str(exc)) from None
    last = max(r["round"] for r in rows)
    click.echo(f"\nrun dir: {out}, round {last}\n")
    click.echo(client_table(rows))
    click.echo(table_legend(rows))
    line, _ = ir_summary(rows)
    click.echo("\n" + line)
    plots = write_plots({out.name: rows}, out, out)
    click.echo("figures: " + ", ".join(str(p) for p in plots))
