"""The run directory: config, metrics, ledger, round records, checkpoint, bound by a hash chain.

Layout::

    RUN_DIR/config.json          resolved configuration and its history of resume changes
    RUN_DIR/metrics.jsonl        one JSON line per client per completed round
    RUN_DIR/ledger.sqlite        append-only payments (training.ledger)
    RUN_DIR/rounds/NNNN.json     market (or sharing) inputs and outputs of round NNNN
    RUN_DIR/checkpoint.pt        state after the last committed round, and the hash chain
    RUN_DIR/chain.json           the hash chain alone, once a finished run drops its checkpoint
    RUN_DIR/run.lock             the writer's lock (pid, host, start time while held)
    RUN_DIR/drops.jsonl          clients a remote transport lost: round, client, why

Guarantees
----------
* **Atomic writes.** Every file except the SQLite ledger is written atomically
  (:mod:`atomicio`), so a ``kill -9`` leaves either the old or the new version.
* **One commit point per round.** :meth:`RunDir.save_checkpoint` is the last write of a
  round. It appends the round's *chain entry* to the checkpoint: the SHA-256 of
  ``config.json``, of ``rounds/NNNN.json`` (or null), of the round's lines of
  ``metrics.jsonl``, of the round's ledger rows and of the run state itself, plus the
  hash of the previous round's entry. The entry is computed from the files on disk, so
  whatever a transport wrote before committing is what gets bound; re-committing a
  round replaces its entry (a round re-run after a crash commits identically).
* **Keyed.** Each entry also carries ``key`` (the id of this machine's chain key) and
  ``mac = HMAC-SHA256(key, entry)`` (:mod:`training.keys`; the key lives outside every
  run directory). Whoever can write the run but not read the key cannot edit an
  artefact and re-hash the chain. Entries without a MAC (runs written before keyed
  chains) are read and resumed, with a note; a MAC missing after keyed entries is a
  problem. A run is authenticated elsewhere with its key given explicitly
  (``ipfl audit-run RUN --key FILE``, ``ipfl key export|import``).
* **Verified.** :meth:`RunDir.verify` recomputes every hash and MAC: a deleted, added or
  edited record, metrics row, ledger row, checkpoint or config is reported, and so is a
  config whose resume history changes a key ``--set`` may not change. The last
  committed round is the chain's length less one, never a number a file claims.
  :attr:`Verification.head` is the hash to publish against a rollback to an earlier
  state of the same run (not detected otherwise).
* **Finished runs keep their chain.** :meth:`RunDir.drop_checkpoint` (the experiment
  runner calls it once a run is done) deletes the model states but keeps the chain in
  ``chain.json``, so :meth:`RunDir.verify` still checks every other artefact; only the
  state digest of the last round can no longer be checked. A resume never reads
  ``chain.json``: a run without its checkpoint cannot be extended.
* **No code from a run directory.** The checkpoint is read with
  ``torch.load(weights_only=True)``: tensors and plain containers only.
* **Regular files, bounded.** Every file is read through :mod:`training.safeio`: a
  symbolic link, a FIFO or a device is refused at once, and each kind of file has a
  size cap (:data:`training.safeio.CAPS`), checked before reading.
* **One writer.** :meth:`RunDir.lock` holds an ``fcntl.flock`` on ``run.lock`` for the
  life of a run; the kernel releases it when the process dies. The file is opened
  with ``O_NOFOLLOW``, never truncated, and unlinked only by its holder; temporary
  files are owned per writer (:func:`atomicio.remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from atomicio import atomic_write_bytes, atomic_write_text, remove_stale_temps

from .keys import ChainKey, KeyError_, known_keys, own_key
from .safeio import CAPS, UnsafeFile, check_regular, read_regular

if TYPE_CHECKING:
    from .records import RoundRecord

try:  # POSIX; elsewhere a run is not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

__all__ = ["ChainNote", "RunDir", "RunDirError", "RunLocked", "Verification", "atomic_write_bytes",
           "atomic_write_text", "config_text", "digest_state", "is_finite_json",
           "sha256"]

#: entries a folder may hold and still count as empty for a new run: leftovers of a
#: first write that was killed (the lock file, an empty ``rounds/``)
_PARTIAL = {"run.lock", "rounds"}

#: the bytes of ``run.lock`` its holder writes its name over (never truncating the file)
_HOLDER_BYTES = 256


class RunDirError(ValueError):
    """A run directory that cannot be used as asked: missing, not a run, unreadable, damaged."""


class RunLocked(RunDirError):
    """Another process holds the run directory's writer lock."""


