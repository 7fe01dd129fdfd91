"""Checking a caller's username and password."""

from __future__ import annotations

import enum
import hmac
from dataclasses import dataclass
from typing import Protocol

from .credential_cache import CachedLogin, CredentialCache
from .errors import AuthenticationFailed, InvalidUsername
from .passwords import PasswordHasher
from .principal import Principal
from .usernames import UserRef, parse_username


class CacheState(enum.Enum):
    MISSING = "missing"  # not verified recently: check the password before the call
    CACHED = "cached"
    RENEWAL_DUE = "renewal due"  # cached, and near the end of its life: check it again in the background


@dataclass(frozen=True)
class LoginRecord:
    user_id: int
    ref: UserRef
    role: str
    password_hash: str


class Logins(Protocol):
    def find_login(self, ref: UserRef) -> LoginRecord | None: ...

    def get_login(self, user_id: int) -> LoginRecord | None: ...


class Authenticator:
    def __init__(self, hasher: PasswordHasher, cache: CredentialCache, *, email_usernames: bool = False):
        self._hasher = hasher
        self._cache = cache
        self._email_usernames = email_usernames

    def cache_state(self, username: str, password: str) -> CacheState:
        """Whether these credentials verified recently in this process, and whether it is time to check
        them again (memory only, no hashing)."""
        hit = self.cached(username, password)
        if hit is None:
            return CacheState.MISSING
        return CacheState.RENEWAL_DUE if self._cache.renewal_due(hit) else CacheState.CACHED

    def login_key(self, username: str, password: str) -> bytes:
        """An opaque key that is equal for equal credentials in this process (an HMAC, not the password):
        for sharing one password check among calls with the same credentials."""
        return self._cache.fingerprint(username, password)

    def cached(self, username: str, password: str) -> CachedLogin | None:
        """The recent login of these credentials (memory only): its principal stands for the caller as
        long as :meth:`confirm`, in the call's transaction, finds the stored login unchanged."""
        hit = self._cache.get(username, password)
        return hit if hit is not None and hit.principal is not None else None

    def confirm(self, logins: Logins, hit: CachedLogin) -> bool:
        """Whether the stored login is still the one that verified: same password hash, name and role."""
        record = logins.get_login(hit.user_id)
        return (record is not None and hmac.compare_digest(record.password_hash, hit.password_hash)
                and _principal(record) == hit.principal)

    def forget(self, username: str, password: str) -> None:
        self._cache.discard(username, password)

    def find(self, logins: Logins, username: str) -> LoginRecord | None:
        """The stored login for ``username`` (one indexed read), None for an unknown or invalid name."""
        try:
            ref = parse_username(username, email_usernames=self._email_usernames)
        except InvalidUsername:
            return None
        return logins.find_login(ref)

    def check(self, record: LoginRecord | None, username: str, password: str) -> Principal:
        """The principal if ``password`` is ``record``'s, else :class:`AuthenticationFailed` (an unknown
        user, ``None``, costs the same hashing). No database: run it outside any transaction, since
        Argon2 takes tens of milliseconds and SQLite has a single connection per process."""
        if record is None:
            self._hasher.verify_decoy(password)
            raise AuthenticationFailed()
        if not self._hasher.verify(record.password_hash, password):
            raise AuthenticationFailed()
        principal = _principal(record)
        self._cache.put(username, password, record.user_id, record.password_hash, principal=principal)
        return principal


def _principal(record: LoginRecord) -> Principal:
    return Principal(user_id=record.user_id, ref=record.ref, role=record.role)
