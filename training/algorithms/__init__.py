"""Training algorithms as plug-ins of one round structure, registered by name.

One module per algorithm; importing this package registers them all in
:data:`ALGORITHMS`.
"""

from . import (  # noqa: F401  (registration side effects)
    cfl,
    ditto,
    fedamp,
    fedavg,
    fedfomo,
    fedprox,
    ipfl,
    local,
    pfedgraph,
)
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
