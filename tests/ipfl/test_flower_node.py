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

from ipfl.flower_node import IDLE_CAP, IdlePacer, LocalRuntime, RuntimeCallError  # noqa: E402

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
    assert state.get_run_series_context(RUN).state["kept"]["k"] == 3
    [done] = [t for t in state.get_tasks() if t.task_id == task_id]
    assert done.status.status == "finished" and done.status.sub_status == "completed"
    assert not LocalRuntime(state).AcquireTask(ACQUIRE).HasField("task")  # none left


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
