"""Throwaway TLS certificates and SuperNode keys for a loopback Flower deployment.

``ipfl flower deploy-local`` runs Flower's own security: the SuperLink serves TLS with a
certificate signed by a CA made for this run, and ``--enable-supernode-auth`` accepts
only SuperNodes whose public key was registered (``flwr supernode register``); each
SuperNode signs its requests with its private key (``--auth-supernode-private-key``).
Everything is generated here with ``cryptography`` (a dependency of flwr), nothing is
downloaded. Keys are written into a folder of mode ``0700``, each key file ``0600``,
atomically (a temporary file, then a rename): nothing half-written is left.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from atomicio import atomic_write_bytes

__all__ = ["NodeKey", "TlsFiles", "make_node_key", "make_runtime_secret", "make_tls"]

#: validity of the run's certificates (a deployment run, not a long-lived service)
_VALID_DAYS = 7


@dataclass(frozen=True)
class TlsFiles:
    """Paths of a run's CA certificate and the SuperLink's certificate and key (PEM)."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


@dataclass(frozen=True)
class NodeKey:
    """Paths of one SuperNode's key pair (OpenSSH format, NIST P-384 as Flower asks)."""

    private: Path
    public: Path


def _private_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def _write_secret(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data)
    os.chmod(path, 0o600)


def make_tls(folder: Path, host: str = "127.0.0.1") -> TlsFiles:
    """Create a CA and a server certificate for ``host`` (and ``localhost``) in ``folder``.

    Parameters
    ----------
    folder : Path
        Created with mode 0700 if missing; receives ``ca.crt``, ``server.pem`` and
        ``server.key`` (0600).
    host : str
        The address the SuperLink listens on: an IP address or a host name, put in the
        certificate's subject alternative names next to ``localhost``.

    Returns
    -------
    TlsFiles
        The three paths.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = _private_folder(Path(folder))
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(days=_VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ipfl deploy-local CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA384()))
    key = ec.generate_private_key(ec.SECP384R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    if host != "127.0.0.1":
        names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA384()))
    files = TlsFiles(folder / "ca.crt", folder / "server.pem", folder / "server.key")
    pem = serialization.Encoding.PEM
    atomic_write_bytes(files.ca_cert, ca.public_bytes(pem))
    atomic_write_bytes(files.server_cert, cert.public_bytes(pem))
    _write_secret(files.server_key, key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


def make_node_key(folder: Path, name: str) -> NodeKey:
    """Create a SuperNode key pair ``NAME`` / ``NAME.pub`` in ``folder`` (0700; key 0600).

    The private key is an OpenSSH-format NIST P-384 key (what ``flower-supernode
    --auth-supernode-private-key`` reads); the public key is its OpenSSH line (what
    ``flwr supernode register`` reads).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"key name = {name!r} must be a plain file name")
    folder = _private_folder(Path(folder))
    key = ec.generate_private_key(ec.SECP384R1())
    out = NodeKey(folder / name, folder / f"{name}.pub")
    _write_secret(out.private, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    atomic_write_bytes(out.public, key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n")
    return out


def make_runtime_secret(folder: Path, name: str) -> Path:
    """Create ``NAME.superexec`` in ``folder`` (0700; file 0600): 32 random bytes.

    What ``flower-supernode --superexec-auth-secret-file`` reads: with it, the node's
    Runtime HTTP API (plain HTTP on loopback, open to every local user) refuses
    ``AcquireTask`` to a caller without the secret, so no other process can claim the
    node's tasks and read their messages. ``ipfl.flower_node``'s executor calls the
    node's handlers in process and does not need it.
    """
    import secrets

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"secret name = {name!r} must be a plain file name")
    path = _private_folder(Path(folder)) / f"{name}.superexec"
    _write_secret(path, secrets.token_bytes(32))
    return path
