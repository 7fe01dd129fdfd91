"""Where the audit rows of calls go, chosen once at start: the same interface whether each row is stored
in its call's own transaction (:class:`ImmediateAuditTrail`) or rows are stored many at a time
(:class:`BatchedAuditTrail`).

Why batch: on SQLite writers take turns on the whole database, so a call that only reads (an initTOTP
of an enrolled user, isTOTPEnabled, retrieveSecretKey) would become a writer, waiting for the write
lock, just for its audit row. With the batched trail such a call runs in a read-only transaction and
leaves its row behind; the server stores the rows left by many calls in one transaction and answers
those calls only once their rows are stored (server/database_calls.py). On PostgreSQL, whose
connections commit side by side, each row goes into its call's transaction.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Callable

from ..core.audit import AuditEvent
from .audit_log import log_event, log_fields

if TYPE_CHECKING:
    from ..store.database import Database
    from ..store.transaction import Transaction

log = logging.getLogger("totpadmin.audit")


class AuditTrail(ABC):
    """Where audit rows go. ``reads_first``: whether an operation that mostly reads runs in a read-only
    transaction first, handing its row to :meth:`leave` (else every row goes through :meth:`add`)."""

    reads_first = False

    def __init__(self, db: Database | None):
        self._db = db

    def add(self, transaction: Transaction, event: AuditEvent) -> None:
        """The row of a call, in the call's own ``transaction``: stored exactly when its changes are."""
        transaction.audit.add(event)

    @abstractmethod
    def leave(self, event: AuditEvent) -> None:
        """The row of a call that ran read-only (only when :attr:`reads_first`), after its transaction:
        stored later, and the call answered only once it is."""

    def audit_alone(self, event: AuditEvent, observe: Callable[[AuditEvent], None]) -> None:
        """Audit an event outside any call's transaction (a refused call, a failed login): the log line,
        ``observe`` (the metrics), and the row in a transaction of its own (:meth:`add_alone`)."""
        log_event(event)
        observe(event)
        self.add_alone(event)

    def add_alone(self, event: AuditEvent) -> bool:
        """A row outside any call's transaction (a refused call, whose transaction was rolled back; a
        failed login), in a transaction of its own. False, and a warning, if the store refused it or is
        unavailable: auditing never turns a request into an error."""
        if self._db.add_audit_event(event):
            return True
        log.warning("request=%s: audit event not stored: the database refused it or is unavailable",
                    event.request_id, extra=log_fields(event))
        return False


class ImmediateAuditTrail(AuditTrail):
    """Every row in its call's own transaction."""

    def leave(self, event: AuditEvent) -> None:
        raise RuntimeError("an immediate audit trail stores each row in its call's transaction")


class BatchedAuditTrail(AuditTrail):
    """Rows of read-only calls are kept where they were left (per thread: the database thread's calls
    run one after another) until whoever runs the calls takes them (:meth:`take_left`) and stores them
    together (:meth:`store`) before answering."""

    reads_first = True

    def __init__(self, db: Database | None, store: Callable[[list[AuditEvent]], None] | None = None):
        """``store`` writes a list of events in one transaction or raises (StoreUnavailable when the
        store failed); by default into the database's ``audit_events``."""
        super().__init__(db)
        self._store = store if store is not None else db.add_audit_events
        self._left = threading.local()

    def leave(self, event: AuditEvent) -> None:
        left = getattr(self._left, "events", None)
        if left is None:
            left = self._left.events = []
        left.append(event)

    def take_left(self) -> list[AuditEvent]:
        """The rows calls on this thread left since the last time, now no longer kept here."""
        left = getattr(self._left, "events", None)
        if not left:
            return []
        self._left.events = []
        return left

    def store(self, events: list[AuditEvent]) -> None:
        """Write ``events`` in one transaction (blocking); raises if they were not stored."""
        self._store(events)
