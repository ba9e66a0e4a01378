"""The watchdog of a ``--ray local`` sweep: stops every process of its Ray once the driver ends.

Run as a script (``python _ray_watchdog.py MARKER TMP DRIVER_PID``) by
:func:`ipfl.experiments.ray_sweep.connect`, in its own session, with the read end of a pipe
as stdin whose write end only the driver holds. While the driver lives, it notes twice a
second the processes Ray started (:func:`ray_tree`; PID and start time: Ray's agents are
re-parented to init when the raylet dies, so the tree must be seen before). When stdin
reaches its end (the driver ended, however: normally, on Ctrl-C, or killed), it sends
SIGTERM, then after 3 s SIGKILL, to every process it noted that still runs with the same
start time, and to every process whose environment holds ``MARKER``
(``IPFL_RAY_SWEEP=<token>``, inherited by every Ray process of the sweep; Ray's process
titles can overwrite part of the environment, so this alone is not enough), then removes
Ray's temporary folder ``TMP``.

Linux only (``/proc``). Standard library only: it must start fast and import nothing of ipfl.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time


def _stat(pid: int) -> tuple[int, int] | None:
    """Return ``(ppid, start time)`` of a live process (``None`` if gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == b"Z":
        return None
    return int(fields[1]), int(fields[19])


def _pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _has(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def ray_tree(driver: int, marker: bytes) -> dict[int, int]:
    """Return ``{pid: start time}`` of the driver's marked children and all their descendants.

    The driver's children that hold ``marker`` are the processes ``ray.init`` started (GCS,
    raylet, monitors); their descendants are Ray's agents and workers. Other children of
    the driver (a program calling :func:`~ipfl.experiments.run_experiment` may have some)
    are not Ray's and are left alone.
    """
    children: dict[int, list[tuple[int, int]]] = {}
    for pid in _pids():
        st = _stat(pid)
        if st is not None:
            children.setdefault(st[0], []).append((pid, st[1]))
    out = {pid: start for pid, start in children.get(driver, []) if _has(pid, marker)}
    todo = list(out)
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in out:
                out[pid] = start
                todo.append(pid)
    return out


def marked(marker: bytes) -> dict[int, int]:
    """Return ``{pid: start time}`` of the live processes whose environment holds ``marker``."""
    out = {}
    for pid in _pids():
        st = _stat(pid)
        if st is not None and _has(pid, marker):
            out[pid] = st[1]
    return out


def main(marker: bytes, tmp: str, driver: int) -> None:
    """Watch until stdin ends, then stop the sweep's Ray processes and remove ``tmp``."""
    seen: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([sys.stdin.buffer], [], [], 0.5)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # end of file: the driver has ended or closed its end
        seen |= ray_tree(driver, marker)
    me = os.getpid()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        targets = {p: s for p, s in {**seen, **marked(marker)}.items()
                   if p not in (me, driver) and _stat(p) is not None and _stat(p)[1] == s}
        for pid in targets:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        end = time.monotonic() + 3
        while targets and time.monotonic() < end:
            targets = {p: s for p, s in targets.items() if _stat(p) is not None}
            time.sleep(0.1)
        seen = targets
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1].encode(), sys.argv[2], int(sys.argv[3]))
