"""Training algorithms as plug-ins of one round structure, registered by name.

One module per algorithm; importing this package registers them all in
:data:`ALGORITHMS`.
"""

from . import cfl, ditto, fedamp, fedavg, fedprox, ipfl, local  # noqa: F401  (registration side effects)
from .base import (
    ALGORITHMS,
    Algorithm,
    ClientOutput,
    Message,
    ServerInput,
    ServerOutput,
    State,
    get_algorithm,
    register,
)

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "ClientOutput",
    "Message",
    "ServerInput",
    "ServerOutput",
    "State",
    "get_algorithm",
    "register",
]
