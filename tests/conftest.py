"""Shared pytest configuration: Hypothesis profiles (see proofs_checks.profiles).

``HYPOTHESIS_PROFILE=ci`` (the default here, and what ``make test`` sets) is
deterministic with a fixed budget; ``thorough`` runs 10,000 examples per property.
"""

from proofs_checks.profiles import load_profile

load_profile()
