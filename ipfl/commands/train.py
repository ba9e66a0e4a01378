"""``ipfl train``: run iPFL (Algorithm 1) from a TOML config, or resume a run."""

from __future__ import annotations

import time
from pathlib import Path

import click


@click.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML file of training keys (see training.Config).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one config key, e.g. --set rounds=5 (repeatable).")
@click.option("--run-dir", type=click.Path(file_okay=False), default=None,
              help="Run directory (default runs/<algorithm>-<timestamp>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this directory from its last completed round.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def command(config_path: str | None, overrides: tuple[str, ...], run_dir: str | None,
            resume_dir: str | None, quiet: bool) -> None:
    """Run iPFL (Algorithm 1) from a TOML config; resumable with --resume RUN_DIR."""
    from training import load_config, train

    try:
        if resume_dir is not None:
            if config_path or overrides:
                raise click.UsageError(
                    "--resume takes its config from RUN_DIR; drop --config/--set")
            rows = train(None, resume_dir, resume=True, progress=not quiet)
            out = Path(resume_dir)
        else:
            cfg = load_config(config_path, list(overrides))
            out = Path(run_dir or f"runs/{cfg.algorithm}-{time.strftime('%Y%m%d-%H%M%S')}")
            rows = train(cfg, out, progress=not quiet)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    last = max(r["round"] for r in rows)
    final = [r for r in rows if r["round"] == last]
    mean_acc = sum(r["acc"] for r in final) / len(final)
    mean_u = sum(r["cum_U"] for r in final) / len(final)
    click.echo(f"run dir: {out}\nround {last}: mean accuracy {mean_acc:.4f}, "
               f"mean cumulative utility {mean_u:.3f}")
