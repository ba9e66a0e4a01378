"""Reading files a user or a run names: regular files only, never more than a cap.

Every file read from a run directory or a data folder goes through :func:`read_regular`:

* the file is opened with ``O_NOFOLLOW | O_NONBLOCK``: a symbolic link (to
  ``/dev/zero``, to a file elsewhere) is refused, and a FIFO never blocks the open;
* it must then be a regular file (``fstat``): a FIFO, a device or a socket is refused
  at once, never read;
* its size must be at most ``cap`` bytes, checked before reading, and at most
  ``cap + 1`` bytes are ever read (a file growing meanwhile is refused too).

The caps are the constants of :data:`CAPS` (bytes), documented in
``docs/reliability.md``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["CAPS", "UnsafeFile", "check_regular", "read_regular", "read_text"]

_MiB = 1 << 20

#: the most bytes read from each kind of file
CAPS: dict[str, int] = {
    "config": 1 * _MiB,           # config.json
    "record": 256 * _MiB,         # rounds/NNNN.json (an m x m distance matrix as JSON)
    "metrics": 1024 * _MiB,       # metrics.jsonl (one row per client per round)
    "drops": 64 * _MiB,           # drops.jsonl
    "chain": 256 * _MiB,          # chain.json
    "checkpoint": 8192 * _MiB,    # checkpoint.pt (every client's model state)
    "ledger": 4096 * _MiB,        # ledger.sqlite
    "key": 4096,                  # a chain key file
    "cifar10": 64 * _MiB,         # one CIFAR-10 batch (about 30 MiB)
    "fashion_mnist": 64 * _MiB,   # one Fashion-MNIST idx file, compressed or not
}


class UnsafeFile(ValueError):  # noqa: N818 (reads as what it is)
    """A file that is not a regular file, or larger than its cap: refused unread."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def check_regular(path: str | os.PathLike, cap: int, what: str) -> int:
    """Return the size of ``path`` if it is a regular file (not a link) of at most ``cap`` bytes.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    UnsafeFile
        ``path`` is a symbolic link, a FIFO, a device, a folder, or larger than ``cap``.
    """
    st = os.lstat(path)
    return _check(st, path, cap, what)


def _check(st: os.stat_result, path: str | os.PathLike, cap: int, what: str) -> int:
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFile(f"{what} {str(path)!r} is {_kind(st.st_mode)}, not a regular file; "
                         "refused unread")
    if st.st_size > cap:
        raise UnsafeFile(f"{what} {str(path)!r} holds {st.st_size} bytes, more than the "
                         f"{cap} this file may hold; refused unread")
    return int(st.st_size)


def read_regular(path: str | os.PathLike, cap: int, what: str) -> bytes:
    """Return the bytes of the regular file ``path``, refusing links, non-files and > ``cap`` bytes.

    Parameters
    ----------
    path : path
        The file (its last component must not be a symbolic link).
    cap : int
        The most bytes the file may hold.
    what : str
        How errors name the file (``"run file"``, ``"cifar10 batch"``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    UnsafeFile
        A symbolic link, a FIFO, a device, a folder, or more than ``cap`` bytes.
    OSError
        Another read failure (permissions).
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise UnsafeFile(f"{what} {str(path)!r} is a symbolic link, not a regular file; "
                             "refused unread") from None
        if isinstance(exc, FileNotFoundError):
            raise
        if exc.errno is not None and os.path.exists(path) and not os.path.isfile(path):
            raise UnsafeFile(f"{what} {str(path)!r} is {_kind(os.lstat(path).st_mode)}, not "
                             "a regular file; refused unread") from None
        raise
    try:
        _check(os.fstat(fd), path, cap, what)
        chunks, left = [], cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > cap:
        raise UnsafeFile(f"{what} {str(path)!r} grew past the {cap} bytes it may hold while "
                         "being read; refused")
    return data


def read_text(path: str | Path, cap: int, what: str) -> str:
    """Return :func:`read_regular`'s bytes as UTF-8 text (:class:`UnicodeDecodeError` if not)."""
    return read_regular(path, cap, what).decode("utf-8")
