"""The engine, the schema and transactions."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError,
                            SQLAlchemyError)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from ..config.errors import ConfigError
from ..core.audit import AuditEvent
from ..core.errors import StoreUnavailable
from ..core.usernames import SUPER_TENANT
from ..core.secretbox import SecretBox
from .accounts import AccountRepository
from .audit import AuditRepository
from . import schema
from .models import AuditRecord, Claim
from .raw import RawStatements
from . import read_audit
from .users import UserRepository
from . import writer_lock
from .writer_lock import WriterLock


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``url``; :class:`ConfigError` if SQLAlchemy cannot use the URL at all."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError("--database-url / TOTP_DATABASE_URL", "database URL", _masked(url),
                          f"not a usable SQLAlchemy URL ({type(exc).__name__})") from None
    if parsed.get_backend_name() == "sqlite":
        # One connection per process: SQLite has one writer anyway, and threads queueing for the pool
        # (first come, first served) beat threads sleeping in SQLite's busy handler (1, 2, 5 … 100 ms
        # naps, unfair: p99 1.4 s at 10 concurrent requests with 8 connections, 60 ms with one).
        engine = create_engine(url, pool_size=1, max_overflow=0,
                               connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)


def _sqlite_file(database: str | None) -> Path | None:
    """The file of a SQLite URL's database; None for an in-memory one (or a ``file:`` URI)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


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
    # WAL with synchronous=NORMAL: a commit survives a crash of the process; only a power loss or kernel
    # crash in the moments after a commit can undo it (FULL pays an fsync per commit for that). What
    # could be lost then is the last replay steps, failure counts and audit rows; a TOTP code has expired
    # by the time the machine is back. After a transaction that changes secrets or recovery codes the log
    # is synced (Unit.make_durable), and with it everything committed before.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


READ_ONLY = "totpadmin_read_only"  # execution option of a read-only transaction's connection


class WriteNeeded(Exception):
    """A read-only transaction tried to write; it was rolled back with nothing written."""


def _sqlite_begin(conn: Connection) -> None:
    # pysqlite's own BEGIN handling defers locking; take the write lock at BEGIN so concurrent
    # read-modify-write transactions serialise instead of failing at COMMIT. Reads need no lock, and
    # query_only makes SQLite refuse their writes (WriteNeeded) rather than take its lock unqueued.
    # On the driver's connection: a statement through SQLAlchemy costs ~30 µs of CPU, inside the write lock.
    read_only = bool(conn.get_execution_options().get(READ_ONLY))
    dbapi_conn = conn.connection.dbapi_connection
    info = conn.connection.info
    statements = [] if info.get(READ_ONLY) is read_only else [f"PRAGMA query_only={int(read_only)}"]
    statements.append("BEGIN" if read_only else "BEGIN IMMEDIATE")
    for sql in statements:
        try:
            dbapi_conn.execute(sql).close()
        except sqlite3.Error as exc:  # as SQLAlchemy would have wrapped it (a busy or unreadable database)
            raise OperationalError(sql, None, exc) from exc
    info[READ_ONLY] = read_only


def _write_refused(exc: DBAPIError) -> bool:
    """Whether the database refused a write because the transaction is read-only."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == 8 or "readonly database" in str(orig)  # SQLITE_READONLY
    return getattr(orig, "sqlstate", None) == "25006"  # PostgreSQL: read_only_sql_transaction


class Unit:
    """The repositories of one transaction.

    The request path (accounts, logins, audit records) runs statements built with SQLAlchemy Core on the
    transaction's driver connection (:meth:`fetch`, :meth:`change`, see :mod:`.raw`); management commands
    also use an ORM session joined to the same transaction, made on first use.
    """

    def __init__(self, connection: Connection, box: SecretBox | None, raw: RawStatements):
        self._connection = connection
        self._raw = raw
        self._session: Session | None = None
        self._box = box
        self.durable = False
        self.users = UserRepository(self)
        self.audit = AuditRepository(self)

    @property
    def connection(self) -> Connection:
        """The transaction's connection, with the session's pending changes written first."""
        if self._session is not None:
            self._session.flush()
        return self._connection

    def fetch(self, statement, params: dict) -> list[tuple]:
        """Rows of a request-path SELECT, run on the driver's cursor (see :mod:`.raw`)."""
        return self._raw.fetch(self.connection, statement, params)

    def change(self, statement, params: dict) -> int:
        """Run a request-path INSERT, UPDATE or DELETE on the driver's cursor; rows matched."""
        return self._raw.change(self.connection, statement, params)

    @property
    def session(self) -> Session:
        if self._session is None:
            # Joins the transaction and never commits it (SQLAlchemy's default for a connection that is
            # already in one): Database.transaction does.
            self._session = Session(bind=self._connection, expire_on_commit=False)
        return self._session

    def make_durable(self) -> None:
        """Have this transaction on disk before it returns: for changes that must survive a power loss
        (secrets, recovery codes). SQLite otherwise commits with synchronous=NORMAL (its safety level
        cannot change inside a transaction); other databases sync every commit anyway."""
        self.durable = True

    @property
    def accounts(self) -> AccountRepository:
        """Accounts; without a key ring (management commands) their encrypted claims cannot be read."""
        return AccountRepository(self, self._box)

    def _finish(self, committing: bool) -> None:
        if self._session is not None:
            try:
                if committing:
                    self._session.flush()
            finally:
                self._session.close()


