r"""The two halves of a round for a transport whose clients run elsewhere (no Flower here).

:mod:`training.loop` runs server and clients in one process. A transport whose clients
are remote (:mod:`training.flower`) splits that work in two halves that exchange
*payloads*: plain dicts of numbers, strings and numpy arrays, so any message format can
carry them.

* :class:`Coordinator` is the server half. It never sees a client's data: it builds its
  view of the federation from the config and the clients' profile replies
  (:func:`training.federation.server_view`) and runs the same
  :class:`~training.session.Session` as ``ipfl train`` (every check, the plan, the
  absorb, the commit), turning the plan into one payload per client and gathering the
  replies (a reply may be missing: the client is dropped and the drop recorded). The
  run directory is therefore the same as ``ipfl train``'s and ``ipfl audit-run``
  checks it unchanged.
* :func:`client_round` is the client half: it loads the client's own split (by its
  partition id, deterministically from the config's seed, as :func:`training.federation.prepare`
  splits), runs :func:`training.client.run_client` and returns its reply payload and its
  new state. It holds no state between calls: the caller keeps the state (Flower: in
  the node's ``context.state``).

Neither half implements any part of an algorithm or of the mechanism: both call the
same functions as ``ipfl train``, which is why a Flower run records the same graphs,
payments and accuracies (``tests/training/test_flower.py``).

Protocol (one message per client and step):

1. *profile* (once): the server sends the config; the client answers its partition id,
   true data sizes, input shape, number of classes, group, and a digest of its initial
   model (the server refuses a run whose clients start from different models).
2. *train* (rounds ``0 .. rounds``): the server sends each client still in its start
   point, proximal centre and weight, bill, extras and whether the market kept it
   (``stays``); a client refused by the quit rule, or whose bill exceeds its own budget,
   answers ``quit`` without training. The others answer their upload, info, metrics
   and new state (the server keeps a copy of every state in its checkpoint, as
   ``train`` does, so a killed run resumes; the first round after a resume sends each
   client its state back).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .algorithms import get_algorithm
from .client import run_client
from .config import Config
from .federation import Federation, prepare, server_view
from .replies import POOL_SIZES, STATE_FACTOR, Expect, check_profile, check_train_reply
from .session import Plan, Session

__all__ = ["FLOWER_EXTRA", "PROFILE_FIELDS", "Coordinator", "ProtocolError", "client_profile",
           "client_round", "require_flower"]

#: the supported Flower versions and the extra that installs them
FLOWER_SPEC, FLOWER_EXTRA = ">=1.42,<1.43", "ipfl[flower]"

#: fields every profile reply must carry
PROFILE_FIELDS = ("partition", "n_train", "n_val", "n_test", "input_shape", "n_classes",
                  "group", "theta0_digest")


class ProtocolError(ValueError):
    """Bad input from the federation (nodes, partition ids, replies): one clear line."""


def require_flower(simulation: bool = False) -> None:
    """Raise :class:`ImportError` with one line naming the extra unless flwr 1.42 is installed."""
    from importlib import metadata

    extra = "ipfl[flower-sim]" if simulation else FLOWER_EXTRA
    try:
        version = metadata.version("flwr")
    except metadata.PackageNotFoundError:
        raise ImportError(f"Flower is not installed: pip install '{extra}' "
                          f"(flwr{FLOWER_SPEC}, Python >= 3.11)") from None
    if not version.startswith("1.42."):
        raise ImportError(f"Flower {version} is installed, but ipfl needs flwr{FLOWER_SPEC}: "
                          f"pip install '{extra}'")
    if simulation:
        try:
            metadata.version("ray")
        except metadata.PackageNotFoundError:
            raise ImportError("the Flower simulation needs Ray: pip install "
                              "'ipfl[flower-sim]'") from None


# ----- payload helpers --------------------------------------------------------------------
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _tensors(arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items()}


def _own_weight(payload: dict[str, Any], key: str) -> float | None:
    """Return the payload's weight of the client's own upload (absent: not declared)."""
    return float(payload[key]) if key in payload else None


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(_np(t.contiguous()).tobytes()).hexdigest()[:16]


def _config_text(cfg: Config) -> str:
    return cfg.dumps()


@functools.lru_cache(maxsize=2)
def _client_federation(config_text: str) -> Federation:
    """Return the federation as :func:`prepare` builds it (cached: a simulated node reuses it)."""
    return prepare(Config.from_dict(json.loads(config_text)))


def own_config_text(config_text: str, data_dir: str) -> str:
    """Return the server's config with ``data_dir`` replaced by the client's own folder.

    A client never reads from a path the server chose: whatever ``data_dir`` the server
    sends, the client loads from its own configured folder (``data_dir``: the node
    config's ``data-dir``, else ``IPFL_DATA_DIR``, else the dataset's default folder).
    """
    doc = json.loads(config_text)
    if not isinstance(doc, dict):
        raise ProtocolError("the server's config is not a JSON object")
    doc["data_dir"] = data_dir
    return json.dumps(doc, sort_keys=True)


def _own(config_text: str, partition: int, data_dir: str = "") -> tuple[Config, Federation]:
    text = own_config_text(config_text, data_dir)
    cfg = Config.from_dict(json.loads(text))
    if not 0 <= partition < cfg.clients:
        raise ProtocolError(f"partition id {partition} is out of range: the config has "
                            f"clients = {cfg.clients} (0 <= partition-id < {cfg.clients})")
    return cfg, _client_federation(text)


# ----- the client half --------------------------------------------------------------------
def client_profile(config_text: str, partition: int, data_dir: str = "") -> dict[str, Any]:
    """Return client ``partition``'s profile reply: sizes, shapes, group, model digest.

    ``data_dir`` is the client's own data folder (the server's ``data_dir`` is ignored:
    :func:`own_config_text`).
    """
    cfg, fed = _own(config_text, partition, data_dir)
    d = fed.data[partition]
    with torch.no_grad():
        n_classes = int(fed.model(d.X_train[:1]).shape[1])
    return {"partition": partition, "n_train": d.n_train, "n_val": int(d.y_val.shape[0]),
            "n_test": int(d.y_test.shape[0]), "input_shape": list(d.X_train.shape[1:]),
            "n_classes": n_classes,
            "group": -1 if fed.groups is None else int(fed.groups[partition]),
            "theta0_digest": _digest(fed.theta0)}


def client_round(config_text: str, partition: int, payload: dict[str, Any],
                 state: dict[str, np.ndarray] | None, state_round: int, data_dir: str = "",
                 ) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Run client ``partition``'s round ``payload["round"]``; return its reply and new state.

    ``state`` / ``state_round`` are what the caller kept from the last call (None / -1
    before the first). A quitting client returns ``({"quit": True, ...}, state)``. The
    reply carries the client's ``n_train`` (the server checks it against the registered
    :math:`N_i`). ``data_dir``: the client's own data folder (:func:`own_config_text`).
    """
    from .algorithms.base import Message

    cfg, fed = _own(config_text, partition, data_dir)
    t = int(payload["round"])
    budget = cfg.per_client("budget")[partition]
    bill = float(payload["bill"])
    if not payload["stays"] or bill > budget:
        return {"quit": True, "bill": bill}, state
    algo = get_algorithm(cfg)
    if "state" in payload:
        own = _tensors(payload["state"])
    elif state is not None and state_round == t - 1:
        own = _tensors(state)
    elif t == 0:
        own = algo.init_client_state(partition, fed.theta0, fed.buffers0)
    else:
        raise ProtocolError(f"client {partition} has no state of round {t - 1} "
                            f"(it holds round {state_round})")
    msg = Message(start=torch.from_numpy(np.array(payload["start"])),
                  center=torch.from_numpy(np.array(payload["center"])),
                  prox=float(payload["prox"]), bill=bill,
                  extras=_tensors(payload.get("extras", {})),
                  own_start=_own_weight(payload, "own_start"),
                  own_center=_own_weight(payload, "own_center"))
    out, metrics = run_client(algo, msg, own, fed.data[partition], fed.context(partition, t))
    new_state = {k: _np(v) for k, v in out.state.items()}
    reply = {"quit": False, "n_train": fed.data[partition].n_train, "upload": _np(out.upload),
             "info": {k: _np(v) for k, v in out.info.items()},
             "metrics": {k: float(v) for k, v in metrics.items()}, "state": new_state}
    return reply, new_state


