"""``ipfl flower``: run any registered algorithm on Flower, simulated (Ray) or deployed locally."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli import FullHelpGroup, InputError
from ..options import SEED_MAX, Float, Int
from ..vocabulary import resume_target, run_dir_default, seed_overrides


@click.group("flower", cls=FullHelpGroup)
def command() -> None:
    """Run training on Flower (pip install 'ipfl[flower]'); same run directory as train."""


def _resolve(config_path: str | None, overrides: tuple[str, ...], seed: int | None,
             run_dir: str | None, resume: str | None) -> tuple[object, Path, bool, list[str]]:
    """Return (config or None on resume, run directory, resume?, --set list), all checked."""
    import time

    from training import load_config

    target = resume_target(resume, run_dir, config=config_path)
    sets = seed_overrides(seed, overrides, resume=target is not None)
    if target is not None:  # the run's own config; --set changes non-structural keys
        return None, Path(target), True, sets
    cfg = load_config(config_path, sets)
    out = Path(run_dir) if run_dir else run_dir_default(cfg.algorithm,
                                                         time.strftime("%Y%m%d-%H%M%S"))
    return cfg, out, False, sets


def _announcer(run_dir: Path, where: str):
    from ..run_control import announce

    def start(cfg: object, next_round: int) -> None:
        click.echo(announce(cfg, run_dir, next_round=next_round, where=where), err=True)
    return start


def _report(out: dict, run_dir: Path, what: str) -> None:
    from ..run_report import client_table, ir_summary, table_legend

    if out.get("error"):
        raise InputError(out["error"])
    rows = out.get("rows") or _read_rows(run_dir)
    secs = out.get("seconds") or []
    click.echo(f"\nrun dir: {run_dir}, round {max(r['round'] for r in rows)}\n")
    click.echo(client_table(rows))
    click.echo(table_legend(rows))
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
    click.option("--seed", type=Int(0, SEED_MAX), default=None,
                 help="Master seed; the same as --set seed=S (default 0)."),
    click.option("--run-dir", type=click.Path(file_okay=False), default=None,
                 help="Run directory of a new run, the same layout as ipfl train's "
                      "(default runs/<algorithm>-<timestamp>)."),
    click.option("--resume", is_flag=False, flag_value="", default=None, metavar="RUN_DIR",
                 help="Continue the run in RUN_DIR from its last completed round."),
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
def simulate(config_path: str | None, overrides: tuple[str, ...], seed: int | None,
             run_dir: str | None, resume: str | None, round_timeout: float) -> None:
    """Flower's Ray simulation, one virtual SuperNode per client (pip install 'ipfl[flower-sim]').

    Telemetry, update checks and run-time dependency installation are off; Flower's home
    and Ray's temporary folder live in RUN_DIR/flower; Ray is shut down at the end.
    """
    from ..flower_runs import simulate as run
    from ..run_control import stops_cleanly

    try:
        cfg, path, resuming, sets = _resolve(config_path, overrides, seed, run_dir, resume)
        with stops_cleanly(path, "ipfl flower simulate --resume"):
            out = run(cfg, path, resume=resuming, round_timeout=round_timeout,
                      overrides=tuple(sets) if resuming else (),
                      announce=_announcer(path, "on Flower's Ray simulation"))
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise InputError(str(exc)) from None
    _report(out, path, "simulation")


@command.command("deploy-local")
@_with_options
@click.option("--node-timeout", type=Float(1.0, 7 * 86400.0), default=120.0,
              show_default=True, help="Seconds to wait for the SuperNodes to connect.")
@click.option("--insecure", is_flag=True, default=False,
              help="Plain loopback for a quick local try: no TLS, no SuperNode "
                   "authentication (default: both on).")
def deploy_local(config_path: str | None, overrides: tuple[str, ...], seed: int | None,
                 run_dir: str | None, resume: str | None, round_timeout: float,
                 node_timeout: float, insecure: bool) -> None:
    """Start a SuperLink and one SuperNode per client on 127.0.0.1, run, stop all.

    Secure by default, with Flower's own mechanisms: TLS with a CA and certificate made
    for the run (RUN_DIR/flower/tls), and SuperNode authentication (each node's key
    pair in RUN_DIR/flower/keys, its public key registered before it starts; a node
    with an unregistered key is refused). Each SuperNode is one long-lived process
    running its ClientApp warm (imports and data loaded once). Every process started is
    stopped by its PID at the end, whatever happened; their logs are in
    RUN_DIR/flower/logs.
    """
    from ..flower_runs import deploy_local as run
    from ..run_control import stops_cleanly

    try:
        cfg, path, resuming, sets = _resolve(config_path, overrides, seed, run_dir, resume)
        with stops_cleanly(path, "ipfl flower deploy-local --resume"):
            out = run(cfg, path, resume=resuming, round_timeout=round_timeout,
                      node_timeout=node_timeout, echo=click.echo, insecure=insecure,
                      overrides=tuple(sets) if resuming else (),
                      announce=_announcer(path, "on Flower SuperNodes on 127.0.0.1" + (
                          " (insecure)" if insecure else " (TLS, authenticated nodes)")))
    except (ValueError, FileNotFoundError, ImportError) as exc:
        raise InputError(str(exc)) from None
    _report(out, path, "loopback deployment")
