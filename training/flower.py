r"""Flower transport (flwr 1.42, Message API): a ServerApp and a ClientApp for every algorithm.

Importing this module needs ``pip install 'ipfl[flower]'``; without it (or with another
Flower version) the import raises :class:`ImportError` with one line naming the extra.

* ``server_app`` (:class:`flwr.serverapp.ServerApp`, ``@app.main()`` over a ``Grid``)
  wraps :class:`training.remote.Coordinator`: it queries every node once for its profile
  (``query.profile``), maps each node to its **partition id** (the node config's
  ``partition-id``; node ids are random and never used as client identities), then
  for every round sends each client its own ``train`` message (its start point,
  prox-centre, weight, bill and extras: there is no single global model) and settles
  the market with the same :class:`training.session.Session` as ``ipfl train``. Every
  wait has a timeout: ``node-timeout`` for the nodes to connect, ``round-timeout`` for
  a round's replies; a client that does not answer in time is dropped and recorded.
  At the end every client still in is asked to ``evaluate`` the model it keeps, and
  the answers go to ``RUN_DIR/flower/final_evaluation.json``.
* ``client_app`` (:class:`flwr.clientapp.ClientApp`) answers ``query.profile``,
  ``train`` and ``evaluate`` with :func:`training.remote.client_profile` and
  :func:`training.remote.client_round`; the client's algorithm state lives in the
  node's ``context.state`` (one ``ConfigRecord``: the round and the packed arrays,
  :func:`pack`), so it survives a ClientApp started
  afresh for every message (plain ``flower-supernode``) as well as a warm one
  (:mod:`ipfl.flower_node`, what ``deploy-local`` runs).

Every reply is checked against what its message asked for
(:mod:`training.replies`): a bad profile or train reply drops *that client*, with the
reason in the round's ``drops``; the final evaluation's out-of-range scores are recorded
as refused. A client reads its data only from its own folder: the node config's
``data-dir``, else the ``IPFL_DATA_DIR`` environment variable, else the dataset's
default folder; the ``data_dir`` in the server's config is never read.

Settings come from :class:`FlowerSettings`, or, under ``flwr run``, from the run config
keys ``run-dir``, ``config`` (a JSON file of the resolved config), ``resume``,
``round-timeout`` and ``node-timeout``.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from dataclasses import dataclass
from logging import ERROR, INFO, WARNING
from pathlib import Path
from typing import Any

from .remote import require_flower

require_flower()

import numpy as np  # noqa: E402
from flwr.app import (  # noqa: E402
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.common.logger import log  # noqa: E402 (Flower's logger: streamed by flwr run)
from flwr.serverapp import Grid, ServerApp  # noqa: E402

from .algorithms import get_algorithm  # noqa: E402
from .config import Config  # noqa: E402
from .flower_pace import pace_flower, poll_seconds  # noqa: E402
from .remote import (  # noqa: E402
    Coordinator,
    ProtocolError,
    client_profile,
    client_round,
)
from .replies import check_evaluation  # noqa: E402
from .rundir import RunDir, atomic_write_text  # noqa: E402

__all__ = ["DATA_DIR_ENV", "FlowerSettings", "client_app", "exchange", "make_server_app",
           "pack", "server_app", "server_main", "unpack"]


@dataclass
class FlowerSettings:
    """What the ServerApp needs besides the grid.

    Attributes
    ----------
    run_dir : str
        The run directory (as ``ipfl train --run-dir``).
    config : Config or None
        The config of a new run (None: ``resume``).
    resume : bool
        Continue the run in ``run_dir``.
    overrides : tuple of str
        On resume, ``key=value`` changes of non-structural keys (as ``ipfl train
        --resume DIR --set``), e.g. ``rounds=30`` to extend a finished run.
    round_timeout, node_timeout : float
        Seconds to wait for a round's replies, and for the nodes to connect.
    """

    run_dir: str
    config: Config | None = None
    resume: bool = False
    round_timeout: float = 600.0
    node_timeout: float = 120.0
    overrides: tuple[str, ...] = ()

    @classmethod
    def from_run_config(cls, rc: dict[str, Any]) -> FlowerSettings:
        """Read the settings from a Flower run config (``flwr run --run-config``)."""
        if "run-dir" not in rc:
            raise ProtocolError("the run config lacks run-dir (flwr run --run-config "
                                "'run-dir=\"DIR\" config=\"FILE\"')")
        cfg = None
        if rc.get("config"):
            cfg = Config.from_dict(json.loads(Path(str(rc["config"])).read_text()))
        sets = tuple(x for x in str(rc.get("overrides", "")).split("|") if x)
        return cls(run_dir=str(rc["run-dir"]), config=cfg, resume=bool(rc.get("resume", False)),
                   overrides=sets,
                   round_timeout=float(rc.get("round-timeout", 600.0)),
                   node_timeout=float(rc.get("node-timeout", 120.0)))


#: the environment variable naming a client's data folder when its node config has no
#: ``data-dir`` (``ipfl flower --simulate`` sets it to the config's own ``data_dir``)
DATA_DIR_ENV = "IPFL_DATA_DIR"


# ----- records <-> payloads -----------------------------------------------------------------
def pack(d: dict[str, np.ndarray]) -> bytes:
    """Return named arrays as one ``.npz`` blob (stored, not compressed; no pickles).

    Every array of a message travels in one ``bytes`` value of its one ``ConfigRecord``:
    flwr 1.42 moves each object of a message (each record and each ``Array``) in its own
    request through the SuperLink, so a ``train`` message of ArrayRecords was 7
    objects and its reply 11; packed, each is 3 (message, record dict, record). Exact:
    dtypes, shapes and values round-trip bit for bit. An object array is refused here
    (``allow_pickle=False``), as :func:`unpack` refuses one.
    """
    buf = io.BytesIO()
    np.savez(buf, allow_pickle=False, **{k: np.ascontiguousarray(v) for k, v in d.items()})
    return buf.getvalue()


def _member_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """Return one checked ``.npy`` member: its header's shape and dtype must fill it exactly."""
    data = zf.read(info)  # stored, size checked by the caller: at most the blob's length
    head = io.BytesIO(data)
    version = np.lib.format.read_magic(head)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f"npy format version {version}")
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(head, max_header_size=10_000)
    if dtype.hasobject:
        raise ValueError("an object array (pickles are refused)")
    count = 1
    for n in shape:
        count *= int(n)  # Python integers: no overflow
    if head.tell() + count * dtype.itemsize != len(data):
        raise ValueError(f"its header says shape {shape} of {dtype}, which does not fill "
                         f"its {len(data)} bytes")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=head.tell())
    return arr.reshape(shape, order="F" if fortran else "C").copy()


