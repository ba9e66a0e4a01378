"""Experiment sweeps on Ray: ``ipfl experiment NAME --ray ADDRESS`` (issue 23).

Each run of an experiment is one Ray task that calls :func:`~ipfl.experiments.core.run_one`,
the function ``--jobs`` runs in its processes, so a run trains, resumes and writes its run
directory (atomically, ``done.json`` last) exactly as it does without Ray. The driver (the
``ipfl experiment`` process) enumerates the runs, skips the finished ones, submits the rest
and, once they are all back, writes the CSVs, figures and summary itself: the CSVs are the
ones ``--jobs 1`` writes, byte for byte (``tests/ipfl/experiments/test_ray_sweep.py``).

Where a run directory is written (:func:`run_task`):

* **Shared filesystem.** The driver writes a probe file with a random token into the run
  store; a task that reads the same token at the same path sees the store and trains in
  place (``--ray local`` always does). An interrupted run resumes from its checkpoint.
* **Results returned.** A task that does not see the probe trains in a folder of its
  node's temporary directory named by the run's hash, packs the finished run directory
  (config, metrics, round records, ``chain.json``; no model checkpoint) into a tar
  archive and returns it; the driver unpacks it next to the store and renames it into
  place. A run interrupted there resumes only if it is scheduled on the same node again.

``--ray local`` starts a one-machine Ray (``num_cpus`` = ``--jobs`` if given, else the
machine's CPUs; no dashboard UI, usage statistics off, every address on 127.0.0.1, a
128 MiB object store, its temporary folder ``/tmp/ipfl-ray-<pid>-*``) and stops it at the
end. Nothing Ray starts outlives the driver, even a ``kill -9`` of it: a small watchdog
process (:mod:`ipfl.experiments._ray_watchdog`), started first in its own session, notes
the processes Ray starts while the driver runs, waits for the driver's end (its stdin
pipe closes, however the driver ends), then stops them and every process whose
environment holds this sweep's token (``IPFL_RAY_SWEEP``) and removes the temporary
folder.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["INSTALL", "LOCAL", "check_address", "ray_processes", "require_ray", "run_on_ray",
           "run_task"]

#: the value of ``--ray`` that starts Ray on this machine
LOCAL = "local"

#: the one command that installs Ray at the version Flower's simulation pins
INSTALL = "pip install 'ipfl[flower-sim]'"

#: the environment variable every process of a ``--ray local`` sweep carries
MARKER = "IPFL_RAY_SWEEP"

#: the object store of ``--ray local``: runs return at most a few MiB
_OBJECT_STORE = 128 * 1024**2

_ADDRESS = re.compile(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,252}))"
                      r":([0-9]{1,5})")


def check_address(address: str) -> tuple[str, int] | None:
    """Check a ``--ray`` value: ``local``, ``HOST:PORT`` or ``ray://HOST:PORT``.

    Returns ``None`` for ``local``, else ``(host, port)``. Raises :class:`ValueError`
    naming ``--ray`` and the value for anything else.
    """
    if address == LOCAL:
        return None
    m = _ADDRESS.fullmatch(address)
    if m is None or not 1 <= int(m.group(3)) <= 65535:
        raise ValueError(f"--ray = {address[:80]!r} is not 'local', HOST:PORT or "
                         "ray://HOST:PORT (e.g. --ray 10.0.0.5:6379, the head's `ray start "
                         "--head` port)")
    return m.group(2).strip("[]"), int(m.group(3))


def require_ray() -> None:
    """Raise :class:`ValueError` in one line naming the install command unless Ray imports."""
    from importlib.util import find_spec

    if find_spec("ray") is None:
        raise ValueError(f"--ray needs Ray, which is not installed: {INSTALL}")


#: seconds a Ray head has to answer :func:`reachable`'s question (it answers in about one)
GCS_WAIT = 20.0

#: asks the head for its cluster id, as ``ray health-check`` does
_ASK_GCS = "import sys, ray._raylet as r; r.GcsClient(address=sys.argv[1]).cluster_id"


def reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse (:class:`ValueError` naming ``--ray``) a cluster address no Ray head answers at.

    ``ray.init`` retries such an address for many minutes. First a TCP connection to the
    port says whether anything listens there; then (``HOST:PORT``, not Ray Client's
    ``ray://``) a child process asks it for its cluster id, as ``ray health-check`` does,
    and is stopped after :data:`GCS_WAIT` seconds: a port where another service listens
    is refused in that time.
    """
    where = check_address(address)
    if where is None:
        return
    host, port = where
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ValueError(f"--ray = {address!r}: nothing answers at {host}:{port} ({why}); "
                         "start the head there with `ray start --head --port "
                         f"{port}`, or use --ray local") from None
    if address.startswith("ray://"):
        return
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        done = subprocess.run([sys.executable, "-c", _ASK_GCS, f"{host}:{port}"], env=env,
                              capture_output=True, timeout=GCS_WAIT, check=False)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or b"RpcError" in done.stderr:
        raise ValueError(f"--ray = {address!r}: something listens at {host}:{port}, but no Ray "
                         f"head answered within {GCS_WAIT:g} s; give the port of `ray start "
                         "--head --port PORT` (6379 by default)")
    # any other failure (this Ray without the call, say) is left to ray.init to report
    _REACHED.add(address)


