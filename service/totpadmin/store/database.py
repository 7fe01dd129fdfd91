"""A database: where its engine, schema, transactions and audit events meet.

The parts live in modules of their own: engine.py (the engine and SQLite's settings), transaction.py
(one transaction and its repositories), durability.py (syncing SQLite's log), audit_events.py and
audit_files.py (audit events outside a request's transaction), writer_lock.py (SQLite's writers queued).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import partial

from sqlalchemy import select

from ..core.audit import AuditEvent
from ..core.secretbox import SecretBox
from ..core.usernames import SUPER_TENANT
from . import schema, writer_lock
from .audit_events import AuditEvents
from .audit_files import AuditFile
from .durability import sync_wal
from .engine import UNREACHABLE, make_engine, sqlite_file, unavailable
from .models import AuditRecord, Claim
from .statements import CompiledStatements
from .transaction import Transaction, WriteNeeded, begin
from .writer_lock import WriterLock

__all__ = ["Database", "Transaction", "WriteNeeded"]


class Database:
    def __init__(self, url: str, *, box: SecretBox | None = None, pool_size: int = 8):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.box = box
        self._statements = CompiledStatements(self.engine.dialect)
        self._file = sqlite_file(self.engine)
        self._writer_lock: WriterLock | None = writer_lock.beside(self._file) if self._file else None
        self._sync = partial(sync_wal, self._file) if self._file else None
        self._audit = AuditEvents(self.transaction, self._file)

    @property
    def single_writer(self) -> bool:
        """Whether writers take turns on the whole database (SQLite), so that fewer, larger write
        transactions pay off (see server/database_calls.py)."""
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
        except UNREACHABLE as exc:
            raise unavailable(exc) from exc
        with self.transaction() as transaction:
            transaction.users.ensure_tenant(SUPER_TENANT)

    def transaction(self, *, read_only: bool = False) -> AbstractContextManager[Transaction]:
        """One transaction: committed if the block returns, rolled back if it raises.

        ``read_only``: the block only reads (SQLite: no write lock is taken); a write in it raises
        :class:`WriteNeeded`. A lost or refused connection surfaces as :class:`StoreUnavailable`, with
        nothing written. On SQLite, a transaction that asked to be durable has its log synced before
        this returns (durability.py).
        """
        return begin(self.engine, self._statements, box=self.box, read_only=read_only,
                     lock=None if read_only else self._writer_lock, after_durable_commit=self._sync)

    def add_audit_events(self, events: list[AuditEvent]) -> None:
        """Write audit events in one transaction; :class:`StoreUnavailable` if it failed (nothing written)."""
        self._audit.add_all(events)

    def add_audit_event(self, event: AuditEvent) -> bool:
        """Write one audit event in a transaction of its own; False (nothing written) if the database
        refused or could not be reached, so that auditing never turns a request into an error."""
        return self._audit.add(event)

    def claim_audit_file(self) -> AuditFile | None:
        """A SQLite file's audit file for this process's read-only calls (see audit_files.py), held
        until :meth:`dispose`; None where they go to ``audit_events`` (PostgreSQL, in-memory SQLite)."""
        return self._audit.claim_file()

    def find_audit(self, *, limit: int = 100, **filters) -> list[AuditRecord]:
        """Audit events, newest first, from ``audit_events`` and on SQLite every read-only calls'
        file (see audit_files.py); ``filters`` as AuditRepository.find."""
        return self._audit.find(limit=limit, **filters)

    def ping(self) -> None:
        """One round trip to the database; :class:`StoreUnavailable` if it does not answer."""
        with self.transaction(read_only=True) as transaction:
            transaction.connection.execute(select(1))

    def key_ids_in_use(self) -> set[str]:
        """Ids of the keys that sealed stored values."""
        with self.transaction(read_only=True) as transaction:
            return set(transaction.connection.scalars(
                select(Claim.key_id).where(Claim.key_id.is_not(None)).distinct()))

    def dispose(self) -> None:
        self._audit.close()
        self.engine.dispose()
        if self._writer_lock is not None:
            self._writer_lock.close()