def unpack(blob: Any) -> dict[str, np.ndarray]:
    """Return :func:`pack`'s arrays; ValueError for anything else (a hostile peer's blob).

    Refused before any array is built: a value that is not bytes, not a zip (it must
    start with a zip header), a member with a flag bit set (encrypted and the like), a
    compressed member (a small blob could inflate without bound), a member not named
    ``*.npy``, two members of one name, members adding up to more bytes than the blob
    holds, an object array, and a member whose ``.npy`` header's shape and dtype do not
    fill it exactly (so no header can ask for more memory than the blob brings). Work
    and memory are linear in the blob's size. Any other failure of the zip reader
    becomes a ValueError too: a hostile reply drops its client, never the server.
    """
    if not isinstance(blob, bytes):
        raise ValueError(f"packed arrays are {type(blob).__name__}, not bytes")
    if not blob.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        raise ValueError("packed arrays are not a zip of .npy arrays")
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise ValueError("packed arrays: a member name occurs twice")
            if sum(i.file_size for i in infos) > len(blob):
                raise ValueError("packed arrays: the members claim more bytes than the blob")
            for info in infos:
                if (info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x61
                        or not info.filename.endswith(".npy")):
                    raise ValueError(f"packed arrays: member {info.filename!r} is not a "
                                     "stored .npy array")
            out = {}
            for info in infos:
                try:
                    out[info.filename[:-4]] = _member_array(zf, info)
                except ValueError as exc:
                    raise ValueError(f"packed arrays: member {info.filename!r}: {exc}"
                                     ) from None
            return out
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 (whatever a hostile blob makes the zip reader raise)
        raise ValueError(f"packed arrays are unreadable ({type(exc).__name__}: {exc})"
                         ) from None


