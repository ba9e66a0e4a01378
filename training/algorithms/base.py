"""The plug-in interface of the training loop: one base class, one registry.

The loop (:mod:`training.loop`) is the same for every algorithm. Each round it hands
the algorithm the reports and the stacked models of the clients still in, and asks
:meth:`Algorithm.server_step` for a :class:`RoundPlan`: where each client starts its
local training, how strongly it is pulled towards that point, who quits, and (for
market algorithms) the market record to audit. During local training
:meth:`Algorithm.local_objective` turns the data loss into the client's objective.
A new baseline (FedProx, Ditto, FedAMP, CFL, FedFomo, pFedGraph) is one subclass,
registered with :func:`register`; nothing else changes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray

if TYPE_CHECKING:
    from ..config import Config
    from ..server import Reports

__all__ = ["ALGORITHMS", "Algorithm", "RoundPlan", "get_algorithm", "register"]


@dataclass
class RoundPlan:
    """One server round's decisions over the ``m`` clients passed in.

    Attributes
    ----------
    centers : torch.Tensor (m, P)
        Start point (and proximal centre) of each client's local training.
    prox : ndarray (m,)
        Coefficient ``mu_i`` of the proximal term ``mu_i/2 ||theta - center_i||^2``.
    stays : ndarray of bool (m,)
        False for clients that quit this round.
    A, r, p, U : ndarray
        Graph, remittances, net payments, utilities (zeros when no market is run).
    market : dict or None
        JSON-ready market inputs and outputs for the audit (None: no market).
    extra : dict
        Per-client arrays to put into the metrics (e.g. the step used).
    """

    centers: torch.Tensor
    prox: NDArray[np.float64]
    stays: NDArray[np.bool_]
    A: NDArray[np.int8]
    r: NDArray[np.float64]
    p: NDArray[np.float64]
    U: NDArray[np.float64]
    market: dict[str, Any] | None = None
    extra: dict[str, NDArray] = field(default_factory=dict)

    @classmethod
    def no_market(cls, centers: torch.Tensor, prox: float = 0.0) -> RoundPlan:
        """Return a plan without a market: nobody pays, nobody quits."""
        m = centers.shape[0]
        return cls(centers=centers, prox=np.full(m, prox), stays=np.ones(m, dtype=bool),
                   A=np.zeros((m, m), dtype=np.int8), r=np.zeros((m, m)), p=np.zeros(m),
                   U=np.zeros(m))


class Algorithm(ABC):
    """Base class of a training algorithm; subclasses set ``name`` and the hooks."""

    name: ClassVar[str]
    #: whether the algorithm runs a market (payments, ledger, audit records)
    uses_market: ClassVar[bool] = False

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    @abstractmethod
    def server_step(self, reports: Reports, theta: torch.Tensor, round_: int) -> RoundPlan:
        """Decide the round from the reports and stacked models (m, P) of the clients still in."""

    def local_objective(self, loss: torch.Tensor, params: list[torch.Tensor],
                        center: list[torch.Tensor], prox: float) -> torch.Tensor:
        """Return the client objective; default ``loss + prox/2 ||theta - center||^2`` (eq. (7))."""
        if prox == 0.0:
            return loss
        reg = sum(((p - c) ** 2).sum() for p, c in zip(params, center, strict=True))
        return loss + 0.5 * prox * reg


#: algorithm name -> class
ALGORITHMS: dict[str, type[Algorithm]] = {}


def register(cls: type[Algorithm]) -> type[Algorithm]:
    """Class decorator adding an algorithm to :data:`ALGORITHMS` under ``cls.name``."""
    if cls.name in ALGORITHMS:
        raise ValueError(f"algorithm {cls.name!r} is already registered")
    ALGORITHMS[cls.name] = cls
    return cls


def get_algorithm(cfg: Config) -> Algorithm:
    """Instantiate the algorithm ``cfg.algorithm`` names."""
    if cfg.algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm = {cfg.algorithm!r} is not one of {sorted(ALGORITHMS)}")
    return ALGORITHMS[cfg.algorithm](cfg)
