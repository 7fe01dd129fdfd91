"""A short-lived, in-memory memo of credentials that verified, so a password is not re-hashed per request.

Entries are keyed by an HMAC of username and password under a per-process random key: the cache never
holds a password or anything that lets one be tested offline after the process is gone. Each entry
remembers the user's password hash as it was when the password verified; the caller compares it with
the stored one, so a changed password (a new salted hash), a removed user or a new user that reuses the
id all miss, in every process.

An entry in the last quarter of its life is *due for renewal*: the server then checks the password again
in the background while the entry still serves, so that a client calling steadily never finds its entry
gone (server/login_pipeline.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from .principal import Principal

RENEWAL_SHARE = 0.25  # the last quarter of an entry's life: long enough for a check (Argon2) to finish


@dataclass(frozen=True)
class CachedLogin:
    user_id: int
    password_hash: str
    expires_at: float
    principal: Principal | None = None  # who the login was, to be confirmed against the store


class CredentialCache:
    def __init__(self, *, ttl: float = 60.0, max_entries: int = 10_000, clock=time.monotonic):
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._key = os.urandom(32)
        self._entries: OrderedDict[bytes, CachedLogin] = OrderedDict()
        self._lock = threading.Lock()

    def fingerprint(self, username: str, password: str) -> bytes:
        """What entries are keyed by: an HMAC of the credentials under this process's random key."""
        user = username.encode("utf-8")
        return hmac.new(self._key, len(user).to_bytes(4, "big") + user + password.encode("utf-8"), hashlib.sha256).digest()

    def get(self, username: str, password: str) -> CachedLogin | None:
        fp = self.fingerprint(username, password)
        with self._lock:
            entry = self._entries.get(fp)
            if entry is None:
                return None
            if entry.expires_at <= self._clock():
                del self._entries[fp]
                return None
            return entry

    def renewal_due(self, entry: CachedLogin) -> bool:
        """Whether ``entry`` (from :meth:`get`) is in the last quarter of its life."""
        return entry.expires_at - self._clock() <= self._ttl * RENEWAL_SHARE

    def put(self, username: str, password: str, user_id: int, password_hash: str, *,
            principal: Principal | None = None) -> None:
        fp = self.fingerprint(username, password)
        entry = CachedLogin(user_id, password_hash, self._clock() + self._ttl, principal)
        with self._lock:
            self._entries[fp] = entry
            self._entries.move_to_end(fp)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def discard(self, username: str, password: str) -> None:
        with self._lock:
            self._entries.pop(self.fingerprint(username, password), None)
