"""The data-encryption keys, kept in one JSON file in the data directory.

The file maps key ids to 256-bit AES keys and names the active one. New values are sealed with the
active key; every stored value carries the id of the key that sealed it, so keys can be rotated online
and old ones retired once nothing uses them.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

KEY_BYTES = 32


class KeyFileError(Exception):
    """The key file is unsafe, unreadable or malformed. The message names the file."""


class KeyFileBusy(Exception):
    """Another process holds the key file's lock (a key rotation is running)."""


@dataclass
class KeyRing:
    active_id: str
    keys: dict[str, bytes] = field(repr=False)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyError(f"no key with id {key_id!r} in the key ring") from None


def new_key_id() -> str:
    """A fresh, unique key id: a restored old key file can never clash with a new one."""
    return "k" + secrets.token_hex(4)


def load_or_create(path: Path, *, needed: set[str] = frozenset()) -> KeyRing:
    """Load the key ring at ``path``, creating it (mode 0600) with one fresh key if it does not exist.

    ``needed`` are the ids of keys that stored values were sealed with: if any is missing, the file was
    lost or replaced, and starting anyway would make those secrets unreadable for good.
    """
    if not path.exists():
        if needed:
            raise KeyFileError(f"{path}: missing, but stored secrets were sealed with keys "
                               f"{', '.join(sorted(needed))}; restore the key file from a backup")
        key_id = new_key_id()
        ring = KeyRing(active_id=key_id, keys={key_id: os.urandom(KEY_BYTES)})
        _write(path, ring)
        return ring
    ring = load(path)
    missing = set(needed) - set(ring.keys)
    if missing:
        raise KeyFileError(f"{path}: lacks keys {', '.join(sorted(missing))} that stored secrets were "
                           f"sealed with; restore the key file from a backup")
    return ring


def load(path: Path) -> KeyRing:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"{path}: key file is accessible by group or others (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
    try:
        doc = json.loads(path.read_text("utf-8"))
        keys = {kid: base64.b64decode(b64, validate=True) for kid, b64 in doc["keys"].items()}
        active = doc["active"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyFileError(f"{path}: not a valid key file ({type(exc).__name__})") from None
    if active not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
        raise KeyFileError(f"{path}: the active key is missing or a key is not {KEY_BYTES} bytes")
    return KeyRing(active_id=active, keys=keys)


# --- rotation: changing the key file while servers run ---


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the key file's exclusive lock (``<file>.lock``, non-blocking) around changes to it.

    A whole rotation runs under it: two at once could each retire the key the other is sealing with.
    Readers (servers) need no lock: the file is only ever replaced atomically.
    """
    lock_path = path.with_name(path.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KeyFileBusy(f"{path}: another key rotation is running ({lock_path} is locked)") from None
        yield
    finally:
        os.close(fd)  # releases the lock


def add_key(path: Path) -> KeyRing:
    """Add a fresh key to the file at ``path`` and make it the active one; the old keys stay (values
    sealed with them remain readable until re-encrypted). Call under :func:`locked`."""
    if not path.exists():
        raise KeyFileError(f"{path}: missing; cannot add a key to it")
    ring = load(path)
    key_id = new_key_id()
    while key_id in ring.keys:
        key_id = new_key_id()
    ring = KeyRing(active_id=key_id, keys={**ring.keys, key_id: os.urandom(KEY_BYTES)})
    _write(path, ring)
    return ring


def retire_unused(path: Path, in_use: set[str]) -> list[str]:
    """Drop from the file the keys that no stored value uses (``in_use``), never the active one.
    Returns the retired ids. Call under :func:`locked`."""
    ring = load(path)
    retired = sorted(k for k in ring.keys if k != ring.active_id and k not in in_use)
    if retired:
        _write(path, KeyRing(active_id=ring.active_id,
                             keys={k: v for k, v in ring.keys.items() if k not in retired}))
    return retired


class Reloader:
    """``reloader()`` is the key file's current ring, parsed again only when the file's bytes or mode
    changed, so it is cheap enough to call before every seal (one stat and one small read).

    A running server uses it to learn of keys added by ``totp-admin keys rotate`` after it started.
    Raises :class:`KeyFileError` if the changed file is missing, unsafe or malformed.
    """

    def __init__(self, path: Path, ring: KeyRing):
        self._path = path
        self._ring = ring
        self._signature = self._snapshot()

    def _snapshot(self) -> tuple | None:
        try:
            return self._path.stat().st_mode, self._path.read_bytes()
        except OSError:
            return None

    def __call__(self) -> KeyRing:
        signature = self._snapshot()
        if signature != self._signature:
            if signature is None:
                raise KeyFileError(f"{self._path}: missing")
            self._ring = load(self._path)
            self._signature = signature
        return self._ring


def _write(path: Path, ring: KeyRing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"active": ring.active_id, "keys": {k: base64.b64encode(v).decode() for k, v in ring.keys.items()}}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a stale temporary file keeps its old mode through O_TRUNC
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
