"""The run directory: resolved config, metrics, ledger, per-round market records, checkpoint.

Layout::

    RUN_DIR/config.json          resolved configuration (resume reads it)
    RUN_DIR/metrics.jsonl        one JSON line per client per completed round
    RUN_DIR/ledger.sqlite        append-only payments (training.ledger)
    RUN_DIR/rounds/NNNN.json     market inputs and outputs of round NNNN (audit)
    RUN_DIR/checkpoint.pt        state after the last completed round (the commit point)

Every file except the SQLite ledger is written atomically (temporary file in the same
folder, ``fsync``, :func:`os.replace`), so a ``kill -9`` leaves either the old or the
new version, never a torn one.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from ipfl.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["RunDir", "atomic_write_bytes", "atomic_write_text"]


class RunDir:
    """Paths and readers/writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config = property(lambda self: self.path / "config.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    ledger = property(lambda self: self.path / "ledger.sqlite")
    rounds = property(lambda self: self.path / "rounds")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")

    def create(self) -> None:
        """Create the folders."""
        self.rounds.mkdir(parents=True, exist_ok=True)

    def read_config(self) -> dict[str, Any]:
        """Return the resolved config as a dict; :class:`FileNotFoundError` if absent."""
        if not self.config.is_file():
            raise FileNotFoundError(f"run dir {str(self.path)!r} has no config.json")
        return json.loads(self.config.read_text())

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the whole metrics file atomically."""
        atomic_write_text(self.metrics, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    def read_metrics(self) -> list[dict[str, Any]]:
        """Return all metric rows (empty if none yet)."""
        if not self.metrics.is_file():
            return []
        return [json.loads(line) for line in self.metrics.read_text().splitlines() if line]

    def round_path(self, t: int) -> Path:
        """Path of round ``t``'s market record."""
        return self.rounds / f"{t:04d}.json"

    def write_round(self, t: int, record: dict[str, Any]) -> None:
        """Write round ``t``'s market record atomically."""
        atomic_write_text(self.round_path(t), json.dumps(record, indent=1))

    def read_rounds(self) -> dict[int, dict[str, Any]]:
        """Return every recorded round, by round number."""
        return {int(p.stem): json.loads(p.read_text()) for p in sorted(self.rounds.glob("*.json"))}

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Save ``state`` atomically with :func:`torch.save`."""
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.checkpoint, buf.getvalue())

    def load_checkpoint(self) -> dict[str, Any] | None:
        """Return the last checkpoint, or None.

        Loaded with ``weights_only=True``: only tensors and plain containers, so a pickle
        payload planted in the file is refused, never run.
        """
        if not self.checkpoint.is_file():
            return None
        try:
            return torch.load(self.checkpoint, weights_only=True)
        except Exception as exc:  # noqa: BLE001 (a damaged or foreign file: never run its code)
            raise ValueError(
                f"resume: {str(self.checkpoint)!r} is not a checkpoint this package wrote "
                f"({type(exc).__name__}); it is refused unread") from None
