"""PyTorch training layer of iPFL (Algorithm 1): data, partitions, models, algorithms, runs.

>>> from training import Config
>>> Config(clients=4, rounds=2).algorithm
'ipfl'
"""

from .algorithms import (
    ALGORITHMS,
    Algorithm,
    ClientOutput,
    Message,
    ServerInput,
    ServerOutput,
    get_algorithm,
    register,
)
from .attacks import ATTACKS
from .audit import audit_run
from .client import run_client
from .config import Config, load_config
from .data import Dataset, load_dataset
from .distance import DISTANCES, get_distance
from .federation import Federation, prepare, server_view
from .ledger import Ledger
from .loop import train
from .models import build_model
from .partition import PARTITIONERS, client_splits, partition
from .profiles import Reports
from .records import Exchange, RoundRecord
from .rundir import RunDir
from .server import ipfl_server_step, prox_centers
from .session import IRViolationWarning, NonFiniteRound, RunState, Session

__all__ = [
    "ALGORITHMS",
    "ATTACKS",
    "Algorithm",
    "ClientOutput",
    "Config",
    "DISTANCES",
    "Dataset",
    "Exchange",
    "Federation",
    "IRViolationWarning",
    "Ledger",
    "Message",
    "NonFiniteRound",
    "PARTITIONERS",
    "Reports",
    "RoundRecord",
    "RunDir",
    "RunState",
    "ServerInput",
    "ServerOutput",
    "Session",
    "audit_run",
    "build_model",
    "client_splits",
    "get_algorithm",
    "get_distance",
    "ipfl_server_step",
    "load_config",
    "load_dataset",
    "partition",
    "prepare",
    "prox_centers",
    "register",
    "run_client",
    "server_view",
    "train",
]
