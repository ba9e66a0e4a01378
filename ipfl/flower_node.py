"""A deployed Flower client as one long-lived process: a SuperNode with a warm ClientApp.

Where a deployed round went (flwr 1.42, measured on the 2-core machine, see
docs/flower.md): every message started a fresh ``flwr-clientapp`` process, which spent
about 2.4 s importing flwr, torch and ipfl and 1.8 s loading the client's data (each
alone; ten clients at once on two cores take several times longer); on top of that the
SuperNode sleeps 3 s whenever a pull finds no message, its SuperExec polls for tasks
every 1 s, the SuperNode waits for a reply in steps of 0.5 s, a pull of a message's
objects that comes too early retries after 1 s (:mod:`training.flower_pace`), and the
ServerApp's ``send_and_receive`` pulls replies every 3 s
(:func:`training.flower.exchange` replaces it).

``python -m ipfl.flower_node ARGS`` runs Flower's own ``flower-supernode`` with the
same arguments (``deploy-local`` passes ``--isolation process``, TLS and the node's
key) and, in the same process, a **warm executor**: a thread that imports flwr, torch
and the ClientApp once, and runs every task of this node with Flower's own
``run_clientapp`` (:class:`WarmExecutor`). The client's data, loaded once, stays in the
ClientApp's cache from one message to the next, as in a simulated node; the client's
``context.state`` is still the SuperNode's. The executor does not poll: the SuperNode
wakes it when it has stored a message. The SuperNode's own idle wait (3 s in flwr
1.42) starts at ``IPFL_FLOWER_POLL`` seconds (default 0.1) after each message and
doubles up to 1 s while no message comes; its reply wait is capped at the same
``IPFL_FLOWER_POLL``. Intra-op threads are one per client, as Ray's one-CPU workers.

Pinned to flwr 1.42 (``require_flower`` checks the version before a deployment starts):
the waits are ``time.sleep`` calls in ``flwr.supernode.start_client_internal``, the
message pull is its ``_pull_and_store_message``; nothing else in the SuperNode changes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from typing import Any

__all__ = ["IdlePacer", "WarmExecutor", "main"]

#: the longest idle wait between two pulls of a SuperNode (flwr 1.42 waits 3 s)
IDLE_CAP = 1.0
#: flwr 1.42's fixed waits in ``start_client_internal``: idle (no message) and reply
_FLWR_IDLE_WAIT, _FLWR_REPLY_WAIT = 3, 0.5


def _pace() -> types.ModuleType:
    """Return :mod:`training.flower_pace` without importing ``training`` (and torch) first.

    ``import training.flower_pace`` would run ``training/__init__``, which imports
    torch; the SuperNode's pacing must be in place before that import ends.
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


class IdlePacer:
    """A stand-in for the ``time`` module of flwr's SuperNode loop, with shorter waits.

    ``sleep(3)`` (no message was pulled) waits ``wait`` seconds, then doubles ``wait``
    up to :data:`IDLE_CAP`; ``sleep(0.5)`` (the reply is not ready) waits ``poll``;
    :meth:`active` (a message came) sets ``wait`` back to ``poll``. Other names are the
    ``time`` module's.

    Parameters
    ----------
    poll : float
        The shortest wait, seconds.
    """

    def __init__(self, poll: float) -> None:
        self.poll, self.wait = float(poll), float(poll)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def active(self) -> None:
        """Poll briskly again (a message came)."""
        self.wait = self.poll

    def sleep(self, seconds: float) -> None:
        """Wait as flwr asked, shortened (idle: backing off; reply: ``poll``)."""
        if seconds == _FLWR_IDLE_WAIT:
            time.sleep(self.wait)
            self.wait = min(self.wait * 2.0, max(IDLE_CAP, self.poll))
        else:
            time.sleep(min(float(seconds), self.poll))


