"""Tables. Claims are kept per user under their WSO2 claim URI; sensitive values only encrypted."""

from __future__ import annotations

import uuid as uuid_module
from datetime import datetime, timezone

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def _now() -> datetime:
    """Naive UTC: stored the same way on SQLite and PostgreSQL (TIMESTAMP WITHOUT TIME ZONE)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=_now)


class User(Base):
    __tablename__ = "users"
    # AUTOINCREMENT: SQLite never hands a removed user's id to a new one.
    __table_args__ = (UniqueConstraint("tenant_id", "username"), Index("uq_users_uuid", "uuid", unique=True),
                      Index("uq_users_tenant_id_username_key", "tenant_id", "username_key", unique=True),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The user's stable public id (the self-service APIs' identity id; a migrated user keeps WSO2's).
    # NULL-able only in the schema (added to existing tables, backfilled by migration 0005): every row has one.
    uuid: Mapped[str | None] = mapped_column(String(36), default=lambda: str(uuid_module.uuid4()))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(255))
    # The name's PRECIS UsernameCaseMapped form (core/precis_usernames.py): no two users of a tenant
    # differ only in case or width. NULL for a name an older version stored that PRECIS refuses.
    username_key: Mapped[str | None] = mapped_column(String(255))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=_now)

    tenant: Mapped[Tenant] = relationship(lazy="joined")


class Claim(Base):
    __tablename__ = "claims"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    uri: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    # Id of the key that sealed ``value``; NULL for claims stored in clear (not sensitive).
    key_id: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=_now, onupdate=_now)


class TotpState(Base):
    """Verification bookkeeping per user (core.lockout.GuardState). One row, created on first need."""

    __tablename__ = "totp_state"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # Newest accepted time step; a code of this step or an older one is a replay.
    last_step: Mapped[int | None] = mapped_column(BigInteger)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[float | None] = mapped_column(Float)  # epoch seconds
    pending_expires_at: Mapped[float | None] = mapped_column(Float)  # epoch seconds


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    __table_args__ = (UniqueConstraint("user_id", "lookup"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    lookup: Mapped[str] = mapped_column(String(8))  # the code's first characters, not secret
    code_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=_now)


class AuditRecord(Base):
    """core.audit.AuditEvent, with the time it was recorded."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=_now, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(64))
    caller: Mapped[str] = mapped_column(String(255), index=True)
    operation: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255), index=True)
    tenant: Mapped[str | None] = mapped_column(String(255), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(255), default="")


class TotpDevice(Base):
    """A named TOTP device (authenticator app) of a user (core/devices.py). The primary device's secret and
    replay state are the legacy claims and totp_state, which the SOAP operations keep using: its row holds
    only its name and dates. Every other device's secret is sealed here, with its own replay state."""

    __tablename__ = "totp_devices"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False)  # false: pending, until a code proves the pairing
    secret: Mapped[str | None] = mapped_column(Text)  # sealed; NULL for the primary device
    key_id: Mapped[str | None] = mapped_column(String(32))
    last_step: Mapped[int | None] = mapped_column(BigInteger)  # replay state of a non-primary device
    pending_expires_at: Mapped[float | None] = mapped_column(Float)  # epoch seconds
    created_at: Mapped[datetime] = mapped_column(default=_now)
    last_used_at: Mapped[datetime | None] = mapped_column()


class DeviceChallenge(Base):
    """An authId of the device API: a device to activate or a sign-in to finish, bound to its user,
    device and application, single-use and short-lived. Only the SHA-256 of the authId is stored."""

    __tablename__ = "device_challenges"

    auth_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "activation" or "authentication"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # NULL: the primary device of an enrolment older than devices, which has no row (core/devices.py).
    device_id: Mapped[int | None] = mapped_column(ForeignKey("totp_devices.id", ondelete="CASCADE"), index=True)
    client: Mapped[str] = mapped_column(String(64))  # the application's client_id
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # epoch seconds
    # Kept after use until the user's next authId, so a second use is told "spent" (410), not "unknown".
    spent: Mapped[bool] = mapped_column(Boolean, default=False)


class UserSession(Base):
    """A sign-in session of the self-service APIs (core/sessions.py): only the token's SHA-256 is stored."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer)  # the ACR a password (1) or a second factor (2) gave it
    created_at: Mapped[float] = mapped_column(Float)  # epoch seconds
    last_seen_at: Mapped[float] = mapped_column(Float, index=True)
    totp_at: Mapped[float | None] = mapped_column(Float)  # the last TOTP code entered in it (step-up)


class OAuthClient(Base):
    """An application that gets access tokens with the client-credentials grant (docs/oauth2.md)."""

    __tablename__ = "oauth_clients"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    client_id: Mapped[str] = mapped_column(String(64), unique=True)  # public
    secret_hash: Mapped[str] = mapped_column(String(255))  # Argon2id, as user passwords
    scopes: Mapped[str] = mapped_column(Text)  # space separated
    totp_policy: Mapped[str] = mapped_column(String(16), default="required")
    created_at: Mapped[datetime] = mapped_column(default=_now)


class OAuthToken(Base):
    """An access token, kept only as its SHA-256: it dies with its client (cascade)."""

    __tablename__ = "oauth_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 hex
    client_id: Mapped[int] = mapped_column(ForeignKey("oauth_clients.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float, index=True)  # epoch seconds
