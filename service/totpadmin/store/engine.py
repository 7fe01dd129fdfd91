"""The SQLAlchemy engine of a database URL, SQLite's settings on its connections, and what a driver's
error means to the rest of the service."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, NoSuchModuleError, OperationalError

from ..config.errors import ConfigError
from ..core.errors import StoreUnavailable

READ_ONLY = "totpadmin_read_only"  # execution option of a read-only transaction's connection

# Errors of a database that cannot be reached or used right now (StoreUnavailable), as opposed to one
# that refused a statement (a constraint, a bug).
UNREACHABLE = (OperationalError, InterfaceError)


def make_engine(url: str, *, pool_size: int = 8) -> Engine:
    """An engine for ``url``; :class:`ConfigError` if SQLAlchemy cannot use the URL at all."""
    try:
        parsed = make_url(url)
        parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError("--database-url / TOTP_DATABASE_URL", "database URL", masked_url(url),
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


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite engine's database; None for another database, an in-memory one or a
    ``file:`` URI."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def masked_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparsable URL)"


def reason(exc: Exception) -> str:
    """The driver's reason in one line, without the SQL or SQLAlchemy's boilerplate."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


def unavailable(exc: Exception) -> StoreUnavailable:
    """The :class:`StoreUnavailable` that ``exc`` (a lost or refused connection) means to a caller."""
    return StoreUnavailable(reason(exc))


def write_refused(exc: DBAPIError) -> bool:
    """Whether the database refused a write because the transaction is read-only."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == 8 or "readonly database" in str(orig)  # SQLITE_READONLY
    return getattr(orig, "sqlstate", None) == "25006"  # PostgreSQL: read_only_sql_transaction


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let the "begin" listener issue BEGIN
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # WAL with synchronous=NORMAL: a commit survives a crash of the process; only a power loss or kernel
    # crash in the moments after a commit can undo it (FULL pays an fsync per commit for that). What
    # could be lost then is the last replay steps, failure counts and audit rows; a TOTP code has expired
    # by the time the machine is back. After a transaction that changes secrets or recovery codes the log
    # is synced (Transaction.make_durable, durability.py), and with it everything committed before.
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


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
