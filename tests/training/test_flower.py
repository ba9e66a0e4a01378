"""The Flower transport records exactly what ``ipfl train`` records (no Ray: a stand-in Grid).

The stand-in ``LocalGrid`` below delivers each message to the real ClientApp in this
process, with one ``Context`` per node (its ``partition-id`` and its own ``state``), as a
SuperNode would. It is pinned to flwr 1.42: building a ``Message`` outside Flower's
runtime needs the internal ``TaskIdentity`` set.
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings
import zipfile

import pytest

pytest.importorskip("flwr")

import numpy as np  # noqa: E402
from flwr.app import Context, RecordDict  # noqa: E402
from flwr.supercore.task_identity import TaskIdentity  # noqa: E402

from training import Config, audit_run, train  # noqa: E402
from training.algorithms import methods
from training.flower import FlowerSettings, client_app, pack, server_main, unpack  # noqa: E402
from training.ledger import Ledger  # noqa: E402
from training.rundir import RunDir  # noqa: E402


class LocalGrid:
    """A pinned, in-process stand-in for ``flwr.serverapp.Grid`` calling the real ClientApp.

    ``silent`` maps a round (the message's group id) to partition ids that never answer
    (a timeout); ``partitions`` lists each node's partition id (default 0 .. m-1).
    """

    def __init__(self, partitions, silent=None):
        self.nodes = {1000 + 7 * k: Context(run_id=1, node_id=1000 + 7 * k,
                                            node_config={"partition-id": p,
                                                         "num-partitions": len(partitions)},
                                            state=RecordDict(), run_config={})
                      for k, p in enumerate(partitions)}
        self.silent = silent or {}

    def get_node_ids(self):
        return list(self.nodes)

    def send_and_receive(self, messages, *, timeout=None):
        replies = []
        for msg in messages:
            ctx = self.nodes[msg.metadata.dst_node_id]
            if ctx.node_config["partition-id"] in self.silent.get(msg.metadata.group_id, ()):
                continue
            replies.append(self.deliver(msg, ctx))
        return replies

    def deliver(self, msg, ctx):
        return client_app(msg, ctx)


@pytest.fixture(autouse=True)
def _task_identity():
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 0
    yield


def _cfg(**kw) -> Config:
    # Flower clients train one by one, as ipfl train's per-client loop does; the batched
    # client step equals that loop only up to float rounding (tests/training/test_batched.py)
    return Config(clients=4, rounds=3, epochs=1, hidden=16, max_samples=400, beta=0.5,
                  client_batching="off", **kw)


def _flower(cfg, run_dir, grid=None, **kw):
    grid = grid or LocalGrid(range(cfg.clients))
    outcome = {}
    server_main(grid, Context(0, 0, {}, RecordDict(), {}),
                FlowerSettings(run_dir=str(run_dir), config=cfg, round_timeout=5,
                               node_timeout=1, **kw), outcome)
    return outcome


def _rows(path):
    return RunDir(path).read_metrics()


@pytest.mark.parametrize("algorithm", [*methods(), "fedavg+attacker"])
def test_flower_run_records_what_train_records(tmp_path, algorithm):
    """Same seed, partition, config: same graphs, payments (1e-9), accuracies (1e-6).

    ``fedavg+attacker``: a sign-flip attacker, whose message needs the weight of its own
    upload (``own_start``) to travel in Flower's payload.
    """
    # Prepare
    name, _, attacked = algorithm.partition("+")
    cfg = _cfg().replace(algorithm=name)
    if attacked:
        cfg = cfg.replace(roles="trader:3,attacker:1", attack="sign_flip_update")
    # Execute
    train(cfg, tmp_path / "train", progress=False)
    outcome = _flower(cfg, tmp_path / "flower")
    # Assert
    assert outcome["error"] is None
    a, b = _rows(tmp_path / "train"), _rows(tmp_path / "flower")
    assert [(r["round"], r["client"], r["active"]) for r in a] == \
        [(r["round"], r["client"], r["active"]) for r in b]
    for ra, rb in zip(a, b, strict=True):
        for key in ("acc", "val_acc", "best_acc"):
            assert math.isclose(ra[key], rb[key], abs_tol=1e-6), (key, ra, rb)
        for key in ("U", "cum_U", "p", "paid", "received"):
            assert math.isclose(ra[key], rb[key], abs_tol=1e-9), (key, ra, rb)
        assert (ra["imports"], ra["importers"]) == (rb["imports"], rb["importers"])
    ra, rb = RunDir(tmp_path / "train").read_rounds(), RunDir(tmp_path / "flower").read_rounds()
    assert sorted(ra) == sorted(rb)
    for t in ra:
        assert ra[t]["outputs"]["A"] == rb[t]["outputs"]["A"]
    if name == "ipfl":
        la, lb = Ledger(tmp_path / "train/ledger.sqlite"), Ledger(tmp_path / "flower/ledger.sqlite")
        for t in ra:
            ea, eb = la.entries(t), lb.entries(t)
            assert [e[:4] for e in ea] == [e[:4] for e in eb]
            assert all(abs(x[4] - y[4]) <= 1e-9 for x, y in zip(ea, eb, strict=True))
    assert audit_run(tmp_path / "flower").ok


def test_flower_run_resumes_and_train_resumes_it(tmp_path):
    """A Flower checkpoint has train's layout: Flower and ``train`` both resume it."""
    # Prepare: two Flower runs stopped after round 1 (a config of 1 round, then 3)
    cfg = _cfg()
    train(cfg, tmp_path / "train", progress=False)
    for name in ("flower", "mixed"):
        _flower(cfg.replace(rounds=1, hyper=cfg.hyper), tmp_path / name)
    # Execute: extend one over Flower with fresh nodes (empty state), the other in process
    outcome = _flower(None, tmp_path / "flower", LocalGrid(range(4)), resume=True,
                      overrides=("rounds=3",))
    train(None, tmp_path / "mixed", resume=True, progress=False, overrides=["rounds=3"])
    # Assert
    assert outcome["error"] is None
    want = [r["acc"] for r in _rows(tmp_path / "train")]
    for name in ("flower", "mixed"):
        assert [r["acc"] for r in _rows(tmp_path / name)] == pytest.approx(want, abs=1e-6)


def test_silent_client_is_dropped_and_market_settled_without_it(tmp_path):
    """A client that misses round 2's timeout is recorded as dropped and leaves the market."""
    # Execute
    outcome = _flower(_cfg(), tmp_path, LocalGrid(range(4), silent={"2": {1}}))
    # Assert
    assert outcome["error"] is None
    rows = _rows(tmp_path)
    r2 = next(r for r in rows if r["round"] == 2 and r["client"] == 1)
    assert r2["dropped"] == 1.0 and not r2["active"]
    assert RunDir(tmp_path).read_rounds()[3]["clients"] == [0, 2, 3]
    drops = [json.loads(x) for x in (tmp_path / "drops.jsonl").read_text().splitlines()]
    assert drops == [{"client": 1, "round": 2, "why": "timeout"}]
    assert audit_run(tmp_path).ok


def test_quitting_client_matches_train(tmp_path):
    """A client whose bill exceeds its budget quits by flag, as in ``ipfl train``."""
    # Prepare
    cfg = _cfg(budget=(0.0, math.inf, math.inf, math.inf))
    # Execute
    train(cfg, tmp_path / "train", progress=False)
    outcome = _flower(cfg, tmp_path / "flower")
    # Assert
    assert outcome["error"] is None
    a, b = _rows(tmp_path / "train"), _rows(tmp_path / "flower")
    assert [r["active"] for r in a] == [r["active"] for r in b]
    assert [r["p"] for r in a] == pytest.approx([r["p"] for r in b], abs=1e-9)


@pytest.mark.parametrize(("partitions", "message"), [
    ([0, 1, 2], "only 3 nodes connected"),
    ([0, 1, 1, 2], "held by two nodes"),
])
def test_bad_federation_is_one_clear_error(tmp_path, partitions, message):
    """Too few nodes, a partition id out of range or duplicated: one line, no traceback."""
    outcome = _flower(_cfg(), tmp_path, LocalGrid(partitions))
    assert message in outcome["error"]
    assert "\n" not in outcome["error"]


def test_node_out_of_range_leaves_its_partition_dropped(tmp_path):
    """A node configured with partition id 7 of 4 answers an error; partition 3 is dropped."""
    # Execute
    outcome = _flower(_cfg(), tmp_path, LocalGrid([0, 1, 2, 7]))
    # Assert
    assert outcome["error"] is None
    assert _drops(tmp_path) == [{"client": 3, "round": 0, "why": "profile: no valid reply "
                                 "from a node with this partition id"}]
    assert audit_run(tmp_path).ok


def test_profile_reply_missing_a_field_drops_that_client(tmp_path):
    """A node whose profile reply lacks ``n_train`` is dropped in round 0, the run goes on."""
    # Prepare
    class Lacking(LocalGrid):
        def deliver(self, msg, ctx):
            rep = client_app(msg, ctx)
            if msg.metadata.message_type == "query.profile" and ctx.node_config[
                    "partition-id"] == 2:
                del rep.content["profile"]["n_train"]
            return rep

    # Execute
    outcome = _flower(_cfg(), tmp_path, Lacking(range(4)))
    # Assert
    assert outcome["error"] is None
    assert _drops(tmp_path) == [{"client": 2, "round": 0,
                                 "why": "profile: the reply lacks ['n_train']"}]
    assert audit_run(tmp_path).ok


def _drops(path):
    return [json.loads(x) for x in (path / "drops.jsonl").read_text().splitlines()]


class Hostile(LocalGrid):
    """Client 1 tampers with its reply of one message type (a round's group id or profile)."""

    def __init__(self, partitions, when, tamper):
        super().__init__(partitions)
        self.when, self.tamper = when, tamper

    def deliver(self, msg, ctx):
        rep = client_app(msg, ctx)
        if ctx.node_config["partition-id"] == 1 and msg.metadata.group_id == self.when:
            self.tamper(rep.content)
        return rep


def _upload(content, value):
    content["reply"]["upload"] = pack({"upload": value})


def _first_upload(content):
    return unpack(content["reply"]["upload"])["upload"]


def _set(record, key, value):
    """Set ``key`` of a profile reply's record, or of a train reply's one record
    (``record = "metrics"``: a metric, kept there under ``metric.``)."""
    def tamper(content):
        if record == "metrics":
            content["reply"]["metric." + key] = value
        else:
            content[record][key] = value
    return tamper


def _set_blob(name, value):
    def tamper(content):
        content["reply"][name] = value
    return tamper


def _nan_state(content):
    state = unpack(content["reply"]["state"])
    state["params"] = np.full(state["params"].shape, np.nan, np.float32)
    content["reply"]["state"] = pack(state)


def _zip_with(member, data, compress, times=1):
    buf = io.BytesIO()
    with warnings.catch_warnings():  # zipfile warns of a duplicate name: that is the point
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(buf, "w", compression=compress) as zf:
            for _ in range(times):
                zf.writestr(member, data)
    return buf.getvalue()


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _change_upload(f):
    def tamper(content):
        _upload(content, f(_first_upload(content)))
    return tamper


def _nan_at(k):
    def f(u):
        u = u.copy()
        u[k] = np.nan
        return u
    return f


#: (name, message group, tamper, the drop reason's start)
HOSTILE = [
    ("nan upload", "1", _change_upload(_nan_at(3)), "bad reply: upload[3] = nan is not finite"),
    ("inf upload", "1", _change_upload(lambda u: np.full_like(u, np.inf)),
     "bad reply: upload[0] = inf is not finite"),
    ("short upload", "1", _change_upload(lambda u: u[:-5]), "bad reply: upload has shape"),
    ("2-D upload", "1", _change_upload(lambda u: np.stack([u, u])),
     "bad reply: upload has shape"),
    ("1-element upload", "1", _change_upload(lambda u: u[:1]), "bad reply: upload has shape"),
    ("float64 upload", "1", _change_upload(lambda u: u.astype(np.float64)),
     "bad reply: upload has dtype float64, expected float32"),
    ("int64 upload", "1", _change_upload(lambda u: u.astype(np.int64)),
     "bad reply: upload has dtype int64, expected float32"),
    ("acc 5", "2", _set("metrics", "acc", 5.0), "bad reply: metric acc = 5.0 is not in [0, 1]"),
    ("val_acc 1e9", "1", _set("metrics", "val_acc", 1e9),
     "bad reply: metric val_acc = 1000000000.0 is not in [0, 1]"),
    ("val_acc nan", "3", _set("metrics", "val_acc", float("nan")),
     "bad reply: metric val_acc = nan"),
    ("round N 0", "1", _set("reply", "n_train", 0), "bad reply: n_train = 0 differs"),
    ("round N -5", "1", _set("reply", "n_train", -5), "bad reply: n_train = -5 differs"),
    ("round N 1e6", "2", _set("reply", "n_train", 1e6), "bad reply: n_train = 1000000.0 differs"),
    ("round N 1e13", "1", _set("reply", "n_train", 10**13),
     "bad reply: n_train = 10000000000000 differs"),
    ("profile N 0", "profile", _set("profile", "n_train", 0),
     "profile: n_train = 0 is not an integer in [1, 400]"),
    ("profile N -5", "profile", _set("profile", "n_train", -5), "profile: n_train = -5 is not"),
    ("profile N 1e6", "profile", _set("profile", "n_train", 1e6),
     "profile: n_train = 1000000.0 is not"),
    ("profile N 1e13", "profile", _set("profile", "n_train", 10**13),
     "profile: n_train = 10000000000000 is not"),
    ("nan state", "1", _nan_state, "bad reply: state['params'][0] = nan is not finite"),
    # the packed arrays themselves (training.flower.unpack), refused before any is read
    ("upload not bytes", "1", _set_blob("upload", "AAAA"),
     "error: malformed reply (ValueError: packed arrays are str, not bytes)"),
    ("upload not a zip", "1", _set_blob("upload", b"\x93NUMPY not a zip"),
     "error: malformed reply (ValueError: packed arrays are not a zip of .npy arrays"),
    ("deflated 1 MB of zeros", "1", _set_blob("info", _zip_with(
        "x.npy", b"\0" * 10**6, zipfile.ZIP_DEFLATED)),
     "error: malformed reply (ValueError: packed arrays: the members claim more bytes than"),
    ("small deflated member", "1", _set_blob("info", _zip_with(
        "x.npy", bytes(range(256)), zipfile.ZIP_DEFLATED)),
     "error: malformed reply (ValueError: packed arrays: member 'x.npy' is not a stored .npy"),
    ("pickled array", "1", _set_blob("upload", _zip_with(
        "upload.npy", _npy(np.array([{"a": 1}], dtype=object)), zipfile.ZIP_STORED)),
     "error: malformed reply (ValueError: packed arrays: member 'upload.npy': an object array"),
    ("member not .npy", "1", _set_blob("upload", _zip_with(
        "upload.txt", _npy(np.zeros(3, np.float32)), zipfile.ZIP_STORED)),
     "error: malformed reply (ValueError: packed arrays: member 'upload.txt' is not a stored"),
    ("header asks for 80 TB", "1", _set_blob("upload", _zip_with(
        "upload.npy", _npy(np.zeros(4, np.float32)).replace(b"(4,)", b"(9999999999999,)"),
        zipfile.ZIP_STORED)),
     "error: malformed reply (ValueError: packed arrays: member 'upload.npy': its header says "
     "shape (9999999999999,)"),
    ("a member twice", "1", _set_blob("upload", _zip_with(
        "upload.npy", _npy(np.zeros(3, np.float32)), zipfile.ZIP_STORED, times=2)),
     "error: malformed reply (ValueError: packed arrays: a member name occurs twice"),
]


@pytest.mark.parametrize(("when", "tamper", "why"), [h[1:] for h in HOSTILE],
                         ids=[h[0] for h in HOSTILE])
def test_hostile_reply_drops_that_client_and_the_run_finishes(tmp_path, when, tamper, why):
    """Each hostile reply of issue 21 drops client 1 in that round, with the reason
    recorded; the other clients finish every round and the run passes its audit."""
    # Prepare
    cfg = _cfg()
    t = 0 if when == "profile" else int(when)
    # Execute
    outcome = _flower(cfg, tmp_path, Hostile(range(4), when, tamper))
    # Assert
    assert outcome["error"] is None
    drops = _drops(tmp_path)
    assert [(d["client"], d["round"]) for d in drops] == [(1, t)]
    assert drops[0]["why"].startswith(why), drops[0]["why"]
    rows = _rows(tmp_path)
    assert max(r["round"] for r in rows) == cfg.rounds
    assert all(math.isfinite(r["acc"]) and 0 <= r["acc"] <= 1 for r in rows)
    assert all(r["active"] == (r["client"] != 1 or r["round"] < t) for r in rows)
    later = RunDir(tmp_path).read_rounds()
    assert all(1 not in later[s]["clients"] for s in later if s > t)
    assert audit_run(tmp_path).ok


@pytest.mark.parametrize(("version", "message"), [
    (None, "Flower is not installed: pip install 'ipfl[flower]'"),
    ("1.43.0", "Flower 1.43.0 is installed, but ipfl needs flwr>=1.42,<1.43"),
])
def test_missing_or_other_flower_is_one_line(monkeypatch, version, message):
    """Without flwr 1.42 the import error names the extra, on one line."""
    from importlib import metadata

    from training.remote import require_flower

    def fake(name):
        if version is None:
            raise metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(metadata, "version", fake)
    with pytest.raises(ImportError, match=re.escape(message)):
        require_flower()


@pytest.mark.parametrize("algorithm", ["fedavg", "ditto"])
def test_final_evaluation_scores_the_model_the_rows_score(tmp_path, algorithm):
    """The ClientApp's final evaluate action scores the algorithm's evaluated model (Ditto:
    the personal one), so it equals the last round's test accuracy in the metric rows."""
    outcome = _flower(_cfg().replace(algorithm=algorithm), tmp_path)
    assert outcome["error"] is None
    final = json.loads((tmp_path / "flower" / "final_evaluation.json").read_text())
    last = {r["client"]: r["acc"] for r in _rows(tmp_path) if r["round"] == 3}
    assert {int(k): v["acc"] for k, v in final.items()} == pytest.approx(last, abs=1e-12)


@pytest.mark.slow
def test_nan_upload_is_dropped_in_the_ray_simulation(tmp_path):
    """Through Flower's real Ray simulation (``ipfl flower simulate``'s path): client 1's
    NaN upload in round 1 drops it with the reason; the run finishes and passes its audit."""
    pytest.importorskip("ray")
    import os
    import subprocess
    import sys
    from pathlib import Path

    # Prepare
    here = Path(__file__).parent
    root = here.parents[1]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    # Execute
    done = subprocess.run([sys.executable, str(here / "flower_hostile_sim.py"),
                           str(tmp_path / "run")], capture_output=True, text=True, env=env,
                          timeout=600, cwd=tmp_path)
    # Assert
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"error": None}
    assert _drops(tmp_path / "run") == [
        {"client": 1, "round": 1, "why": "bad reply: upload[0] = nan is not finite"}]
    assert audit_run(tmp_path / "run").ok


