"""Models and the flat-parameter view the server works on.

The loop never looks inside a model: it reads and writes one flat vector of the
trainable parameters (what the server sees, eq. (6)) plus one flat vector of buffers
(e.g. batch-norm statistics, kept per client, never shared). Any
:class:`torch.nn.Module` therefore works.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

__all__ = ["MLP", "MODELS", "SmallCNN", "build_model", "get_flat", "n_params", "set_flat",
           "shared_mask"]


class MLP(nn.Module):
    """A two-layer perceptron for flat inputs (digits: 64 features)."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)


class SmallCNN(nn.Module):
    """A small LeNet-style CNN for (C, 32, 32) or (C, 28, 28) images."""

    def __init__(self, in_channels: int, n_classes: int, side: int = 32, hidden: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        )
        flat = 32 * (side // 4) * (side // 4)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(self.features(x))


#: model names accepted by :func:`build_model` (the last two: :mod:`training.llm`, the
#: ``[llm]`` extra)
MODELS = ("auto", "cnn", "mlp", "smollm2", "tiny_llama")


def build_model(name: str, input_shape: tuple[int, ...], n_classes: int,
                hidden: int = 64) -> nn.Module:
    """Build ``"mlp"``, ``"cnn"`` or ``"auto"`` (CNN for image-shaped inputs, else MLP).

    ``"smollm2"`` and ``"tiny_llama"`` are LoRA-adapted language models
    (:func:`training.llm.build_llm`; ``input_shape`` and ``n_classes`` do not apply).
    """
    if name in ("smollm2", "tiny_llama"):
        from .llm import build_llm

        return build_llm(name)
    if name == "auto":
        name = "cnn" if len(input_shape) == 3 else "mlp"
    factories = {
        "mlp": lambda: MLP(math.prod(input_shape), n_classes, hidden),
        "cnn": lambda: SmallCNN(input_shape[0], n_classes, input_shape[-1], hidden),
    }
    if name not in factories:
        raise ValueError(f"model = {name!r} is not one of {sorted(factories) + ['auto']}")
    if name == "cnn" and len(input_shape) != 3:
        raise ValueError(f"model = 'cnn' needs (C, H, W) inputs, got shape {input_shape}")
    return factories[name]()


def _trainable(model: nn.Module) -> list[torch.Tensor]:
    return [p for p in model.parameters() if p.requires_grad]


def n_params(model: nn.Module) -> int:
    """Return the number of trainable parameters ``P``."""
    return sum(p.numel() for p in _trainable(model))


def _state_buffers(model: nn.Module) -> list[torch.Tensor]:
    """Return the buffers that are part of the model's state (non-persistent ones are derived).

    A non-persistent buffer (``register_buffer(..., persistent=False)``, e.g. a llama's
    rotary frequencies) is recomputed from the architecture, never trained nor saved by
    torch; it is left out of the flat buffer vector (and so of checkpoints).
    """
    out, seen = [], set()
    for mod in model.modules():
        for name, b in mod._buffers.items():
            if b is not None and name not in mod._non_persistent_buffers_set \
                    and id(b) not in seen:
                seen.add(id(b))
                out.append(b)
    return out


def get_flat(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (trainable parameters, buffers) of ``model`` as two detached flat CPU tensors.

    Only trainable parameters (``requires_grad``) and persistent buffers: a frozen base
    (a language model under LoRA, :mod:`training.llm`) is in neither.
    """
    params = torch.cat([p.detach().reshape(-1) for p in _trainable(model)]).cpu()
    bufs = [b.detach().reshape(-1).float().cpu() for b in _state_buffers(model)]
    return params.clone(), (torch.cat(bufs) if bufs else torch.zeros(0))


def set_flat(model: nn.Module, params: torch.Tensor, buffers: torch.Tensor | None = None) -> None:
    """Write flat ``params`` (and ``buffers``) back into ``model`` in place."""
    with torch.no_grad():
        k = 0
        for p in _trainable(model):
            p.copy_(params[k:k + p.numel()].view_as(p))
            k += p.numel()
        if buffers is not None and buffers.numel():
            k = 0
            for b in _state_buffers(model):
                b.copy_(buffers[k:k + b.numel()].view_as(b).to(b.dtype))
                k += b.numel()


def shared_mask(model: nn.Module, pattern: str) -> torch.Tensor:
    r"""Return the boolean mask over the flat trainable parameters whose name matches ``pattern``.

    ``pattern`` is a regular expression searched in each parameter's qualified name
    (``re.search``); ``".*"`` shares everything. What is not shared stays with its
    client: never uploaded, never measured, never pulled towards anybody.

    Raises
    ------
    ValueError
        When the pattern is not a valid regular expression or matches no parameter.

    Examples
    --------
    >>> m = MLP(4, 3, hidden=2)
    >>> mask = shared_mask(m, r"net\.3\.")  # only the last layer: 2 * 3 + 3 entries
    >>> int(mask.sum()), mask.numel(), bool(mask[-9:].all())
    (9, 19, True)
    """
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"config: share = {pattern!r} is not a regular expression ({exc})") from None
    names = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    parts = [torch.full((p.numel(),), bool(rx.search(n))) for n, p in names]
    mask = torch.cat(parts)
    if not mask.any():
        raise ValueError(f"config: share = {pattern!r} matches no parameter; the model's "
                         f"parameters are {[n for n, _ in names]}")
    return mask
