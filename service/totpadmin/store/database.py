"""The engine, the schema and transactions."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from ..config.errors import ConfigError
from ..core.audit import AuditEvent
from ..core.errors import StoreUnavailable
from ..core.usernames import SUPER_TENANT
from ..core.secretbox import SecretBox
from .accounts import AccountRepository
from .audit import AuditRepository
from . import schema
from .models import Claim
from .users import UserRepository


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``url``; :class:`ConfigError` if SQLAlchemy cannot use the URL at all."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError("--database-url / TOTP_DATABASE_URL", "database URL", _masked(url),
                          f"not a usable SQLAlchemy URL ({type(exc).__name__})") from None
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, pool_size=pool_size, max_overflow=0,
                               connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own BEGIN handling defers locking; take the write lock at BEGIN so concurrent
        # read-modify-write transactions serialise instead of failing at COMMIT.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)


def _masked(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparsable URL)"


def _cause(exc: Exception) -> str:
    """The driver's reason in one line, without the SQL or SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener issue BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class Unit:
    """The repositories of one transaction."""

    def __init__(self, session: Session, box: SecretBox | None):
        self.session = session
        self.users = UserRepository(session)
        self.audit = AuditRepository(session)
        self._box = box

    @property
    def accounts(self) -> AccountRepository:
        """Accounts; without a key ring (management commands) their encrypted claims cannot be read."""
        return AccountRepository(self.session, self._box)


class Database:
    def __init__(self, url: str, *, box: SecretBox | None = None, pool_size: int = 8):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.box = box

    def create_schema(self, *, upgrade: bool = False) -> None:
        """Make the schema ready: an empty database gets all of it; an older one is upgraded when
        ``upgrade`` is set and raises :class:`SchemaOutdated` otherwise. Then the super tenant exists."""
        try:
            if upgrade or schema.is_empty(self.engine):
                schema.upgrade(self.engine)
            else:
                schema.check(self.engine)
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailable(_cause(exc)) from exc
        with self.transaction() as unit:
            unit.users.ensure_tenant(SUPER_TENANT)

    @contextmanager
    def transaction(self) -> Iterator[Unit]:
        """One transaction: committed if the block returns, rolled back if it raises.

        A lost or refused connection surfaces as :class:`StoreUnavailable`, with nothing written.
        """
        try:
            with self._sessions.begin() as session:
                yield Unit(session, self.box)
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailable(_cause(exc)) from exc

    def add_audit_event(self, event: AuditEvent) -> bool:
        """Write one audit event in a transaction of its own; False (nothing written) if the database
        refused or could not be reached, so that auditing never turns a request into an error."""
        try:
            with self.transaction() as unit:
                unit.audit.add(event)
            return True
        except (StoreUnavailable, SQLAlchemyError):
            return False

    def ping(self) -> None:
        """One round trip to the database; :class:`StoreUnavailable` if it does not answer."""
        with self.transaction() as unit:
            unit.session.execute(select(1))

    def key_ids_in_use(self) -> set[str]:
        """Ids of the keys that sealed stored values."""
        with self.transaction() as unit:
            return set(unit.session.scalars(select(Claim.key_id).where(Claim.key_id.is_not(None)).distinct()))

    def dispose(self) -> None:
        self.engine.dispose()
