"""The data-encryption keys, kept in one JSON file in the data directory.

The file maps key ids to 256-bit AES keys and names the active one. New values are sealed with the
active key; every stored value carries the id of the key that sealed it, so keys can be rotated online
and old ones retired once nothing uses them.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32


class KeyFileError(Exception):
    """The key file is unsafe, unreadable or malformed. The message names the file."""


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


def _write(path: Path, ring: KeyRing) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"active": ring.active_id, "keys": {k: base64.b64encode(v).decode() for k, v in ring.keys.items()}}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
