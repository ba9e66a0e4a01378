"""Shared pytest configuration: Hypothesis profiles (see proofs_checks.profiles), tiny runs.

``HYPOTHESIS_PROFILE=ci`` (the default here, and what ``make test`` sets) is
deterministic with a fixed budget; ``thorough`` runs 10,000 examples per property.
"""

import pytest

from proofs_checks.profiles import load_profile

load_profile()

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
