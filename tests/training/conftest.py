import pytest

from training import Config


@pytest.fixture
def tiny() -> Config:
    """A run small enough for seconds: 4 clients on 400 digits, 2 market rounds, 1 epoch."""
    return Config(clients=4, rounds=2, epochs=1, hidden=16, max_samples=400, beta=0.5)
