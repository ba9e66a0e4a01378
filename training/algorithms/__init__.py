"""Training algorithms as plug-ins of one loop, registered by name."""

from . import fedavg, ipfl, local  # noqa: F401  (registration side effects)
from .base import ALGORITHMS, Algorithm, RoundPlan, get_algorithm, register

__all__ = ["ALGORITHMS", "Algorithm", "RoundPlan", "get_algorithm", "register"]
