"""The keys of run hash chains: HMAC-SHA256, kept outside every run directory.

Each chain entry of a run (:meth:`training.rundir.RunDir.save_checkpoint`) carries
``mac = HMAC-SHA256(key, entry)`` and the key's id. Whoever can write a run directory
but not read the key can no longer edit an artefact and re-hash the chain: the MACs
would not verify. The key is this machine's, created on first use:

* in ``$IPFL_KEY_DIR``, else ``$XDG_CONFIG_HOME/ipfl``, else ``~/.config/ipfl``
  (:func:`key_dir`), a folder created with mode ``0o700``;
* as ``chain.key`` (64 hex digits, 32 random bytes from :mod:`secrets`), created
  atomically with mode ``0o600`` (written to a temporary file, then hard-linked into
  place, so two first runs at once agree on one key); a key file that others may read
  or write, a link, or not this user's is refused.

A run moved to another machine is verified there with its key given explicitly:
``ipfl key export FILE`` on the machine that ran it, then ``ipfl audit-run RUN --key FILE``
(or ``ipfl key import FILE``, which keeps it in ``trusted/`` for audits and resumes).
A key's id (:attr:`ChainKey.id`) is a hash of the key, so naming it reveals nothing.

References
----------
RFC 2104 (HMAC); the chain itself is described in :mod:`training.rundir`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from .safeio import CAPS, UnsafeFile, read_regular

__all__ = ["ChainKey", "KeyError_", "export_key", "import_key", "key_dir", "known_keys",
           "load_key_file", "own_key"]

_HEX = re.compile(r"^[0-9a-f]{64}$")


class KeyError_(ValueError):  # noqa: N801 (not the builtin KeyError)
    """A key file that cannot be used: missing, malformed, a link, readable by others."""


@dataclass(frozen=True)
class ChainKey:
    """A chain key: 32 secret bytes and their public id.

    Attributes
    ----------
    secret : bytes
        The HMAC key (never printed).
    where : str
        The file it was read from.
    """

    secret: bytes
    where: str = ""

    @property
    def id(self) -> str:
        """The key's id: the first 16 hex digits of SHA-256("ipfl chain key id" || key)."""
        return hashlib.sha256(b"ipfl chain key id\0" + self.secret).hexdigest()[:16]

    def mac(self, data: bytes) -> str:
        """Return HMAC-SHA256(key, ``data``) in hex."""
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, mac: object) -> bool:
        """Return True when ``mac`` is HMAC-SHA256(key, ``data``) (constant-time compare)."""
        return isinstance(mac, str) and hmac.compare_digest(self.mac(data), mac)

    def __repr__(self) -> str:
        return f"ChainKey(id={self.id!r}, where={self.where!r})"


def key_dir() -> Path:
    """Return the folder of this user's chain keys (it may not exist yet)."""
    if os.environ.get("IPFL_KEY_DIR"):
        return Path(os.environ["IPFL_KEY_DIR"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ipfl"


def _parse(raw: bytes, where: str) -> ChainKey:
    text = raw.decode("utf-8", "replace").strip()
    if not _HEX.match(text):
        raise KeyError_(f"key file {where!r} does not hold a chain key (64 hex digits, as "
                        "`ipfl key export` writes)")
    return ChainKey(bytes.fromhex(text), where)


def load_key_file(path: str | os.PathLike, *, private: bool = False) -> ChainKey:
    """Read a key file (a regular file, not a link, at most 4 KiB).

    With ``private``, the file must also be this user's and unreadable by others
    (mode ``0o600`` or stricter), as the keys this package keeps are.

    Raises
    ------
    KeyError_
        Missing, not a regular file, malformed, or (``private``) open to others.
    """
    where = str(path)
    try:
        raw = read_regular(path, CAPS["key"], "key file")
    except FileNotFoundError:
        raise KeyError_(f"key file {where!r} does not exist") from None
    except UnsafeFile as exc:
        raise KeyError_(str(exc)) from None
    except OSError as exc:
        raise KeyError_(f"key file {where!r} cannot be read ({exc.strerror})") from None
    if private:
        st = os.lstat(path)
        if st.st_mode & 0o077 or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            raise KeyError_(f"key file {where!r} has mode {stat.S_IMODE(st.st_mode):o} (owner "
                            f"uid {st.st_uid}): others could read or replace it; it is refused. "
                            "Make it yours with mode 600 (chmod 600), or remove it")
    return _parse(raw, where)


def _private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0o700; refuse an existing one open to others."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise KeyError_(f"key folder {str(path)!r} is not a folder (a link?); it is refused")
    if st.st_mode & 0o022:
        raise KeyError_(f"key folder {str(path)!r} has mode {stat.S_IMODE(st.st_mode):o}: "
                        "others could replace its keys; make it 700 (chmod 700)")


def _write_new(path: Path, secret: bytes) -> None:
    """Create ``path`` holding ``secret`` with mode 0o600, atomically; no-op if it exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secret.hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # create-if-absent with its content: never half a key
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def own_key(*, create: bool = True) -> ChainKey | None:
    """Return this machine's chain key (``key_dir()/chain.key``), creating it on first use.

    Returns None when there is none and ``create`` is False.

    Raises
    ------
    KeyError_
        The key file or its folder is open to others, a link, or malformed.
    """
    folder = key_dir()
    path = folder / "chain.key"
    if not os.path.lexists(path):
        if not create:
            return None
        try:
            _private_dir(folder)
            _write_new(path, secrets.token_bytes(32))
        except OSError as exc:
            raise KeyError_(f"cannot create the run-chain key in {str(folder)!r} "
                            f"({exc.strerror}); set IPFL_KEY_DIR to a private folder you can "
                            "write") from None
    return load_key_file(path, private=True)


def known_keys(extra: tuple[ChainKey, ...] = ()) -> dict[str, ChainKey]:
    """Return the keys this machine may verify with, by id: its own, ``trusted/``, ``extra``.

    Nothing is created; a trusted key file open to others is refused
    (:class:`KeyError_`).
    """
    keys: dict[str, ChainKey] = {}
    own = own_key(create=False)
    if own is not None:
        keys[own.id] = own
    trusted = key_dir() / "trusted"
    if trusted.is_dir():
        for p in sorted(trusted.glob("*.key")):
            k = load_key_file(p, private=True)
            keys[k.id] = k
    for k in extra:
        keys[k.id] = k
    return keys


def export_key(path: str | os.PathLike) -> ChainKey:
    """Write this machine's key (created if needed) to a new file ``path`` with mode 0o600.

    Raises
    ------
    KeyError_
        ``path`` exists (it is never overwritten).
    """
    key = own_key()
    path = Path(path)
    if os.path.lexists(path):
        raise KeyError_(f"key export: {str(path)!r} exists; choose a new file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(path, key.secret)
    return key


def import_key(path: str | os.PathLike) -> ChainKey:
    """Keep the key in ``path`` (from ``ipfl key export`` elsewhere) in ``trusted/<id>.key``."""
    key = load_key_file(path)
    folder = key_dir() / "trusted"
    _private_dir(key_dir())
    _private_dir(folder)
    _write_new(folder / f"{key.id}.key", key.secret)
    return key
