"""Training algorithms as plug-ins of one round structure, registered by name.

One module per algorithm, each with one :class:`Algorithm` subclass decorated with
:func:`register`. Every module of this package is imported here (discovered with
:mod:`pkgutil`), so a new algorithm is one new file: it is then in :data:`ALGORITHMS`,
in :func:`methods` (the order of tables and figures, by ``rank``), in every experiment
that compares the methods and in every contract test of the suite
(``tests/training/test_algorithms.py``).

>>> methods()[0], methods()[-1]
('local', 'ipfl')
"""

import importlib
import pkgutil

from .base import (
    ALGORITHMS,
    EVALUATES,
    Algorithm,
    ClientOutput,
    MarketCall,
    Message,
    ServerInput,
    ServerOutput,
    State,
    get_algorithm,
    methods,
    register,
)

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ALGORITHMS",
    "EVALUATES",
    "Algorithm",
    "ClientOutput",
    "MarketCall",
    "Message",
    "ServerInput",
    "ServerOutput",
    "State",
    "get_algorithm",
    "methods",
    "register",
]
