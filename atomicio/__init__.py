"""Atomic file writes: every file this package writes appears whole or not at all.

A temporary file in the destination folder is written, flushed and fsync'ed, then
renamed over the destination with :func:`os.replace` (atomic on POSIX and Windows).
A crash or ``kill -9`` at any moment leaves either the old file or the new one, never
a half-written one, and no temporary file survives an exception (one killed mid-write
is named ``.NAME.*.tmp``; run directories remove such leftovers when next opened).

The file gets the permissions of a plain ``open(path, "w")``: ``0o666`` less the
user's umask (:func:`tempfile.mkstemp` alone would leave ``0o600``).

This is the bottom layer, beside :mod:`mechanism` and importing nothing of the project:
:mod:`training` (run directories), :mod:`proofs_checks` (audit reports, fuzz campaigns)
and :mod:`ipfl` (everything the CLI writes) all write through it. It is not part of
:mod:`mechanism`, which does no file I/O, nor of :mod:`ipfl`, which lower layers never
import (``tests/test_layering.py``).

>>> import tempfile
>>> from pathlib import Path
>>> from atomicio import atomic_write_text
>>> folder = Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "sub" / "note.txt", "whole or nothing")
>>> (folder / "sub" / "note.txt").read_text(encoding="utf-8")
'whole or nothing'
>>> sorted(p.name for p in (folder / "sub").iterdir())  # no temporary left behind
['note.txt']
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "default_mode"]


def default_mode() -> int:
    """Return the mode a new file gets from the current umask (``0o666 & ~umask``)."""
    umask = os.umask(0o022)  # read it (there is no getter) and put it back at once
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating the parent folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), default_mode())
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
