"""Plain local training: every client trains alone, no market, no sharing.

What is evaluated (``evaluates = "trained"``): the model after local training, as
pFedGraph's ``local_training.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Algorithm, ServerInput, ServerOutput, State, register

if TYPE_CHECKING:
    from mechanism import Settlement

__all__ = ["Local"]


@register
class Local(Algorithm):
    """Each client continues from its own model with its data loss only (graph: empty)."""

    name = "local"
    rank = 0
    summary = "local SGD only, no collaboration"

    def server_step(self, inp: ServerInput, state: State,
                    settlement: Settlement | None = None) -> tuple[ServerOutput, State]:
        """Return the clients' own uploads as their start points."""
        return ServerOutput.plain(inp.uploads.clone(), own=1.0), state
