"""Hypothesis settings profiles for the claim properties.

``ci``
    Deterministic (``derandomize=True``), a fixed budget, no deadline, no example
    database: the test command (``HYPOTHESIS_PROFILE=ci pytest``) and the default
    ``ipfl audit`` give the same verdicts on every run and machine.
``thorough``
    10,000 examples per property, still derandomized: ``ipfl audit --thorough``.
``dev``
    A quick local profile (20 examples).

``tests/conftest.py`` calls :func:`register_profiles` and loads
``$HYPOTHESIS_PROFILE`` (default ``ci``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["CI_EXAMPLES", "THOROUGH_EXAMPLES", "load_profile", "register_profiles"]

#: examples per property in the ``ci`` profile
CI_EXAMPLES = 40
#: examples per property in the ``thorough`` profile
THOROUGH_EXAMPLES = 10_000

_COMMON = {
    "deadline": None,
    "database": None,
    "derandomize": True,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


def register_profiles() -> None:
    """Register the ``ci``, ``thorough`` and ``dev`` profiles (idempotent)."""
    settings.register_profile("ci", max_examples=CI_EXAMPLES, **_COMMON)
    settings.register_profile("thorough", max_examples=THOROUGH_EXAMPLES, **_COMMON)
    settings.register_profile("dev", max_examples=20, **_COMMON)


def load_profile(name: str | None = None) -> str:
    """Register the profiles and load ``name`` (default ``$HYPOTHESIS_PROFILE`` or ``ci``)."""
    register_profiles()
    name = name or os.environ.get("HYPOTHESIS_PROFILE", "ci")
    settings.load_profile(name)
    return name
