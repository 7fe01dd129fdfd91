"""OAuth2 client credentials as plain calls: issuing an access token to an authenticated client (one
transaction, audited as ``oauth2.token``), finding the application a token stands for, and managing
clients (the CLI). Why opaque tokens hashed in the database: docs/oauth2.md."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Callable

from ..core import audit
from ..core.application import (REQUIRED, SCOPES, TOTP_POLICIES, Application, ClientRecord, parse_scopes,
                                scope_text, token_digest)
from ..core.audit import AuditEvent
from ..core.errors import NotAuthorized, ScopeRefused, TotpAdminError
from ..core.passwords import PasswordHasher
from ..core.usernames import tenant_domain
from ..store.database import Database
from .audit_log import log_event
from .audit_trail import AuditTrail, ImmediateAuditTrail
from .caller import Caller, LoginChanged

TOKEN_OPERATION = "oauth2.token"  # the audit's name of a token request


@dataclass(frozen=True)
class IssuedToken:
    access_token: str = field(repr=False)
    expires_in: int  # seconds
    scope: str  # space separated


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str = field(repr=False)  # shown once, stored only as its Argon2 hash


class OAuthTokens:
    """Built once at start, shared by every request (thread-safe)."""

    def __init__(self, db: Database, lifetime: int, audit_trail: AuditTrail | None = None,
                 observe: Callable[[AuditEvent], None] = lambda event: None, clock: Callable[[], float] = time.time):
        self._db = db
        self._lifetime = lifetime
        self._trail = audit_trail if audit_trail is not None else ImmediateAuditTrail(db)
        self._observe = observe
        self._clock = clock

    def issue(self, caller: Caller, scope: str | None) -> IssuedToken:
        """A new token for the authenticated client ``caller``, with the scopes it asks for (all it was
        granted when ``scope`` is absent or empty); :class:`ScopeRefused` for one it was not granted."""
        application = caller.principal
        try:
            if not isinstance(application, Application):
                raise NotAuthorized()
            asked = parse_scopes(scope)
            if asked is None or not asked <= application.scopes:
                raise ScopeRefused()
            scopes = asked or application.scopes
            token = secrets.token_urlsafe(32)
            with self._db.transaction() as transaction:
                if caller.confirm is not None and not caller.confirm(transaction):
                    raise LoginChanged()
                now = self._clock()
                transaction.oauth.add_token(application.client_row, token_digest(token), scope_text(scopes),
                                            now + self._lifetime, now)
                event = self._event(caller, audit.SUCCESS)
                self._trail.add(transaction, event)
        except TotpAdminError as err:
            self.audit_alone(self._event(caller, audit.FAULT, type(err).__name__))
            raise
        log_event(event)
        self._observe(event)
        return IssuedToken(token, self._lifetime, scope_text(scopes))

    def find(self, token: str) -> tuple[Application, float] | None:
        """Blocking (one indexed read): the application a live token stands for, with the token's
        scopes, and when it expires (epoch seconds); None if unknown, expired or its client removed."""
        with self._db.transaction(read_only=True) as transaction:
            found = transaction.oauth.find_token(token_digest(token), self._clock())
        if found is None:
            return None
        client, scopes, expires_at = found
        return client.application(scopes), expires_at

    def alive(self, transaction, token: str) -> bool:
        """In the call's own transaction: whether the token is still stored and unexpired."""
        return transaction.oauth.token_alive(token_digest(token), self._clock())

    def audit_alone(self, event: AuditEvent) -> None:
        """An event outside a call's transaction (a refusal): log line, metrics, its own row."""
        log_event(event)
        self._observe(event)
        self._trail.add_alone(event)

    @staticmethod
    def _event(caller: Caller, outcome: str, detail: str = "") -> AuditEvent:
        principal = caller.principal
        return AuditEvent(request_id=caller.request_id, source=caller.source, caller=principal.audit_name,
                          operation=TOKEN_OPERATION, target=None,
                          tenant=principal.tenant if isinstance(principal, Application) else None,
                          outcome=outcome, detail=detail)


class OAuthClients:
    """Client management (``totp-admin client ...``): each call one transaction."""

    def __init__(self, db: Database, hasher: PasswordHasher):
        self._db = db
        self._hasher = hasher

    def add(self, name: str, tenant: str, scopes: list[str] | None = None, totp_policy: str = REQUIRED) -> NewClient:
        """A new client with every known scope unless ``scopes`` says otherwise; its id and secret."""
        granted = parse_scopes(" ".join(scopes)) if scopes else frozenset(SCOPES)
        if not granted:
            raise ScopeRefused()
        if totp_policy not in TOTP_POLICIES:
            raise ValueError(f"totp_policy must be one of {', '.join(TOTP_POLICIES)}")
        name = _client_name(name)
        new = NewClient(secrets.token_urlsafe(16), secrets.token_urlsafe(32))
        secret_hash = self._hasher.hash(new.client_secret)  # before the transaction: Argon2 is slow
        with self._db.transaction() as transaction:
            transaction.oauth.add_client(tenant_domain(tenant), name, new.client_id, secret_hash,
                                         scope_text(granted), totp_policy)
        return new

    def list(self, tenant: str | None = None) -> list[ClientRecord]:
        with self._db.transaction(read_only=True) as transaction:
            return transaction.oauth.clients(tenant_domain(tenant) if tenant else None)

    def remove(self, name: str, tenant: str) -> None:
        """Remove the client; its tokens die at once."""
        with self._db.transaction() as transaction:
            transaction.oauth.remove_client(tenant_domain(tenant), name)

    def rotate_secret(self, name: str, tenant: str) -> str:
        """A new secret (returned, shown once); the old one and every token issued under it die."""
        secret = secrets.token_urlsafe(32)
        secret_hash = self._hasher.hash(secret)
        with self._db.transaction() as transaction:
            transaction.oauth.set_secret(tenant_domain(tenant), name, secret_hash)
        return secret


def _client_name(name: str) -> str:
    """A client's name: printable, no spaces, at most 64 characters (it appears in the audit)."""
    if not name or len(name) > 64 or not all(c.isprintable() and not c.isspace() for c in name):
        raise InvalidClientName(name)
    return name


class InvalidClientName(TotpAdminError):
    def __init__(self, name: str):
        super().__init__(f"{name!r} is not a valid client name (1-64 printable characters, no spaces)")
