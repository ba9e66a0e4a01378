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
``run_clientapp`` (:class:`WarmExecutor`). The task's Runtime API calls (pull its
input and message, push its reply and context, heartbeats) go to the SuperNode's own
handlers in this process (:class:`LocalRuntime`), not over HTTP on loopback: the HTTP
round trips were about half of a SuperNode's CPU a round. The client's data, loaded
once, stays in the ClientApp's cache from one message to the next, as in a simulated
node; the client's ``context.state`` is still the SuperNode's. The executor does not
poll: the SuperNode wakes it when it has stored a message, and the SuperNode's reply
wait ends when the executor has stored the reply. The SuperNode's own idle wait (3 s in
flwr 1.42) starts at ``IPFL_FLOWER_POLL`` seconds (default 0.1) after each message and
doubles up to 1 s while no message comes; its reply wait is at most the same
``IPFL_FLOWER_POLL``. Intra-op threads are one per client, as Ray's one-CPU workers.

Pinned to flwr 1.42 (``require_flower`` checks the version before a deployment starts):
the waits are ``time.sleep`` calls in ``flwr.supernode.start_client_internal``, the
message pull is its ``_pull_and_store_message``, the node's state is the
``state_factory`` that ``flower_supernode`` hands to ``start_client_internal``, and
``run_clientapp``'s HTTP client, exit, signal, parent-monitor and telemetry hooks are
replaced for the in-process tasks. Flower's Runtime HTTP API still listens on
``--host``/``--port`` (loopback), unused by this node's tasks; nothing else in the
SuperNode changes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import types
from typing import Any

import httpx

__all__ = ["IdlePacer", "LocalRuntime", "RuntimeCallError", "WarmExecutor", "main"]

#: the longest idle wait between two pulls of a SuperNode (flwr 1.42 waits 3 s)
IDLE_CAP = 1.0
#: flwr 1.42's idle wait in ``start_client_internal`` (no message); its reply wait is 0.5 s
_FLWR_IDLE_WAIT = 3


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
    ``time`` module's. With ``done``, the reply wait ends as soon as ``done`` is set
    (the warm executor sets it when a task has stored its reply), at the latest after
    ``poll``.

    Parameters
    ----------
    poll : float
        The shortest wait, seconds.
    done : threading.Event, optional
        Set when a reply may be ready.
    """

    def __init__(self, poll: float, done: threading.Event | None = None) -> None:
        self.poll, self.wait = float(poll), float(poll)
        self.done = done

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
        elif self.done is None:
            time.sleep(min(float(seconds), self.poll))
        elif self.done.wait(min(float(seconds), self.poll)):
            self.done.clear()


def _no_event(*_: Any, **__: Any) -> Any:
    """Telemetry is off: an event is neither built nor sent (a finished future)."""
    from concurrent.futures import Future

    done: Future[str] = Future()
    done.set_result("disabled")
    return done


class _TaskEnded(Exception):
    """Raised in place of ``flwr_exit`` at the end of one task (its exit code)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class RuntimeCallError(httpx.HTTPError):
    """A Runtime API handler refused a call (Flower's ``FlowerError``, as an HTTP error).

    An ``httpx.HTTPError``, so that ``run_clientapp`` treats it as a refused HTTP call.
    """


class HeartbeatRefused(RuntimeCallError, httpx.TransportError):
    """A task's heartbeat was refused in process (a failed call, never a SIGINT)."""