def test_final_evaluation_refuses_an_out_of_range_score(tmp_path):
    """A client's final ``evaluate`` reply of acc = 5.0 is recorded as refused, never as
    a score; the others' scores are written (valid JSON: no NaN)."""
    # Prepare
    def tamper(content):
        content["metrics"]["acc"] = 5.0  # the final evaluation's reply keeps a MetricRecord

    # Execute
    outcome = _flower(_cfg(), tmp_path, Hostile(range(4), "final", tamper))
    # Assert
    assert outcome["error"] is None
    final = json.loads((tmp_path / "flower" / "final_evaluation.json").read_text())
    assert final["1"] == {"refused": "metric acc = 5.0 is not in [0, 1]"}
    assert all(0 <= final[k]["acc"] <= 1 for k in ("0", "2", "3"))


def test_clients_read_their_own_data_folder_never_the_servers(tmp_path, monkeypatch):
    """The server's config names ``data_dir = <server-chosen>``; every client loads from
    its node config's ``data-dir`` instead, and the run finishes."""
    from training import data as data_module

    # Prepare: a folder dataset whose loader records the folder it is asked to read
    read: list[str] = []
    real = data_module.DATASETS["fashion_mnist"]

    def loader(folder):
        read.append(str(folder))
        return data_module.load_synthetic()

    monkeypatch.setitem(data_module.DATASETS, "fashion_mnist",
                        data_module.Source(loader, real.files, "", real.package))
    own = tmp_path / "own"
    own.mkdir()
    cfg = _cfg(dataset="fashion_mnist", data_dir=str(tmp_path / "server-chosen"))
    grid = LocalGrid(range(4))
    for ctx in grid.nodes.values():
        ctx.node_config["data-dir"] = str(own)
    # Execute
    outcome = _flower(cfg, tmp_path / "run", grid)
    # Assert
    assert outcome["error"] is None
    assert read and set(read) == {str(own)}
    assert audit_run(tmp_path / "run").ok


