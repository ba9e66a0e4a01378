r"""The plug-in interface of training: what an algorithm decides in a round.

An algorithm decides three things, each a pure function with one home:

1. **market** (:meth:`Algorithm.market`, market algorithms only): the market of the
   round (reported profiles, distances between the uploads, ``lam``, budgets, solver)
   as a :class:`MarketCall`. The *session* settles it (:func:`mechanism.settle`: the
   quit-and-recompute loop, Algorithm 2's graph, eq. (10)'s payments, true-profile
   utilities), never the algorithm;
2. **server step** (:meth:`Algorithm.server_step`): from the clients' reports, their
   stacked uploads, the algorithm's server state and the settlement, one message per
   client (start point, proximal centre and weight, extras such as FedFomo's candidate
   models) and the sharing graph the algorithm used;
3. **client step** (:meth:`Algorithm.client_step`): for one client, a function of its
   message, its own persistent state and its data, returning its upload, the model to
   evaluate, a small info dict for the server and its new state. It runs anywhere:
   in this process (:mod:`training.loop`) or on a remote node.

:class:`training.session.Session` runs a round around them (plan, client steps,
absorb, commit) for every transport; baselines are scored on their sharing graph
with :func:`mechanism.sharing_utilities`. No algorithm knows which transport runs it.
States are plain ``dict[str, Tensor]``, so the session checkpoints them with the rest of
the run (a killed run of any algorithm resumes to identical metrics).

A new algorithm is one module with one subclass decorated with :func:`register`;
its hyper-parameters are declared in ``hyper`` and read from its own config table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from mechanism import Market, Settlement

from ..hyper import Param
from ..objective import proximal_term

if TYPE_CHECKING:
    from ..client import ClientContext, ClientData
    from ..config import Config
    from ..profiles import Reports

#: an algorithm's server or client state: named tensors only (checkpointed safely)
State = dict[str, torch.Tensor]

#: the models a client's metrics can score (:attr:`Algorithm.evaluates`)
EVALUATES = ("trained", "aggregated", "personal")


@dataclass(frozen=True)
class ServerInput:
    r"""What the server step sees in round ``t`` about the ``k`` clients still in.

    Attributes
    ----------
    round : int
        The round ``t >= 1``.
    clients : ndarray of int, (k,)
        Global ids of the clients still in, ascending.
    m : int
        Number of clients in the run.
    reports, true : Reports
        Reported and true profiles of those ``k`` clients (``true`` is used only to
        measure utilities; the market runs on ``reports``).
    uploads : torch.Tensor, (k, P)
        The shared parameters each client uploaded at the end of round ``t - 1``.
    infos : dict of torch.Tensor, each (k, ...)
        The small per-client info of the last client step (e.g. FedFomo's weights).
    theta0 : torch.Tensor, (P,)
        The common initial model's shared parameters.
    seed : int
        Seed for any randomness of this server step (derived from the run seed and ``t``).
    """

    round: int
    clients: NDArray[np.intp]
    m: int
    reports: Reports
    true: Reports
    uploads: torch.Tensor
    infos: State
    theta0: torch.Tensor
    seed: int

    @property
    def k(self) -> int:
        """Number of clients still in."""
        return int(self.uploads.shape[0])


@dataclass
class ServerOutput:
    r"""One server step's decisions over the ``k`` clients passed in.

    Attributes
    ----------
    starts, centers : torch.Tensor, (k, P)
        Start point of each client's local training and its proximal centre.
    prox : ndarray, (k,)
        Coefficient :math:`\mu_i` of the proximal term :math:`\frac{\mu_i}{2}\|\theta - c_i\|^2`.
    A : ndarray int8, (k, k)
        The sharing graph the algorithm used (``A[i, j] = 1``: i's model uses j's).
    extras : dict of torch.Tensor, each (k, ...)
        Per-client extras sent in the messages.
    columns : dict of ndarray, each (k,)
        Per-client numbers to add to the metric rows (e.g. eta used, cluster id).
    own_start, own_center : ndarray (k,) or None
        The weight of client ``i``'s *own upload* in its start point and in its centre:
        with :math:`s_i = \sum_j M_{ij} u_j` (every algorithm here mixes the uploads with
        weights :math:`M`), ``own_start[i]`` is :math:`M_{ii}`. An attacker needs it to
        replace its poisoned term by its honest one (:func:`training.client.attacker_message`):
        its poison then never compounds round over round. Where the weights themselves
        depend on the uploads (iPFL's graph, CFL's clusters, FedAMP's attention,
        pFedGraph's graph) they are the weights the poisoned upload produced: the
        attacker keeps the collaborators the server gave it and swaps only its own term.
        None: not declared (a run with an attacker refuses such an algorithm).
    """

    starts: torch.Tensor
    centers: torch.Tensor
    prox: NDArray[np.float64]
    A: NDArray[np.int8]
    extras: State = field(default_factory=dict)
    columns: dict[str, NDArray] = field(default_factory=dict)
    own_start: NDArray[np.float64] | None = None
    own_center: NDArray[np.float64] | None = None

    @classmethod
    def plain(cls, starts: torch.Tensor, A: NDArray | None = None, prox: float = 0.0,
              centers: torch.Tensor | None = None, own: ArrayLike | None = None,
              own_center: ArrayLike | None = None) -> ServerOutput:
        """Return an output without a market: start points, one proximal weight, a graph.

        ``own`` is the weight of each client's own upload in its start point (a number
        or one per client), ``own_center`` in its centre (default: ``own``).
        """
        k = starts.shape[0]

        def weights(w: ArrayLike | None) -> NDArray[np.float64] | None:
            return None if w is None else np.broadcast_to(
                np.asarray(w, dtype=np.float64), (k,)).copy()

        return cls(starts=starts, centers=starts if centers is None else centers,
                   prox=np.full(k, float(prox)),
                   A=np.zeros((k, k), dtype=np.int8) if A is None else A.astype(np.int8),
                   own_start=weights(own),
                   own_center=weights(own if own_center is None else own_center))

    def message(self, i: int, bill: float = 0.0) -> Message:
        """Return the message of the ``i``-th client passed in (a local index), with its bill."""
        return Message(start=self.starts[i], center=self.centers[i], prox=float(self.prox[i]),
                       bill=bill, extras={k: v[i] for k, v in self.extras.items()},
                       own_start=None if self.own_start is None else float(self.own_start[i]),
                       own_center=None if self.own_center is None else float(self.own_center[i]))


@dataclass(frozen=True)
class MarketCall:
    """A market algorithm's round for the session to settle (:func:`mechanism.settle`).

    Attributes
    ----------
    market : mechanism.Market
        The reported profiles, the market distances and ``lam``.
    budget : ndarray (k,)
        Each client's largest acceptable net payment.
    solver : str
        The graph solver (:func:`mechanism.solve_graph`).
    truth : mechanism.Market or None
        The same market with the true profiles (utilities are measured with them), or
        None when they equal the reports.
    defence : str
        How the bills are computed (:data:`mechanism.DEFENCES`; ``"none"``: the paper's).
    estimate : ndarray (k,) or None
        The estimated effective data sizes (every defence but ``"none"``).
    band : float
        ``defence = "checked"``: the tolerated log-ratio of report to estimate.
    estimator : str
        Under a defence, where ``estimate`` came from (:data:`mechanism.ESTIMATORS`;
        ``""``: the simulated oracle of a run configured before the key existed).
    observed : ndarray (k,) or None
        ``estimator = "displacement"``: each client's round-0 displacement, from which
        :func:`mechanism.size_from_displacement` computed ``estimate``.
    """

    market: Market
    budget: NDArray[np.float64]
    solver: str = "paper"
    truth: Market | None = None
    defence: str = "none"
    estimate: NDArray[np.float64] | None = None
    band: float = 0.0
    estimator: str = ""
    observed: NDArray[np.float64] | None = None


@dataclass(frozen=True)
class Message:
    """The server's message to one client for one round."""

    start: torch.Tensor
    center: torch.Tensor
    prox: float
    bill: float = 0.0
    extras: State = field(default_factory=dict)
    #: weight of the client's own upload in ``start`` / ``center`` (see ServerOutput)
    own_start: float | None = None
    own_center: float | None = None


@dataclass
class ClientOutput:
    """What one client step returns.

    Attributes
    ----------
    upload : torch.Tensor, (P,)
        The shared parameters sent to the server.
    evaluated : torch.Tensor, (P_all,)
        All trainable parameters of the model to evaluate (Ditto: the personal one).
    buffers : torch.Tensor
        The buffers to evaluate with.
    state : State
        The client's new persistent state.
    info : State
        Small tensors for the next server step (e.g. FedFomo's weights).
    start : torch.Tensor or None
        The shared parameters the uploaded model's local training started from, when
        not the message's start (FedFomo moves its own model first). An attacker's
        update attacks poison the update from this point.
    """

    upload: torch.Tensor
    evaluated: torch.Tensor
    buffers: torch.Tensor
    state: State
    info: State = field(default_factory=dict)
    start: torch.Tensor | None = None


class Algorithm(ABC):
    """Base class of a training algorithm; subclasses set ``name``, ``hyper`` and the hooks.

    The default client step trains ``epochs`` epochs of SGD from the message's start
    point on :meth:`local_objective` (data loss plus the proximal term towards the
    message's centre) and uploads the result; algorithms with a different client side
    (Ditto, FedFomo) override :meth:`client_step`.
    """

    name: ClassVar[str]
    #: one-line description with the reference
    summary: ClassVar[str] = ""
    #: where the method stands in tables and figures (:func:`methods`: ascending, then name)
    rank: ClassVar[int] = 50
    #: whether the algorithm runs a market (payments, ledger, audit records)
    uses_market: ClassVar[bool] = False
    #: declared hyper-parameters, read from the config table named after the algorithm
    hyper: ClassVar[dict[str, Param]] = {}
    #: which model a client's accuracy scores, as the algorithm's reference scores it
    #: (:data:`EVALUATES`): ``"trained"``, the model after this round's local training;
    #: ``"aggregated"``, the aggregated model this round's local training starts from,
    #: before that training (FedAvg's and FedProx's global model the server sends out;
    #: FedFomo's model moved by its weighted candidates); ``"personal"``, a second model
    #: the client keeps (Ditto). Each module's docstring says why, against its reference.
    evaluates: ClassVar[str] = "trained"
    #: whether the scored model is one global model, the same for every client (FedAvg,
    #: FedProx); the algorithm suite checks the declaration against the checkpoint
    one_global_model: ClassVar[bool] = False

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.hp: dict[str, Any] = dict(cfg.hyper)

    @classmethod
    def fill_defaults(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Return every hyper-parameter: the ``given`` ones, the declared defaults for the rest."""
        return {k: given.get(k, p.default) for k, p in cls.hyper.items()}

    def max_prox(self, reports: Reports, theta0: torch.Tensor) -> float:
        """Return the largest proximal weight any client can be sent (default 0).

        The transport refuses a run with ``lr * max_prox > 1`` before training.
        """
        return 0.0

    # ----- state -----------------------------------------------------------------------
    def init_server_state(self, m: int, theta0: torch.Tensor) -> State:
        """Return the algorithm's server state before round 1 (default: empty)."""
        return {}

    def init_client_state(self, i: int, params0: torch.Tensor, buffers0: torch.Tensor) -> State:
        """Return client ``i``'s state before round 0: its full model (params and buffers)."""
        return {"params": params0.clone(), "buffers": buffers0.clone()}

    def evaluated_model(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the (params, buffers) a client's state is evaluated with.

        Must agree with what the round's metrics scored: the client's model
        (``"trained"``), the aggregated model its last training started from
        (``"aggregated"``, kept in the state by :func:`training.client.finish_client`),
        the personal model (Ditto overrides).
        """
        if self.evaluates == "aggregated" and "aggregated" in state:  # none before round 0
            return state["aggregated"], state["aggregated_buffers"]
        return state["params"], state["buffers"]

    # ----- the steps ---------------------------------------------------------------------
    def market(self, inp: ServerInput, state: State) -> MarketCall | None:
        """Return this round's market for the session to settle (default: no market).

        A market algorithm (``uses_market``) overrides it; the session settles the
        market and passes the :class:`~mechanism.Settlement` to :meth:`server_step`.
        None: no market this round (e.g. a lone client).
        """
        return None

    @abstractmethod
    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Decide round ``inp.round`` for the clients still in; return the output and new state.

        ``settlement`` is the session's settlement of :meth:`market` (None: no market).
        Pure: it must not change ``state`` in place (the session keeps the old one until
        the round commits).
        """

    def client_step(self, msg: Message, state: State, data: ClientData,
                    ctx: ClientContext) -> ClientOutput:
        """Train from ``msg.start`` on :meth:`local_objective` and upload the shared part."""
        from ..client import local_sgd

        params, buffers = local_sgd(ctx, data, state, msg.start, msg.center, msg.prox,
                                    self.local_objective)
        return ClientOutput(upload=params[ctx.shared], evaluated=params, buffers=buffers,
                            state={**state, "params": params, "buffers": buffers})

    def local_objective(self, loss: torch.Tensor, flat: torch.Tensor, center: torch.Tensor,
                        prox: float) -> torch.Tensor:
        r"""Return the client objective; default :math:`L + \frac{\mu}{2}\|\theta - c\|^2`.

        This is eq. (7) for iPFL and FedProx's objective.

        ``flat`` is the differentiable vector of the shared parameters, ``center`` the
        message's centre (no gradient flows into it).
        """
        if prox == 0.0:
            return loss
        return loss + proximal_term(flat, center, prox)

    def vmap_objective(self, loss: torch.Tensor, flat: torch.Tensor, center: torch.Tensor,
                       prox: torch.Tensor) -> torch.Tensor:
        r"""Return :meth:`local_objective` in a form :func:`torch.vmap` can batch over clients.

        ``prox`` is a 0-d tensor (it may be 0: the term must then vanish exactly). The
        batched client step (:mod:`training.batched`) uses it; an algorithm that overrides
        :meth:`local_objective` overrides this too, or sets it to ``None`` to be trained
        by the per-client loop.
        """
        if type(self).local_objective is not Algorithm.local_objective:
            raise NotImplementedError(f"{type(self).__name__} overrides local_objective "
                                      "without vmap_objective")
        return loss + proximal_term(flat, center, prox)


Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]

#: algorithm name -> class (the package's registry idiom: a module-level dict from name to
#: implementation; here filled by the :func:`register` decorator)
ALGORITHMS: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator adding an algorithm to :data:`ALGORITHMS` under ``cls.name``."""
    if cls.name in ALGORITHMS:
        raise ValueError(f"algorithm {cls.name!r} is already registered")
    if cls.evaluates not in EVALUATES:
        raise ValueError(f"algorithm {cls.name!r}: evaluates = {cls.evaluates!r} is not one "
                         f"of {EVALUATES}")
    if (cls.market is not Algorithm.market) != cls.uses_market:
        raise ValueError(f"algorithm {cls.name!r}: uses_market = {cls.uses_market} but it "
                         f"{'overrides' if cls.market is not Algorithm.market else 'keeps'} "
                         "Algorithm.market (a market round needs both: the session settles "
                         "it and books the ledger)")
    ALGORITHMS[cls.name] = cls
    return cls


def methods() -> tuple[str, ...]:
    """Return every registered algorithm's name, in table order (``rank``, then name)."""
    return tuple(sorted(ALGORITHMS, key=lambda n: (ALGORITHMS[n].rank, n)))


def get_algorithm(cfg: Config) -> Algorithm:
    """Instantiate the algorithm ``cfg.algorithm`` names."""
    if cfg.algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm = {cfg.algorithm!r} is not one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[cfg.algorithm](cfg)


def all_pairs(k: int) -> NDArray[np.int8]:
    """Return the complete sharing graph on ``k`` clients (no self-loops)."""
    return (1 - np.eye(k, dtype=np.int8)).astype(np.int8)