#: prefix of a train reply's metric keys in its one record
_METRIC = "metric."


def _train_content(config_text: str, p: dict[str, Any]) -> RecordDict:
    settings = {"config": config_text, "round": int(p["round"]), "stays": bool(p["stays"]),
                "bill": float(p["bill"]), "prox": float(p["prox"]),
                **{k: float(p[k]) for k in ("own_start", "own_center") if k in p},
                "model": pack({"start": p["start"], "center": p["center"]}),
                "extras": pack(p["extras"])}
    if "state" in p:
        settings["state"] = pack(p["state"])
    return RecordDict({"settings": ConfigRecord(settings)})


def _train_payload(content: RecordDict) -> tuple[str, dict[str, Any]]:
    s = content["settings"]
    model = unpack(s["model"])
    p = {"round": int(s["round"]), "stays": bool(s["stays"]), "bill": float(s["bill"]),
         "prox": float(s["prox"]), "start": model["start"], "center": model["center"],
         "extras": unpack(s["extras"]),
         **{k: float(s[k]) for k in ("own_start", "own_center") if k in s}}
    if "state" in s:
        p["state"] = unpack(s["state"])
    return str(s["config"]), p


def _reply_content(reply: dict[str, Any], state: bytes) -> RecordDict:
    """Return a train reply: one record with the head, the packed arrays, the metrics."""
    return RecordDict({"reply": ConfigRecord({
        "quit": False, "n_train": int(reply["n_train"]),
        "upload": pack({"upload": reply["upload"]}), "info": pack(reply["info"]),
        "state": state,
        **{_METRIC + k: v for k, v in reply["metrics"].items()}})})


def _reply_payload(content: RecordDict) -> dict[str, Any] | str:
    """Decode a train reply; the values stay as sent (the Coordinator checks them)."""
    head = content["reply"]
    if "error" in head:
        return str(head["error"])
    if head["quit"] is True:
        return {"quit": True}
    upload = unpack(head["upload"])
    if set(upload) != {"upload"}:
        raise KeyError("upload")
    return {"quit": False, "n_train": head["n_train"], "upload": upload["upload"],
            "info": unpack(head["info"]), "state": unpack(head["state"]),
            "metrics": {k[len(_METRIC):]: v for k, v in head.items() if k.startswith(_METRIC)}}


def _held_state(context: Context) -> tuple[dict[str, np.ndarray] | None, int]:
    """Return the client's state kept in ``context.state`` and the round it is from."""
    held = context.state.get("ipfl.state")
    if held is None:
        return None, -1
    return unpack(held["arrays"]), int(held["round"])


def _error(text: str) -> RecordDict:
    return RecordDict({"reply": ConfigRecord({"error": text})})


# ----- the client ---------------------------------------------------------------------------
client_app = ClientApp()


def _partition(context: Context) -> int:
    pid = context.node_config.get("partition-id")
    if pid is None or isinstance(pid, bool) or not float(pid).is_integer():
        raise ProtocolError(f"the node config has no integer partition-id (got {pid!r}); "
                            "start the SuperNode with --node-config 'partition-id=I'")
    return int(pid)


