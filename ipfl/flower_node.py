"""A deployed Flower client's long-lived processes: a brisk SuperNode and a warm executor.

Where a deployed round went (flwr 1.42, measured on the 2-core machine, see
docs/flower.md): every message started a fresh ``flwr-clientapp`` process, which spends
about 2.4 s importing flwr, torch and ipfl (alone; ten at once on two cores take far
longer) and then loads the client's data again; on top of that the SuperNode sleeps 3 s
whenever a pull finds no message, its SuperExec polls for tasks every 1 s, the SuperNode
waits for a reply in steps of 0.5 s, and the ServerApp's ``send_and_receive`` pulls
replies every 3 s. This module removes the client-side causes; the server side is
:func:`training.flower.exchange`.

* ``python -m ipfl.flower_node supernode ARGS``: Flower's own ``flower-supernode``
  (same arguments; ``deploy-local`` passes ``--isolation process``) with its two fixed
  waits (3 s when idle, 0.5 s steps for a reply) capped at ``IPFL_FLOWER_POLL`` seconds
  (default 0.1). Pinned to flwr 1.42, where those waits are ``time.sleep`` calls in
  ``flwr.supernode.start_client_internal``; nothing else in the SuperNode changes.
* ``python -m ipfl.flower_node executor --runtime-api-address HOST:PORT
  [--insecure | --root-certificates CA]``: Flower's own SuperExec loop
  (``run_superexec``, the ``flower-superexec`` that process isolation expects) in a
  **long-lived** process that imports flwr, torch and the ClientApp once and runs every
  task itself with Flower's own ``run_clientapp`` (:class:`WarmExecutor`): the
  ClientApp's data cache survives from one message to the next, as in a simulated
  node; the client's ``context.state`` is still the SuperNode's. Tasks are polled
  every ``IPFL_FLOWER_POLL`` seconds (Flower's ``FLWR_SUPEREXEC_TASK_POLL_INTERVAL``).
  Intra-op threads are set to one per client, as Ray's one-CPU workers in the
  simulation.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import types
from typing import Any

__all__ = ["WarmExecutor", "main"]


def _pace() -> types.ModuleType:
    """Return :mod:`training.flower_pace` without importing ``training`` (and torch).

    The SuperNode needs only this small module; ``import training.flower_pace`` would
    run ``training/__init__``, which imports torch (seconds and 240 MB a SuperNode).
    """
    import importlib.util

    name = "training.flower_pace"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("training")  # finds the package, does not run it
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("flower_node: the training package is not installed")
    path = os.path.join(list(spec.submodule_search_locations)[0], "flower_pace.py")
    mod_spec = importlib.util.spec_from_file_location("ipfl_flower_pace", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def _brisk_time(poll: float) -> types.SimpleNamespace:
    """Return a stand-in for the ``time`` module whose ``sleep`` waits at most ``poll`` s."""
    real = time

    def sleep(seconds: float) -> None:
        real.sleep(min(float(seconds), poll))

    names = {k: getattr(real, k) for k in dir(real) if not k.startswith("__")}
    return types.SimpleNamespace(**{**names, "sleep": sleep})


def _log_to_file() -> None:
    """Flower's console log with timestamps and without colour codes (it goes to a file)."""
    from flwr.supercore.logger import update_console_handler

    update_console_handler(timestamps=True, colored=False)


def supernode(argv: list[str]) -> None:
    """Run Flower's ``flower-supernode`` with its idle and reply waits capped."""
    import flwr.supernode.start_client_internal as internal

    _log_to_file()

    if not isinstance(getattr(internal, "time", None), types.ModuleType):
        raise SystemExit("flower_node: flwr.supernode.start_client_internal has no `time` "
                         "module to pace (is this flwr 1.42?)")
    pace = _pace()
    internal.time = _brisk_time(pace.poll_seconds())  # type: ignore[assignment]
    pace.pace_flower()
    from flwr.supernode.cli.flower_supernode import flower_supernode

    sys.argv = ["flower-supernode", *argv]
    flower_supernode()


