"""The client side of a round: local SGD, the attacker's transform, evaluation.

:func:`run_client` is what a transport calls for one client and one round: it runs
the algorithm's :meth:`~training.algorithms.Algorithm.client_step`, replaces an
attacker's upload by its poisoned one, and evaluates the model the algorithm names on
the client's validation and test splits. It needs only the message, the client's
state and its data, so it runs in this process (:mod:`training.loop`) or on any node.

Randomness: every generator is seeded from ``(run seed, round, client, purpose)``,
never from state carried across rounds, so a round re-run after a crash draws exactly
the same mini-batches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .attacks import apply_attack
from .models import get_flat, set_flat
from .sgd import BatchPlan, sgd_loop

if TYPE_CHECKING:
    from .algorithms.base import Algorithm, ClientOutput, Message, Objective, State

__all__ = ["ClientContext", "LocalData", "attacker_message", "derive_seed",
           "evaluate", "finish_client", "local_sgd", "run_client"]


def derive_seed(*keys: int) -> int:
    """Return a 63-bit seed derived from integer ``keys`` (a :class:`numpy.random.SeedSequence`)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1, dtype=np.uint64)[0] >> 1)


@dataclass(frozen=True)
class LocalData:
    """One client's private tensors: train, validation and test splits."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_train(self) -> int:
        """Number of training samples (the true :math:`N_i`)."""
        return int(self.y_train.shape[0])


@dataclass(frozen=True)
class ClientContext:
    """What a client step needs besides its message, state and data.

    Attributes
    ----------
    model : nn.Module
        A template of the architecture (its parameters are overwritten before use).
    shared : torch.Tensor of bool, (P_all,)
        Which flat trainable parameters are shared (config ``share``).
    client, round, seed : int
        The client's global id, the round, the run's master seed.
    epochs, batch_size, lr : int, int, float
        Local SGD settings.
    role, attack : str
        The client's role and, for an attacker, its attack's name.
    """

    model: nn.Module
    shared: torch.Tensor
    client: int
    round: int
    seed: int
    epochs: int
    batch_size: int
    lr: float
    role: str = "trader"
    attack: str = ""

    def generator(self, purpose: int = 0) -> torch.Generator:
        """Return a generator seeded by (seed, round, client, purpose)."""
        return torch.Generator().manual_seed(
            derive_seed(self.seed, 100 + self.round, self.client, purpose))


def local_sgd(ctx: ClientContext, data: LocalData, state: State, start: torch.Tensor,
              center: torch.Tensor, prox: float, objective: Objective, *,
              params: torch.Tensor | None = None, purpose: int = 0,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``epochs`` epochs of SGD and return the new (all params, buffers).

    The loop is :func:`training.sgd.sgd_loop` over this client's
    :class:`~training.sgd.BatchPlan`; a step is the module's forward and backward and
    one ``torch.optim.SGD`` update.

    The model starts from ``params`` (default the client's ``state["params"]``) with its
    shared coordinates replaced by ``start``; the objective is
    ``objective(loss, shared_flat, center, prox)`` (the proximal term acts on the
    shared coordinates only).
    """
    model, shared = ctx.model, ctx.shared
    full = (state["params"] if params is None else params).clone()
    full[shared] = start.to(full.dtype)
    set_flat(model, full, state["buffers"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    everything = bool(shared.all())
    opt = torch.optim.SGD(trainable, lr=ctx.lr)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(derive_seed(ctx.seed, 200 + ctx.round, ctx.client, purpose))
    device = trainable[0].device  # a language model may sit on the GPU (training.llm)
    center = center.detach().to(device=device, dtype=full.dtype)
    shared = shared.to(device)
    model.train()
    X, y = data.X_train, data.y_train
    plan = BatchPlan.for_clients([X.shape[0]], [ctx], purpose)

    def step(e: int, s: int, k: int) -> None:  # this one client's step: module, optimiser
        idx = plan.batch(e, 0, s)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(X[idx]), y[idx])
        if prox != 0.0:
            flat = torch.cat([p.reshape(-1) for p in trainable])
            loss = objective(loss, flat if everything else flat[shared], center, prox)
        loss.backward()
        opt.step()

    sgd_loop(plan, step)
    return get_flat(model)


@torch.no_grad()
def evaluate(model: nn.Module, params: torch.Tensor, buffers: torch.Tensor, X: torch.Tensor,
             y: torch.Tensor, batch_size: int = 1024) -> tuple[float, float]:
    """Return (accuracy, mean cross-entropy) of the model ``(params, buffers)`` on ``(X, y)``."""
    if X.shape[0] == 0:
        return float("nan"), float("nan")
    set_flat(model, params, buffers)
    model.eval()
    score = getattr(model, "score", None)
    if callable(score):  # a model that scores itself (training.llm.CausalLM: pass@1, ...)
        return score(X, y)
    correct, loss = 0, 0.0
    for s in range(0, X.shape[0], batch_size):
        out = model(X[s:s + batch_size])
        correct += int((out.argmax(dim=1) == y[s:s + batch_size]).sum())
        loss += float(nn.functional.cross_entropy(out, y[s:s + batch_size], reduction="sum"))
    return correct / X.shape[0], loss / X.shape[0]


def _fresh_init(ctx: ClientContext) -> torch.Tensor:
    """Return the shared part of a freshly initialised model (seeded per round and client)."""
    model = copy.deepcopy(ctx.model)
    torch.manual_seed(derive_seed(ctx.seed, 300 + ctx.round, ctx.client))
    for mod in model.modules():
        if hasattr(mod, "reset_parameters"):
            mod.reset_parameters()
    return get_flat(model)[0][ctx.shared]


def attacker_message(msg: Message, state: State, ctx: ClientContext) -> Message:
    r"""Return the message an attacker trains from: its poisoned own term made honest.

    An attacker keeps its honest model as its state and poisons only what it sends
    (:func:`finish_client` stores the poisoned upload as ``state["sent"]``). The server
    mixed that poisoned upload :math:`\tilde u_i` into the attacker's own start and centre
    with the weights ``msg.own_start`` / ``msg.own_center``; the attacker, which knows
    both its honest upload :math:`u_i` and :math:`\tilde u_i`, moves them by
    :math:`M_{ii}(u_i - \tilde u_i)`. For mixing weights that do not depend on the
    uploads (FedAvg, FedProx, Ditto, Local, CFL within its clusters, iPFL's squared-L2
    centres for its graph) that is exactly the message an honest upload would have got;
    where the weights depend on the uploads (iPFL's graph, FedAMP's attention,
    pFedGraph's graph) the attacker keeps the weights its poisoned upload produced and
    swaps only its own term (for iPFL's cosine distance, to first order). So its honest
    model never starts from its own poison, and an update attack, computed from this
    round's honest update and start, does not compound round over round. Honest
    clients, and an attacker's first round, get ``msg`` unchanged.

    Raises
    ------
    ValueError
        When the algorithm's server step did not declare the weights
        (:attr:`~training.algorithms.ServerOutput.own_start` is None).
    """
    if ctx.role != "attacker" or "sent" not in state:
        return msg
    if msg.own_start is None or msg.own_center is None:
        raise ValueError(f"round {ctx.round}: the algorithm's server step does not declare the "
                         "weight of a client's own upload in its message (ServerOutput.own_start"
                         " / own_center), which an attacker needs to keep its honest model")
    honest = state["params"][ctx.shared].to(msg.start.dtype)
    delta = honest - state["sent"].to(msg.start.dtype)
    return replace(msg, start=msg.start + msg.own_start * delta,
                   center=msg.center + msg.own_center * delta)


def run_client(algo: Algorithm, msg: Message, state: State, data: LocalData,
               ctx: ClientContext) -> tuple[ClientOutput, dict[str, float]]:
    """Run one client's round: its algorithm's step, its attack if any, its evaluation.

    Returns the client output (an attacker's upload already poisoned) and its metrics:
    ``acc`` / ``loss`` on its test split and ``val_acc`` / ``val_loss`` on its
    validation split, of the model the algorithm evaluates (:attr:`Algorithm.evaluates`).
    """
    msg = attacker_message(msg, state, ctx)
    return finish_client(algo, algo.client_step(msg, state, data, ctx), msg, state, data, ctx)


def finish_client(algo: Algorithm, out: ClientOutput, msg: Message, state: State,
                  data: LocalData, ctx: ClientContext) -> tuple[ClientOutput, dict[str, float]]:
    """Evaluate a client step's output and apply an attacker's attack (see :func:`run_client`).

    ``msg`` is the message the step trained from and ``state`` the client's state before
    the step. The scored model is the one :attr:`Algorithm.evaluates` names: for
    ``"aggregated"`` the point this round's local training started from (``out.start``,
    default the message's start: the shared parameters the server sent) with the
    client's own other parameters and buffers from before the step, kept in the new
    state as ``aggregated`` / ``aggregated_buffers`` for a later evaluation. An attacker's
    upload is replaced by its poisoned one, computed from the honest upload and the
    point its local training started from (``out.start``, default ``msg.start``); the
    poisoned upload is kept as ``state["sent"]``, the honest model stays the state.
    """
    params, buffers = out.evaluated, out.buffers
    start = msg.start if out.start is None else out.start
    if algo.evaluates == "aggregated":
        params = state["params"].clone()
        params[ctx.shared] = start.to(params.dtype)
        buffers = state["buffers"].clone()
        out.state = {**out.state, "aggregated": params, "aggregated_buffers": buffers}
    if ctx.role == "attacker":
        if ctx.attack == "random_init":
            out.upload = _fresh_init(ctx).to(out.upload.dtype)
        else:
            out.upload = apply_attack(ctx.attack, out.upload, start.to(out.upload.dtype),
                                      ctx.generator(purpose=7))
        out.state = {**out.state, "sent": out.upload.clone()}
    acc, loss = evaluate(ctx.model, params, buffers, data.X_test, data.y_test)
    val_acc, val_loss = evaluate(ctx.model, params, buffers, data.X_val, data.y_val)
    return out, {"acc": acc, "loss": loss, "val_acc": val_acc, "val_loss": val_loss}