class _TaskEnded(Exception):
    """Raised in place of ``flwr_exit`` at the end of one task (its exit code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class WarmExecutor:
    """Run this node's ClientApp tasks in this process, one at a time, when woken.

    Flower's SuperExec (process isolation) asks the SuperNode's Runtime API for a task
    (``AcquireTask``) and starts ``flwr-clientapp --token T`` for it; this does the same
    with Flower's own ``run_clientapp`` called here, so the imports and the ClientApp's
    cache live on. Three things of ``run_clientapp`` that assume a process per task
    are redirected for it: ``flwr_exit`` (which would end the process) runs the task's
    own exit handler (push the task's status and context, stop its heartbeat, close
    its client) and returns; ``register_signal_handlers`` only records that handler;
    the parent monitor is not started (the task runs inside its parent).

    Parameters
    ----------
    runtime_api_address : str
        The SuperNode's Runtime API, ``HOST:PORT`` (plain HTTP on loopback: the
        executor is inside the SuperNode's process).
    """

    def __init__(self, runtime_api_address: str) -> None:
        import flwr.supernode.runtime.run_clientapp as rc

        self.address = runtime_api_address
        self.wake = threading.Event()
        self.tasks = 0
        self._rc = rc
        self._handlers: list[Any] = []

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

    def _client(self) -> Any:
        from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
        from flwr.supercore.retry import make_simple_http_retry_invoker
        from flwr.supercore.runtime import RuntimeHttpClient

        return RuntimeHttpClient.from_server_address(
            server_address=self.address, insecure=True, root_certificates=None,
            interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
            retry_invoker=make_simple_http_retry_invoker())

    def run_forever(self, fallback: float = IDLE_CAP) -> None:
        """Wait to be woken (or ``fallback`` s), then run every task the node has."""
        from flwr.proto.runtime_pb2 import AcquireTaskRequest
        from flwr.supercore.constant import TaskType

        try:
            client = self._client()
            request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
            while True:
                self.wake.wait(timeout=fallback)
                self.wake.clear()
                while True:
                    res = client.AcquireTask(request)
                    if not (res.HasField("task") and res.token):
                        break
                    self.run_task(res.token)
        except Exception as exc:  # noqa: BLE001 (a dead executor must not look like a slow node)
            print(f"ipfl flower node: the warm executor failed ({type(exc).__name__}: {exc}); "
                  "stopping this node", file=sys.stderr, flush=True)
            os._exit(1)

    def run_task(self, token: str) -> None:
        """Run the ClientApp task of ``token`` here, to its end (status sent either way)."""
        self.tasks += 1
        t0 = time.time()
        try:
            self._rc.run_clientapp(runtime_api_address=self.address, token=token,
                                   insecure=True, certificates=None, parent_pid=None,
                                   runtime_dependency_install=False)
        except _TaskEnded:
            pass  # the task's status went to the SuperNode (success or error)
        print(f"ipfl warm executor: task {self.tasks} ran {t0:.3f} .. {time.time():.3f}",
              file=sys.stderr, flush=True)


def _option(argv: list[str], name: str, default: str) -> str:
    for k, a in enumerate(argv):
        if a == name and k + 1 < len(argv):
            return argv[k + 1]
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
    return default


def main(argv: list[str] | None = None) -> None:
    """Run ``flower-supernode ARGV`` with paced waits and a warm executor thread."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if _option(argv, "--isolation", "subprocess") != "process":
        raise SystemExit("flower_node: pass --isolation process (the warm executor is the "
                         "node's SuperExec)")
    pace = _pace()
    poll = pace.poll_seconds()
    import flwr.supernode.start_client_internal as internal
    from flwr.supercore.logger import update_console_handler

    if not isinstance(getattr(internal, "time", None), types.ModuleType) or not hasattr(
            internal, "_pull_and_store_message"):
        raise SystemExit("flower_node: flwr.supernode.start_client_internal is not flwr "
                         "1.42's (no `time` module or `_pull_and_store_message`)")
    update_console_handler(timestamps=True, colored=False)  # the log goes to a file
    pace.pace_flower(poll)
    pacer = IdlePacer(poll)
    internal.time = pacer  # type: ignore[assignment]

    import torch

    torch.set_num_threads(1)  # one CPU a client, as a Ray worker of the simulation
    import training.flower  # noqa: F401 (the ClientApp and its imports, once)

    host = _option(argv, "--host", "127.0.0.1")
    port = _option(argv, "--port", "")
    if not port:
        raise SystemExit("flower_node: pass --host and --port for the Runtime API")
    warm = WarmExecutor(f"{host}:{port}")
    pull = internal._pull_and_store_message

    def pull_and_wake(*args: Any, **kwargs: Any) -> Any:
        run_id = pull(*args, **kwargs)
        if run_id is not None:  # a message and its objects are stored: run it now
            pacer.active()
            warm.wake.set()
        return run_id

    internal._pull_and_store_message = pull_and_wake
    threading.Thread(target=warm.run_forever, name="ipfl-warm-executor", daemon=True).start()
    from flwr.supernode.cli.flower_supernode import flower_supernode

    sys.argv = ["flower-supernode", *argv]
    flower_supernode()


if __name__ == "__main__":
    main()
