"""On SQLite, the audit rows of read-only calls go to a file of the serving process's own.

A call that only reads (an initTOTP of an enrolled user, isTOTPEnabled, retrieveSecretKey) still leaves
an audit row. Stored in the database file itself, every such row changed that file, and with
``--workers`` each change emptied the other workers' SQLite page caches (WAL: a reader that sees a new
commit drops its whole cache) and made them queue for the one writer lock: two workers served 1.5x one,
against 1.8x for two servers that share nothing. So each serving process claims a slot,
``totp-admin-audit-<n>.db`` beside ``totp-admin.db``, and stores the rows of its read-only calls there;
read-only calls then change nothing the processes share.

Rows of calls that change state stay in the database's ``audit_events``, in the transaction of the
change. A slot is held with ``flock`` on ``<slot file>-lock`` for the life of the process, so that two
processes never write one file and a restarted server reuses the slots of the ones before (the number
of files stays the most processes that ever served at once). ``totp-admin audit`` reads the database
and every slot file (:func:`find`). PostgreSQL keeps one table: its writers do not share a cache.

A slot file has the table ``audit_events`` as the database does, indexed by time only
(:data:`UNINDEXED_COLUMNS`), and ``PRAGMA user_version`` :data:`VERSION`; a migration that changes
``audit_events`` must change these files too.
"""

from __future__ import annotations

import fcntl
import heapq
import os
import re
import sqlite3
from itertools import islice
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from ..core.audit import AuditEvent
from ..core.errors import StoreUnavailable
from . import audit
from .engine import make_engine
from .models import AuditRecord
from .schema import SchemaOutdated
from .statements import CompiledStatements
from .transaction import begin

VERSION = 1

# Columns whose indexes the slot files do without. Every row of a round dirtied a page of each index,
# of the one on target at random: a round of five rows appended ~12 pages to the file's WAL, and with
# the index on time alone ~3, with a quarter of the checkpoints (fsyncs). A worker with five calls in
# flight spends a few percent less CPU per call.
# ``totp-admin audit --user/--tenant`` then reads a slot file from its newest row (the index on ``at``)
# until it has --limit matches. Files made before (same VERSION) lose these indexes when next claimed.
UNINDEXED_COLUMNS = frozenset({"caller", "target", "tenant"})


def slot_path(database: Path, slot: int) -> Path:
    """The slot file ``slot`` of the SQLite database file ``database``."""
    return database.with_name(f"{database.stem}-audit-{slot}.db")


def slot_paths(database: Path) -> list[Path]:
    """The slot files of ``database`` that exist, by slot number."""
    name = re.compile(re.escape(database.stem) + r"-audit-(0|[1-9][0-9]*)\.db")
    found = [(int(m.group(1)), p) for p in database.parent.glob(f"{database.stem}-audit-*.db")
             if (m := name.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def _engine(path: Path) -> Engine:
    return make_engine(f"sqlite:///{path}")


class AuditFile:
    """The slot file this process claimed: where the rows of its read-only calls go."""

    def __init__(self, path: Path, lock_fd: int, engine: Engine):
        self.path = path
        self._lock_fd = lock_fd
        self._engine = engine
        self._statements = CompiledStatements(engine.dialect)
        self._connection = None  # the pool's connection, held from the first round on (add_events)

    @classmethod
    def claim(cls, database: Path) -> AuditFile:
        """The first free slot of the SQLite file ``database``, created if new; :class:`StoreUnavailable`
        if no slot file can be made, :class:`SchemaOutdated` if a newer totp-admin wrote it."""
        slot = 0
        while True:
            path = slot_path(database, slot)
            try:
                fd = os.open(f"{path}-lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise StoreUnavailable(f"cannot create {path}-lock: {exc.strerror}") from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another process serves with this slot
                os.close(fd)
                slot += 1
                continue
            try:
                engine = _engine(path)
            except BaseException:
                os.close(fd)
                raise
            claimed = cls(path, fd, engine)
            try:
                _prepare(engine, path)
            except BaseException:
                claimed.close()
                raise
            return claimed

    def add_events(self, events: list[AuditEvent]) -> None:
        """Store ``events`` in one transaction; :class:`StoreUnavailable` if nothing was written.

        One ``executemany`` on a driver connection held for the process's life. Only this process writes
        the file (its slot), so the database's writer lock and a :class:`Transaction` (pool checkout,
        execution layer) would buy nothing here; through them a round cost ~140 µs and ~26 µs per row, a
        sixth of a read-only call's CPU at five concurrent calls.
        """
        try:
            if self._connection is None:
                self._connection = self._engine.raw_connection()
            driver = self._connection.dbapi_connection
            driver.execute("BEGIN IMMEDIATE").close()
            try:
                self._statements.change_many(driver, audit.INSERT, [audit.insert_params(e) for e in events])
                driver.execute("COMMIT").close()
            except BaseException:
                _roll_back(driver)
                raise
        except (sqlite3.Error, DBAPIError) as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreUnavailable(f"{self.path}: {cause}") from exc

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the slot
            self._lock_fd = None


def _roll_back(driver) -> None:
    try:
        driver.execute("ROLLBACK").close()
    except sqlite3.Error:  # no transaction left open (SQLite ended it), or the file is gone: nothing written
        pass


def _prepare(engine: Engine, path: Path) -> None:
    try:
        with engine.begin() as conn:
            version = _version(conn, path)
            AuditRecord.__table__.create(conn, checkfirst=True)
            for index in AuditRecord.__table__.indexes:
                if {column.name for column in index.columns} <= UNINDEXED_COLUMNS:
                    conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{index.name}"')
            if version < VERSION:
                conn.exec_driver_sql(f"PRAGMA user_version = {VERSION}")
    except OperationalError as exc:
        raise StoreUnavailable(f"{path}: {exc.orig}") from exc


def _version(conn, path: Path) -> int:
    """The file's version; :class:`SchemaOutdated` if a newer totp-admin wrote it."""
    version = conn.exec_driver_sql("PRAGMA user_version").scalar()
    if version > VERSION:
        raise SchemaOutdated(f"{path} was written by a newer totp-admin (audit file version {version}, "
                             f"this one knows {VERSION}); upgrade totp-admin")
    return version


def find(database: Path, *, limit: int, **filters) -> list[list[AuditRecord]]:
    """For each audit file of ``database``: its rows that match ``filters`` (see AuditRepository.find),
    newest first, at most ``limit``."""
    found = []
    for path in slot_paths(database):
        engine = _engine(path)
        try:
            with begin(engine, CompiledStatements(engine.dialect), read_only=True) as transaction:
                if _version(transaction.connection, path) == 0:
                    continue  # claimed, not yet prepared
                found.append(transaction.audit.find(limit=limit, **filters))
        finally:
            engine.dispose()
    return found


def newest_first(lists: list[list[AuditRecord]], limit: int) -> list[AuditRecord]:
    """Lists of rows, each newest first, merged: newest first (by time, then id), at most ``limit``."""
    return list(islice(heapq.merge(*lists, key=lambda r: (r.at, r.id), reverse=True), limit))
