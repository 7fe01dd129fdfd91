"""OAuth2 clients and their access tokens (docs/oauth2.md). Tokens are stored only as their SHA-256
and die with their client (ON DELETE CASCADE)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError

from ..core.application import ClientRecord
from ..core.errors import ClientExists, UnknownClient, UnknownTenant
from .models import OAuthClient, OAuthToken, Tenant

if TYPE_CHECKING:
    from .statements import InTransaction

_CLIENTS = OAuthClient.__table__
_TOKENS = OAuthToken.__table__
_TENANTS = Tenant.__table__

# The request path's statements: built once, run on the driver's cursor (store/statements.py).
_CLIENT = select(_CLIENTS.c.id, _CLIENTS.c.client_id, _CLIENTS.c.name, _TENANTS.c.domain, _CLIENTS.c.scopes,
                 _CLIENTS.c.totp_policy, _CLIENTS.c.secret_hash).join(_TENANTS, _TENANTS.c.id == _CLIENTS.c.tenant_id)
_CLIENT_BY_CLIENT_ID = _CLIENT.where(_CLIENTS.c.client_id == bindparam("b_client_id"))
_CLIENT_BY_ROW = _CLIENT.where(_CLIENTS.c.id == bindparam("b_id"))
# One indexed read (the primary key) gives the token's scope and its client.
_TOKEN = (select(_TOKENS.c.scope, _TOKENS.c.expires_at, *_CLIENT.selected_columns)
          .select_from(_TOKENS.join(_CLIENTS, _CLIENTS.c.id == _TOKENS.c.client_id)
                       .join(_TENANTS, _TENANTS.c.id == _CLIENTS.c.tenant_id))
          .where(_TOKENS.c.token_hash == bindparam("b_hash"), _TOKENS.c.expires_at > bindparam("b_now")))
_TOKEN_ALIVE = select(_TOKENS.c.client_id).where(_TOKENS.c.token_hash == bindparam("b_hash"),
                                                 _TOKENS.c.expires_at > bindparam("b_now"))
_DROP_EXPIRED = delete(_TOKENS).where(_TOKENS.c.client_id == bindparam("b_client"),
                                      _TOKENS.c.expires_at <= bindparam("b_now"))
_ADD_TOKEN = insert(_TOKENS).values(token_hash=bindparam("b_hash"), client_id=bindparam("b_client"),
                                    scope=bindparam("b_scope"), expires_at=bindparam("b_expires"))


def _record(row: tuple) -> ClientRecord:
    row_id, client_id, name, tenant, scopes, policy, secret_hash = row
    return ClientRecord(row_id, client_id, name, tenant, frozenset(scopes.split()), policy, secret_hash)


class OAuthRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    # --- the request path ---

    def find_client(self, client_id: str) -> ClientRecord | None:
        rows = self._transaction.fetch(_CLIENT_BY_CLIENT_ID, {"b_client_id": client_id})
        return _record(rows[0]) if rows else None

    def get_client(self, row_id: int) -> ClientRecord | None:
        rows = self._transaction.fetch(_CLIENT_BY_ROW, {"b_id": row_id})
        return _record(rows[0]) if rows else None

    def add_token(self, client_row: int, token_hash: str, scope: str, expires_at: float, now: float) -> None:
        """Store a token; the client's expired ones go (this keeps the table small)."""
        self._transaction.change(_DROP_EXPIRED, {"b_client": client_row, "b_now": now})
        self._transaction.change(_ADD_TOKEN, {"b_hash": token_hash, "b_client": client_row, "b_scope": scope,
                                              "b_expires": expires_at})

    def find_token(self, token_hash: str, now: float) -> tuple[ClientRecord, frozenset[str], float] | None:
        """The live token's client, scopes and expiry; None if unknown or expired."""
        rows = self._transaction.fetch(_TOKEN, {"b_hash": token_hash, "b_now": now})
        if not rows:
            return None
        scope, expires_at, *client = rows[0]
        return _record(tuple(client)), frozenset(scope.split()), expires_at

    def token_alive(self, token_hash: str, now: float) -> bool:
        return bool(self._transaction.fetch(_TOKEN_ALIVE, {"b_hash": token_hash, "b_now": now}))

    # --- management (the CLI) ---

    def add_client(self, tenant: str, name: str, client_id: str, secret_hash: str, scopes: str, policy: str) -> None:
        session = self._transaction.session
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.domain == tenant))
        if tenant_id is None:
            raise UnknownTenant(tenant)
        if self._client(tenant, name) is not None:
            raise ClientExists(name, tenant)
        session.add(OAuthClient(tenant_id=tenant_id, name=name, client_id=client_id, secret_hash=secret_hash,
                                scopes=scopes, totp_policy=policy))
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # added by another transaction since the check
            raise ClientExists(name, tenant) from None

    def clients(self, tenant: str | None = None) -> list[ClientRecord]:
        query = _CLIENT.order_by(_TENANTS.c.domain, _CLIENTS.c.name)
        if tenant is not None:
            query = query.where(_TENANTS.c.domain == tenant)
        return [_record(tuple(row)) for row in self._transaction.connection.execute(query)]

    def remove_client(self, tenant: str, name: str) -> None:
        """Remove the client; its tokens go with it (cascade)."""
        self._transaction.session.delete(self._require(tenant, name))

    def set_secret(self, tenant: str, name: str, secret_hash: str) -> None:
        """A new secret: the old one stops working and the tokens issued under it die."""
        client = self._require(tenant, name)
        client.secret_hash = secret_hash
        self._transaction.connection.execute(delete(_TOKENS).where(_TOKENS.c.client_id == client.id))

    def _client(self, tenant: str, name: str) -> OAuthClient | None:
        return self._transaction.session.scalar(
            select(OAuthClient).join(Tenant).where(Tenant.domain == tenant, OAuthClient.name == name))

    def _require(self, tenant: str, name: str) -> OAuthClient:
        client = self._client(tenant, name)
        if client is None:
            raise UnknownClient(name, tenant)
        return client
