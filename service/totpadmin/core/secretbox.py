"""Encryption of stored secrets: AES-256-GCM with the value's identity bound in as associated data.

A sealed value is Base64 of ``nonce (12 bytes) || ciphertext+tag``. The associated data ties it to one
tenant, user and claim, so a value copied onto another row fails to open instead of leaking.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SecretUnreadable
from .keyring import KeyRing

NONCE_BYTES = 12


def associated_data(tenant_id: int, user_id: int, claim_uri: str) -> bytes:
    return f"totp-admin/v1|tenant:{tenant_id}|user:{user_id}|{claim_uri}".encode("utf-8")


class SecretBox:
    def __init__(self, ring: KeyRing):
        self._ring = ring

    @property
    def active_key_id(self) -> str:
        return self._ring.active_id

    def seal(self, plaintext: str, aad: bytes) -> tuple[str, str]:
        """Encrypt with the active key; return ``(key_id, sealed_base64)``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self._ring.key(self._ring.active_id)).encrypt(nonce, plaintext.encode("utf-8"), aad)
        return self._ring.active_id, base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, key_id: str, sealed_b64: str, aad: bytes) -> str:
        """Decrypt a value sealed by :meth:`seal`; raise :class:`SecretUnreadable` on any failure."""
        try:
            raw = base64.b64decode(sealed_b64, validate=True)
            key = self._ring.key(key_id)
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode("utf-8")
        except (KeyError, InvalidTag, binascii.Error, ValueError, UnicodeDecodeError):
            raise SecretUnreadable("A stored TOTP secret could not be decrypted") from None
