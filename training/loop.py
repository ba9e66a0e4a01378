r"""The in-process transport: Algorithm 1's rounds, server and clients in this process.

This module only moves messages: it never decides anything an algorithm decides, and
it prepares nothing a :class:`~training.session.Session` prepares. Round 0: every
client trains from the common initial model :math:`\theta^0` without a proximal term
(Algorithm 1's round-0 centre is :math:`\theta^0` itself) and reports its profile.
Rounds ``t = 1 .. rounds``: the session plans the round (the algorithm's market, its
settlement, the server step), the clients the market kept run their client step here
(:func:`training.client.run_client`, or all at once: :mod:`training.batched`), the
session absorbs their results into a typed round record and commits it.

Records: per round and client one metric row (test accuracy of this round's model,
validation accuracy, test accuracy at the round of best validation accuracy, the
utility of eq. (1), money, graph degrees); the round's exchange (``rounds/NNNN.json``)
and, for a market algorithm, its ledger entries (:mod:`training.session`).

Determinism and resume: data split, initial model and every random draw come from
generators seeded by ``(seed, round, client, purpose)``; the checkpoint is written last
in a round and is the commit point, so a run killed at any moment resumes to identical
metrics.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .algorithms.base import ClientOutput
from .batched import check_batching, run_clients_batched
from .client import run_client
from .config import Config
from .federation import prepare
from .rundir import RunDir, RunDirError
from .session import Plan, Session

__all__ = ["client_results", "run_round", "train"]


def train(cfg: Config | None, run_dir: str | Path, *, resume: bool = False,
          progress: bool = True, model: nn.Module | None = None,
          data: Any = None, overrides: list[str] | None = None,
          on_start: Callable[[Session], None] | None = None) -> list[dict[str, Any]]:
    """Run (or resume) a training run in ``run_dir`` and return all metric rows.

    Parameters
    ----------
    cfg : Config or None
        The configuration; on ``resume`` it is read from ``run_dir/config.json`` and
        ``cfg`` must be None or equal to it.
    run_dir : path
        The run directory (created if needed; a new run refuses a non-empty one).
    resume : bool
        Continue from the last committed round, after checking every artefact against
        the run's hash chain (:meth:`RunDir.verify`).
    progress : bool
        Show a tqdm bar with mean accuracy and mean utility.
    model : torch.nn.Module, optional
        Any module producing ``n_classes`` logits (see :func:`prepare`); on resume, pass
        the same architecture again (its parameter count is checked).
    data : optional
        Your own data instead of ``cfg.dataset`` (see :func:`prepare`).
    overrides : list of str, optional
        On resume only, ``key=value`` changes of non-structural keys
        (:data:`training.config.RESUMABLE` and the algorithm's table), recorded in the
        history inside ``config.json``; ``rounds=30`` extends a finished run.
    on_start : callable, optional
        Called with the opened :class:`~training.session.Session` once every check has
        passed and the data are loaded, before the first round (``ipfl train`` prints
        what will run, and where, from it).

    Raises
    ------
    ValueError
        Before any work, for a bad setting or run directory
        (:class:`~training.rundir.RunDirError`, :class:`~training.rundir.RunLocked` when
        another process writes the run); after a round whose numbers are not finite
        (:class:`NonFiniteRound`: nothing of that round is committed).

    Notes
    -----
    Ctrl-C (``KeyboardInterrupt``) stops the run at once: the round in progress is
    dropped (a commit under way is finished first), every committed round stays, and
    the run resumes to the same metrics as an uninterrupted one.
    """
    rd = RunDir(run_dir)
    if resume:
        if not rd.path.is_dir():
            raise RunDirError(f"resume: run_dir {str(rd.path)!r} does not exist")
        rd.read_config_bytes()  # not a run: say so before taking the lock
    elif cfg is None:
        raise ValueError("train: cfg is required for a new run")
    elif overrides:
        raise ValueError("train: overrides apply to a resumed run; pass a changed cfg instead")
    else:
        rd.check_new()
    existed = rd.path.exists()
    with rd.lock():  # RunLocked: refused, and nothing of the holder's is touched
        try:
            return _train_locked(cfg, rd, resume, progress, model, data,
                                 list(overrides or []), on_start)
        except BaseException:
            if not resume and not rd.config.exists():  # a new run that wrote nothing
                rd.discard_new(existed)
            raise


def _train_locked(cfg: Config | None, rd: RunDir, resume: bool, progress: bool,
                  model: nn.Module | None, data: Any,
                  overrides: list[str],
                  on_start: Callable[[Session], None] | None) -> list[dict[str, Any]]:
    session = Session.open(rd, cfg, resume=resume, overrides=overrides)
    session.start(prepare(session.cfg, model, data))
    if on_start is not None:
        on_start(session)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=session.cfg.rounds + 1, initial=session.next_round,
                   desc=session.cfg.algorithm, unit="round")
    try:
        for t in session.rounds():
            rows = run_round(session, t)
            if bar is not None:
                bar.set_postfix(acc=f"{np.mean([r['acc'] for r in rows]):.3f}",
                                U=f"{np.mean([r['U'] for r in rows]):.3f}")
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return session.rows


def run_round(session: Session, t: int) -> list[dict[str, Any]]:
    """Run and commit round ``t`` in process; return its metric rows."""
    plan = session.plan(t)
    record, state = session.absorb(plan, dict(client_results(session, plan)))
    with _sigint_deferred():
        session.commit(record, state)
    return list(record.rows)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold a Ctrl-C (SIGINT) that arrives inside the block until the block has finished.

    The commit writes several files; a Ctrl-C in their middle would leave a round half
    written (resume repairs it, as after a crash, but a stop asked for should be clean).
    The held interrupt is raised as ``KeyboardInterrupt`` right after the block. Only
    the main thread can hold signals, and only Python's default handler is replaced;
    anywhere else the block runs as it is.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    held: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held:
        raise KeyboardInterrupt


def client_results(session: Session, plan: Plan,
                   ) -> list[tuple[int, tuple[ClientOutput, dict[str, float]]]]:
    """Run the client step of every client that trains in ``plan``'s round, in client order.

    Batched (:mod:`training.batched`) when ``client_batching`` allows it for this
    algorithm and model, else one :func:`~training.client.run_client` per client.
    """
    fed, state, algo, cfg = session.fed, session.state, session.algo, session.cfg
    ids = [int(i) for i in np.flatnonzero(plan.trains)]
    items = [(plan.message(i), state.clients[i], fed.data[i], fed.context(i, plan.t))
             for i in ids]
    if check_batching(cfg.client_batching, algo, fed.model, cfg.device) and len(ids) > 1:
        return list(zip(ids, run_clients_batched(algo, items, cfg.device), strict=True))
    return [(i, run_client(algo, *item)) for i, item in zip(ids, items, strict=True)]