# ----- the server half --------------------------------------------------------------------
@dataclass
class Drop:
    """A client that left in a round: ``why`` is ``"quit"``, ``"timeout"`` or an error."""

    client: int
    round: int
    why: str


class Coordinator:
    """The server side of a remote run: a :class:`~training.session.Session` fed by payloads.

    Parameters
    ----------
    cfg : Config or None
        The run's config (None on ``resume``: read from the run directory).
    run_dir : path
        As :func:`training.loop.train`'s: a new run refuses a non-empty folder, except
        for the transport's own ``flower/`` sub-folder.
    resume : bool
        Continue from the checkpoint.
    overrides : list of str, optional
        On resume, ``key=value`` changes of non-structural keys (as ``ipfl train``).
    """

    def __init__(self, cfg: Config | None, run_dir: str | Path, *, resume: bool = False,
                 overrides: list[str] | None = None) -> None:
        if not resume and cfg is None:
            raise ValueError("flower: a config is required for a new run")
        self.session = Session.open(run_dir, cfg, resume=resume, overrides=list(overrides or []),
                                    allow=("flower",))
        self.drops: list[Drop] = []
        self._send_state = resume
        #: each valid client's registered N (its profile's n_train)
        self.registered: dict[int, int] = {}
        #: clients registered as dropped at setup, and why (recorded in the next round)
        self.pending: dict[int, str] = {}

    cfg = property(lambda self: self.session.cfg, doc="The run's config.")
    rd = property(lambda self: self.session.rd, doc="The run directory.")
    rows = property(lambda self: self.session.rows, doc="All metric rows so far.")
    state = property(lambda self: self.session.state, doc="The run state (RunState).")

    @property
    def config_text(self) -> str:
        """The config as sent to the clients (JSON)."""
        return _config_text(self.cfg)

    # ----- setup ------------------------------------------------------------------------
    def setup(self, replies: Mapping[int, dict[str, Any] | str | None]) -> None:
        """Build the server's view from the profile replies (partition id -> reply), start.

        ``replies[i]`` is client ``i``'s profile, an error text, or None (no answer). A
        client whose profile is missing, lacks a field or fails :func:`check_profile`,
        whose input shape or number of classes differs from the others' (the most
        common value wins), or whose initial model differs from the server's, is
        *registered as dropped*: it gets no message, and the first round of this
        session records it in ``drops`` with the reason. On resume, a client whose
        ``n_train`` differs from the N the committed rounds recorded is dropped too,
        and every client keeps its recorded N. In a new run a dropped client's
        :math:`N_i` is recorded as the median of the valid clients' (never priced: it
        is out before any market; the stability check sees a typical client).

        Raises
        ------
        ProtocolError
            Fewer than two clients are left (a market needs two), or no two clients
            agree on the input shape and number of classes.
        """
        m, cfg = self.cfg.clients, self.cfg
        pool = min(cfg.max_samples or POOL_SIZES[cfg.dataset], POOL_SIZES[cfg.dataset])
        bad: dict[int, str] = {}
        good: dict[int, dict[str, Any]] = {}
        for i in range(m):
            rep = replies.get(i)
            if rep is None:
                bad[i] = "profile: no valid reply from a node with this partition id"
            elif isinstance(rep, str):
                bad[i] = f"profile: error: {rep}"
            elif lacks := [f for f in PROFILE_FIELDS if f not in rep]:
                bad[i] = f"profile: the reply lacks {lacks}"
            elif (why := check_profile(rep, pool, cfg.groups)) is not None:
                bad[i] = why
            else:
                good[i] = rep
        kinds = Counter((json.dumps(list(r["input_shape"])), int(r["n_classes"]))
                        for r in good.values())
        if not kinds:
            raise ProtocolError(f"no valid profile reply from the {m} clients "
                                f"({'; '.join(f'client {i}: {w}' for i, w in bad.items())})")
        (shape_text, n_classes), votes = kinds.most_common(1)[0]
        if len(kinds) > 1 and votes == kinds.most_common(2)[1][1]:
            raise ProtocolError(f"clients disagree on the input shape and number of classes "
                                f"{sorted(kinds)} with no majority")
        for i, r in list(good.items()):
            if (json.dumps(list(r["input_shape"])), int(r["n_classes"])) != (shape_text,
                                                                             n_classes):
                bad[i] = (f"profile: input_shape = {r['input_shape']} and n_classes = "
                          f"{r['n_classes']} differ from the others' {shape_text} and "
                          f"{n_classes}")
                del good[i]
        recorded = self._registered_before()
        for i in [i for i in good if i in recorded and int(good[i]["n_train"]) != recorded[i]]:
            bad[i] = (f"profile: n_train = {good[i]['n_train']} differs from the N = "
                      f"{recorded[i]} the run registered for this client")
            del good[i]
        groups = [int(good[i]["group"]) if i in good else 0 for i in range(m)]
        has_groups = all(int(r["group"]) >= 0 for r in good.values())
        typical = float(np.median([float(r["n_train"]) for r in good.values()]))
        N = [float(good[i]["n_train"]) if i in good else float(recorded.get(i, typical))
             for i in range(m)]
        fed = server_view(cfg, tuple(json.loads(shape_text)), n_classes, np.array(N),
                          np.array(groups) if has_groups else None)
        digest = _digest(fed.theta0)
        for i in [i for i, r in good.items() if r["theta0_digest"] != digest]:
            bad[i] = ("profile: the client starts from another initial model than the "
                      "server (different torch version or config?)")
            del good[i]
        if len(good) < 2:
            raise ProtocolError(f"only {len(good)} of {m} clients sent a valid profile; a "
                                "market needs two ("
                                + "; ".join(f"client {i}: {w}" for i, w in sorted(bad.items()))
                                + ")")
        self.registered = {i: int(r["n_train"]) for i, r in good.items()}
        self.session.start(fed)
        active = self.state.active
        self.pending = {i: why for i, why in sorted(bad.items()) if bool(active[i])}

    def _registered_before(self) -> dict[int, int]:
        """Return each client's true N as the committed rounds recorded it (resume; else {}).

        The metric rows hold the reported N (a liar's is ``liar_N`` times its true N).
        """
        checkpoint = self.session._checkpoint
        if checkpoint is None:
            return {}
        last = int(checkpoint["round"])
        rows = [r for r in self.rd.read_metrics() if r["round"] == last]
        liars = set(self.cfg.liar)
        return {int(r["client"]): int(round(float(r["N"]) / (
            self.cfg.liar_N if int(r["client"]) in liars else 1.0))) for r in rows}

    @property
    def next_round(self) -> int:
        """The first round not yet completed."""
        return self.session.next_round

    def expect(self, i: int) -> Expect:
        """Return what a train reply of client ``i`` must be (:func:`check_train_reply`)."""
        st, fed = self.state, self.session.fed
        up = st.uploads
        model = int(fed.theta0.numel() + fed.buffers0.numel())
        held = {k: (tuple(v.shape), _np_dtype(v)) for k, v in st.clients[i].items()
                if isinstance(v, torch.Tensor)}
        infos = {k: (tuple(v.shape[1:]), _np_dtype(v)) for k, v in st.infos.items()}
        return Expect(n_train=self.registered[i], upload_shape=(int(up.shape[1]),),
                      upload_dtype=_np_dtype(up), state=held, infos=infos,
                      state_limit=STATE_FACTOR * model + 64,
                      info_limit=4 * self.cfg.clients + 64)

    # ----- one round --------------------------------------------------------------------
    def messages(self, t: int) -> tuple[Plan, dict[int, dict[str, Any]]]:
        """Plan round ``t``; return the plan and one payload per client still in.

        A client the quit rule removed gets a payload with ``stays = False`` (it answers
        ``quit``); clients that left earlier get none.
        """
        plan = self.session.plan(t)
        payloads: dict[int, dict[str, Any]] = {}
        for i in plan.idx.tolist():
            if i in self.pending:  # registered as dropped: no message
                continue
            stays = bool(plan.trains[i])
            msg = plan.message(i)
            p = {"round": t, "stays": stays, "bill": msg.bill, "prox": msg.prox,
                 "start": _np(msg.start), "center": _np(msg.center),
                 "extras": {k: _np(v) for k, v in msg.extras.items()},
                 **{k: v for k, v in (("own_start", msg.own_start),
                                      ("own_center", msg.own_center)) if v is not None}}
            if self._send_state and stays:
                p["state"] = {k: _np(v) for k, v in self.state.clients[i].items()}
            payloads[i] = p
        return plan, payloads

    def finish(self, plan: Plan, replies: dict[int, dict[str, Any] | str | None],
               ) -> list[dict[str, Any]]:
        """Absorb round ``plan.t``'s replies and commit it; return the round's rows.

        ``replies[i]`` is client ``i``'s reply payload, an error text (the client
        failed: dropped), or None / absent (no answer within the timeout: dropped).
        A client that quits is dropped too; every drop is recorded in the round's
        rows (``dropped``) and in ``drops.jsonl``.
        """
        t = plan.t
        results: dict[int, tuple[Any, dict[str, float]]] = {}
        drops: dict[int, str] = {}
        for i in np.flatnonzero(plan.trains).tolist():
            rep = replies.get(i)
            why = None
            if i in self.pending:
                why = self.pending[i]
            elif rep is None:
                why = "timeout"
            elif isinstance(rep, str):
                why = f"error: {_line(rep)}"
            elif not isinstance(rep, Mapping):
                why = f"error: the reply is a {type(rep).__name__}"
            elif rep.get("quit") is True:
                why = "quit"
            elif (bad := check_train_reply(rep, self.expect(i))) is not None:
                why = f"bad reply: {bad}"
            if why is not None:
                drops[i] = why
            else:
                results[i] = rep
        for i, why in _odd_infos(results).items():  # a new info entry: the majority's form
            drops[i] = f"bad reply: {why}"
            del results[i]
        results = {i: (_output(rep), dict(rep["metrics"])) for i, rep in results.items()}
        self.pending = {}
        record, state = self.session.absorb(plan, results, drops)
        self.session.commit(record, state)  # drops.jsonl too, before the commit point
        self.drops += [Drop(i, t, why) for i, why in record.drops.items()]
        self._send_state = False
        return list(record.rows)


