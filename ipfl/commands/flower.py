"""``ipfl flower``: run any registered algorithm on Flower, simulated (Ray) or deployed locally."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli import InputError
from ..options import Float


@click.group("flower")
def command() -> None:
    """Run training on Flower (pip install 'ipfl[flower]'); same run directory as train."""


def _config(config_path: str | None, overrides: tuple[str, ...], resume: bool):
    from training import load_config

    if resume:  # the run's own config; --set changes non-structural keys (run_dir's history)
        if config_path:
            raise click.UsageError("--resume takes its config from RUN_DIR; drop --config "
                                   "(use --set for a non-structural change)")
        return None
    return load_config(config_path, list(overrides))


def _report(out: dict, run_dir: Path, what: str) -> None:
    from ..run_report import client_table, ir_summary

    if out.get("error"):
        raise InputError(out["error"])
    rows = out.get("rows") or _read_rows(run_dir)
    secs = out.get("seconds") or []
    click.echo(f"\nrun dir: {run_dir}, round {max(r['round'] for r in rows)}\n")
    click.echo(client_table(rows))
    click.echo("\n" + ir_summary(rows)[0])
    if secs:
        tail = secs[1:] if len(secs) > 1 else secs
        click.echo(f"{what}: {len(secs)} rounds, {sum(tail) / len(tail):.2f} s per market "
                   f"round (rounds 1..), {out['total']:.1f} s in all")
    for d in out.get("drops") or []:
        click.echo(f"dropped: client {d['client']} in round {d['round']} ({d['why']})")


def _read_rows(run_dir: Path) -> list[dict]:
    from training import RunDir

    return RunDir(run_dir).read_metrics()


_options = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                 help="TOML file of training keys (see training.Config)."),
    click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                 help="Override one key, e.g. --set rounds=5 (repeatable). With --resume, "
                      "only non-structural keys (as ipfl train --resume), recorded in the "
                      "run's config history; e.g. --set rounds=30 extends a finished run."),
    click.option("--run-dir", type=click.Path(file_okay=False), required=True,
                 help="Run directory (the same layout as ipfl train's)."),
    click.option("--resume", is_flag=True, help="Continue the run in --run-dir."),
    click.option("--round-timeout", type=Float(1.0, 7 * 86400.0), default=600.0,
                 show_default=True, help="Seconds to wait for a round's replies; a client "
                 "that does not answer is dropped and recorded."),
]


def _with_options(f):
    for opt in reversed(_options):
        f = opt(f)
    return f


@command.command("simulate")
@_with_options
def simulate(config_path: str | None, overrides: tuple[str, ...], run_dir: str, resume: bool,
             round_timeout: float) -> None:
    """Flower's Ray simulation, one virtual SuperNode per client (pip install 'ipfl[flower-sim]').

    Telemetry, update checks and run-time dependency installation are off; Flower's home
    and Ray's temporary folder live in RUN_DIR/flower; Ray is shut down at the end.
    """
    from ..flower_runs import simulate as run

    try:
        cfg = _config(config_path, overrides, resume)
        out = run(cfg, Path(run_dir), resume=resume, round_timeout=round_timeout,
                  overrides=overrides if resume else ())
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise InputError(str(exc)) from None
    _report(out, Path(run_dir), "simulation")


@command.command("deploy-local")
@_with_options
@click.option("--node-timeout", type=Float(1.0, 7 * 86400.0), default=120.0,
              show_default=True, help="Seconds to wait for the SuperNodes to connect.")
def deploy_local(config_path: str | None, overrides: tuple[str, ...], run_dir: str,
                 resume: bool, round_timeout: float, node_timeout: float) -> None:
    """Start a SuperLink and one SuperNode per client on 127.0.0.1 (insecure), run, stop all.

    Every process started is stopped by its PID at the end, whatever happened; their
    logs are in RUN_DIR/flower/logs.
    """
    from ..flower_runs import deploy_local as run

    try:
        cfg = _config(config_path, overrides, resume)
        out = run(cfg, Path(run_dir), resume=resume, round_timeout=round_timeout,
                  node_timeout=node_timeout, echo=click.echo,
                  overrides=overrides if resume else ())
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise InputError(str(exc)) from None
    _report(out, Path(run_dir), "loopback deployment")
