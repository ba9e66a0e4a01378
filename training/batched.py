r"""Clients trained together: one stacked computation for all clients of a round (issue 10).

The per-client loop (:func:`training.client.local_sgd`) trains one client after the
other, a few small mini-batches each: at the demo's sizes the time goes into Python
and dispatch, not arithmetic. Here the clients that train in a round are trained in
one computation: their parameters are stacked into one ``(C, P)`` tensor, the model
runs on all clients' mini-batches at once, every client gets its own gradient (the
clients' losses are independent), and one SGD step updates them all. Two kernels
compute the gradients: for a chain of linear layers (the MLP),
:class:`training.stacked.StackedChain` (one batched matrix product per layer, the
gradient written out, no autograd graph); for any other model,
:func:`torch.func.functional_call` under :func:`torch.vmap` and one backward pass.

Equivalence with the loop. Each client draws exactly the mini-batches the loop draws:
per epoch ``torch.randperm(n_i, generator=ctx.generator(0))``, cut into batches of
``batch_size`` with a smaller last batch. A client with fewer steps than the longest
one is left out of the steps it does not take (clients are sorted by their number of
steps, so those still stepping are a prefix, updated in place; the others' parameters
are left exactly unchanged), and a client's short last batch is padded
with samples of weight 0, so every client takes the steps it takes today. The loss
of a step is the mean cross-entropy over the client's real samples plus the
algorithm's local objective (:meth:`Algorithm.vmap_objective`), the SGD step is
``theta - lr * grad`` (plain SGD, no momentum). Results equal the loop's up
to floating-point rounding (sums taken in another order).

What is batched: algorithms that keep the base client step
(:meth:`Algorithm.client_step` not overridden) and whose local objective has a
vmappable form (:meth:`Algorithm.vmap_objective` not ``None``), on models without
buffers (no batch norm) or dropout, with every parameter trainable. Everything else
runs the per-client loop; ``client_batching = "on"`` refuses it with the reason
before any work (:func:`check_batching`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .client import (
    ClientContext,
    LocalData,
    attacker_message,
    derive_seed,
    finish_client,
)
from .objective import proximal_grad, proximal_term
from .sgd import BatchPlan, sgd_loop
from .stacked import StackedChain, stacked_chain

if TYPE_CHECKING:
    from .algorithms.base import Algorithm, ClientOutput, Message, State

__all__ = ["KERNELS", "algorithm_obstacle", "check_batching", "check_device", "model_obstacle",
           "run_clients_batched", "train_batched"]


def algorithm_obstacle(cls: type[Algorithm]) -> str | None:
    """Return why algorithm class ``cls`` cannot be trained batched, or None if it can."""
    from .algorithms.base import Algorithm

    if cls.client_step is not Algorithm.client_step:
        return f"algorithm {cls.name!r} has its own client step (not plain local SGD)"
    if cls.vmap_objective is None or (cls.local_objective is not Algorithm.local_objective
                                      and cls.vmap_objective is Algorithm.vmap_objective):
        return f"algorithm {cls.name!r} has a local objective without a batched form"
    return None


def model_obstacle(model: nn.Module) -> str | None:
    """Return why ``model`` cannot be trained batched, or None if it can."""
    what = f"model {type(model).__name__}"
    if any(True for _ in model.buffers()):
        return f"{what} has buffers (e.g. batch norm statistics)"
    if any(isinstance(mod, nn.modules.dropout._DropoutNd) for mod in model.modules()):
        return f"{what} uses dropout (random per client)"
    if not all(p.requires_grad for p in model.parameters()):
        return f"{what} has frozen parameters"
    return None


def check_batching(mode: str, algo: Algorithm | type[Algorithm],
                   model: nn.Module | None = None, device: str = "cpu") -> bool:
    """Return whether to train batched under ``client_batching = mode``.

    ``algo`` is an algorithm or its class; ``model`` None checks the algorithm only.
    ``"auto"`` on the CPU leaves convolutional models to the loop: there the loop is
    compute-bound and ``vmap``'s grouped convolutions were measured slower (0.7x,
    ``benchmarks/bench_clients.py``); ``"on"`` batches them anyway.

    Raises
    ------
    ValueError
        For ``mode = "on"`` when the algorithm or model cannot be batched, naming why.
    """
    if mode == "off":
        return False
    cls = algo if isinstance(algo, type) else type(algo)
    reason = algorithm_obstacle(cls) or (None if model is None else model_obstacle(model))
    if reason is not None and mode == "on":
        raise ValueError(f"config: client_batching = 'on' but {reason}; use 'auto' (falls "
                         "back to the per-client loop) or 'off'")
    if reason is None and mode == "auto" and device == "cpu" and model is not None:
        return not any(isinstance(mod, nn.modules.conv._ConvNd) for mod in model.modules())
    return reason is None


def check_device(device: str) -> None:
    """Refuse ``device = "cuda"`` on a machine without a usable GPU, before any work."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("config: device = 'cuda' but torch finds no CUDA GPU on this machine "
                         f"(torch {torch.__version__}); use device = 'cpu'")


