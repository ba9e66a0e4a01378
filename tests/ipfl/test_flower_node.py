"""``ipfl.flower_node``: the node's Runtime API called in process, and the paced waits.

:class:`LocalRuntime` is checked against a real flwr ``InMemoryNodeState`` with flwr's
own client-side calls of a ClientApp task (``run_clientapp.pull_task_input``,
``push_message``, ``push_task_output``): what the SuperNode's HTTP routes would do,
without HTTP.
"""

from __future__ import annotations

import hashlib
import threading

import pytest

pytest.importorskip("flwr")

import httpx  # noqa: E402
from flwr.app import ConfigRecord, Context, Message, RecordDict  # noqa: E402
from flwr.proto.runtime_pb2 import (  # noqa: E402
    AcquireTaskRequest,
    PullTaskInputRequest,
    PushTaskOutputRequest,
    SendTaskHeartbeatRequest,
)
from flwr.supercore.constant import TaskType  # noqa: E402
from flwr.supercore.fab import Fab  # noqa: E402
from flwr.supercore.object_store import ObjectStoreFactory  # noqa: E402
from flwr.supercore.run import Run  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402
from flwr.supernode.nodestate import NodeStateFactory  # noqa: E402
from flwr.supernode.runtime import run_clientapp as rc  # noqa: E402
from flwr.supernode.start_client_internal import _insert_message  # noqa: E402

from ipfl.flower_node import (  # noqa: E402
    IDLE_CAP,
    HeartbeatRefused,
    IdlePacer,
    LocalRuntime,
    RuntimeCallError,
    WarmExecutor,
)
from ipfl.flower_security import make_runtime_secret  # noqa: E402

NODE, RUN = 7, 6
ACQUIRE = AcquireTaskRequest(supported_task_types=[TaskType.CLIENT_APP])


