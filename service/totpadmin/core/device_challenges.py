"""authIds of the device API: a device to activate, or a sign-in to finish with a code.

An authId is a sealed token (Fernet: AES-128-CBC and HMAC-SHA256, from ``cryptography``) that carries its
kind, user and device and the time it was issued; nothing is stored when one is issued, so starting a
sign-in only reads the database, and any instance that shares the key file can check an authId another
one issued. Binding:

- to its application: the key is derived (HKDF) from the key file's key and the application's client_id,
  so another application's authId does not open; it is told apart from a made-up one by nothing (404);
- to its user and device: the token names them, the device by its row and a hash of its name (and for
  the primary device of an older enrolment, which has no row, of its sealed secret), so an authId of a
  removed or re-enrolled device does not fall to a later one;
- in time: it expires ``deviceAuthenticationLifetime`` seconds after it was issued (410 from then on);
- to one use: its first successful use stores its SHA-256 until it expires (store/device_challenges.py).

A wrong code leaves an authId usable, each wrong code counting toward the user's lockout, as before.
The keys follow the key file: rotating it (``totp-admin keys rotate``) leaves the authIds issued under the
previous key valid while that key is in the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import threading
from dataclasses import dataclass
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ChallengeGone, UnknownChallenge
from .keyring import KeyRing

ACTIVATION, AUTHENTICATION = "activation", "authentication"
_KINDS = {ACTIVATION: b"a", AUTHENTICATION: b"s"}
_KIND_OF = {v: k for k, v in _KINDS.items()}
_PAYLOAD = struct.Struct(">cII4s")  # kind, user id, device id (0: the primary device without a row), tag
_MAX_CHARS = 200  # longer than any authId this module issues
_INFO = b"totp-admin/v1|device-api-authId|"


@dataclass(frozen=True)
class Challenge:
    """What an authId names, once opened."""

    auth_hash: str  # SHA-256 of the authId: what is stored once it is spent
    kind: str  # ACTIVATION or AUTHENTICATION
    user_id: int
    device_id: int | None  # None: the primary device of an older enrolment (no row)
    device_tag: bytes  # device_tag() of the device when the authId was issued
    expires_at: float  # epoch seconds


def auth_hash(auth_id: str) -> str:
    return hashlib.sha256(auth_id.encode("utf-8")).hexdigest()


def device_tag(name: str, sealed_secret: str | None = None) -> bytes:
    """What else than its row id names a device in an authId: its name, and for the primary device
    without a row its sealed secret (which a reset or a new enrolment replaces)."""
    return hashlib.sha256(f"{name}\0{sealed_secret or ''}".encode("utf-8")).digest()[:4]


class AuthIds:
    """Issues and opens authIds. ``ring`` returns the key file's current ring (SecretBox.refresh)."""

    def __init__(self, ring: Callable[[], KeyRing], lifetime_seconds: int):
        self._ring = ring
        self._lifetime = lifetime_seconds
        self._fernets: dict[tuple[str, str], Fernet] = {}
        self._lock = threading.Lock()

    def issue(self, kind: str, client_id: str, user_id: int, device_id: int | None, tag: bytes, now: float) -> str:
        ring = self._ring()
        payload = _PAYLOAD.pack(_KINDS[kind], user_id, device_id or 0, tag)
        token = self._fernet(ring, ring.active_id, client_id).encrypt_at_time(payload, int(now))
        return token.decode("ascii").rstrip("=")  # no padding: an authId travels in a URL path

    def open(self, auth_id: object, kind: str, client_id: str, now: float) -> Challenge:
        """The challenge ``auth_id`` names: :class:`UnknownChallenge` unless this application issued it
        for ``kind``; :class:`ChallengeGone` once it expired (spent ones are the store's to tell)."""
        if not isinstance(auth_id, str) or not 0 < len(auth_id) <= _MAX_CHARS or not auth_id.isascii():
            raise UnknownChallenge()
        token = (auth_id + "=" * (-len(auth_id) % 4)).encode("ascii")
        ring = self._ring()
        for key_id in [ring.active_id] + [k for k in ring.keys if k != ring.active_id]:
            fernet = self._fernet(ring, key_id, client_id)
            try:
                issued = fernet.extract_timestamp(token)  # checks the HMAC first
                payload = fernet.decrypt(token)
            except (InvalidToken, binascii.Error, ValueError):
                continue
            try:
                kind_byte, user_id, device_id, tag = _PAYLOAD.unpack(payload)
            except struct.error:
                raise UnknownChallenge() from None
            if _KIND_OF.get(kind_byte) != kind:
                raise UnknownChallenge()
            expires_at = float(issued + self._lifetime)
            if now >= expires_at:
                raise ChallengeGone(spent=False)
            return Challenge(auth_hash(auth_id), kind, user_id, device_id or None, tag, expires_at)
        raise UnknownChallenge()

    def _fernet(self, ring: KeyRing, key_id: str, client_id: str) -> Fernet:
        fernet = self._fernets.get((key_id, client_id))
        if fernet is None:
            derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                           info=_INFO + client_id.encode("utf-8")).derive(ring.key(key_id))
            fernet = Fernet(base64.urlsafe_b64encode(derived))
            with self._lock:
                if len(self._fernets) > 4096:  # clients come and go: never let this grow without bound
                    self._fernets.clear()
                self._fernets[(key_id, client_id)] = fernet
        return fernet