def _data_dir(context: Context) -> str:
    """Return this client's own data folder: node config ``data-dir``, else ``IPFL_DATA_DIR``.

    Empty: the dataset's default folder (:func:`training.data.default_data_dir`). The
    ``data_dir`` the server sends is never read (:func:`training.remote.own_config_text`).
    """
    value = context.node_config.get("data-dir")
    if value is None:
        value = os.environ.get(DATA_DIR_ENV, "")
    return str(value)


@client_app.query("profile")
def _query_profile(msg: Message, context: Context) -> Message:
    """Answer the one-time profile query: partition id, data sizes, shapes, model digest."""
    try:
        prof = client_profile(str(msg.content["settings"]["config"]), _partition(context),
                              _data_dir(context))
        n = context.node_config.get("num-partitions")
        if n is not None and int(n) != json.loads(str(msg.content["settings"]["config"]))[
                "clients"]:
            raise ProtocolError(f"node config num-partitions = {n} differs from the config's "
                                "clients")
        content = RecordDict({"profile": ConfigRecord(prof)})
    except (ValueError, KeyError, FileNotFoundError) as exc:
        content = _error(str(exc))
    return Message(content, reply_to=msg)


@client_app.train()
def _train(msg: Message, context: Context) -> Message:
    """Run one round of this client's algorithm; keep its state in ``context.state``."""
    try:
        config_text, payload = _train_payload(msg.content)
        pid = _partition(context)
        state, state_round = _held_state(context)
        reply, new_state = client_round(config_text, pid, payload, state, state_round,
                                        _data_dir(context))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        return Message(_error(str(exc)), reply_to=msg)
    if reply["quit"]:
        return Message(RecordDict({"reply": ConfigRecord({"quit": True})}), reply_to=msg)
    state = pack(new_state)  # kept by the node and sent to the server: packed once
    context.state["ipfl.state"] = ConfigRecord({"round": int(payload["round"]), "arrays": state})
    return Message(_reply_content(reply, state), reply_to=msg)


