"""The steps of a login, each a plain call on the thread it needs: whether the credentials verified
recently (memory), the stored login they name (database), the password check (CPU only: Argon2), and
the audit of a refusal (database). ``server/login_pipeline.py`` runs them for every protocol, each on
its own thread; :meth:`PasswordLogins.login` runs them one after the other on the caller's thread.

A credential kind is a type of credentials and a verifier for it (the :class:`Verifier` interface).
HTTP Basic gives :class:`PasswordCredentials`, checked by :class:`PasswordLogins`; OAuth2's client
credentials and bearer tokens are the kinds of ``application_logins.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..core import audit
from ..core.application import Application
from ..core.authentication import Authenticator, CacheState, LoginRecord
from ..core.errors import AuthenticationFailed
from ..core.principal import Principal
from ..store.database import Database
from .caller import Caller


@dataclass(frozen=True)
class PasswordCredentials:
    """A username and password (HTTP Basic). The password is never shown."""

    username: str
    password: str = field(repr=False)

    @property
    def claimed(self) -> str:
        """The name the client claims, as the throttle and the audit of a refusal count it."""
        return self.username


@dataclass(frozen=True)
class Request:
    """What the audit says of the request a login is for."""

    request_id: str = ""
    source: str = ""  # the client address
    operation: str = ""


class Verifier(Protocol):
    """What the login pipeline needs of a credential kind."""

    hashes: bool  # whether ``check`` hashes a password or secret (Argon2: on the hash pool) or only compares

    def key(self, credentials) -> bytes: ...

    def state(self, credentials) -> CacheState: ...

    def cached(self, credentials, request: Request) -> Caller | None: ...

    def find(self, credentials) -> object: ...

    def check(self, credentials, found) -> Principal | Application | None: ...

    def refuse(self, credentials, request: Request) -> None: ...

    def forget(self, credentials) -> None: ...


class PasswordLogins:
    """:class:`Verifier` of :class:`PasswordCredentials`. ``record(event)`` logs and stores an audit
    event on its own (a store outage is logged, not raised)."""

    hashes = True

    def __init__(self, db: Database, authenticator: Authenticator, record: Callable[[audit.AuditEvent], None]):
        self._db = db
        self._authenticator = authenticator
        self._record = record

    def key(self, credentials: PasswordCredentials) -> bytes:
        """Equal for equal credentials in this process (an HMAC, never the password): for sharing one
        password check among calls with the same credentials, and for the throttle."""
        return self._authenticator.login_key(credentials.username, credentials.password)

    def state(self, credentials: PasswordCredentials) -> CacheState:
        """Memory only: whether the credentials verified recently, and whether to check them again."""
        return self._authenticator.cache_state(credentials.username, credentials.password)

    def cached(self, credentials: PasswordCredentials, request: Request) -> Caller | None:
        """The caller of a recent login (memory only), to be confirmed in the call's own transaction:
        the stored login must still be the one that verified. None if there is none."""
        authenticator = self._authenticator
        hit = authenticator.cached(credentials.username, credentials.password)
        if hit is None:
            return None
        return Caller(hit.principal, request.request_id, request.source,
                      confirm=lambda transaction: authenticator.confirm(transaction.users, hit))

    def find(self, credentials: PasswordCredentials) -> LoginRecord | None:
        """Blocking (database, one read): the stored login the credentials name; None: no such user.
        :class:`~..core.errors.StoreUnavailable` if the store failed."""
        with self._db.transaction(read_only=True) as transaction:
            return self._authenticator.find(transaction.users, credentials.username)

    def check(self, credentials: PasswordCredentials, found: LoginRecord | None) -> Principal | None:
        """CPU only (Argon2; no database, so no connection is held meanwhile): the principal if the
        password is right (then remembered), else None."""
        try:
            return self._authenticator.check(found, credentials.username, credentials.password)
        except AuthenticationFailed:
            return None

    def refuse(self, credentials: PasswordCredentials, request: Request) -> None:
        """Blocking (database): audit a failed login."""
        self._record(audit.AuditEvent(request_id=request.request_id, source=request.source,
                                      caller=credentials.claimed, operation=request.operation, target=None,
                                      tenant=None, outcome=audit.AUTH_FAILED))

    def forget(self, credentials: PasswordCredentials) -> None:
        self._authenticator.forget(credentials.username, credentials.password)

    def login(self, credentials: PasswordCredentials, request: Request) -> Caller | None:
        """Blocking: every step on this thread (a cached login, else the stored one and the password),
        for callers without a server; None: refused, and audited."""
        caller = self.cached(credentials, request)
        if caller is not None:
            return caller
        principal = self.check(credentials, self.find(credentials))
        if principal is None:
            self.refuse(credentials, request)
            return None
        return Caller(principal, request.request_id, request.source)
