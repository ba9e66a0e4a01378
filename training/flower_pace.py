"""Shorter fixed waits of flwr 1.42 for this process: the pulls of a message's objects.

In flwr 1.42 a process that pulls a message's objects (arrays, records) before they
are all there retries after 1 s, doubling up to 10 s (``PULL_INITIAL_BACKOFF``,
``PULL_BACKOFF_CAP``, bound as keyword defaults of ``pull_objects`` and
``pull_and_inflate_object_from_tree``). That happens on every message of a deployment:
a SuperNode hands a task to its ClientApp before it has fetched the message's objects,
and a reply's objects follow the reply. With rounds of a fraction of a second, these
waits were most of a deployed round (measured: about 1 s of every ClientApp task).

:func:`pace_flower` shortens them for the calling process only: the first retry after
``poll`` seconds, doubling up to 1 s, and tries enough that the overall limit stays
Flower's ``PULL_MAX_TIME`` (2 h). It is called by the ServerApp and by the deployed
client processes (:mod:`ipfl.flower_node`); the messages and their checks are
unchanged.
"""

from __future__ import annotations

import os

__all__ = ["POLL_ENV", "pace_flower", "poll_seconds"]

#: environment variable: seconds between polls of the deployment's processes
POLL_ENV = "IPFL_FLOWER_POLL"
_DEFAULT_POLL = 0.1
_BACKOFF_CAP = 1.0
_MAX_TRIES = 100_000  # with the 1 s cap, Flower's PULL_MAX_TIME is the binding limit


def poll_seconds() -> float:
    """Return the poll interval from ``IPFL_FLOWER_POLL`` (0.01 .. 3 s; default 0.1).

    Raises
    ------
    ValueError
        One line naming the variable and its value, if it is not a number in range.
    """
    raw = os.environ.get(POLL_ENV, "")
    if not raw:
        return _DEFAULT_POLL
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{POLL_ENV} = {raw!r} is not a number of seconds") from None
    if not 0.01 <= value <= 3.0:
        raise ValueError(f"{POLL_ENV} = {raw!r} is outside 0.01 .. 3 seconds")
    return value


def pace_flower(poll: float | None = None) -> dict[str, float]:
    """Set this process's object-pull retry to start at ``poll`` s (doubling, cap 1 s).

    Returns the new keyword defaults. Idempotent; flwr 1.42 only (``require_flower``
    has checked the version before Flower is used).
    """
    from flwr.supercore.inflatable import inflatable_utils as iu

    poll = poll_seconds() if poll is None else float(poll)
    new = {"initial_backoff": poll, "backoff_cap": max(_BACKOFF_CAP, poll),
           "max_tries_per_object": _MAX_TRIES}
    for fn in (iu.pull_objects, iu.pull_and_inflate_object_from_tree):
        if fn.__kwdefaults__ is None or "initial_backoff" not in fn.__kwdefaults__:
            raise RuntimeError(f"flwr's {fn.__name__} has no initial_backoff to pace "
                               "(is this flwr 1.42?)")
        fn.__kwdefaults__.update(new)
    return new