class ChainNote(UserWarning):
    """A run's chain is consistent but not authenticated here (unkeyed, or its key absent)."""


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def config_text(doc: dict[str, Any]) -> str:
    """Return the canonical text of ``config.json`` (sorted keys, indent 2)."""
    return json.dumps(doc, indent=2, sort_keys=True)


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().contiguous().cpu().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, np.ndarray):
        h.update(f"A{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}".encode())
        for k in sorted(obj, key=repr):
            _feed(h, k)
            _feed(h, obj[k])
    elif isinstance(obj, list | tuple):
        h.update(f"{type(obj).__name__[0]}{len(obj)}".encode())
        for v in obj:
            _feed(h, v)
    elif obj is None or isinstance(obj, bool | int | float | str | np.generic):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    else:
        raise TypeError(f"checkpoint: cannot hash a {type(obj).__name__} in the run state")


def digest_state(state: dict[str, Any]) -> str:
    """Return the SHA-256 of a run state (every tensor's dtype, shape and bytes), chain excluded."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "chain"})
    return h.hexdigest()


def _entry_hash(entry: dict[str, Any]) -> str:
    return sha256(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())


def _entry_bytes(entry: dict[str, Any]) -> bytes:
    """Return the bytes a chain entry's MAC covers: the entry less ``mac``, canonical JSON."""
    return json.dumps({k: v for k, v in entry.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":")).encode()


@dataclass
class Verification:
    """Result of :meth:`RunDir.verify`: the last committed round, the chain head, problems.

    ``authenticated`` is True when every chain entry carries a MAC that verified under a
    key this machine holds (:mod:`training.keys`); ``notes`` say why not otherwise
    (an unkeyed chain of an older run, a key not available here) without being problems.
    ``keys`` are the ids of the keys the chain names.
    """

    committed: int
    head: str | None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    authenticated: bool = False
    keys: list[str] = field(default_factory=list)