def _odd_infos(replies: Mapping[int, Mapping[str, Any]]) -> dict[int, str]:
    """Return the clients whose info entry differs in shape or dtype from the majority's.

    The server stacks the infos into one ``(m, ...)`` tensor per key; an entry it does
    not hold yet (the first round of FedFomo's weights) takes the form most clients
    send, and a client sending another form is dropped (ties: the smallest client id's).
    """
    forms: dict[str, Counter] = {}
    for rep in replies.values():
        for key, a in rep.get("info", {}).items():
            forms.setdefault(key, Counter())[(a.shape, str(a.dtype))] += 1
    odd: dict[int, str] = {}
    for i in sorted(replies):
        for key, a in replies[i].get("info", {}).items():
            (shape, dtype), _ = forms[key].most_common(1)[0]
            if (a.shape, str(a.dtype)) != (shape, dtype) and i not in odd:
                odd[i] = (f"info[{key!r}] has shape {a.shape} and dtype {a.dtype}, the other "
                          f"clients' {shape} and {dtype}")
    return odd


def _np_dtype(t: torch.Tensor) -> np.dtype:
    return torch.empty(0, dtype=t.dtype).numpy().dtype


def _line(text: str, limit: int = 200) -> str:
    """Return a client's error text as one short line (it is recorded in drops.jsonl)."""
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[:limit - 3] + "..."


def _output(rep: Mapping[str, Any]) -> Any:
    from .algorithms.base import ClientOutput

    upload = torch.from_numpy(np.array(rep["upload"]))
    return ClientOutput(upload=upload, evaluated=upload, buffers=upload,
                        state=_tensors(rep["state"]), info=_tensors(rep.get("info", {})))