class _TaskEnded(Exception):
    """Raised in place of ``flwr_exit`` at the end of one task (its exit code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class WarmExecutor:
    """A SuperExec executor (flwr 1.42's ``Executor`` protocol) running tasks in this process.

    ``launch`` runs Flower's own ``run_clientapp`` for the task's token, here and now,
    one task at a time (a SuperNode hands out one message at a time). Three things of
    ``run_clientapp`` that assume a process per task are redirected for the call: its
    ``flwr_exit`` (which would end the process) runs the task's own exit handler (push
    the task's status and context, stop its heartbeat, close its client) and returns;
    its ``register_signal_handlers`` only records that handler (this process keeps the
    SuperExec's handlers); its parent monitor is the executor's own. Everything the
    ClientApp caches (the client's data: :func:`training.remote._client_federation`)
    lives on across messages, as in a simulated node.
    """

    def __init__(self) -> None:
        import flwr.supernode.runtime.run_clientapp as rc

        self._rc = rc
        self._handlers: list[Any] = []
        self.tasks = 0

        def register(*_: Any, exit_handlers: list[Any] | None = None, **__: Any) -> None:
            self._handlers[:] = list(exit_handlers or [])

        def task_exit(code: int, *_: Any, **__: Any) -> None:
            handlers, self._handlers[:] = list(self._handlers), []
            for handler in handlers:
                handler()
            raise _TaskEnded(int(code))

        rc.register_signal_handlers = register
        rc.flwr_exit = task_exit
        rc.start_parent_process_monitor = lambda *_: None

    def get_eligible_capacity(self, supported_task_types: set[Any], *, insecure: bool = False,
                              root_certificates_path: str | None = None
                              ) -> tuple[set[Any], set[str]]:
        """Only ClientApp tasks, always now (one runs at a time, inside ``launch``)."""
        del insecure, root_certificates_path
        from flwr.supercore.constant import TaskType

        return {t for t in supported_task_types if t == TaskType.CLIENT_APP}, set()

    def wait_for_capacity(self, task_type: Any = None, *, fab_hash: str | None = None,
                          insecure: bool = False,
                          root_certificates_path: str | None = None) -> None:
        """Return at once: a task runs to its end inside ``launch``."""
        del task_type, fab_hash, insecure, root_certificates_path

    def launch(self, spec: Any) -> Any:
        """Run the ClientApp task described by ``spec`` in this process, to its end."""
        from flwr.supercore.constant import TaskType
        from flwr.supercore.superexec.executor.types import LaunchResult
        from flwr.supercore.tls import validate_and_resolve_root_certificates

        if spec.task_type != TaskType.CLIENT_APP:
            return LaunchResult.failed(f"this executor runs ClientApp tasks only, not "
                                       f"{spec.task_type}")
        self.tasks += 1
        t0 = time.time()
        try:
            self._rc.run_clientapp(
                runtime_api_address=spec.runtime_api_address, token=spec.token,
                insecure=spec.insecure,
                certificates=validate_and_resolve_root_certificates(
                    spec.root_certificates_path, spec.insecure),
                parent_pid=None, runtime_dependency_install=False)
        except _TaskEnded:
            pass  # the task's status went to the SuperNode (success or error)
        print(f"ipfl executor: task {self.tasks} ran {t0:.3f} .. {time.time():.3f}",
              file=sys.stderr, flush=True)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Nothing to maintain between polls."""

    def close(self) -> None:
        """Nothing to release: a task never outlives ``launch``."""


def executor(argv: list[str]) -> None:
    """Run Flower's SuperExec loop with :class:`ForkExecutor`, the ClientApp imported once."""
    parser = argparse.ArgumentParser(prog="python -m ipfl.flower_node executor")
    parser.add_argument("--runtime-api-address", required=True)
    parser.add_argument("--insecure", action="store_true")
    parser.add_argument("--root-certificates", default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.insecure and args.root_certificates is None:
        raise SystemExit("flower_node executor: give --root-certificates CA or --insecure")
    os.environ["FLWR_SUPEREXEC_TASK_POLL_INTERVAL"] = str(_pace().poll_seconds())
    import torch

    torch.set_num_threads(1)  # one CPU a client, as a Ray worker of the simulation
    import flwr.supercore.superexec.run_superexec as rs
    import flwr.supernode.runtime.run_clientapp  # noqa: F401 (imported once, here)

    import training.flower  # noqa: F401 (the ClientApp and its imports, once)

    _pace().pace_flower()
    _log_to_file()
    rs.get_executor = lambda *a, **k: WarmExecutor()  # type: ignore[assignment]
    rs.run_superexec(runtime_api_address=args.runtime_api_address, insecure=args.insecure,
                     root_certificates_path=args.root_certificates,
                     parent_pid=args.parent_pid, runtime_dependency_install=False)


def main(argv: list[str] | None = None) -> None:
    """Dispatch ``supernode ARGS`` or ``executor ARGS``."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("supernode", "executor"):
        raise SystemExit("usage: python -m ipfl.flower_node {supernode|executor} ARGS")
    {"supernode": supernode, "executor": executor}[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
