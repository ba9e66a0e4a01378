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
from .ledger import Ledger
from .loop import IRViolationWarning, prepare, train
from .models import build_model
from .partition import PARTITIONERS, client_splits, partition
from .profiles import Reports
from .rundir import RunDir
from .server import ipfl_server_step, prox_centers

__all__ = [
    "ALGORITHMS",
    "ATTACKS",
    "Algorithm",
    "ClientOutput",
    "Config",
    "DISTANCES",
    "Dataset",
    "IRViolationWarning",
    "Ledger",
    "Message",
    "PARTITIONERS",
    "Reports",
    "RunDir",
    "ServerInput",
    "ServerOutput",
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
    "train",
]
