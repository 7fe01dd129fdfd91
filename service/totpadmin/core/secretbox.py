"""Encryption of stored secrets: AES-256-GCM with the value's identity bound in as associated data.

A sealed value is Base64 of ``nonce (12 bytes) || ciphertext+tag``. The associated data ties it to one
tenant, user and claim, so a value copied onto another row fails to open instead of leaking.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading
from typing import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SecretUnreadable
from .keyring import KeyFileError, KeyRing

NONCE_BYTES = 12

log = logging.getLogger(__name__)


def associated_data(tenant_id: int, user_id: int, claim_uri: str) -> bytes:
    return f"totp-admin/v1|tenant:{tenant_id}|user:{user_id}|{claim_uri}".encode("utf-8")


class SecretBox:
    """``reload``, if given, returns the key file's current ring (see :class:`keyring.Reloader`). It is
    called before each seal, so that new values use the key a rotation made active after this box was
    created, and once when a value names a key this box does not know (re-encrypted by a rotation);
    if the file cannot be read then, the box keeps the keys it has and logs a warning."""

    def __init__(self, ring: KeyRing, *, reload: Callable[[], KeyRing] | None = None):
        self._ring = ring
        self._reload = reload
        self._reload_lock = threading.Lock()

    @property
    def active_key_id(self) -> str:
        return self._ring.active_id

    def refresh(self) -> KeyRing:
        """Take the key file's current ring (if this box can reload); return the ring in use."""
        if self._reload is not None:
            with self._reload_lock:
                try:
                    ring = self._reload()
                    if ring is not self._ring:
                        log.info("key file reloaded: %d keys, %s active", len(ring.keys), ring.active_id)
                    self._ring = ring
                except KeyFileError as exc:
                    log.warning("key file not reloaded, keeping the keys already loaded: %s", exc)
        return self._ring

    def seal(self, plaintext: str, aad: bytes) -> tuple[str, str]:
        """Encrypt with the active key; return ``(key_id, sealed_base64)``."""
        ring = self.refresh()
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(ring.key(ring.active_id)).encrypt(nonce, plaintext.encode("utf-8"), aad)
        return ring.active_id, base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, key_id: str, sealed_b64: str, aad: bytes) -> str:
        """Decrypt a value sealed by :meth:`seal`; raise :class:`SecretUnreadable` on any failure."""
        try:
            raw = base64.b64decode(sealed_b64, validate=True)
            ring = self._ring
            if key_id not in ring.keys:
                ring = self.refresh()
            key = ring.key(key_id)
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode("utf-8")
        except (KeyError, InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise SecretUnreadable("A stored TOTP secret could not be decrypted") from None