#: cluster addresses :func:`reachable` accepted in this process (checked once, not twice)
_REACHED: set[str] = set()


# ----- the task (runs on a Ray worker) -----------------------------------------------------
def _sees(probe: tuple[str, str] | None) -> bool:
    """Say whether this node reads the driver's probe file (the run store is shared)."""
    if probe is None:
        return False
    try:
        return Path(probe[0]).read_text() == probe[1]
    except OSError:
        return False


def pack(run: Path) -> bytes:
    """Return a finished run directory as an uncompressed tar archive (no lock file)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for p in sorted(run.rglob("*")):
            if p.name != "run.lock":
                tar.add(p, arcname=str(p.relative_to(run)), recursive=False)
    return buf.getvalue()


def unpack(data: bytes, target: Path) -> None:
    """Put a run directory returned by a task at ``target``: unpack next to it, then rename.

    A half-unpacked run never sits at ``target``: the archive is extracted into a hidden
    sibling folder, which is renamed into place once complete (a leftover unfinished run
    at ``target`` is removed first, holding the run's own writer lock,
    :meth:`training.RunDir.lock`: a run another process is writing is refused, not removed).
    """
    import fcntl

    tmp = Path(tempfile.mkdtemp(prefix=f".incoming-{target.name}-", dir=target.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            for m in tar.getmembers():  # what a run directory holds, and nothing outside it
                parts = Path(m.name).parts
                if not (m.isfile() or m.isdir()) or m.name.startswith("/") or ".." in parts:
                    raise RuntimeError(f"--ray: the run {target.name} came back with "
                                       f"{m.name!r}, which is not part of a run directory")
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover
                tar.extractall(tmp)  # noqa: S202 (every member was checked above)
        if not (tmp / "done.json").is_file() and not (tmp / "failed.json").is_file():
            raise RuntimeError(f"--ray: the run {target.name} came back unfinished")
        with open(target.parent / f".{target.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one unpacker at a time
            if target.exists():
                from training import RunDir

                # the run's own writer lock: RunLocked while another process writes it
                with RunDir(target).lock():
                    shutil.rmtree(target)
                    os.rename(tmp, target)
            else:
                os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_task(cfg: Any, path: str, probe: tuple[str, str] | None,
             store_version: int) -> bytes | None:
    """Run one experiment run on a Ray worker; return its directory if the store is not shared.

    Parameters
    ----------
    cfg
        The run's :class:`training.Config`.
    path
        The run's folder in the driver's run store (``<store>/<config hash>``).
    probe
        ``(path, token)`` of the driver's probe file, or ``None`` to always return the run.
    store_version
        The driver's :data:`~ipfl.experiments.core.STORE_VERSION`: a node running other
        training code would make other numbers under the same hash, so it refuses.

    Returns
    -------
    bytes or None
        ``None`` when the run was written in place (shared store), else the finished run
        directory as a tar archive (:func:`pack`) for the driver to :func:`unpack`.
    """
    from . import core

    if store_version != core.STORE_VERSION:
        raise RuntimeError(f"--ray: node {socket.gethostname()} runs ipfl with store version "
                           f"{core.STORE_VERSION}, the driver {store_version}: install the "
                           "same ipfl on every node")
    if _sees(probe):
        core.run_one(cfg, path, progress=False)
        return None
    local = Path(tempfile.gettempdir()) / "ipfl-ray-runs" / Path(path).name
    core.run_one(cfg, local, progress=False)
    data = pack(local)
    shutil.rmtree(local, ignore_errors=True)
    return data


# ----- the driver -----------------------------------------------------------------------------
def ray_processes(token: str) -> list[int]:
    """Return the PIDs of the live processes whose environment holds ``IPFL_RAY_SWEEP=token``."""
    marker = f"{MARKER}={token}".encode()
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        pids.append(int(d))
            except OSError:
                pass
    return pids


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def connect(address: str, cpus: int | None = None) -> Iterator[Any]:
    """Start (``local``) or join (``HOST:PORT``) a Ray cluster; yield the ``ray`` module.

    On exit Ray is shut down; for ``local`` the watchdog then stops whatever Ray left and
    removes Ray's temporary folder before this returns.
    """
    require_ray()
    local = check_address(address) is None
    token = secrets.token_hex(8)
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_DEDUP_LOGS": "0",
           # Ray hides the GPUs from a task that asks for none; say so without a warning
           "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    watchdog = None
    tmp = None
    if local:
        tmp = Path(tempfile.mkdtemp(prefix=f"ipfl-ray-{os.getpid()}-", dir="/tmp"))
        watchdog = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("_ray_watchdog.py")),
             f"{MARKER}={token}", str(tmp), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, env={k: v for k, v in os.environ.items() if k != MARKER})
        # every Ray process inherits these: the marker the watchdog looks for, and loopback
        # addresses only (Ray reads this switch when it is first imported)
        env |= {MARKER: token, "RAY_TMPDIR": str(tmp),
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    try:
        with _environ(env):
            import ray

            if ray.is_initialized():
                raise ValueError("--ray: Ray is already initialised in this process")
            common = {"include_dashboard": False, "log_to_driver": False,
                      "configure_logging": False, "namespace": "ipfl-experiment"}
            if not local:
                if address not in _REACHED:
                    reachable(address)
                del common["include_dashboard"]  # a driver joining a cluster starts none
            try:
                if local:
                    ray.init(num_cpus=cpus or os.cpu_count() or 1, _temp_dir=str(tmp),
                             object_store_memory=_OBJECT_STORE, **common)
                else:
                    ray.init(address=address, **common)
            except Exception as exc:  # noqa: BLE001 (Ray's errors run over many lines)
                ray.shutdown()  # whatever it started (and, for local, the watchdog after it)
                first = (str(exc).strip().splitlines() or [""])[0][:300]
                raise ValueError(f"--ray = {address!r}: Ray did not start or connect: "
                                 f"{type(exc).__name__}: {first}") from None
            try:
                yield ray
            finally:
                ray.shutdown()
    finally:
        if watchdog is not None:
            watchdog.stdin.close()
            try:
                watchdog.wait(timeout=30)
            except subprocess.TimeoutExpired:  # pragma: no cover (the watchdog waits 6 s at most)
                watchdog.kill()
                watchdog.wait()


def _make_probe(store: Path) -> tuple[str, str] | None:
    """Write this driver's probe file into the store; remove probes of dead drivers here.

    A probe is named ``.ray-probe-<host>-<pid>-<token>``; one left by a driver of this
    host that no longer runs (``kill -9``) is removed.
    """
    host = socket.gethostname()
    for old in store.glob(f".ray-probe-{host}-*"):
        pid = old.name[len(f".ray-probe-{host}-"):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            old.unlink(missing_ok=True)
    token = secrets.token_hex(16)
    path = store.resolve() / f".ray-probe-{host}-{os.getpid()}-{token}"
    path.write_text(token)
    return str(path), token


def _result(ray: Any, ref: Any, path: str) -> bytes | None:
    """Return a task's result; its error as one line (ValueError stays a ValueError)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause
        if isinstance(cause, ValueError):
            raise ValueError(str(cause)) from None
        raise RuntimeError(f"--ray: run {Path(path).name}: {type(cause).__name__}: "
                           f"{cause}") from None
    except ray.exceptions.RayError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise RuntimeError(f"--ray: run {Path(path).name} was lost: {type(exc).__name__}"
                           f"{': ' + first if first else ''}") from None


