"""Atomic file writes: every file this package writes appears whole or not at all.

A temporary file in the destination folder is written, flushed and fsync'ed, then
renamed over the destination with :func:`os.replace` (atomic on POSIX and Windows).
A crash or ``kill -9`` at any moment leaves either the old file or the new one, never
a half-written one, and no temporary file survives an exception.

Temporary files are owned per writer: one is named ``.NAME.OWNER.RANDOM.tmp`` where
``OWNER`` is ``HOST-PID`` (:func:`temp_owner`, ``HOST`` a short hash of the host name).
A leftover of a writer killed mid-write is removed only by :func:`remove_stale_temps`,
and only when its writer is gone (same host, no such process): a live writer's
temporary file is never deleted by anyone else.

The file gets the permissions of a plain ``open(path, "w")``: it is created with mode
``0o666`` and the kernel applies the umask (and any default ACL) itself, so nothing
reads or changes the process's umask (:func:`tempfile.mkstemp` would leave ``0o600``).

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

import hashlib
import os
import re
import secrets
import socket
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "default_mode", "remove_stale_temps",
           "temp_owner"]

_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))

#: ``.NAME.HOST-PID.RANDOM.tmp``
_TEMP = re.compile(r"^\..+\.([0-9a-f]{8})-([0-9]+)\.[0-9a-f]{16}\.tmp$")


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def temp_owner() -> str:
    """Return this writer's tag in its temporary files' names: ``HOST-PID``."""
    return f"{_host_tag()}-{os.getpid()}"


def default_mode() -> int:
    """Return the mode a new file gets from the current umask (``0o666 & ~umask``).

    Read from ``/proc/self/status`` where there is one (Linux), so the process's umask is
    never changed, not even for an instant another thread could see.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)  # no getter elsewhere: read it and put it back at once
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, creating the parent folder if needed.

    The temporary file is this writer's own (:func:`temp_owner` in its name), created
    with ``O_EXCL | O_NOFOLLOW`` and mode ``0o666`` less the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{temp_owner()}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(tmp, _FLAGS, 0o666)
            break
        except FileExistsError:  # pragma: no cover (2**-64)
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or a pid we cannot test: keep its file
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files in ``folder`` whose writer is gone; return them.

    Only files named by :func:`atomic_write_bytes` on this host whose process no longer
    exists are removed (a regular file, not a link). A live writer's file, another host's
    and any file of another naming are left alone.
    """
    gone = []
    folder = Path(folder)
    if not folder.is_dir():
        return gone
    host = _host_tag()
    for p in folder.iterdir():
        hit = _TEMP.match(p.name)
        if hit is None or hit.group(1) != host or _alive(int(hit.group(2))):
            continue
        if p.is_symlink() or not p.is_file():
            continue
        p.unlink(missing_ok=True)
        gone.append(p)
    return gone


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
