"""``ipfl train``: run any registered algorithm from a TOML config, or resume a run."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click


@click.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file of training keys (see training.Config).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one key, e.g. --set rounds=5 or --set fedprox.mu=0.1 (repeatable). "
                   "With --resume, only non-structural keys (rounds, epochs, batch_size, lr, "
                   "threads, the algorithm's table); the change is recorded in config.json.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/<algorithm>-<timestamp>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this directory from its last completed round.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(config_path: str | None, overrides: tuple[str, ...], run_dir: str | None,
            resume_dir: str | None, quiet: bool) -> None:
    """Train any algorithm (iPFL, local, FedAvg, ...) from a TOML config; resumable.

    Every failure on bad input or a damaged run is one line and exit code 2; a run
    another process is writing is refused, naming that process.

    Ends with the per-client table (last-round and best-validation test accuracy,
    cumulative utility, money), the individual-rationality summary and the plots
    curves.png and graph.png in the run directory.
    """
    from training import load_config, train
    from training.rundir import ChainNote

    from ..cli import InputError
    from ..run_report import client_table, ir_summary, write_plots

    try:
        if resume_dir is not None:
            if config_path or run_dir:
                raise InputError("--resume takes its config from RUN_DIR; drop --config/"
                                 "--run-dir (use --set for a non-structural change)")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ChainNote)
                try:
                    rows = train(None, resume_dir, resume=True, progress=not quiet,
                                 overrides=list(overrides))
                finally:
                    for w in caught:  # a chain note is one line; other warnings as usual
                        if issubclass(w.category, ChainNote):
                            click.echo(f"note: {w.message}", err=True)
                        else:
                            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            out = Path(resume_dir)
        else:
            cfg = load_config(config_path, list(overrides))
            out = Path(run_dir or f"runs/{cfg.algorithm}-{time.strftime('%Y%m%d-%H%M%S')}")
            rows = train(cfg, out, progress=not quiet)
    except (ValueError, OSError) as exc:
        raise InputError(str(exc)) from None
    last = max(r["round"] for r in rows)
    click.echo(f"\nrun dir: {out}, round {last}\n")
    click.echo(client_table(rows))
    line, _ = ir_summary(rows)
    click.echo("\n" + line)
    plots = write_plots({out.name: rows}, out, out)
    click.echo("plots: " + ", ".join(str(p) for p in plots))