def run_on_ray(todo: list[tuple[Any, str]], store: Path, address: str, *,
               jobs: int | None = None, on_done: Callable[[], None] | None = None,
               probe: bool = True) -> None:
    """Run every ``(cfg, path)`` of ``todo`` as a Ray task; return when all are finished.

    ``jobs`` caps the runs in flight (and is ``num_cpus`` of ``--ray local``); ``None``
    lets Ray schedule one run per free CPU of the cluster. ``on_done()`` is called after
    each run. ``probe=False`` makes every task return its run directory (the path a
    cluster without a shared filesystem takes). The first failed task stops the sweep;
    the runs still in flight stop with the driver's Ray job and finished runs stay finished.
    """
    local = check_address(address) is None
    with connect(address, cpus=jobs if local else None) as ray:
        gpu = any(getattr(cfg, "device", "cpu") == "cuda" for cfg, _ in todo)
        task = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0)(run_task)
        from .core import STORE_VERSION

        made = _make_probe(store) if probe else None
        queue = list(todo)
        pending: dict[Any, str] = {}
        try:
            while queue or pending:
                while queue and (jobs is None or len(pending) < jobs):
                    cfg, path = queue.pop(0)
                    pending[task.remote(cfg, path, made, STORE_VERSION)] = path
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    path = pending.pop(ref)
                    data = _result(ray, ref, path)
                    if data is not None:
                        unpack(data, Path(path))
                    if on_done is not None:
                        on_done()
        finally:
            # The runs still in flight are not force-cancelled: the shutdown that follows
            # (``connect``) ends this driver's job, and Ray stops the job's tasks with it
            # (fate sharing). A ``ray.cancel(force=True)`` racing a task that is finishing
            # tripped Ray 2.55's own check (task_manager.cc: "Tried to complete task that
            # was not pending") and aborted the driver on Ctrl-C.
            if made is not None:
                Path(made[0]).unlink(missing_ok=True)
