"""Shared pytest configuration: Hypothesis profiles (see proofs_checks.profiles), tiny runs.

``HYPOTHESIS_PROFILE=ci`` (the default here, and what ``make test`` sets) is
deterministic with a fixed budget; ``thorough`` runs 10,000 examples per property.
"""

import os

import pytest

from proofs_checks.profiles import load_profile

load_profile()


@pytest.fixture(scope="session", autouse=True)
def _chain_key_dir(tmp_path_factory):
    """Keep the tests' run-chain keys (training.keys) out of the user's ~/.config/ipfl.

    Set in the environment, so CLI runs and subprocesses use the same folder.
    """
    folder = tmp_path_factory.mktemp("ipfl-keys")
    folder.chmod(0o700)
    old = os.environ.get("IPFL_KEY_DIR")
    os.environ["IPFL_KEY_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("IPFL_KEY_DIR", None)
    else:
        os.environ["IPFL_KEY_DIR"] = old

#: the algorithms of :func:`tiny_runs`: iPFL (market records), a baseline, local training
TINY_RUN_ALGORITHMS = ("ipfl", "fedavg", "local")


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """Finished tiny runs by algorithm (synthetic data, 4 clients, 2 rounds, 1 epoch).

    Read-only: a test that edits a run copies it first. About 1 s per run.
    """
    from training import Config, train

    root = tmp_path_factory.mktemp("tiny-runs")
    for algorithm in TINY_RUN_ALGORITHMS:
        cfg = Config(algorithm=algorithm, dataset="synthetic", clients=4, rounds=2, epochs=1,
                     hidden=16)
        train(cfg, root / algorithm, progress=False)
    return {a: root / a for a in TINY_RUN_ALGORITHMS}
