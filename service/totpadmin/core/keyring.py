"""The data-encryption keys, kept in one JSON file in the data directory.

The file maps key ids to 256-bit AES keys and names the active one. New values are sealed with the
active key; every stored value carries the id of the key that sealed it, so keys can be rotated online
and old ones retired once nothing uses them.
"""

from __future__ import annotations

import base64
import json
import os
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


def load_or_create(path: Path) -> KeyRing:
    """Load the key ring at ``path``, creating it (mode 0600) with one fresh key if it does not exist."""
    if not path.exists():
        ring = KeyRing(active_id="k1", keys={"k1": os.urandom(KEY_BYTES)})
        _write(path, ring)
        return ring
    return load(path)


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
