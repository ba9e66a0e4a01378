"""Run a Flower app on this machine: Ray simulation, or SuperLink + SuperNodes on loopback.

Both keep everything Flower and Ray write inside ``RUN_DIR/flower/`` (Flower's home, Ray's
temporary folder, the processes' logs), switch telemetry, update checks and run-time
dependency installation off, and leave nothing running: the simulation shuts Ray down,
the loopback deployment stops every process it started by its PID (process group).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from atomicio import atomic_write_text

__all__ = ["deploy_local", "flower_env", "simulate"]

#: Ray's socket paths must stay under the 107-byte limit of a Unix socket path
_RAY_PATH_MAX = 50
#: the SuperLink's state: flwr's in-memory link state and object store. A file database
#: committed every object of every message to disk (flwr 1.42 stores each in its own
#: transaction), which was most of a deployed round; the run's durable record is its run
#: directory, and a deployment starts a fresh SuperLink each time (a resume too).
_LINK_DB = ":flwr-in-memory:"


def flower_env(folder: Path) -> dict[str, str]:
    """Return the environment switches of every Flower / Ray process of a run."""
    return {
        "FLWR_HOME": str(folder / "home"),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "RAY_TMPDIR": str(folder / "ray"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_DEDUP_LOGS": "0",
    }


def _folder(run_dir: Path) -> Path:
    folder = run_dir.resolve() / "flower"
    (folder / "home").mkdir(parents=True, exist_ok=True)
    return folder


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if resume:
        if not (run_dir / "config.json").is_file():
            raise ValueError(f"resume: {str(run_dir)!r} has no config.json")
    elif run_dir.exists() and any(p.name != "flower" for p in run_dir.iterdir()):
        raise ValueError(f"run_dir = {str(run_dir)!r} is not empty; use --resume to continue it")


def _resumed_config(run_dir: Path, overrides: tuple[str, ...] | list[str]) -> Any:
    """Return a resumed run's config with ``overrides`` applied (checked before any work).

    The keys and values are checked here, as ``ipfl train --resume --set`` checks them;
    the ServerApp applies them again and records them in the config's history. Values
    travel in Flower's run config, joined by ``|``: neither ``|`` nor ``"`` may occur.
    """
    from training.config import Config, resume_config
    from training.rundir import RunDir

    rd = RunDir(run_dir)
    doc = rd.read_config_doc()
    for item in overrides:
        if "|" in item or '"' in item:
            raise ValueError(f"--set {item!r}: a value sent to Flower may not contain | or \"")
    if not overrides:
        return Config.from_dict({k: v for k, v in doc.items() if k != "history"})
    check = rd.verify(resuming=True, state=rd.load_checkpoint())
    if check.problems:
        raise ValueError(f"resume: {str(run_dir)!r} fails verification: {check.problems[0]} "
                         f"(`ipfl audit-run {run_dir}` lists them)")
    return resume_config(doc, list(overrides), check.committed + 1, "")[0]


def _next_round(run_dir: Path) -> int:
    """Return the round a resumed run starts from: one past the last in its metrics."""
    from .run_control import last_committed

    t = last_committed(run_dir)
    return 0 if t is None else t + 1


def simulate(cfg: Any, run_dir: Path, *, resume: bool = False, round_timeout: float = 600.0,
             cpus: int | None = None, overrides: tuple[str, ...] = (),
             announce: Any = None) -> dict[str, Any]:
    """Run ``cfg`` in Flower's Ray simulation (one virtual SuperNode per client).

    ``overrides`` (resume only): ``key=value`` changes of non-structural keys, as
    ``ipfl train --resume DIR --set``. ``announce(cfg, next_round)`` is called once every
    check has passed, before Flower starts. Returns the ServerApp's outcome (``rows``,
    ``seconds`` per round, ``error``) plus ``startup`` (seconds before round 0 began)
    and ``total``.
    """
    from training.remote import require_flower

    require_flower(simulation=True)
    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    if overrides and not resume:
        raise ValueError("overrides apply to a resumed run only; set keys in the config")
    if resume:
        cfg = _resumed_config(run_dir, overrides)
    if announce is not None:
        announce(cfg, _next_round(run_dir) if resume else 0)
    folder = _folder(run_dir)
    ray_tmp = folder / "ray"
    if len(str(ray_tmp)) > _RAY_PATH_MAX:  # Ray's session sockets live under it
        ray_tmp = Path("/tmp") / f"ipfl-ray-{os.getpid()}"
        atomic_write_text(folder / "ray-tmp-location.txt", f"{ray_tmp}\n")
    env = flower_env(folder)
    env["RAY_TMPDIR"] = str(ray_tmp)
    env["IPFL_DATA_DIR"] = cfg.data_dir  # the clients' own folder: this user's config
    os.environ.update(env)
    ray_tmp.mkdir(parents=True, exist_ok=True)

    from flwr.simulation import run_simulation

    from training.flower import FlowerSettings, client_app, make_server_app

    settings = FlowerSettings(run_dir=str(run_dir), config=None if resume else cfg,
                              resume=resume, overrides=tuple(overrides),
                              round_timeout=round_timeout, node_timeout=120.0)
    outcome: dict[str, Any] = {}
    n_cpus = cpus or min(cfg.clients, os.cpu_count() or 1)
    backend = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
               "init_args": {"num_cpus": n_cpus, "num_gpus": 0, "_temp_dir": str(ray_tmp),
                             "include_dashboard": False, "log_to_driver": False}}
    t0 = time.perf_counter()
    try:
        run_simulation(server_app=make_server_app(settings, outcome), client_app=client_app,
                       num_supernodes=cfg.clients, backend_config=backend)
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        if ray_tmp.parent == Path("/tmp"):
            shutil.rmtree(ray_tmp, ignore_errors=True)
    outcome["total"] = time.perf_counter() - t0
    if outcome.get("error") is None and "rows" not in outcome:
        outcome["error"] = "the Flower simulation ended without running the ServerApp"
    return outcome


# ----- loopback deployment ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening "
                               f"on 127.0.0.1:{port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:g} s")


_APP_TOML = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "ipfl-flower-app"
version = "0.1.0"
description = "iPFL on Flower: the app is the installed ipfl package"
license = "MIT"
dependencies = []

[tool.flwr.app]
publisher = "ipfl"

[tool.flwr.app.components]
serverapp = "training.flower:server_app"
clientapp = "training.flower:client_app"

[tool.flwr.app.config]
run-dir = ""
config = ""
resume = false
round-timeout = 600.0
node-timeout = 120.0
overrides = ""
"""


