r"""Chains of linear layers run directly on stacked per-client weights (issue 10).

:mod:`training.batched` trains the clients of a round together on stacked
parameters ``theta`` of shape ``(C, P)``, one row per client. Its generic forward
pass is :func:`torch.func.functional_call` under :func:`torch.vmap`, which works for
any model but pays ``vmap``'s dispatch on every operation: at the digits MLP's size
(4,810 parameters, batches of 16) that overhead, not arithmetic, is the step.

This module recognises the common case, a model whose forward pass is a plain
chain of :class:`~torch.nn.Flatten`, :class:`~torch.nn.Linear` and element-wise
activations (found by tracing it with :func:`torch.fx.symbolic_trace`), and runs
it with one batched matrix product per layer,

.. math::

    H^{(l+1)}_c = \sigma\left(H^{(l)}_c W_c^{(l)\top} + b_c^{(l)}\right),
    \qquad c = 1, \dots, C,

as ``torch.baddbmm(b[:, None, :], H, W.transpose(1, 2))`` with ``W`` of shape
``(C, out, in)`` a view into ``theta``, and its gradient written out by the chain
rule (two more batched products per layer, no autograd graph: at these sizes
autograd's bookkeeping costs more than the arithmetic). Any other model
(convolutions, skip connections, a custom ``forward``, other activations) gives
``None`` and keeps the generic ``vmap`` path.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ELEMENTWISE", "StackedChain", "stacked_chain"]

#: activations with a closed-form derivative (applied element-wise, whatever the shape)
ELEMENTWISE: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid,
                                            nn.Identity)


def _chain(model: nn.Module) -> list[str] | None:
    """Return the qualified names of the modules ``model`` calls one after the other.

    None unless the traced graph is: one input, then modules each applied to the
    previous result only, then the output.
    """
    try:
        from torch.fx import symbolic_trace

        graph = symbolic_trace(model).graph
    except Exception:  # noqa: BLE001 - any model fx cannot trace keeps the generic path
        return None
    nodes = list(graph.nodes)
    if len(nodes) < 3 or nodes[0].op != "placeholder" or nodes[-1].op != "output":
        return None
    prev, names = nodes[0], []
    for node in nodes[1:-1]:
        if node.op != "call_module" or node.args != (prev,) or node.kwargs:
            return None
        names.append(str(node.target))
        prev = node
    return names if nodes[-1].args == (prev,) else None


class StackedChain:
    r"""A chain of linear layers, run and differentiated on stacked parameters.

    Built by :func:`stacked_chain`. ``theta`` is ``(C, P)``: the parameters
    flattened in ``model.parameters()`` order, one row per client; ``x`` is
    ``(C, B, *input)``.

    :meth:`loss_and_grad` is the weighted cross-entropy and its gradient by the
    chain rule written out (no autograd graph): with :math:`z = f_\theta(x)`,
    :math:`\partial L_c / \partial z_{cb} = \omega_{cb} (\mathrm{softmax}(z_{cb}) -
    e_{y_{cb}}) / \sum_b \omega_{cb}`, then per layer :math:`\partial W = \delta^\top
    H`, :math:`\partial b = \sum \delta`, :math:`\delta \leftarrow \delta W`, times the
    activation's derivative. The products are the ones autograd takes, so results
    agree with it to rounding (``tests/training/test_stacked.py``).
    """

    def __init__(self, ops: list[tuple], n_params: int) -> None:
        self.ops = ops
        self.n_params = n_params

    def forward(self, theta: torch.Tensor, x: torch.Tensor,
                keep: list | None = None) -> torch.Tensor:
        """Return the logits ``(C, B, *output)``; ``keep`` collects each op's input."""
        C = theta.shape[0]
        for op in self.ops:
            if keep is not None:
                keep.append(x)
            if op[0] == "linear":
                (wo, (out_f, in_f)), b = op[1], op[2]
                W = theta[:, wo:wo + out_f * in_f].view(C, out_f, in_f)
                lead = x.shape[1:-1]
                h = x.reshape(C, -1, in_f)
                if b is None:
                    h = torch.bmm(h, W.transpose(1, 2))
                else:
                    h = torch.baddbmm(theta[:, b[0]:b[0] + out_f].unsqueeze(1), h,
                                      W.transpose(1, 2))
                x = h.view(C, *lead, out_f)
            elif op[0] == "flatten":
                x = x.flatten(2)
            else:
                x = _activation(op[1], x)
        return x

    __call__ = forward

    def loss_and_grad(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                      weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return each client's weighted mean cross-entropy ``(C,)`` and its gradient ``(C, P)``.

        ``y`` is ``(C, B)`` class indices, ``weight`` ``(C, B)`` sample weights (0 for
        padding; every client has a positive total).
        """
        C = theta.shape[0]
        with torch.no_grad():
            inputs: list[torch.Tensor] = []
            z = self.forward(theta, x, keep=inputs)
            logp = torch.log_softmax(z, dim=-1)
            count = weight.sum(dim=1)
            ce = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
            loss = (ce * weight).sum(dim=1) / count
            delta = logp.exp()
            delta.scatter_add_(-1, y.unsqueeze(-1), torch.full_like(ce.unsqueeze(-1), -1.0))
            delta *= (weight / count.unsqueeze(1)).unsqueeze(-1)
            grad = torch.empty((C, self.n_params), dtype=theta.dtype, device=theta.device)
            first = next(k for k, op in enumerate(self.ops) if op[0] == "linear")
            for k in range(len(self.ops) - 1, first - 1, -1):
                op, inp = self.ops[k], inputs[k]
                if op[0] == "linear":
                    (wo, (out_f, in_f)), b = op[1], op[2]
                    d2 = delta.reshape(C, -1, out_f)
                    h = inp.reshape(C, -1, in_f)
                    grad[:, wo:wo + out_f * in_f] = torch.bmm(d2.transpose(1, 2), h).flatten(1)
                    if b is not None:
                        grad[:, b[0]:b[0] + out_f] = d2.sum(dim=1)
                    if k > first:
                        W = theta[:, wo:wo + out_f * in_f].view(C, out_f, in_f)
                        delta = torch.bmm(d2, W).view(inp.shape)
                elif op[0] == "flatten":
                    delta = delta.view(inp.shape)
                else:
                    delta = _activation_backward(op[1], inp, delta)
        return loss, grad


def _activation(mod: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply activation ``mod`` out of place (an ``inplace=True`` module would overwrite ``x``)."""
    if isinstance(mod, nn.ReLU):
        return torch.relu(x)
    if isinstance(mod, nn.LeakyReLU):
        return F.leaky_relu(x, mod.negative_slope)
    if isinstance(mod, nn.Tanh):
        return torch.tanh(x)
    if isinstance(mod, nn.Sigmoid):
        return torch.sigmoid(x)
    if isinstance(mod, nn.Identity):
        return x
    raise TypeError(f"no stacked form for {type(mod).__name__}")


def _activation_backward(mod: nn.Module, inp: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Return ``delta`` times the derivative of activation ``mod`` at ``inp``."""
    if isinstance(mod, nn.ReLU):
        return delta * (inp > 0)
    if isinstance(mod, nn.LeakyReLU):
        return torch.where(inp > 0, delta, delta * mod.negative_slope)
    if isinstance(mod, nn.Tanh):
        t = torch.tanh(inp)
        return delta * (1 - t * t)
    if isinstance(mod, nn.Sigmoid):
        sg = torch.sigmoid(inp)
        return delta * (sg * (1 - sg))
    if isinstance(mod, nn.Identity):
        return delta
    raise TypeError(f"no derivative for {type(mod).__name__}")


def stacked_chain(model: nn.Module) -> StackedChain | None:
    """Return ``model`` as a :class:`StackedChain` for every client at once, or None.

    Parameters
    ----------
    model : nn.Module
        The clients' common architecture. Supported: a forward pass that is a chain
        of ``nn.Flatten()`` (default dimensions), ``nn.Linear`` and the activations in
        :data:`ELEMENTWISE` (found by :func:`torch.fx.symbolic_trace`), every
        parameter in a ``Linear``, at least one ``Linear``.

    Returns
    -------
    StackedChain or None
        None for any other model (the caller then uses ``vmap`` and autograd).
    """
    if model in _CHAINS:
        return _CHAINS[model]
    _CHAINS[model] = chain = _build(model)
    return chain


#: one trace per model object (tracing takes about 1.5 ms; a run asks every round)
_CHAINS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _build(model: nn.Module) -> StackedChain | None:
    names = _chain(model)
    if names is None or len(set(names)) != len(names):  # a layer called twice: vmap
        return None
    if (sum(1 for _ in model.named_parameters(remove_duplicate=False))
            != sum(1 for _ in model.parameters())):  # tied weights: vmap
        return None
    offsets, offset = {}, 0
    for name, p in model.named_parameters():
        offsets[name] = (offset, tuple(p.shape))
        offset += p.numel()
    ops: list[tuple] = []
    covered = set()
    for name in names:
        mod = model.get_submodule(name)
        if isinstance(mod, nn.Linear):
            if f"{name}.weight" not in offsets:
                return None
            w = offsets[f"{name}.weight"]
            b = offsets.get(f"{name}.bias")
            covered.update({f"{name}.weight"} | ({f"{name}.bias"} if b else set()))
            ops.append(("linear", w, b))
        elif isinstance(mod, nn.Flatten):
            if (mod.start_dim, mod.end_dim) != (1, -1):
                return None
            ops.append(("flatten",))
        elif type(mod) in ELEMENTWISE:
            ops.append(("elementwise", mod))
        else:
            return None
    if covered != set(offsets) or not any(op[0] == "linear" for op in ops):
        return None
    return StackedChain(ops, offset)
