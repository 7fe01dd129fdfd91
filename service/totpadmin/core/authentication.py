"""Checking a caller's username and password."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Protocol

from .credential_cache import CredentialCache
from .errors import AuthenticationFailed, InvalidUsername
from .passwords import PasswordHasher
from .principal import Principal
from .usernames import UserRef, parse_username


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

    def is_cached(self, username: str, password: str) -> bool:
        """Whether these credentials verified recently in this process (memory only, no hashing): then
        :meth:`authenticate` needs one database read and no password hash."""
        return self._cache.get(username, password) is not None

    def authenticate(self, logins: Logins, username: str, password: str) -> Principal:
        """The principal for these credentials; :class:`AuthenticationFailed` for any mismatch."""
        hit = self._cache.get(username, password)
        if hit is not None:
            record = logins.get_login(hit.user_id)
            if record is not None and hmac.compare_digest(record.password_hash, hit.password_hash):
                return _principal(record)
            self._cache.discard(username, password)

        try:
            ref = parse_username(username, email_usernames=self._email_usernames)
        except InvalidUsername:
            ref = None
        record = logins.find_login(ref) if ref is not None else None
        if record is None:
            self._hasher.verify_decoy(password)
            raise AuthenticationFailed()
        if not self._hasher.verify(record.password_hash, password):
            raise AuthenticationFailed()
        self._cache.put(username, password, record.user_id, record.password_hash)
        return _principal(record)


def _principal(record: LoginRecord) -> Principal:
    return Principal(user_id=record.user_id, ref=record.ref, role=record.role)