class LocalRuntime:
    """The node's Runtime API, called in the node's own process: Flower's handlers, no HTTP.

    The methods are those of flwr's ``RuntimeHttpClient`` that a ClientApp task uses;
    each does what the SuperNode's HTTP route does with the request: find the task by
    its token (``get_task_by_token``, as the route's task-token dependency) and call
    the SuperNode's own handler (``flwr.supernode.servicer.runtime.runtime_handlers``)
    with the request and the node's ``NodeState``. A handler's ``FlowerError`` is
    raised as :class:`RuntimeCallError` (an ``httpx.HTTPError``, as the HTTP client's
    refusals). What goes away is the HTTP round trip: encoding, FastAPI's middleware,
    a worker thread, decoding (measured: about half of a SuperNode's CPU a round). The
    task-input and task-complete tracing spans of the HTTP routes are not made.

    Parameters
    ----------
    state : NodeState
        The SuperNode's state (the one its Runtime HTTP API serves).
    token : str or None
        The task's token (``None``: only :meth:`AcquireTask`).
    """

    def __init__(self, state: Any, token: str | None = None) -> None:
        from flwr.supercore.servicer.runtime import runtime_handlers as core
        from flwr.supernode.servicer.runtime import runtime_handlers as node

        self.state, self.token = state, token
        self._core, self._node = core, node

    def _call(self, fn: Any, request: Any, *, needs_token: bool = True) -> Any:
        from flwr.supercore.error import FlowerError

        if not needs_token:
            found = None
        elif (found := self.state.get_task_by_token(self.token) if self.token else None) is None:
            raise RuntimeCallError("Runtime task-token authentication failed.")
        try:
            return fn(request, self.state) if found is None else fn(request, self.state, found)
        except FlowerError as exc:
            raise RuntimeCallError(f"Runtime API refused {fn.__name__}: {exc}") from exc
        except Exception as exc:  # over HTTP, a 500: the task sees a failed call, not a crash
            raise RuntimeCallError(f"Runtime API {fn.__name__} failed: "
                                   f"{type(exc).__name__}: {exc}") from exc

    # the Runtime service's method names, as flwr's RuntimeHttpClient spells them
    def AcquireTask(self, request: Any) -> Any:  # noqa: N802
        """Claim the oldest pending task (no token: this is the node's own executor)."""
        return self._call(self._node.acquire_task, request, needs_token=False)

    def SendTaskHeartbeat(self, request: Any) -> Any:  # noqa: N802
        """Acknowledge the task's heartbeat; a refused one is a transport failure.

        flwr's heartbeat raises SIGINT on ``success = False`` (it ends a task's own
        process); here that would stop the SuperNode, so a refusal (the task finished
        or expired) is raised as :class:`HeartbeatRefused`, which flwr's heartbeat
        treats as a failed call to retry until the task's exit stops it.
        """
        try:
            res = self._call(self._core.send_task_heartbeat, request)
        except RuntimeCallError as exc:
            raise HeartbeatRefused(str(exc)) from exc
        if not res.success:
            raise HeartbeatRefused("Runtime API refused the heartbeat (task not running)")
        return res

    def PullTaskInput(self, request: Any) -> Any:  # noqa: N802
        """Return the task's context, run and FAB (and start the task)."""
        return self._call(self._node.pull_task_input, request)

    def PushTaskOutput(self, request: Any) -> Any:  # noqa: N802
        """Finish the task and keep its context."""
        return self._call(self._node.push_task_output, request)

    def PullMessages(self, request: Any) -> Any:  # noqa: N802
        """Return the task's message and its object tree."""
        return self._call(self._node.pull_messages, request)

    def PushMessages(self, request: Any) -> Any:  # noqa: N802
        """Store the reply and preregister its objects."""
        return self._call(self._node.push_messages, request)

    def PullObject(self, request: Any) -> Any:  # noqa: N802
        """Return one object of the message."""
        return self._call(self._node.pull_object, request)

    def PushObject(self, request: Any) -> Any:  # noqa: N802
        """Store one object of the reply."""
        return self._call(self._node.push_object, request)

    def ConfirmMessageReceived(self, request: Any) -> Any:  # noqa: N802
        """Delete the message's objects (the task has them)."""
        return self._call(self._node.confirm_message_received, request)

    def close(self) -> None:
        """Nothing to close (the HTTP client's method)."""


