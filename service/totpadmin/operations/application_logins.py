"""The two credential kinds of applications (OAuth2), verifiers of ``operations/login.py``'s
:class:`~.login.Verifier` beside PasswordLogins, run by ``server/login_pipeline.py``:

- :class:`ClientCredentials` (the token request: HTTP Basic or form fields), checked like a password:
  the client row read on the database threads, Argon2 on the hash pool, remembered for a short while
  by the same credential cache as passwords (an HMAC, never the secret), confirmed in the call's
  transaction (the stored secret hash unchanged);
- :class:`BearerCredentials` (an access token): found by its SHA-256 in one indexed read; ``check`` is
  cheap. A verdict is remembered, and confirmed inside the call's transaction (the token row still
  there and unexpired), so a steady client costs one primary-key read inside its own call.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

from ..core import audit
from ..core.application import Application, ClientRecord
from ..core.authentication import CacheState
from ..core.credential_cache import CredentialCache
from ..core.passwords import PasswordHasher
from ..store.database import Database
from .caller import Caller
from .login import Request
from .oauth import OAuthTokens


@dataclass(frozen=True)
class ClientCredentials:
    """An OAuth2 client's id and secret. The secret is never shown."""

    client_id: str
    client_secret: str = field(repr=False)

    @property
    def claimed(self) -> str:
        """Whom the throttle and the audit of a refusal count: the client id (public)."""
        return f"client_id:{self.client_id}"

    @property
    def cache_name(self) -> str:
        """The name its credential-cache entry is kept under."""
        return "\x00client\x00" + self.client_id  # never equal to a username's entry


@dataclass(frozen=True)
class BearerCredentials:
    """An access token (``Authorization: Bearer``). Never shown."""

    token: str = field(repr=False)

    @property
    def claimed(self) -> str:
        """For the throttle and the audit: a short prefix of the token's SHA-256, never the token."""
        return "token:" + hashlib.sha256(self.token.encode("utf-8")).hexdigest()[:12]


class ClientLogins:
    """:class:`~.login.Verifier` of :class:`ClientCredentials`."""

    hashes = True

    def __init__(self, db: Database, hasher: PasswordHasher, cache: CredentialCache,
                 record: Callable[[audit.AuditEvent], None]):
        self._db = db
        self._hasher = hasher
        self._cache = cache
        self._record = record

    def key(self, credentials: ClientCredentials) -> bytes:
        return self._cache.fingerprint(credentials.cache_name, credentials.client_secret)

    def state(self, credentials: ClientCredentials) -> CacheState:
        hit = self._cache.get(credentials.cache_name, credentials.client_secret)
        if hit is None or hit.principal is None:
            return CacheState.MISSING
        return CacheState.RENEWAL_DUE if self._cache.renewal_due(hit) else CacheState.CACHED

    def cached(self, credentials: ClientCredentials, request: Request) -> Caller | None:
        hit = self._cache.get(credentials.cache_name, credentials.client_secret)
        if hit is None or hit.principal is None:
            return None

        def confirm(transaction) -> bool:
            stored = transaction.oauth.get_client(hit.user_id)
            return (stored is not None and hmac.compare_digest(stored.secret_hash, hit.password_hash)
                    and stored.application() == hit.principal)

        return Caller(hit.principal, request.request_id, request.source, confirm=confirm)

    def find(self, credentials: ClientCredentials) -> ClientRecord | None:
        """Blocking (database, one read): the client row; None: no such client."""
        with self._db.transaction(read_only=True) as transaction:
            return transaction.oauth.find_client(credentials.client_id)

    def check(self, credentials: ClientCredentials, found: ClientRecord | None) -> Application | None:
        """CPU only (Argon2): the application if the secret is right (then remembered), else None. An
        unknown client costs the same hashing."""
        if found is None:
            self._hasher.verify_decoy(credentials.client_secret)
            return None
        if not self._hasher.verify(found.secret_hash, credentials.client_secret):
            return None
        application = found.application()
        self._cache.put(credentials.cache_name, credentials.client_secret, found.id, found.secret_hash,
                        principal=application)
        return application

    def refuse(self, credentials: ClientCredentials, request: Request) -> None:
        self._record(_refusal(credentials, request))

    def forget(self, credentials: ClientCredentials) -> None:
        self._cache.discard(credentials.cache_name, credentials.client_secret)


class BearerLogins:
    """:class:`~.login.Verifier` of :class:`BearerCredentials`. Verdicts are remembered for at most
    ``ttl`` seconds (and never past the token's expiry), keyed by the token's SHA-256."""

    hashes = False

    def __init__(self, tokens: OAuthTokens, record: Callable[[audit.AuditEvent], None], *, ttl: float = 60.0,
                 max_entries: int = 10_000, clock: Callable[[], float] = time.time):
        self._tokens = tokens
        self._record = record
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Application, float]] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, credentials: BearerCredentials) -> bytes:
        return hashlib.sha256(credentials.token.encode("utf-8")).digest()

    def state(self, credentials: BearerCredentials) -> CacheState:
        return CacheState.MISSING if self._get(credentials) is None else CacheState.CACHED

    def cached(self, credentials: BearerCredentials, request: Request) -> Caller | None:
        application = self._get(credentials)
        if application is None:
            return None
        tokens = self._tokens
        return Caller(application, request.request_id, request.source,
                      confirm=lambda transaction: tokens.alive(transaction, credentials.token))

    def find(self, credentials: BearerCredentials) -> tuple[Application, float] | None:
        """Blocking (database, one indexed read)."""
        return self._tokens.find(credentials.token)

    def check(self, credentials: BearerCredentials, found: tuple[Application, float] | None) -> Application | None:
        """Cheap: the lookup was the check. A live token's application is remembered."""
        if found is None:
            return None
        application, expires_at = found
        until = min(expires_at, self._clock() + self._ttl)
        with self._lock:
            self._entries[self.key(credentials)] = (application, until)
            self._entries.move_to_end(self.key(credentials))
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return application

    def refuse(self, credentials: BearerCredentials, request: Request) -> None:
        self._record(_refusal(credentials, request))

    def forget(self, credentials: BearerCredentials) -> None:
        with self._lock:
            self._entries.pop(self.key(credentials), None)

    def _get(self, credentials: BearerCredentials) -> Application | None:
        key = self.key(credentials)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= self._clock():
                del self._entries[key]
                return None
            return entry[0]


def _refusal(credentials, request: Request) -> audit.AuditEvent:
    return audit.AuditEvent(request_id=request.request_id, source=request.source, caller=credentials.claimed,
                            operation=request.operation, target=None, tenant=None, outcome=audit.AUTH_FAILED)