#: forward kernels of :func:`train_batched`
KERNELS = ("auto", "stacked", "vmap")


def train_batched(algo: Algorithm, msgs: list[Message], states: list[State],
                  data: list[LocalData], ctxs: list[ClientContext],
                  device: str = "cpu", kernel: str = "auto") -> list[ClientOutput]:
    """Run the base client step of every client at once; return their outputs, in order.

    ``msgs``, ``states``, ``data``, ``ctxs`` are per client (same model template,
    shared mask and SGD settings). Equal to calling ``algo.client_step`` per client up
    to floating-point rounding.

    ``kernel`` picks how: ``"stacked"`` (one batched matrix product per layer and
    the gradient written out, :class:`training.stacked.StackedChain`; chains of
    linear layers only), ``"vmap"`` (:func:`torch.func.functional_call` under
    :func:`torch.vmap` and autograd, any model), ``"auto"`` (stacked where it
    applies, else vmap).
    """
    if kernel not in KERNELS:
        raise ValueError(f"train_batched: kernel = {kernel!r} is not one of {KERNELS}")
    from .algorithms.base import Algorithm, ClientOutput

    C = len(ctxs)
    if C == 0:
        return []
    ctx0 = ctxs[0]
    model, shared = ctx0.model, ctx0.shared
    dev = torch.device(device)
    full = torch.stack([s["params"] for s in states]).clone()
    dtype = full.dtype
    full[:, shared] = torch.stack([m.start for m in msgs]).to(dtype)
    center = torch.stack([m.center.detach() for m in msgs]).to(dtype)
    prox = torch.tensor([float(m.prox) for m in msgs], dtype=dtype)
    everything = bool(shared.all())
    shared_idx = torch.nonzero(shared).squeeze(1)
    X_all = torch.cat([d.X_train for d in data]).to(dev)
    y_all = torch.cat([d.y_train for d in data]).to(dev)
    # clients sorted by their number of steps, most first: the clients still stepping
    # at step s are then a prefix, trained on views (no gather, no scatter back)
    plan, order = BatchPlan.for_clients([d.n_train for d in data], ctxs).sorted()
    full, center, prox = full[order], center[order], prox[order]
    idx, weight = plan.idx.to(dev), plan.weight.to(dtype).to(dev)
    flat = full.to(dev)
    center, prox, shared_idx = center.to(dev), prox.to(dev), shared_idx.to(dev)
    use_prox = bool((prox != 0).any())

    names = [n for n, _ in model.named_parameters()]
    sizes = [p.numel() for p in model.parameters()]
    shapes = [tuple(p.shape) for p in model.parameters()]
    net = model if dev.type == "cpu" else _device_copy(model, dev)
    net.train()

    def forward(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, theta.split(sizes), shapes,
                                                       strict=True)}
        return functional_call(net, params, (x,))

    chain = stacked_chain(net) if kernel != "vmap" else None
    if chain is None and kernel == "stacked":
        raise ValueError(f"train_batched: kernel = 'stacked' but model {type(model).__name__}"
                         " is not a chain of Linear, Flatten and element-wise layers")
    batched_forward = torch.vmap(forward)
    objective = None
    default_prox = use_prox and type(algo).vmap_objective is Algorithm.vmap_objective
    if default_prox:
        def objective(loss: torch.Tensor, part: torch.Tensor, c: torch.Tensor,
                      pr: torch.Tensor) -> torch.Tensor:  # the default term, batched directly
            return loss + proximal_term(part, c, pr)
    elif use_prox:
        objective = torch.vmap(algo.vmap_objective)
    lr = ctx0.lr
    part_idx = None if everything else shared_idx

    def step(e: int, s: int, k: int) -> None:  # the first k clients' step: one batched call
        ib = idx[e, :k, s]  # (k, B) rows of the stacked training sets; no padded compute
        xb, yb, wb, c, pr = X_all[ib], y_all[ib], weight[e, :k, s], center[:k], prox[:k]
        theta = flat[:k]
        if chain is not None:
            grad = _chain_grad(chain, objective, default_prox, theta, xb, yb, wb, c, pr,
                               part_idx)
        else:
            theta = theta.detach().requires_grad_(True)
            logits = batched_forward(theta, xb)
            ce = F.cross_entropy(logits.flatten(0, 1), yb.flatten(),
                                 reduction="none").view_as(wb)
            loss = (ce * wb).sum(dim=1) / wb.sum(dim=1)
            if objective is not None:
                part = theta if everything else theta[:, shared_idx]
                loss = objective(loss, part, c, pr)
            (grad,) = torch.autograd.grad(loss.sum(), theta)
        with torch.no_grad():  # in place on this function's own copy; rows >= k untouched
            flat[:k].sub_(grad, alpha=lr)

    sgd_loop(plan, step)
    out = flat.detach().to("cpu")
    row = torch.argsort(order)  # client i's row in the sorted order
    res = []
    for i in range(C):
        params, buffers = out[row[i]].clone(), states[i]["buffers"]
        res.append(ClientOutput(upload=params[shared], evaluated=params, buffers=buffers,
                                state={**states[i], "params": params, "buffers": buffers}))
    return res