@pytest.mark.parametrize("when", ["0", "2"])
def test_info_of_another_shape_drops_that_client(tmp_path, when):
    """FedFomo's weights: a client sending them in another shape is dropped, whether the
    server holds the entry already (round 2) or takes the majority's form (round 0)."""
    # Prepare
    def tamper(content):
        info = unpack(content["reply"]["info"])
        info["fomo_w"] = np.zeros(7)
        content["reply"]["info"] = pack(info)

    # Execute
    outcome = _flower(_cfg().replace(algorithm="fedfomo"), tmp_path,
                      Hostile(range(4), when, tamper))
    # Assert
    assert outcome["error"] is None
    drops = _drops(tmp_path)
    assert [(d["client"], d["round"]) for d in drops] == [(1, int(when))]
    assert "info['fomo_w'] has shape (7,)" in drops[0]["why"]
    assert audit_run(tmp_path).ok


def test_resumed_client_reporting_another_n_is_dropped(tmp_path):
    """On resume every client profiles again: one whose n_train differs from the N the
    committed rounds recorded is dropped in the first resumed round; the run finishes."""
    # Prepare: one committed market round, then a resume where client 1 shrinks its N
    cfg = _cfg()
    _flower(cfg.replace(rounds=1, hyper=cfg.hyper), tmp_path)
    N1 = next(r["N"] for r in _rows(tmp_path) if r["client"] == 1)

    def tamper(content):
        content["profile"]["n_train"] = int(N1) - 1

    # Execute
    outcome = _flower(None, tmp_path, Hostile(range(4), "profile", tamper), resume=True,
                      overrides=("rounds=3",))
    # Assert
    assert outcome["error"] is None
    assert _drops(tmp_path) == [{"client": 1, "round": 2, "why": (
        f"profile: n_train = {int(N1) - 1} differs from the N = {int(N1)} the run "
        "registered for this client")}]
    assert {r["N"] for r in _rows(tmp_path) if r["client"] == 1} == {N1}
    assert audit_run(tmp_path).ok
