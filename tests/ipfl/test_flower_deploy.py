"""``ipfl flower deploy-local``: TLS files, node keys, the paced waits, node authentication.

The fast tests check the pieces; the slow one starts a real SuperLink with TLS and
``--enable-supernode-auth`` and shows that a SuperNode whose key was not registered is
refused (and the run does not count it) while the registered ones run the federation.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

pytest.importorskip("flwr")

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

from ipfl.flower_security import make_node_key, make_tls  # noqa: E402
from training.flower_pace import POLL_ENV, pace_flower, poll_seconds  # noqa: E402


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_tls_certificate_is_signed_by_the_run_ca_for_loopback_and_its_key_is_private(tmp_path):
    """The server certificate verifies under the CA, names 127.0.0.1; key 0600, folder 0700."""
    # Execute
    files = make_tls(tmp_path / "tls")
    # Assert
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                           ec.ECDSA(hashes.SHA384()))  # raises if not signed by the CA
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    key = serialization.load_pem_private_key(files.server_key.read_bytes(), None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert _mode(files.server_key) == 0o600 and _mode(tmp_path / "tls") == 0o700
    assert not [p for p in (tmp_path / "tls").iterdir() if p.name.startswith(".")]


def test_node_keys_are_p384_openssh_pairs_distinct_per_node_and_private(tmp_path):
    """What flower-supernode and flwr supernode register read; each node its own key."""
    # Execute
    a, b = make_node_key(tmp_path, "supernode-0"), make_node_key(tmp_path, "supernode-1")
    # Assert
    priv = serialization.load_ssh_private_key(a.private.read_bytes(), None)
    pub = serialization.load_ssh_public_key(a.public.read_bytes())
    assert isinstance(priv, ec.EllipticCurvePrivateKey) and priv.curve.name == "secp384r1"
    assert priv.public_key().public_numbers() == pub.public_numbers()
    assert a.public.read_bytes() != b.public.read_bytes()
    assert _mode(a.private) == 0o600 and _mode(tmp_path) == 0o700


@pytest.mark.parametrize("name", ["", "../x", ".hidden"])
def test_node_key_name_must_be_a_plain_file_name(tmp_path, name):
    """A name that would leave the folder is one clear error, and nothing is written."""
    with pytest.raises(ValueError, match="must be a plain file name"):
        make_node_key(tmp_path / "keys", name)
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize("raw", ["fast", "0", "5", "nan"])
def test_bad_poll_interval_is_one_line_naming_the_variable(monkeypatch, raw):
    """IPFL_FLOWER_POLL out of 0.01..3 s or not a number: refused with its value."""
    monkeypatch.setenv(POLL_ENV, raw)
    with pytest.raises(ValueError) as err:
        poll_seconds()
    assert str(err.value).startswith(f"IPFL_FLOWER_POLL = {raw!r} ")
    assert "\n" not in str(err.value)


def test_object_pull_retries_start_at_the_poll_interval():
    """flwr's 1 s first retry (doubling to 10 s) becomes poll s (doubling to 1 s)."""
    from flwr.supercore.inflatable import inflatable_utils as iu

    pace_flower(0.05)
    for fn in (iu.pull_objects, iu.pull_and_inflate_object_from_tree):
        assert fn.__kwdefaults__["initial_backoff"] == 0.05
        assert fn.__kwdefaults__["backoff_cap"] == 1.0


class _SlowGrid:
    """Push/pull grid stand-in: message ``k``'s reply appears at pull ``after[k]``."""

    def __init__(self, after):
        self.after, self.pulls = after, 0

    def push_messages(self, msgs):
        return [f"m{k}" for k in range(len(msgs))]

    def pull_messages(self, ids):
        self.pulls += 1

        class Rep:
            def __init__(self, mid):
                self.metadata = type("M", (), {"reply_to_message_id": mid})()

        return [Rep(m) for m in ids if self.after[int(m[1:])] <= self.pulls]


def test_exchange_collects_every_reply_and_leaves_late_ones_out():
    """All replies, pulled every poll interval; one that never comes is missing at the end."""
    from training.flower import exchange

    grid = _SlowGrid([1, 3, 2])
    got = exchange(grid, [object()] * 3, timeout=5)
    assert sorted(r.metadata.reply_to_message_id for r in got) == ["m0", "m1", "m2"]
    assert grid.pulls == 3
    late = _SlowGrid([1, 10**9])
    got = exchange(late, [object()] * 2, timeout=0.3)
    assert [r.metadata.reply_to_message_id for r in got] == ["m0"]


def test_unregistered_nodes_need_the_secure_mode_and_a_partition_id(tmp_path):
    """Refused in one line before any process starts."""
    from ipfl.flower_runs import deploy_local
    from training import Config

    cfg = Config(clients=2, rounds=1)
    with pytest.raises(ValueError, match="need the secure mode"):
        deploy_local(cfg, tmp_path / "a", insecure=True, unregistered=(0,))
    with pytest.raises(ValueError, match=r"unregistered\[1\] = 2 is not a partition id"):
        deploy_local(cfg, tmp_path / "b", unregistered=(0, 2))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_supernode_with_an_unregistered_key_is_refused_and_registered_ones_run(tmp_path):
    """TLS + --enable-supernode-auth: the intruder claims partition 0 but never joins.

    Were it let in, the run would see three nodes for two partitions and stop with
    "partition id 0 is held by two nodes"; instead the two registered SuperNodes run
    the federation, the intruder's log shows the SuperLink's refusal, and no process
    is left running.
    """
    from ipfl.flower_runs import deploy_local
    from training import Config, RunDir, audit_run

    # Prepare
    cfg = Config(clients=2, rounds=1, epochs=1, hidden=8, max_samples=200)
    run = tmp_path / "run"
    # Execute
    out = deploy_local(cfg, run, round_timeout=120, node_timeout=120,
                       echo=lambda *_: None, unregistered=(0,))
    # Assert
    assert out["error"] is None
    logs = run / "flower" / "logs"
    intruder = (logs / "unregistered-0.log").read_text()
    assert "SuperNode ID:" not in intruder and "Failed to activate SuperNode" in intruder
    pem = serialization.load_ssh_public_key(
        (run / "flower" / "keys" / "unregistered-0.pub").read_bytes()).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    refusals = [line for line in (logs / "superlink.log").read_text().splitlines()
                if "No SuperNode found with the given public key" in line]
    assert len(refusals) == 1 and repr(pem)[2:-1] in refusals[0]  # that key, refused
    for i in range(2):
        node_log = (logs / f"supernode-{i}.log").read_text()
        assert "SuperNode ID:" in node_log and "(exit code 0)" in node_log  # tasks ran
        secret = run / "flower" / "keys" / f"supernode-{i}.superexec"  # its HTTP API locked
        assert "SuperExec authentication" in node_log and _mode(secret) == 0o600
    rows = RunDir(run).read_metrics()
    assert sorted({r["round"] for r in rows}) == [0, 1]
    assert sorted({r["client"] for r in rows}) == [0, 1]
    assert audit_run(run).ok
    assert (run / "flower" / "tls" / "ca.crt").is_file()
    assert not [pid for pid in out["pids"] if _alive(pid)]
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _alive(
        int(p.name)) and str(run) in _cmdline(p)]


def _cmdline(p: Path) -> str:
    try:
        return (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
