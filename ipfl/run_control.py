"""What a run says at its start, and how it stops on Ctrl-C (SIGINT).

At its start (every check passed, the data loaded) a run prints one line: what will run
and where (:func:`announce`). Ctrl-C stops it: the round in progress is dropped (a
commit under way is finished first, :func:`training.loop._sigint_deferred`), every
committed round stays, and :func:`stops_cleanly` prints
``stopped after round t; resume with: ipfl train --resume RUN_DIR`` and exits with
code 130 (128 + SIGINT), without a traceback. Resuming gives the same metrics as an
uninterrupted run: every draw is seeded by ``(seed, round, client, purpose)``.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .cli import INTERRUPTED

__all__ = ["announce", "last_committed", "stops_cleanly"]


def announce(cfg: Any, run_dir: str | Path, *, next_round: int = 0,
             where: str = "in this process") -> str:
    """Return the line a run prints at its start: algorithm, clients, rounds, device, folder.

    Examples
    --------
    >>> from training import Config
    >>> print(announce(Config(clients=4, rounds=3), "runs/x"))  # doctest: +NORMALIZE_WHITESPACE
    training ipfl on digits: 4 clients, rounds 0..3, seed 0, device cpu, in this process;
    run directory runs/x (Ctrl-C stops it, keeping every completed round)
    """
    verb = "resuming" if next_round > 0 else "training"
    start = f"rounds {next_round}..{cfg.rounds}" if next_round <= cfg.rounds else \
        f"no rounds left (rounds = {cfg.rounds})"
    roles = f", roles {cfg.roles}" if getattr(cfg, "roles", "") else ""
    return (f"{verb} {cfg.algorithm} on {cfg.dataset}: {cfg.clients} clients{roles}, {start}, "
            f"seed {cfg.seed}, device {cfg.device}, {where}; run directory {run_dir} "
            "(Ctrl-C stops it, keeping every completed round)")


def last_committed(run_dir: str | Path) -> int | None:
    """Return the last round whose metrics ``run_dir`` holds, or None (none, or no run)."""
    from training import RunDir

    try:
        rows = RunDir(run_dir).read_metrics()
    except (OSError, ValueError):
        return None
    return max((int(r["round"]) for r in rows), default=None)


@contextlib.contextmanager
def stops_cleanly(run_dir: str | Path, resume_with: str = "ipfl train --resume") -> Iterator[None]:
    """Turn Ctrl-C inside the block into one line on stderr and exit code 130.

    The line names the last committed round and the command that resumes the run
    (``resume_with`` followed by the run directory); a new run stopped before it wrote
    its config leaves nothing to resume, and the line says so.
    """
    try:
        yield
    except KeyboardInterrupt:
        path = Path(run_dir)
        t = last_committed(path)
        again = f"resume with: {resume_with} {shlex.quote(str(path))}"
        if t is not None:
            msg = f"stopped after round {t}; {again}"
        elif (path / "config.json").is_file():
            msg = f"stopped before round 0 was saved; {again}"
        else:
            msg = "stopped before the run started; nothing was saved"
        click.echo(f"\n{msg}", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