def _chain_grad(chain: StackedChain, objective: Any, default_prox: bool, theta: torch.Tensor,
                xb: torch.Tensor, yb: torch.Tensor, wb: torch.Tensor, c: torch.Tensor,
                pr: torch.Tensor, shared_idx: torch.Tensor | None) -> torch.Tensor:
    """Return the gradient of each client's objective with a :class:`StackedChain`.

    The data term by :meth:`StackedChain.loss_and_grad`; the default proximal term
    ``prox/2 ||part - c||^2`` adds ``prox (part - c)``; any other objective
    ``F(loss, part)`` is differentiated by autograd in its two arguments only and
    chained: ``dF/dtheta = dF/dloss * dloss/dtheta + dF/dpart`` on the shared part.
    """
    loss, grad = chain.loss_and_grad(theta, xb, yb, wb)
    if objective is None:
        return grad
    part = theta if shared_idx is None else theta[:, shared_idx]
    if default_prox:
        if shared_idx is None:
            return grad.add_(proximal_grad(part, c, pr))
        return grad.index_add_(1, shared_idx, proximal_grad(part, c, pr))
    loss_leaf = loss.detach().requires_grad_(True)
    part_leaf = part.detach().requires_grad_(True)
    d_loss, extra = torch.autograd.grad(objective(loss_leaf, part_leaf, c, pr).sum(),
                                        (loss_leaf, part_leaf), allow_unused=True,
                                        materialize_grads=True)
    grad.mul_(d_loss.unsqueeze(1))
    if shared_idx is None:
        return grad.add_(extra)
    return grad.index_add_(1, shared_idx, extra)


def _device_copy(model: nn.Module, dev: torch.device) -> nn.Module:
    import copy

    return copy.deepcopy(model).to(dev)


def run_clients_batched(algo: Algorithm, items: list[tuple[Message, State, LocalData,
                                                            ClientContext]],
                        device: str = "cpu") -> list[tuple[ClientOutput, dict[str, Any]]]:
    """Batched counterpart of :func:`training.client.run_client` for many clients at once."""
    msgs, states, data, ctxs = (list(col) for col in zip(*items, strict=True)) if items else (
        [], [], [], [])
    msgs = [attacker_message(m, s, c) for m, s, c in zip(msgs, states, ctxs, strict=True)]
    outs = train_batched(algo, msgs, states, data, ctxs, device)
    res = [finish_client(algo, out, msg, st, d, ctx) for out, msg, st, d, ctx in
           zip(outs, msgs, states, data, ctxs, strict=True)]
    if ctxs:  # leave torch's global generator as the loop leaves it
        last = ctxs[-1]
        torch.manual_seed(derive_seed(last.seed, 200 + last.round, last.client, 0))
        if last.role == "attacker" and last.attack == "random_init":
            torch.manual_seed(derive_seed(last.seed, 300 + last.round, last.client))
    return res