@pytest.fixture
def node(monkeypatch):
    """A node's state holding one run (its FAB, its context) and one train message."""
    for name, value in (("_task_id", 99), ("_run_id", RUN), ("_node_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)  # the ServerApp side's identity
    state = NodeStateFactory(ObjectStoreFactory()).state()
    state.set_node_id(NODE)
    fab = Fab(hashlib.sha256(b"fab").hexdigest(), b"fab", {})
    run = Run.create_empty(RUN)
    run.fab_hash, run.series_id = fab.hash_str, RUN
    state.store_run(run)
    state.store_fab(fab)
    state.set_run_series_context(RUN, Context(run_id=RUN, node_id=NODE, node_config={},
                                              state=RecordDict(), run_config={},
                                              series_id=RUN))
    msg = Message(RecordDict({"c": ConfigRecord({"blob": b"xyz"})}), dst_node_id=NODE,
                  message_type="train")
    _insert_message(msg, state, state.object_store)
    task_id = state.create_task(task_type=TaskType.CLIENT_APP, run_id=RUN,
                                fab_hash=fab.hash_str)
    return state, task_id


def test_local_runtime_carries_a_task_through_flowers_own_client_calls(node):
    """Acquire, pull input and message, push reply and context: the node's state has all."""
    # Prepare
    state, task_id = node
    # Execute
    res = LocalRuntime(state).AcquireTask(ACQUIRE)
    task = LocalRuntime(state, res.token)
    beat = task.SendTaskHeartbeat(SendTaskHeartbeatRequest())
    message, context, run, fab = rc.pull_task_input(task)
    rc.push_message(task, Message(RecordDict({"r": ConfigRecord({"ok": 1})}),
                                  reply_to=message), context)
    context.state["kept"] = ConfigRecord({"k": 3})
    rc.push_task_output(task, context, "completed", "")
    # Assert
    assert res.task.task_id == task_id and res.token and beat.success
    assert message.content["c"]["blob"] == b"xyz"
    assert (context.node_id, run.run_id, fab.content) == (NODE, RUN, b"fab")
    [reply] = state.get_messages_legacy(is_reply=True)
    assert reply.metadata.reply_to_message_id == message.metadata.message_id
    assert state.object_store.get(message.metadata.message_id) is None  # confirmed: gone
    tree = state.object_store.get_object_tree(reply.metadata.message_id)
    assert all(state.object_store.get(t.object_id) for t in _walk(tree))  # reply's objects
    assert state.get_run_series_context(RUN).state["kept"]["k"] == 3
    [done] = [t for t in state.get_tasks() if t.task_id == task_id]
    assert done.status.status == "finished" and done.status.sub_status == "completed"
    assert not LocalRuntime(state).AcquireTask(ACQUIRE).HasField("task")  # none left
    with pytest.raises(HeartbeatRefused):  # finished: a failed call, not flwr's SIGINT
        task.SendTaskHeartbeat(SendTaskHeartbeatRequest())
    assert issubclass(HeartbeatRefused, httpx.TransportError)


def _walk(tree):
    yield tree
    for child in tree.children:
        yield from _walk(child)


def test_local_runtime_refuses_an_unknown_token_as_the_http_api_would(node):
    """No task has the token: an ``httpx.HTTPError`` (run_clientapp's refused call)."""
    state, _ = node
    for token in (None, "not-a-token"):
        with pytest.raises(RuntimeCallError, match="task-token authentication failed"):
            LocalRuntime(state, token).PullTaskInput(PullTaskInputRequest())
    assert issubclass(RuntimeCallError, httpx.HTTPError)


def test_a_handlers_flower_error_becomes_a_runtime_call_error(node):
    """A task started twice: Flower's handler refuses; one line naming the handler."""
    state, _ = node
    res = LocalRuntime(state).AcquireTask(ACQUIRE)
    task = LocalRuntime(state, res.token)
    rc.pull_task_input(task)  # the task is now running: a second start is refused
    with pytest.raises(RuntimeCallError, match="refused pull_task_input") as err:
        task.PullTaskInput(PullTaskInputRequest())
    assert "\n" not in str(err.value)


def test_a_failing_handler_is_a_failed_call_not_a_crash(node, monkeypatch):
    """Any handler exception (over HTTP, a 500) reaches the task as a RuntimeCallError."""
    state, _ = node
    res = LocalRuntime(state).AcquireTask(ACQUIRE)

    def broken(*_, **__):
        raise ValueError("disk full")

    monkeypatch.setattr(state, "finish_task", broken)
    with pytest.raises(RuntimeCallError, match="push_task_output failed: ValueError: disk full"):
        LocalRuntime(state, res.token).PushTaskOutput(PushTaskOutputRequest())


@pytest.fixture
def executor(node, monkeypatch, tmp_path):
    """A WarmExecutor on ``node`` whose ClientApp is ``app[0]`` (no FAB installed)."""
    for name in ("register_signal_handlers", "flwr_exit", "start_parent_process_monitor",
                 "RuntimeHttpClient", "event"):
        monkeypatch.setattr(rc, name, getattr(rc, name))  # undone after the test
    app = []
    monkeypatch.setattr(rc, "install_from_fab", lambda *_, **__: None)
    monkeypatch.setattr(rc, "get_project_dir", lambda *_: tmp_path)
    monkeypatch.setattr(rc, "get_load_client_app_fn",
                        lambda **_: (lambda *_: app[0]))
    state, task_id = node
    done = threading.Event()
    return WarmExecutor(state, done), app, state, task_id, done


def _acquire(state):
    return LocalRuntime(state).AcquireTask(ACQUIRE).token


def test_warm_executor_runs_a_task_in_process_and_signals_done(executor):
    """The ClientApp's reply and context land in the node's state; done is set."""
    warm, app, state, task_id, done = executor
    app.append(lambda message, context: Message(
        RecordDict({"r": ConfigRecord({"got": message.content["c"]["blob"]})}),
        reply_to=message))
    warm.run_task(_acquire(state))
    [reply] = state.get_messages_legacy(is_reply=True)
    [task] = [t for t in state.get_tasks() if t.task_id == task_id]
    assert task.status.status == "finished" and task.status.sub_status == "completed"
    assert reply.metadata.message_type == "train" and done.is_set() and warm.tasks == 1


def test_a_clientapp_that_raises_ends_its_task_with_an_error_reply_not_the_node(executor):
    """Flower's own error path, in process: an error reply, the task failed, no exit."""
    warm, app, state, task_id, done = executor

    def boom(message, context):
        raise RuntimeError("client bug")

    app.append(boom)
    warm.run_task(_acquire(state))  # returns: the node goes on
    [reply] = state.get_messages_legacy(is_reply=True)
    [task] = [t for t in state.get_tasks() if t.task_id == task_id]
    assert reply.has_error() and "client bug" in reply.error.reason
    assert task.status.status == "finished" and task.status.sub_status == "failed"
    assert done.is_set()


def test_runtime_secret_locks_the_http_api_but_not_the_in_process_executor(node, tmp_path):
    """With flwr's SuperExec secret, AcquireTask over HTTP is refused; LocalRuntime is not."""
    from flwr.supercore.runtime import RuntimeHttpClient
    from flwr.supernode.main import create_app
    from starlette.testclient import TestClient

    state, task_id = node
    path = make_runtime_secret(tmp_path / "keys", "supernode-0")

    class Factory:  # the node's state factory, as flower-supernode hands it over
        def state(self):
            return state

    http = RuntimeHttpClient("http://testserver")
    http._client = TestClient(create_app(state_factory=Factory(),
                                         superexec_auth_secret=path.read_bytes()))
    with pytest.raises(Exception, match="401 Unauthorized"):  # starlette's httpx2 error
        http.AcquireTask(ACQUIRE)
    assert LocalRuntime(state).AcquireTask(ACQUIRE).task.task_id == task_id
    assert len(path.read_bytes()) == 32 and (path.stat().st_mode & 0o777) == 0o600


def test_idle_pacer_backs_off_while_idle_and_is_brisk_after_a_message(monkeypatch):
    """flwr's 3 s idle wait: poll, doubling to the cap; its 0.5 s reply wait: poll."""
    # Prepare
    waits = []
    monkeypatch.setattr("ipfl.flower_node.time.sleep", waits.append)
    pacer = IdlePacer(0.1)
    # Execute
    for _ in range(6):
        pacer.sleep(3)
    pacer.sleep(0.5)
    pacer.active()
    pacer.sleep(3)
    # Assert
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, IDLE_CAP, IDLE_CAP, 0.1, 0.1])
    assert pacer.monotonic is __import__("time").monotonic  # the rest is time's


def test_reply_wait_ends_when_a_task_is_done_and_else_after_poll():
    """With ``done``: set -> no wait (and cleared); not set -> one ``poll`` wait."""
    # Prepare
    waited = []

    class Done(threading.Event):
        def wait(self, timeout=None):
            waited.append(timeout)
            return super().wait(0)

    done = Done()
    pacer = IdlePacer(0.25, done)
    # Execute
    done.set()
    pacer.sleep(0.5)
    still_set = done.is_set()
    pacer.sleep(0.5)
    # Assert
    assert waited == [0.25, 0.25] and not still_set and not done.is_set()