class RunDir:
    """Paths and readers/writers of one run directory."""

    def __init__(self, path: str | Path, keys: tuple[ChainKey, ...] = ()) -> None:
        """Name the run directory ``path``.

        ``keys``: chain keys to verify with besides the ones this machine holds
        (:func:`training.keys.known_keys`).
        """
        self.path = Path(path)
        self.keys = tuple(keys)
        self._lock_fd: int | None = None

    config = property(lambda self: self.path / "config.json")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    ledger = property(lambda self: self.path / "ledger.sqlite")
    rounds = property(lambda self: self.path / "rounds")
    checkpoint = property(lambda self: self.path / "checkpoint.pt")
    chain_file = property(lambda self: self.path / "chain.json")
    lockfile = property(lambda self: self.path / "run.lock")

    def read_file(self, path: Path, kind: str) -> bytes:
        """Return ``path``'s bytes, a regular file of at most ``CAPS[kind]`` bytes.

        Read by :func:`training.safeio.read_regular` (no link, FIFO or device);
        :class:`RunDirError` otherwise.
        """
        try:
            return read_regular(path, CAPS[kind], "run file")
        except UnsafeFile as exc:
            raise RunDirError(str(exc)) from None
        except FileNotFoundError:
            raise RunDirError(f"{str(path)!r} is missing") from None
        except OSError as exc:
            raise RunDirError(f"{str(path)!r} cannot be read ({exc.strerror})") from None

    def _ledger_uri(self) -> str | None:
        """Return the read-only URI of the ledger (None: no ledger); checked like every file."""
        if not os.path.lexists(self.ledger):
            return None
        try:
            check_regular(self.ledger, CAPS["ledger"], "run file")
        except UnsafeFile as exc:
            raise RunDirError(str(exc)) from None
        return f"{self.ledger.resolve().as_uri()}?mode=ro"

    # -- the writer's lock --------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run's writer lock (creating the folder); :class:`RunLocked` if held.

        The lock is an ``fcntl.flock`` on a descriptor of ``run.lock``, released by the
        kernel when the holder dies, so a ``kill -9`` never leaves the run locked.

        * ``run.lock`` is opened with ``O_NOFOLLOW`` and must be a regular file with one
          link: a symbolic or hard link to another file is refused and that file is
          left as it was. The file is never truncated: the holder writes its name
          (pid, host, start time) over the first :data:`_HOLDER_BYTES` bytes.
        * A refused writer writes, truncates and unlinks nothing.
        * After the flock is granted the holder checks that ``run.lock`` still names the
          file it locked (a holder may delete it on its way out, see
          :meth:`discard_new`); if not, it locks the new file instead. So two writers
          never hold locks on two different files of one run.
        * Temporary files of writers killed earlier on this host are removed
          (:func:`atomicio.remove_stale_temps`); a live writer's never are.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"run_dir {str(self.path)!r} is not writable ({exc.strerror}); "
                              "choose a folder you can write to") from None
        fd = self._acquire()
        try:
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            os.pwrite(fd, record.encode()[:_HOLDER_BYTES - 1].ljust(_HOLDER_BYTES - 1)
                      + b"\n", 0)
            for folder in (self.path, self.rounds):
                remove_stale_temps(folder)
            self._lock_fd = fd
            yield
        finally:
            self._lock_fd = None
            with contextlib.suppress(OSError):
                os.pwrite(fd, b" " * (_HOLDER_BYTES - 1) + b"\n", 0)
            os.close(fd)  # closing releases the flock

    def _acquire(self) -> int:
        """Open ``run.lock`` safely and take its flock; return the descriptor."""
        flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
        where = f"run_dir {str(self.path)!r}"
        for _ in range(100):
            try:
                fd = os.open(self.lockfile, flags, 0o666)
            except OSError as exc:
                if self.lockfile.is_symlink():
                    raise RunDirError(
                        f"{where}: run.lock is a symbolic link (to "
                        f"{os.readlink(self.lockfile)!r}); refused, nothing was written to "
                        "either; remove the link if it is not yours") from None
                raise RunDirError(f"{where} is not writable ({exc.strerror}); choose a folder "
                                  "you can write to") from None
            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
                    raise RunDirError(
                        f"{where}: run.lock is not a plain file (a FIFO, a device or a file "
                        f"with {st.st_nlink} links); refused, nothing was written to it")
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        held = os.pread(fd, _HOLDER_BYTES, 0).decode("utf-8", "replace")
                        raise RunLocked(f"{where} is in use by another ipfl process "
                                        f"({_holder(held)}); wait for it to finish or stop "
                                        "it, then retry") from None
                try:
                    now = os.lstat(self.lockfile)
                except FileNotFoundError:
                    now = None
                if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)  # the file we locked was removed by its last holder: lock anew
        raise RunLocked(f"{where}: run.lock keeps being replaced; another process is "
                        "interfering with the lock, stop it and retry")

    def discard_new(self, existed: bool) -> None:
        """Remove the traces of a new run that wrote nothing (only while holding the lock).

        ``run.lock`` itself (deleted by its holder, so a writer waiting on it re-locks
        the new file, :meth:`lock`), an empty ``rounds/``, and the folder when this run
        created it and it is empty.
        """
        if self._lock_fd is None:
            raise RuntimeError("discard_new: the lock is not held")
        with contextlib.suppress(OSError):
            self.lockfile.unlink(missing_ok=True)
        for folder in (self.rounds, None if existed else self.path):
            if folder is not None:
                with contextlib.suppress(OSError):
                    folder.rmdir()

    def check_new(self, allow: tuple[str, ...] = ()) -> None:
        """Refuse a folder that holds anything but leftovers of a killed first write.

        ``allow`` names further entries a transport keeps there (Flower's ``flower/``).
        """
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise RunDirError(f"run_dir {str(self.path)!r} is a file, not a folder")
        for p in self.path.iterdir():
            if (p.name.startswith(".") and p.name.endswith(".tmp")) or p.name in allow:
                continue
            if p.name not in _PARTIAL or (p.is_dir() and any(p.iterdir())):
                raise RunDirError(f"run_dir {str(self.path)!r} is not empty; use --resume to "
                                  "continue the run in it, or choose another folder")

    def create(self) -> None:
        """Create the folders."""
        self.rounds.mkdir(parents=True, exist_ok=True)

    # -- config -------------------------------------------------------------------------

    def read_config_bytes(self) -> bytes:
        """Return ``config.json``'s bytes; :class:`RunDirError` (with what to do) if absent."""
        if not self.path.is_dir():
            raise RunDirError(f"{str(self.path)!r} is not a folder, so not a run directory")
        if not os.path.lexists(self.config):
            if os.path.lexists(self.checkpoint) or os.path.lexists(self.metrics):
                raise RunDirError(f"{str(self.config)!r} is missing: the run's configuration "
                                  "was deleted; restore it, the run cannot be read without it")
            raise RunDirError(
                f"{str(self.path)!r} has no config.json, so it is not a run (or one stopped "
                "before its first write, with nothing committed): start the run again with "
                f"--run-dir {str(self.path)!r} (leftovers are replaced) or remove the folder")
        return self.read_file(self.config, "config")

    def read_config_doc(self) -> dict[str, Any]:
        """Return ``config.json`` as written: the config plus its ``history`` of changes."""
        raw = self.read_config_bytes()
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise RunDirError(f"{str(self.config)!r} is not UTF-8 text; restore the file "
                              "the run wrote") from None
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{str(self.config)!r} is not valid JSON ({exc}); restore the "
                              "file the run wrote") from None
        if not isinstance(doc, dict):
            raise RunDirError(f"{str(self.config)!r} does not hold a JSON object")
        return doc

    def read_config(self) -> dict[str, Any]:
        """Return the resolved config as a dict (without its history)."""
        return {k: v for k, v in self.read_config_doc().items() if k != "history"}

    def write_config(self, doc: dict[str, Any]) -> None:
        """Write ``config.json`` atomically in its canonical form."""
        atomic_write_text(self.config, config_text(doc))

    # -- metrics and round records ------------------------------------------------------

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite the whole metrics file atomically."""
        atomic_write_text(self.metrics, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))

    @property
    def drops_file(self) -> Path:
        """``drops.jsonl``: the clients a remote transport lost, one line per client and round."""
        return self.path / "drops.jsonl"

    def write_drops(self, t: int, drops: dict[int, str]) -> None:
        """Record round ``t``'s drops (replacing any of ``t`` a killed attempt left) atomically.

        Nothing is written when the round drops nobody and the file holds nothing of it.
        """
        old = (self.read_file(self.drops_file, "drops").decode("utf-8")
               if os.path.lexists(self.drops_file) else "")
        keep = [line for line in old.splitlines() if line and json.loads(line)["round"] != t]
        if not drops and len(keep) == len([x for x in old.splitlines() if x]):
            return
        new = [json.dumps({"round": t, "client": i, "why": why}, sort_keys=True)
               for i, why in sorted(drops.items())]
        atomic_write_text(self.drops_file, "".join(line + "\n" for line in keep + new))

    def metric_lines(self) -> tuple[dict[int, list[str]], list[str]]:
        """Return the raw lines of ``metrics.jsonl`` by round, and a problem per unreadable line."""
        out: dict[int, list[str]] = {}
        problems = []
        if not os.path.lexists(self.metrics):
            return out, problems
        try:
            text = self.read_file(self.metrics, "metrics").decode("utf-8")
        except UnicodeDecodeError:
            return out, ["metrics.jsonl is not UTF-8 text"]
        except RunDirError as exc:
            return out, [str(exc)]
        for k, line in enumerate(text.splitlines(), 1):
            try:
                t = json.loads(line)["round"]
                if isinstance(t, bool) or not isinstance(t, int):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                problems.append(f"metrics.jsonl line {k} is not a metric row")
                continue
            out.setdefault(t, []).append(line)
        return out, problems

    def read_metrics(self) -> list[dict[str, Any]]:
        """Return all metric rows (empty if none yet); :class:`RunDirError` on a damaged line."""
        lines, problems = self.metric_lines()
        if problems:
            raise RunDirError(f"{str(self.metrics)!r}: {problems[0]}; run `ipfl audit-run "
                              f"{str(self.path)}` for the full check")
        rows = [json.loads(line) for t in sorted(lines) for line in lines[t]]
        return rows

    def round_path(self, t: int) -> Path:
        """Path of round ``t``'s market record."""
        return self.rounds / f"{t:04d}.json"

    def write_round(self, t: int, record: dict[str, Any]) -> None:
        """Write round ``t``'s market record atomically."""
        atomic_write_text(self.round_path(t), json.dumps(record, indent=1))

    def read_rounds(self) -> dict[int, dict[str, Any]]:
        """Return every recorded round, by round number."""
        out = {}
        for p in sorted(self.rounds.glob("[0-9][0-9][0-9][0-9].json")):
            try:
                out[int(p.stem)] = json.loads(self.read_file(p, "record").decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise RunDirError(f"{str(p)!r} is not a round record (not JSON); run "
                                  f"`ipfl audit-run {str(self.path)}`") from None
        return out

    def read_records(self) -> dict[int, RoundRecord]:
        """Return every committed round as a typed :class:`~training.records.RoundRecord`.

        A round's exchange comes from ``rounds/NNNN.json`` (None where there is none),
        its rows from ``metrics.jsonl``. :class:`RunDirError` on a damaged file.
        """
        from .records import Exchange, RoundRecord

        exchanges = {}
        for t, doc in self.read_rounds().items():
            try:
                exchanges[t] = Exchange.from_json(doc)
            except ValueError as exc:
                raise RunDirError(f"{str(self.round_path(t))!r} is not a round record ({exc}); "
                                  f"run `ipfl audit-run {str(self.path)}`") from None
        rows: dict[int, list[dict[str, Any]]] = {}
        for r in self.read_metrics():
            rows.setdefault(int(r["round"]), []).append(r)
        return {t: RoundRecord(round=t, exchange=exchanges.get(t), rows=tuple(rows.get(t, ())))
                for t in sorted(set(exchanges) | set(rows))}

    def ledger_rows(self, t: int) -> list[list[Any]]:
        """Return round ``t``'s ledger rows, read-only (empty without a ledger file)."""
        uri = self._ledger_uri()
        if uri is None:
            return []
        con = sqlite3.connect(uri, uri=True)
        try:
            rows = con.execute("SELECT round, payer, payee, account, amount FROM entries "
                               "WHERE round = ? ORDER BY payer, payee, account", (t,)).fetchall()
        finally:
            con.close()
        return [list(r) for r in rows]

    def ledger_rounds(self) -> set[int]:
        """Return every round with ledger rows or a booking mark."""
        uri = self._ledger_uri()
        if uri is None:
            return set()
        con = sqlite3.connect(uri, uri=True)
        try:
            return {r for (r,) in con.execute("SELECT round FROM entries UNION "
                                              "SELECT round FROM booked")}
        finally:
            con.close()

    # -- checkpoint and hash chain ------------------------------------------------------

    def chain_entry(self, state: dict[str, Any], prev: str | None) -> dict[str, Any]:
        """Return the chain entry of round ``state["round"]`` from the files on disk."""
        t = state["round"]
        rec = self.round_path(t)
        lines, _ = self.metric_lines()
        return {
            "round": t, "prev": prev,
            "config": sha256(self.read_file(self.config, "config")),
            "record": sha256(self.read_file(rec, "record")) if os.path.lexists(rec) else None,
            "metrics": sha256("\n".join(lines.get(t, [])).encode()),
            "ledger": sha256(json.dumps(self.ledger_rows(t)).encode()),
            "state": digest_state(state),
        }

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Commit round ``state["round"]``: append its chain entry, save ``state`` atomically.

        Re-committing a round (after a crash) replaces its entry and any later one.
        """
        chain = [e for e in state.get("chain", []) if e["round"] < state["round"]]
        entry = self.chain_entry(state, _entry_hash(chain[-1]) if chain else None)
        key = self.signing_key(chain)
        entry["key"] = key.id
        entry["mac"] = key.mac(_entry_bytes(entry))
        state["chain"] = [*chain, entry]
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.checkpoint, buf.getvalue())

    def signing_key(self, chain: list[dict[str, Any]]) -> ChainKey:
        """Return the key the next entry of ``chain`` is signed with.

        The chain's own if it has one, else this machine's (created on first use);
        :class:`RunDirError` if the chain's key is not held here or this machine's
        cannot be created. :meth:`training.Session.start` asks before any write.
        """
        try:
            keyed = [e for e in chain if "mac" in e]
            if not keyed:
                return own_key()
            kid = keyed[-1].get("key")
            keys = known_keys(self.keys)
        except KeyError_ as exc:
            raise RunDirError(str(exc)) from None
        if kid not in keys:
            raise RunDirError(f"{str(self.path)!r}: the run's chain is keyed with key {kid}, "
                              "which this machine does not hold; `ipfl key import FILE` the "
                              "key exported where the run started, then retry")
        return keys[kid]

    def drop_checkpoint(self) -> None:
        """Delete ``checkpoint.pt`` of a finished run, keeping its hash chain in ``chain.json``.

        ``chain.json`` is written (atomically) before the checkpoint goes, so a crash in
        between leaves both. Nothing happens when there is no checkpoint.
        """
        state = self.load_checkpoint()
        if state is None:
            return
        doc = {"round": state.get("round"), "chain": state.get("chain", [])}
        atomic_write_text(self.chain_file, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        self.checkpoint.unlink()

    def _dropped_chain(self, problems: list[str]) -> list[Any] | None:
        """Return the chain kept in ``chain.json`` (None when there is none; problems noted)."""
        if not os.path.lexists(self.chain_file):
            return None
        try:
            doc = json.loads(self.read_file(self.chain_file, "chain").decode("utf-8"))
            chain = doc["chain"]
            if not isinstance(chain, list) or not all(isinstance(e, dict) and "round" in e
                                                      for e in chain):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            problems.append("chain.json holds no hash chain (edited)")
            return []
        return chain

    def load_checkpoint(self) -> dict[str, Any] | None:
        """Return the last checkpoint, or None.

        Loaded with ``weights_only=True``: only tensors and plain containers, so a pickle
        payload planted in the file is refused, never run.
        """
        if not os.path.lexists(self.checkpoint):
            return None
        raw = self.read_file(self.checkpoint, "checkpoint")
        try:
            return torch.load(io.BytesIO(raw), weights_only=True)
        except Exception as exc:  # noqa: BLE001 (a damaged or foreign file: never run its code)
            raise RunDirError(
                f"{str(self.checkpoint)!r} is not a checkpoint this package wrote "
                f"({type(exc).__name__}); it is refused unread") from None

    def verify(self, *, resuming: bool = False,
               state: dict[str, Any] | None = None) -> Verification:
        """Check every artefact against the hash chain and its MACs; return what was found.

        With ``resuming``, the files of the one round after the last committed one (a
        round a crash interrupted, re-run identically on resume) are not problems, and a
        chain keyed with a key this machine does not hold is one (it could not be
        extended). Without ``resuming``, a finished run whose checkpoint was dropped
        (:meth:`drop_checkpoint`) is checked against the chain kept in ``chain.json``.

        The last committed round is the chain's length less one: a number an entry or
        the checkpoint claims never sizes anything. Every file is read through
        :mod:`training.safeio` (regular files only, size caps).
        Raises :class:`RunDirError` when the folder is not a run or its config unreadable.
        """
        doc = self.read_config_doc()
        raw = self.read_config_bytes()
        problems: list[str] = []
        notes: list[str] = []
        versions = _config_versions(raw, doc, problems)
        if state is None:
            try:
                state = self.load_checkpoint()
            except RunDirError as exc:
                return Verification(-1, None, [str(exc)])
        dropped = None
        if state is None and not resuming:
            dropped = self._dropped_chain(problems)
        chain = dropped if dropped is not None else [] if state is None else state.get("chain")
        if not isinstance(chain, list) or not all(isinstance(e, dict) for e in chain):
            return Verification(-1, None, ["checkpoint.pt holds no hash chain (written by "
                                           "an older ipfl, or edited)"])
        committed = len(chain) - 1  # each entry k must say round k (checked below)
        if state is not None:
            if not chain:
                problems.append("checkpoint.pt holds an empty hash chain")
            elif state.get("round") != committed:
                problems.append(f"checkpoint.pt: round counter {state.get('round')!r} differs "
                                f"from the last committed round {committed}")
            elif digest_state(state) != chain[-1].get("state"):
                problems.append(f"checkpoint.pt: the run state differs from what round "
                                f"{committed} committed (parameters or counters edited)")
        elif not resuming and dropped is None:
            problems.append("checkpoint.pt is missing: no round is committed (a run stopped "
                            "inside round 0, or the checkpoint was deleted)")
        lines, bad = self.metric_lines()
        problems += bad
        records = self.record_files(problems)
        try:
            ledger_rounds = self.ledger_rounds()
            wanted = ledger_rounds | set(range(committed + 1))
            ledger_rows = {t: self.ledger_rows(t) for t in wanted}
        except (sqlite3.DatabaseError, RunDirError) as exc:
            problems.append(f"ledger.sqlite cannot be read ({exc})")
            ledger_rounds, ledger_rows = set(), dict.fromkeys(range(committed + 1))
        try:
            keys = known_keys(self.keys)
        except KeyError_ as exc:
            problems.append(str(exc))
            keys = {}
        prev = None
        unkeyed, missing, named = [], [], []
        for k, e in enumerate(chain):
            t = e.get("round")
            if t != k or e.get("prev") != prev:
                problems.append(f"hash chain: entry {k} is not linked to entry {k - 1} (edited)")
                break
            prev = _entry_hash(e)
            if "mac" not in e:
                if named:
                    problems.append(f"round {t}: its chain entry has no MAC though earlier ones "
                                    "do (the keyed chain was stripped and re-hashed)")
                unkeyed.append(t)
            else:
                kid = str(e.get("key"))
                named.append(kid)
                if kid not in keys:
                    missing.append(kid)
                elif not keys[kid].verify(_entry_bytes(e), e["mac"]):
                    problems.append(f"round {t}: its chain entry's MAC does not verify under "
                                    f"key {kid} (an artefact was edited and the chain re-hashed)")
            want_cfg = [s for r, s in versions if r <= t][-1]
            if e.get("config") != want_cfg:
                problems.append(f"round {t}: config.json differs from the config the round "
                                "ran with (edited)")
            rec = records.get(t)
            try:
                have = sha256(self.read_file(rec, "record")) if rec is not None else None
            except RunDirError as exc:
                problems.append(str(exc))
                continue
            if have != e.get("record"):
                what = ("deleted" if have is None else "added" if e.get("record") is None
                        else "edited")
                problems.append(f"round {t}: rounds/{t:04d}.json was {what}")
            if sha256("\n".join(lines.get(t, [])).encode()) != e.get("metrics"):
                problems.append(f"round {t}: metrics.jsonl rows were edited, deleted or "
                                f"duplicated ({len(lines.get(t, []))} rows found)")
            rows = ledger_rows.get(t)
            if rows is not None and sha256(json.dumps(rows).encode()) != e.get("ledger"):
                problems.append(f"round {t}: ledger rows differ from those committed")
        allowed = committed + 1 if resuming else committed
        for what, rounds in (("round record", records), ("metrics rows", lines),
                             ("ledger rows", ledger_rounds)):
            for t in sorted(r for r in rounds if r > allowed or r < 0):
                problems.append(
                    f"round {t}: {what} of a round that was never committed (the run stopped "
                    f"inside round {t}: `ipfl train --resume {str(self.path)}` completes it; "
                    "or they were added by hand)")
        if unkeyed:
            notes.append(f"rounds {unkeyed[0]}..{unkeyed[-1]} have an unkeyed hash chain "
                         "(written before ipfl keyed its chains): their internal consistency "
                         "was checked, their authenticity cannot be")
        if missing:
            ids = sorted(set(missing))
            text = (f"the chain is keyed with key {', '.join(ids)}, which is not available "
                    "here: authenticity cannot be verified (internal consistency was "
                    "checked); pass --key FILE with the key `ipfl key export` wrote on the "
                    "machine that ran it, or `ipfl key import FILE` it")
            (problems if resuming else notes).append(text)
        authenticated = bool(chain) and not unkeyed and not missing and not problems
        return Verification(committed, prev, problems, notes, authenticated,
                            sorted(set(named)))

    def record_files(self, problems: list[str]) -> dict[int, Path]:
        """Return ``rounds/NNNN.json`` by round; any other entry of ``rounds/`` is a problem."""
        records: dict[int, Path] = {}
        if os.path.islink(self.rounds):
            problems.append("rounds/ is a symbolic link, not the run's folder")
            return records
        for p in sorted(self.rounds.iterdir()) if self.rounds.is_dir() else []:
            if p.name.startswith(".") and p.name.endswith(".tmp"):
                continue
            if not (len(p.stem) == 4 and p.stem.isdigit() and p.suffix == ".json"):
                problems.append(f"rounds/{p.name} is not a round record")
                continue
            try:
                check_regular(p, CAPS["record"], "run file")
            except UnsafeFile as exc:
                problems.append(f"rounds/{p.name}: {exc}")
                continue
            records[int(p.stem)] = p
        return records


def _holder(text: str) -> str:
    try:
        h = json.loads(text.splitlines()[0] if text.strip() else "")
        return f"pid {h['pid']} on host {h['host']}, since {h['since']}"
    except (ValueError, KeyError, TypeError, IndexError):
        return "holder unknown"


def _config_versions(raw: bytes, doc: dict[str, Any],
                     problems: list[str]) -> list[tuple[int, str]]:
    """Return ``(first round, sha256)`` of every version of the config, oldest first.

    Each ``history`` item records a resume change (``set``: key -> was/now) and the round
    it applies from; undoing the items one by one must give back each earlier file.
    """
    history = doc.get("history", [])
    versions = [(0, sha256(raw))]
    if not history:
        return versions
    try:
        cur = copy.deepcopy(doc)
        versions = [(history[-1]["round"], sha256(raw))]
        for k in range(len(history) - 1, -1, -1):
            item = history[k]
            for key in item["set"]:
                if not _resumable(key, doc.get("algorithm")):
                    problems.append(f"config.json: history item {k} changes {key}, which a "
                                    "resume may not change (the config was edited)")
            for key, change in item["set"].items():
                table, dot, sub = key.partition(".")
                if dot:
                    cur[table][sub] = change["was"]
                else:
                    cur[key] = change["was"]
            if k:
                cur["history"] = history[:k]
            else:
                cur.pop("history")
            s = sha256(config_text(cur).encode())
            if s != item.get("sha256"):
                problems.append(f"config.json: history item {k} does not give back the "
                                "config it replaced (edited)")
            versions.insert(0, (history[k - 1]["round"] if k else 0, s))
    except (KeyError, TypeError, AttributeError, IndexError):
        problems.append("config.json: its history is malformed (edited)")
        return [(0, sha256(raw))]
    return versions


def _resumable(key: str, algorithm: object) -> bool:
    """Return True for a key ``--resume --set`` may change.

    :data:`training.config.RESUMABLE` and the run's algorithm table.
    """
    from .config import RESUMABLE

    table, dot, _ = key.partition(".")
    return (not dot and key in RESUMABLE) or (bool(dot) and table == algorithm)


def is_finite_json(text: str) -> bool:
    """Return True when ``text`` parses as JSON without NaN or infinity."""
    def refuse(_: str) -> float:
        raise ValueError

    try:
        json.loads(text, parse_constant=refuse)
    except ValueError:
        return False
    return True