class Database:
    def __init__(self, url: str, *, box: SecretBox | None = None, pool_size: int = 8):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.box = box
        self._raw = RawStatements(self.engine.dialect)
        self._file = _sqlite_file(self.engine.url.database) if self.engine.dialect.name == "sqlite" else None
        self._writer_lock: WriterLock | None = writer_lock.beside(self._file) if self._file else None
        self._read_audit: read_audit.ReadAudit | None = None

    @property
    def single_writer(self) -> bool:
        """Whether writers take turns on the whole database (SQLite), so that fewer, larger write
        transactions pay off (see server/database_rounds.py)."""
        return self.engine.dialect.name == "sqlite"

    @property
    def threads(self) -> int:
        """How many threads can use the store at once to any gain: SQLite's one connection per process
        serialises its users, and threads queued on it only contend for the GIL (measured: 8 threads
        spent ~1.5x the CPU per request of 1); PostgreSQL's pool serves one thread per connection."""
        return 1 if self.engine.dialect.name == "sqlite" else self.engine.pool.size()

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
    def transaction(self, *, read_only: bool = False) -> Iterator[Unit]:
        """One transaction: committed if the block returns, rolled back if it raises.

        ``read_only``: the block only reads (SQLite: no write lock is taken); a write in it raises
        :class:`WriteNeeded`. A lost or refused connection surfaces as :class:`StoreUnavailable`, with
        nothing written.
        """
        lock = self._writer_lock if self._writer_lock is not None and not read_only else None
        try:
            # The lock before the connection: with one pooled connection per process, a writer holding it
            # while waiting for another process's lock would stall this process's reads (logins, /ready).
            with lock.held() if lock is not None else nullcontext(), self.engine.connect() as conn:
                if read_only:
                    conn.execution_options(**{READ_ONLY: True, "postgresql_readonly": True})
                unit = Unit(conn, self.box, self._raw)
                with conn.begin():
                    committed = False
                    try:
                        yield unit
                        committed = True
                    finally:
                        unit._finish(committed)
                if unit.durable and conn.dialect.name == "sqlite":
                    self._sync_wal()
        except DBAPIError as exc:
            if read_only and _write_refused(exc):
                raise WriteNeeded() from exc
            if isinstance(exc, (OperationalError, InterfaceError)):
                raise StoreUnavailable(_cause(exc)) from exc
            raise

    def _sync_wal(self) -> None:
        """What synchronous=FULL does at commit: the write-ahead log, holding the commit, to disk. (SQLite
        cannot change its safety level inside a transaction, and a checkpoint skips the sync when a
        reader pins the log.)"""
        database = self.engine.url.database
        if not database or database == ":memory:":
            return
        try:
            fd = os.open(f"{database}-wal", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return  # no log: the commit went to the database file itself
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def add_audit_events(self, events: list[AuditEvent]) -> None:
        """Write audit events in one transaction; :class:`StoreUnavailable` if it failed (nothing written)."""
        try:
            with self.transaction() as unit:
                for event in events:
                    unit.audit.add(event)
        except SQLAlchemyError as exc:  # e.g. a constraint the database enforces: nothing was written
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

    def claim_read_audit(self) -> read_audit.ReadAudit | None:
        """A SQLite file's audit file for this process's read-only calls (see read_audit.py), held
        until :meth:`dispose`; None where they go to ``audit_events`` (PostgreSQL, in-memory SQLite)."""
        if self._read_audit is None and self._file is not None:
            self._read_audit = read_audit.ReadAudit.claim(self._file, Database)
        return self._read_audit

    def find_audit(self, *, limit: int = 100, **filters) -> list[AuditRecord]:
        """Audit events, newest first, from ``audit_events`` and on SQLite every read-only calls'
        file (see read_audit.py); ``filters`` as AuditRepository.find."""
        with self.transaction(read_only=True) as unit:
            newest = unit.audit.find(limit=limit, **filters)
        if self._file is None:
            return newest
        in_files = read_audit.find(self._file, Database, limit=limit, **filters)
        return read_audit.newest_first([newest, *in_files], limit)

    def ping(self) -> None:
        """One round trip to the database; :class:`StoreUnavailable` if it does not answer."""
        with self.transaction(read_only=True) as unit:
            unit.connection.execute(select(1))

    def key_ids_in_use(self) -> set[str]:
        """Ids of the keys that sealed stored values."""
        with self.transaction(read_only=True) as unit:
            return set(unit.connection.scalars(select(Claim.key_id).where(Claim.key_id.is_not(None)).distinct()))

    def dispose(self) -> None:
        if self._read_audit is not None:
            self._read_audit.close()
            self._read_audit = None
        self.engine.dispose()
        if self._writer_lock is not None:
            self._writer_lock.close()