@client_app.evaluate()
def _evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the model this client keeps (its state's parameters) on its own splits."""
    import torch

    from .client import evaluate
    from .remote import _own

    try:
        config_text = str(msg.content["settings"]["config"])
        pid = _partition(context)
        cfg, fed = _own(config_text, pid, _data_dir(context))
        held, _ = _held_state(context)
        if held is None:
            raise ProtocolError(f"client {pid} holds no model to evaluate")
        st = {k: torch.from_numpy(v) for k, v in held.items()}
        params, buffers = get_algorithm(cfg).evaluated_model(st)  # Ditto: the personal one
        d = fed.data[pid]
        acc, loss = evaluate(fed.model, params, buffers, d.X_test, d.y_test)
        content = RecordDict({"reply": ConfigRecord({"quit": False}),
                              "metrics": MetricRecord({"acc": acc, "loss": loss})})
    except (ValueError, KeyError, FileNotFoundError) as exc:
        content = _error(str(exc))
    return Message(content, reply_to=msg)


# ----- the server ---------------------------------------------------------------------------


def exchange(grid: Grid, msgs: list[Message], timeout: float) -> list[Message]:
    """Send ``msgs`` and collect their replies until all came or ``timeout`` s passed.

    As ``grid.send_and_receive``, but pulling every ``IPFL_FLOWER_POLL`` seconds
    (:func:`training.flower_pace.poll_seconds`, default 0.1; flwr 1.42's
    ``send_and_receive`` on a deployed grid pulls every 3 s, which alone would cost up
    to 3 s a round) through the Grid's own ``push_messages`` /
    ``pull_messages``; a grid without them
    (the tests' in-process stand-in) is asked with ``send_and_receive``. A reply that
    has not come by the deadline is missing from the list (the client is dropped).
    """
    if not (hasattr(grid, "push_messages") and hasattr(grid, "pull_messages")):
        return list(grid.send_and_receive(msgs, timeout=timeout))
    interval = poll_seconds()
    waiting = set(grid.push_messages(msgs))
    deadline = time.monotonic() + timeout
    out: list[Message] = []
    while waiting:
        got = list(grid.pull_messages(waiting))
        out += got
        waiting -= {m.metadata.reply_to_message_id for m in got}
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(interval)
    return out


def _wait_for_nodes(grid: Grid, m: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= m:
            return nodes
        if time.monotonic() >= deadline:
            raise ProtocolError(f"only {len(nodes)} nodes connected within {timeout:g} s, "
                                f"but the config has clients = {m}")
        time.sleep(0.5)


def _profiles(grid: Grid, coord: Coordinator, nodes: list[int],
              timeout: float) -> dict[int, int]:
    """Query every node once; return partition id -> node id.

    A node that does not answer, fails, or sends a malformed profile is logged and its
    partition registered as dropped (:meth:`Coordinator.setup`); a partition id out of
    range or claimed by two nodes is the deployment's error and refused in one line.
    """
    content = RecordDict({"settings": ConfigRecord({"config": coord.config_text})})
    msgs = [Message(content, dst_node_id=n, message_type="query.profile", group_id="profile")
            for n in nodes]
    replies = {r.metadata.src_node_id: r for r in exchange(grid, msgs, timeout)}
    m = coord.cfg.clients
    node_of: dict[int, int] = {}
    profiles: dict[int, dict[str, Any] | str | None] = {}
    for n in nodes:
        rep = replies.get(n)
        why = None
        if rep is None:
            why = f"did not answer the profile query within {timeout:g} s"
        elif rep.has_error():
            why = f"failed the profile query: {rep.error.reason}"
        elif "profile" not in rep.content:
            why = ("answered " + str(rep.content["reply"].get("error", ""))
                   if "reply" in rep.content else "sent no profile record")
        if why is not None:
            log(WARNING, "node %d %s", n, why)
            continue
        prof = dict(rep.content["profile"])
        pid = prof.get("partition")
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < m:
            raise ProtocolError(f"node {n} has partition id {pid!r}, out of range "
                                f"0 <= partition-id < {m}")
        if pid in node_of:
            raise ProtocolError(f"partition id {pid} is held by two nodes ({node_of[pid]} and "
                                f"{n}); give every SuperNode its own partition-id")
        node_of[pid], profiles[pid] = n, prof
    coord.setup(profiles)
    return node_of


def _round(grid: Grid, coord: Coordinator, node_of: dict[int, int], t: int,
           timeout: float) -> list[dict[str, Any]]:
    plan, payloads = coord.messages(t)
    pid_of = {n: i for i, n in node_of.items()}
    msgs = [Message(_train_content(coord.config_text, p), dst_node_id=node_of[i],
                    message_type="train", group_id=str(t)) for i, p in payloads.items()]
    replies: dict[int, dict[str, Any] | str | None] = {}
    for rep in exchange(grid, msgs, timeout):
        i = pid_of.get(rep.metadata.src_node_id)
        if i is None:
            continue
        if rep.has_error():
            replies[i] = f"{rep.error.reason}"
        else:
            try:
                replies[i] = _reply_payload(rep.content)
            except KeyError as exc:
                replies[i] = f"malformed reply (no {exc})"
            except (TypeError, ValueError, AttributeError) as exc:
                replies[i] = f"malformed reply ({type(exc).__name__}: {exc})"
    rows = coord.finish(plan, replies)
    for d in coord.drops:
        if d.round == t:
            log(WARNING, "round %d: client %d dropped (%s)", t, d.client, d.why)
    return rows


def _final_evaluation(grid: Grid, coord: Coordinator, node_of: dict[int, int],
                      timeout: float) -> None:
    active = [i for i in range(coord.cfg.clients) if bool(coord.state.active[i])]
    content = RecordDict({"settings": ConfigRecord({"config": coord.config_text})})
    msgs = [Message(content, dst_node_id=node_of[i], message_type="evaluate", group_id="final")
            for i in active]
    pid_of = {n: i for i, n in node_of.items()}
    out: dict[str, Any] = {}
    for rep in exchange(grid, msgs, timeout):
        i = pid_of.get(rep.metadata.src_node_id)
        if i is None or rep.has_error() or "metrics" not in rep.content:
            continue
        metrics = dict(rep.content["metrics"])
        why = check_evaluation(metrics)
        if why is not None:  # recorded as refused, never as a score
            log(WARNING, "final evaluation: client %d refused (%s)", i, why)
            out[str(i)] = {"refused": why}
        else:
            out[str(i)] = metrics
    folder = coord.rd.path / "flower"
    folder.mkdir(exist_ok=True)
    atomic_write_text(folder / "final_evaluation.json", json.dumps(out, indent=1, sort_keys=True))


def server_main(grid: Grid, context: Context, settings: FlowerSettings | None = None,
                outcome: dict[str, Any] | None = None) -> None:
    """Run a whole run over ``grid``; errors become one logged line and ``outcome["error"]``.

    ``outcome`` (optional) receives ``rows`` (all metric rows), ``seconds`` (per round)
    and ``error`` (None or the one-line reason).
    """
    outcome = {} if outcome is None else outcome
    outcome.update(error=None, rows=[], seconds=[])
    try:
        pace_flower()  # flwr's 1 s .. 10 s object-pull retries: poll s .. 1 s
        s = settings or FlowerSettings.from_run_config(dict(context.run_config))
        with RunDir(s.run_dir).lock():  # one writer at a time, as ipfl train
            _serve(grid, s, outcome)
    except (ValueError, FileNotFoundError) as exc:  # ProtocolError is a ValueError
        outcome["error"] = str(exc)
        log(ERROR, "ipfl: %s", exc)
        run_dir = getattr(settings, "run_dir", None) or dict(context.run_config).get("run-dir")
        if run_dir and Path(str(run_dir)).is_dir():
            folder = Path(str(run_dir)) / "flower"
            folder.mkdir(exist_ok=True)
            atomic_write_text(folder / "error.txt", str(exc) + "\n")


def _serve(grid: Grid, s: FlowerSettings, outcome: dict[str, Any]) -> None:
    """Run the rounds of :func:`server_main` while it holds the run's lock."""
    coord = Coordinator(s.config, s.run_dir, resume=s.resume, overrides=list(s.overrides))
    nodes = _wait_for_nodes(grid, coord.cfg.clients, s.node_timeout)
    node_of = _profiles(grid, coord, nodes, s.round_timeout)
    timings = coord.rd.path / "flower" / "timings.json"
    timings.parent.mkdir(exist_ok=True)
    first = coord.next_round
    for t in range(first, coord.cfg.rounds + 1):
        t0 = time.perf_counter()
        rows = _round(grid, coord, node_of, t, s.round_timeout)
        outcome["seconds"].append(time.perf_counter() - t0)
        atomic_write_text(timings, json.dumps({"first_round": first,
                                       "seconds": outcome["seconds"]}))
        acc = np.mean([r["acc"] for r in rows])
        log(INFO, "ipfl round %d/%d: mean acc %.4f (%.2f s)", t, coord.cfg.rounds, acc,
                 outcome["seconds"][-1])
    _final_evaluation(grid, coord, node_of, s.round_timeout)
    outcome["rows"] = coord.rows
    outcome["drops"] = [vars(d) for d in coord.drops]


def make_server_app(settings: FlowerSettings | None = None,
                    outcome: dict[str, Any] | None = None) -> ServerApp:
    """Return a ServerApp running :func:`server_main` (settings None: from the run config)."""
    app = ServerApp()

    @app.main()
    def _main(grid: Grid, context: Context) -> None:
        server_main(grid, context, settings, outcome)

    return app


#: the ServerApp ``flwr run`` loads (settings from the run config)
server_app = make_server_app()
