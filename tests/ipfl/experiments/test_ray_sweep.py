"""Tests of ``ipfl experiment NAME --ray ADDRESS`` (ipfl/experiments/ray_sweep.py, issue 23).

The fast tests need no Ray cluster: the address checks, the missing-Ray message and a
run returned as an archive. The ``slow`` ones start ``--ray local`` (Ray's start alone
takes seconds on 2 cores): CSVs byte-identical to ``--jobs 1``, no Ray process left
behind, a sweep killed with ``kill -9`` resumed without redoing its finished runs.
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

import pytest
from click.testing import CliRunner

from ipfl.cli import main
from ipfl.experiments import ray_sweep, run_experiment
from ipfl.experiments.core import STORE_VERSION, config_hash, run_one

ROOT = Path(__file__).resolve().parents[3]
IPFL = [sys.executable, "-c", "from ipfl.cli import main; main()"]


def _tiny_spec():
    from ipfl.experiments import check_request
    from ipfl.experiments.core import PRESETS
    from ipfl.experiments.market import specs

    return specs(PRESETS["tiny"], [0], check_request("market", "tiny")["common"])[0]


def _one_line_error(result, *needles: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("value", ["nowhere", "host:0", "host:99999", "10.0.0.1:63 79",
                                   "http://host:6379", "", ":6379", "-x:1"])
def test_a_malformed_address_is_one_line_naming_ray_before_any_work(tmp_path, value):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["experiment", "market", "--tiny", "--seeds", "1",
                                       "--out", str(out), "--ray", value])
    _one_line_error(result, "--ray", repr(value))
    assert not out.exists()


def test_an_address_nothing_answers_at_is_one_line_naming_it(tmp_path):
    pytest.importorskip("ray")
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "out"
    t0 = time.monotonic()
    result = CliRunner().invoke(main, ["experiment", "market", "--tiny", "--seeds", "1",
                                       "--out", str(out), "--ray", f"127.0.0.1:{port}"])
    _one_line_error(result, "--ray", f"'127.0.0.1:{port}'", "nothing answers")
    assert time.monotonic() - t0 < 30  # ray.init alone would retry for minutes
    assert not out.exists()


def test_a_port_where_no_ray_head_answers_is_one_line_naming_it(tmp_path, monkeypatch):
    """Something listens (a bare TCP server), but it is no Ray head: refused in GCS_WAIT s."""
    pytest.importorskip("ray")
    import socket
    import threading

    monkeypatch.setattr(ray_sweep, "GCS_WAIT", 4.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        held = []
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass
        for c in held:
            c.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    out = tmp_path / "out"
    try:
        t0 = time.monotonic()
        result = CliRunner().invoke(main, ["experiment", "market", "--tiny", "--seeds", "1",
                                           "--out", str(out), "--ray", f"127.0.0.1:{port}"])
        took = time.monotonic() - t0
    finally:
        stop.set()
        thread.join()
        server.close()
    _one_line_error(result, "--ray", f"'127.0.0.1:{port}'", "no Ray head answered within 4 s")
    assert took < 30
    assert not out.exists()


def test_without_ray_the_error_names_the_install_command(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else real(name, *a))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["experiment", "market", "--tiny", "--seeds", "1",
                                       "--out", str(out), "--ray", "local"])
    _one_line_error(result, "--ray", "pip install 'ipfl[flower-sim]'")
    assert not out.exists()


def test_a_run_returned_by_a_task_is_the_run_trained_in_place(tmp_path, monkeypatch):
    """The results-returned path (no shared store), without Ray: the task function itself."""
    import tempfile

    node_tmp = tmp_path / "node-tmp"
    node_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(node_tmp))  # the node's temporary folder
    spec = _tiny_spec()
    here = tmp_path / "a" / config_hash(spec.cfg)
    run_one(spec.cfg, here)
    data = ray_sweep.run_task(spec.cfg, str(tmp_path / "b" / here.name), None, STORE_VERSION)
    assert isinstance(data, bytes)
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        names = tar.getnames()
    assert "done.json" in names and "metrics.jsonl" in names and "run.lock" not in names
    assert all(not n.startswith(("/", "..")) for n in names)
    there = tmp_path / "b" / here.name
    there.parent.mkdir()
    ray_sweep.unpack(data, there)
    for name in ("metrics.jsonl", "config.json"):
        assert (here / name).read_bytes() == (there / name).read_bytes(), name
    assert sorted(p.name for p in there.parent.iterdir()) == [f".{here.name}.lock", here.name]
    assert not (node_tmp / "ipfl-ray-runs" / here.name).exists()  # the node keeps no copy


def test_an_unfinished_archive_is_refused_and_nothing_is_left(tmp_path):
    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("metrics.jsonl")
        tar.addfile(info, BytesIO(b""))
    with pytest.raises(RuntimeError, match="came back unfinished"):
        ray_sweep.unpack(buf.getvalue(), tmp_path / "abc")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name,kind", [("../escape", tarfile.REGTYPE),
                                       ("/abs/done.json", tarfile.REGTYPE),
                                       ("link", tarfile.SYMTYPE)])
def test_an_archive_reaching_outside_a_run_directory_is_refused(tmp_path, name, kind):
    buf = BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(tarfile.TarInfo("done.json"), BytesIO(b""))
        bad = tarfile.TarInfo(name)
        bad.type = kind
        bad.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        tar.addfile(bad, BytesIO(b""))
    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(RuntimeError, match="not part of a run directory"):
        ray_sweep.unpack(buf.getvalue(), store / "abc")
    assert list(store.iterdir()) == [] and sorted(tmp_path.iterdir()) == [store]


def test_a_node_with_other_training_code_refuses_the_run(tmp_path):
    with pytest.raises(RuntimeError, match="install the same ipfl on every node"):
        ray_sweep.run_task(_tiny_spec().cfg, str(tmp_path / "x"), None, STORE_VERSION + 1)


# ----- with Ray ---------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def _alive(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def _left_behind(driver: int, cwd: Path) -> list[int]:
    """PIDs of live processes of the Ray that ``driver`` started in the folder ``cwd``.

    Two signs, since Ray's process titles can overwrite part of a process's environment:
    ``RAY_TMPDIR`` naming the driver's temporary folder, or ``cwd`` (every process the
    driver starts inherits it; each test drives from its own ``tmp_path``).
    """
    prefix = f"RAY_TMPDIR=/tmp/ipfl-ray-{driver}-".encode()
    cwd = cwd.resolve()
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid() or not _alive(d):
            continue
        try:
            env = Path(f"/proc/{d}/environ").read_bytes().split(b"\0")
            here = Path(os.readlink(f"/proc/{d}/cwd"))
        except OSError:
            continue
        if any(e.startswith(prefix) for e in env) or here == cwd or cwd in here.parents:
            pids.append(int(d))
    return pids


def _csvs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.csv"))


def _same_outputs(a: Path, b: Path) -> None:
    names = _csvs(a)
    assert names and names == _csvs(b)
    match, mismatch, errors = filecmp.cmpfiles(a, b, [*names, "summary.md"], shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


@pytest.mark.slow
def test_ray_local_writes_the_csvs_of_jobs_1_and_leaves_no_ray_process(tmp_path):
    pytest.importorskip("ray")
    args = ["experiment", "market", "--tiny", "--seeds", "1", "--quiet"]
    subprocess.run([*IPFL, *args, "--out", str(tmp_path / "j1" / "market")], check=True,
                   env=_env(), capture_output=True, cwd=tmp_path)
    proc = subprocess.Popen([*IPFL, *args, "--out", str(tmp_path / "ray" / "market"),
                             "--ray", "local"], env=_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "as Ray tasks on this machine" in output
    _same_outputs(tmp_path / "j1" / "market", tmp_path / "ray" / "market")
    assert _left_behind(proc.pid, tmp_path) == []
    assert not list(Path("/tmp").glob(f"ipfl-ray-{proc.pid}-*"))
    assert not list((tmp_path / "ray" / "run-store").glob(".ray-probe-*"))


@pytest.mark.slow
def test_runs_returned_to_the_driver_give_the_same_csvs(tmp_path, monkeypatch):
    """No probe: every task trains in its node's temporary folder and returns the run."""
    pytest.importorskip("ray")
    monkeypatch.setattr(ray_sweep, "_make_probe", lambda store: None)
    monkeypatch.chdir(tmp_path)  # Ray's processes inherit it: how _left_behind knows them
    node_tmp = tmp_path / "node-tmp"
    node_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(node_tmp))  # the workers' temporary folder
    kw = {"seeds": 1, "progress": False}
    run_experiment("market", "tiny", out=tmp_path / "j1" / "market", **kw)
    run_experiment("market", "tiny", out=tmp_path / "ray" / "market", ray="local", jobs=2, **kw)
    _same_outputs(tmp_path / "j1" / "market", tmp_path / "ray" / "market")
    assert _left_behind(os.getpid(), tmp_path) == []
    assert not list((tmp_path / "ray" / "run-store").glob(".incoming-*"))
    assert [p.name for p in (node_tmp / "ipfl-ray-runs").iterdir()
            if not p.name.endswith(".lock")] == []  # trained there, returned, removed


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_redoing_finished_runs(tmp_path):
    """kill -9 the driver after its first finished run: Ray goes too; the same command ends it."""
    pytest.importorskip("ray")
    args = ["experiment", "performance", "--tiny", "--seeds", "1", "--methods", "fedavg,ipfl",
            "--settings", "NIID,Skew", "--set", "rounds=12", "--quiet"]
    ray_args = [*args, "--out", str(tmp_path / "ray" / "performance"), "--ray", "local",
                "--jobs", "1"]
    store = tmp_path / "ray" / "run-store"
    proc = subprocess.Popen([*IPFL, *ray_args], env=_env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(store.glob("*/done.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in store.glob("*/done.json")}
    assert 1 <= len(finished) < 4, "kill -9 came too late to interrupt the sweep"
    deadline = time.monotonic() + 20  # the watchdog: SIGTERM, 3 s, SIGKILL
    while (_left_behind(proc.pid, tmp_path) or list(Path("/tmp").glob(f"ipfl-ray-{proc.pid}-*"))) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _left_behind(proc.pid, tmp_path) == []
    assert not list(Path("/tmp").glob(f"ipfl-ray-{proc.pid}-*"))
    again = subprocess.Popen([*IPFL, *ray_args], env=_env(), cwd=tmp_path, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    assert {k: (store / k / "done.json").stat().st_mtime_ns for k in finished} == finished
    assert len(list(store.glob("*/done.json"))) == 4
    assert _left_behind(again.pid, tmp_path) == []
    subprocess.run([*IPFL, *args, "--out", str(tmp_path / "j1" / "performance")], check=True,
                   env=_env(), capture_output=True, cwd=tmp_path)
    _same_outputs(tmp_path / "j1" / "performance", tmp_path / "ray" / "performance")
    assert not list(store.glob(".ray-probe-*"))


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_its_ray_and_says_how_to_resume(tmp_path):
    pytest.importorskip("ray")
    store = tmp_path / "run-store"
    # a shell's background job ignores SIGINT: restore the default before exec
    start = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
             "os.execv(sys.executable, [sys.executable, '-c', "
             "'from ipfl.cli import main; main()', *sys.argv[1:]])")
    proc = subprocess.Popen([sys.executable, "-c", start, "experiment", "performance", "--tiny",
                             "--seeds", "1", "--methods", "fedavg,ipfl", "--settings",
                             "NIID,Skew", "--set", "rounds=12", "--quiet", "--out",
                             str(tmp_path / "performance"), "--ray", "local", "--jobs", "1"],
                            env=_env(), cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not list(store.glob("*/done.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, "the sweep ended before it could be stopped"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output
    assert "stopped; finished runs are kept; resume with: ipfl experiment performance" in output
    assert "--ray local" in output and "Traceback" not in output
    assert _left_behind(proc.pid, tmp_path) == []
    assert not list(Path("/tmp").glob(f"ipfl-ray-{proc.pid}-*"))
    assert not list(store.glob(".ray-probe-*"))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_sweep_on_a_running_cluster_writes_the_csvs_of_jobs_1(tmp_path):
    """``ray start --head`` (loopback only), then ``--ray 127.0.0.1:PORT``; the head is stopped
    by the test through the marker its processes inherit."""
    pytest.importorskip("ray")
    import secrets

    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.is_file():
        pytest.skip("no `ray` command next to this Python")
    token = secrets.token_hex(8)
    head_tmp = Path(f"/tmp/ipfl-head-{token}")
    port = _free_port()
    env = {**_env(), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    try:
        subprocess.run([str(ray_bin), "start", "--head", "--port", str(port), "--num-cpus", "2",
                        "--include-dashboard", "false", "--disable-usage-stats",
                        "--ray-client-server-port", str(_free_port()),
                        "--temp-dir", str(head_tmp)], check=True, capture_output=True,
                       env={**env, ray_sweep.MARKER: token}, timeout=120, cwd=tmp_path)
        args = ["experiment", "market", "--tiny", "--seeds", "1", "--quiet"]
        proc = subprocess.Popen([*IPFL, *args, "--out", str(tmp_path / "ray" / "market"),
                                 "--ray", f"127.0.0.1:{port}"], env=env, cwd=tmp_path, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
        assert f"as Ray tasks on 127.0.0.1:{port}" in output
        subprocess.run([*IPFL, *args, "--out", str(tmp_path / "j1" / "market")], check=True,
                       env=_env(), capture_output=True, cwd=tmp_path)
        _same_outputs(tmp_path / "j1" / "market", tmp_path / "ray" / "market")
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):  # the head's processes: marker or cwd
            for pid in {*ray_sweep.ray_processes(token), *_left_behind(0, tmp_path)}:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            while _left_behind(0, tmp_path) and time.monotonic() < deadline:
                time.sleep(0.2)
        import shutil

        shutil.rmtree(head_tmp, ignore_errors=True)
    assert _left_behind(0, tmp_path) == []