class WarmExecutor:
    """Run this node's ClientApp tasks in this process, one at a time, when woken.

    Flower's SuperExec (process isolation) asks the SuperNode's Runtime API for a task
    (``AcquireTask``) and starts ``flwr-clientapp --token T`` for it; this does the same
    with Flower's own ``run_clientapp`` called here, so the imports and the ClientApp's
    cache live on, and its Runtime API calls go to :class:`LocalRuntime` (the node's
    handlers, called in this process) instead of HTTP on loopback. Three things of
    ``run_clientapp`` that assume a process per task are redirected for it:
    ``flwr_exit`` (which would end the process) runs the task's own exit handler (push
    the task's status and context, stop its heartbeat, close its client) and returns;
    ``register_signal_handlers`` only records that handler; the parent monitor is not
    started (the task runs inside its parent).

    Parameters
    ----------
    state : NodeState
        The SuperNode's state.
    done : threading.Event, optional
        Set at the end of every task (its reply, if it made one, is stored by then):
        the node's reply wait (:class:`IdlePacer`) ends on it.
    """

    def __init__(self, state: Any, done: threading.Event | None = None) -> None:
        import flwr.supernode.runtime.run_clientapp as rc

        self.state, self.done = state, done
        self.wake = threading.Event()
        self.tasks = 0
        self._token: str | None = None
        self._rc = rc
        self._handlers: list[Any] = []
        executor = self

        def register(*_: Any, exit_handlers: list[Any] | None = None, **__: Any) -> None:
            self._handlers[:] = list(exit_handlers or [])

        def task_exit(code: int, *_: Any, **__: Any) -> None:
            handlers, self._handlers[:] = list(self._handlers), []
            for handler in handlers:
                try:
                    handler()
                except Exception as exc:  # noqa: BLE001 (one task's exit, not the node's)
                    print(f"ipfl warm executor: task exit handler failed "
                          f"({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)
            raise _TaskEnded(int(code))

        class _Client:
            """Stands in for ``RuntimeHttpClient`` in ``run_clientapp``."""

            @staticmethod
            def from_server_address(**_: Any) -> LocalRuntime:
                return LocalRuntime(executor.state, executor._token)

        rc.register_signal_handlers = register
        rc.flwr_exit = task_exit
        rc.start_parent_process_monitor = lambda *_: None
        rc.RuntimeHttpClient = _Client
        from flwr.supercore import telemetry

        if telemetry.FLWR_TELEMETRY_ENABLED != "1":
            # flwr builds each task's telemetry event even with telemetry off, and
            # ``platform.architecture()`` in it forks a ``file`` process every task
            rc.event = _no_event

    def run_forever(self, fallback: float = IDLE_CAP) -> None:
        """Wait to be woken (or ``fallback`` s), then run every task the node has."""
        from flwr.proto.runtime_pb2 import AcquireTaskRequest
        from flwr.supercore.constant import TaskType

        try:
            runtime = LocalRuntime(self.state)
            request = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])
            while True:
                self.wake.wait(timeout=fallback)
                self.wake.clear()
                while True:
                    res = runtime.AcquireTask(request)
                    if not (res.HasField("task") and res.token):
                        break
                    self.run_task(res.token)
        except BaseException as exc:  # noqa: BLE001 (a dead executor must not look like a slow node)
            print(f"ipfl flower node: the warm executor failed ({type(exc).__name__}: {exc}); "
                  "stopping this node", file=sys.stderr, flush=True)
            os._exit(1)

    def run_task(self, token: str) -> None:
        """Run the ClientApp task of ``token`` here, to its end (status sent either way)."""
        self.tasks += 1
        self._token = token
        t0, code = time.time(), None
        try:
            self._rc.run_clientapp(runtime_api_address="in-process", token=token,
                                   insecure=True, certificates=None, parent_pid=None,
                                   runtime_dependency_install=False)
        except _TaskEnded as ended:
            code = ended.code  # the task's status went to the node's state (success or error)
        finally:
            self._token = None
            if self.done is not None:
                self.done.set()
        print(f"ipfl warm executor: task {self.tasks} ran {t0:.3f} .. {time.time():.3f} "
              f"(exit code {code})", file=sys.stderr, flush=True)


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
    if not _option(argv, "--port", ""):
        raise SystemExit("flower_node: pass --port (flwr's Runtime HTTP API still listens "
                         "there, unused by this node's executor)")
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
    done = threading.Event()
    pacer = IdlePacer(poll, done)
    internal.time = pacer  # type: ignore[assignment]

    import torch

    torch.set_num_threads(1)  # one CPU a client, as a Ray worker of the simulation
    import training.flower  # noqa: F401 (the ClientApp and its imports, once)

    pull = internal._pull_and_store_message
    import importlib

    # the module (flwr.supernode.cli's __init__ shadows it with its function of that name)
    cli = importlib.import_module("flwr.supernode.cli.flower_supernode")

    start = cli.start_client_internal

    def start_with_executor(*args: Any, **kwargs: Any) -> Any:
        warm = WarmExecutor(kwargs["state_factory"].state(), done)

        def pull_and_wake(*a: Any, **kw: Any) -> Any:
            run_id = pull(*a, **kw)
            if run_id is not None:  # a message and its objects are stored: run it now
                pacer.active()
                warm.wake.set()
            return run_id

        internal._pull_and_store_message = pull_and_wake
        threading.Thread(target=warm.run_forever, name="ipfl-warm-executor",
                         daemon=True).start()
        return start(*args, **kwargs)

    cli.start_client_internal = start_with_executor
    sys.argv = ["flower-supernode", *argv]
    cli.flower_supernode()


if __name__ == "__main__":
    main()