class _Processes:
    """Processes started here, each in its own process group, stopped by PID at exit."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs, self.env, self.procs = logs, env, []
        self.pids: list[int] = []

    def start(self, name: str, argv: list[str], home: Path) -> subprocess.Popen:
        home.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "FLWR_HOME": str(home)}
        out = open(self.logs / f"{name}.log", "w")  # noqa: SIM115 (closed in stop)
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        self.procs.append((name, proc, out))
        self.pids.append(proc.pid)
        return proc

    def stop(self, grace: float = 10.0) -> list[str]:
        """SIGTERM every group started here, wait ``grace`` s, SIGKILL what is left.

        Descendants that left the group (the SuperLink starts its SuperExec detached)
        are found in ``/proc`` first and stopped by their PID too.
        """
        strays: list[int] = []
        for _, proc, _ in self.procs:
            strays += [pid for pid in _descendants(proc.pid) if _pgid(pid) != proc.pid]
        self.pids += strays
        for _, proc, _ in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for pid in strays:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        killed = []
        for name, proc, out in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(name)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # children of the group, if any
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            out.close()
        deadline = time.monotonic() + grace
        for pid in strays:
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _alive(pid):
                killed.append(str(pid))
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return killed


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _descendants(pid: int) -> list[int]:
    """Return the PIDs below ``pid`` in the process tree (Linux ``/proc``; else none)."""
    if not Path("/proc").is_dir():
        return []
    kids, out, todo = _children(), [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return -1


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _run_flwr(bindir: Path, args: list[str], env: dict[str, str], log: Path,
              timeout: float, cwd: Path) -> subprocess.CompletedProcess:
    with open(log, "a") as fh:
        return subprocess.run([str(bindir / "flwr"), *args], stdout=fh,
                              stderr=subprocess.STDOUT, env=env, timeout=timeout, cwd=cwd)


def _register_keys(bindir: Path, keys: list[Any], env: dict[str, str], logs: Path,
                   cwd: Path) -> None:
    """Register every public key with the SuperLink (``flwr supernode register``), at once."""
    running = []
    for k in keys:
        fh = open(logs / f"register-{k.private.name}.log", "w")  # noqa: SIM115 (closed below)
        running.append((k, fh, subprocess.Popen(
            [str(bindir / "flwr"), "supernode", "register", str(k.public), "loopback"],
            stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)))
    failed = []
    for k, fh, proc in running:
        try:
            rc = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
        fh.close()
        if rc != 0:
            failed.append(k.private.name)
    if failed:
        raise RuntimeError(f"flwr supernode register failed for {failed[0]} "
                           f"(see register-{failed[0]}.log)")


def _wait_registered(logs: Path, names: list[str], procs: list[subprocess.Popen],
                     timeout: float) -> None:
    """Wait until every SuperNode in ``names`` logged its node id (it joined the SuperLink)."""
    deadline = time.monotonic() + timeout
    todo = dict(zip(names, procs, strict=True))
    while todo:
        for name, proc in list(todo.items()):
            if "SuperNode ID:" in (logs / f"{name}.log").read_text(errors="replace"):
                del todo[name]
            elif proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode} before "
                                   "joining the SuperLink")
        if not todo:
            return
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{sorted(todo)[0]} did not join the SuperLink within "
                               f"{timeout:g} s")
        time.sleep(0.1)


def deploy_local(cfg: Any, run_dir: Path, *, resume: bool = False,
                 round_timeout: float = 600.0, node_timeout: float = 120.0,
                 echo: Any = print, overrides: tuple[str, ...] = (),
                 announce: Any = None, insecure: bool = False,
                 unregistered: tuple[int, ...] = ()) -> dict[str, Any]:
    """Start a SuperLink and one SuperNode per client on 127.0.0.1, run the app, stop all.

    Secure by default, with Flower's own mechanisms: the SuperLink serves TLS with a
    certificate from a CA made for this run (:func:`ipfl.flower_security.make_tls`, in
    ``RUN_DIR/flower/tls``), and runs ``--enable-supernode-auth``: each SuperNode gets
    its own key pair (``RUN_DIR/flower/keys``, private keys 0600), its public key is
    registered with ``flwr supernode register`` before it starts, and a SuperNode whose
    key is not registered is refused. ``insecure=True``: plain ``--insecure`` loopback,
    no TLS, no node authentication (a quick local try only).

    Each SuperNode runs in Flower's process isolation mode, its ClientApp in a warm
    executor inside the SuperNode's long-lived process (:mod:`ipfl.flower_node`): the
    imports and the client's data are loaded once per node, not once per message; its
    tasks call the node's Runtime handlers in process. Each node's own Runtime HTTP API
    (loopback) is locked with flwr's ``--superexec-auth-secret-file`` (a random secret
    per node, ``RUN_DIR/flower/keys/NAME.superexec``, 0600), in both modes, so no other
    local process can claim its tasks.

    ``unregistered``: partition ids of extra SuperNodes started with a key that is
    *not* registered (to check that they are refused; secure mode only). ``overrides``
    as in :func:`simulate`, and so is ``announce``. Returns ``seconds`` per round
    (from the ServerApp), ``startup`` (seconds until every node had joined), ``total``,
    ``pids``, ``killed`` and ``error``.
    """
    from training.flower_pace import poll_seconds
    from training.remote import require_flower

    from .flower_security import make_node_key, make_runtime_secret, make_tls

    require_flower()
    poll_seconds()  # a bad IPFL_FLOWER_POLL is refused before any process starts
    if insecure and unregistered:
        raise ValueError("unregistered = nodes with unregistered keys need the secure mode "
                         "(no --insecure)")
    run_dir = Path(run_dir).resolve()
    _check_run_dir(run_dir, resume)
    if overrides and not resume:
        raise ValueError("overrides apply to a resumed run only; set keys in the config")
    if resume:  # the run's own config (the ServerApp reads it again), for m and the budget
        cfg = _resumed_config(run_dir, overrides)
    m = cfg.clients
    for k, pid in enumerate(unregistered):
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < m:
            raise ValueError(f"unregistered[{k}] = {pid!r} is not a partition id in 0..{m - 1}")
    if announce is not None:
        announce(cfg, _next_round(run_dir) if resume else 0)
    folder = _folder(run_dir)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    app = folder / "app"
    app.mkdir(exist_ok=True)
    atomic_write_text(app / "pyproject.toml", _APP_TOML)
    cfg_file = folder / "config-in.json"
    if not resume:
        atomic_write_text(cfg_file, cfg.dumps())
    bindir = Path(sys.executable).parent
    env = {**os.environ, **flower_env(folder),
           "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           # the SuperLink's SuperExec asks for a ServerApp task at Flower's default
           # pace (1 s): it launches one ServerApp a run, and each ask is a request
           # the SuperLink serves (at 0.1 s, a tenth of its requests in a round)
           "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "1.0",
           "IPFL_DATA_DIR": cfg.data_dir}  # the SuperNodes' own data folder
    procs = _Processes(logs, env)
    link_port = _free_port()
    out: dict[str, Any] = {"error": None, "seconds": [], "pids": procs.pids}
    t0 = time.perf_counter()
    home = folder / "home" / "cli"
    home.mkdir(parents=True, exist_ok=True)
    cli_env = {**env, "FLWR_HOME": str(home)}
    budget = 0.0
    try:
        if insecure:
            security = ["--insecure"]
            node_security = ["--insecure"]
            cli_security = "insecure = true\n"
        else:
            tls = make_tls(folder / "tls")
            security = ["--ssl-ca-certfile", str(tls.ca_cert), "--ssl-certfile",
                        str(tls.server_cert), "--ssl-keyfile", str(tls.server_key),
                        "--enable-supernode-auth"]
            node_security = ["--root-certificates", str(tls.ca_cert)]
            cli_security = f'root-certificates = "{tls.ca_cert}"\n'
        link = procs.start("superlink", [
            str(bindir / "flower-superlink"), *security, "--host", "127.0.0.1",
            "--port", str(link_port), "--disable-runtime-dependency-installation",
            "--database", _LINK_DB], folder / "home" / "superlink")
        atomic_write_text(home / "config.toml",
            f'[superlink]\ndefault = "loopback"\n\n[superlink.loopback]\n'
            f'address = "127.0.0.1:{link_port}"\n{cli_security}')
        _wait_port(link_port, link, 60, "flower-superlink")
        nodes = [(f"supernode-{i}", i) for i in range(m)]
        nodes += [(f"unregistered-{k}", i) for k, i in enumerate(unregistered)]
        keys = {}
        if not insecure:
            keys = {name: make_node_key(folder / "keys", name) for name, _ in nodes}
            _register_keys(bindir, [keys[name] for name, _ in nodes[:m]], cli_env, logs,
                           folder)
        started = []
        for name, i in nodes:
            port = _free_port()
            auth = [] if insecure else ["--auth-supernode-private-key",
                                        str(keys[name].private)]
            lock = ["--superexec-auth-secret-file",  # the node's Runtime HTTP API
                    str(make_runtime_secret(folder / "keys", name))]
            node = procs.start(name, [
                sys.executable, "-m", "ipfl.flower_node", *node_security,
                *auth, *lock, "--superlink", f"127.0.0.1:{link_port}", "--isolation", "process",
                "--host", "127.0.0.1", "--port", str(port),
                "--node-config", f"partition-id={i} num-partitions={m}"],
                folder / "home" / name)
            started.append(node)
        _wait_registered(logs, [name for name, _ in nodes[:m]], started[:m], node_timeout)
        out["startup"] = time.perf_counter() - t0
        rc = (f'run-dir="{run_dir}" config="{cfg_file if not resume else ""}" '
              f'resume={"true" if resume else "false"} round-timeout={float(round_timeout)} '
              f'node-timeout={float(node_timeout)} overrides="{"|".join(overrides)}"')
        budget = node_timeout + (cfg.rounds + 3) * round_timeout + 60
        run_log = logs / "flwr-run.log"
        done = _run_flwr(bindir, ["run", str(app), "loopback", "--stream", "--run-config", rc],
                         cli_env, run_log, budget, folder)
        timings = folder / "timings.json"
        if timings.is_file():
            out["seconds"] = json.loads(timings.read_text())["seconds"]
        err = folder / "error.txt"
        if err.is_file():
            out["error"] = err.read_text().strip()
        elif done.returncode != 0 or not (run_dir / "checkpoint.pt").is_file():
            out["error"] = (f"flwr run failed (exit code {done.returncode}); see "
                            f"{run_log}")
    except subprocess.TimeoutExpired:
        out["error"] = f"flwr run did not finish within {budget:g} s; see {logs}"
    except RuntimeError as exc:
        out["error"] = f"{exc}; see {logs}"
    finally:
        out["killed"] = procs.stop()
        out["total"] = time.perf_counter() - t0
    echo(f"stopped PIDs {procs.pids}")
    return out
