"""Group commit of audit rows: the rows of calls that wrote nothing else, stored many per transaction.

Most calls only read (an initTOTP of an enrolled user, isTOTPEnabled, retrieveSecretKey), yet each
wrote its audit row in a transaction of its own. On SQLite that is a turn at the one writer (the
process-wide lock, the file lock, the log append) per call, and with ``--workers`` every such commit
makes the other processes drop their page cache and read the database again. Here the rows wait for the
next batch: one job on the database thread, queued behind the calls already waiting there, so a batch
holds whatever arrived meanwhile (one row when idle; 4–7 in the bench, 10 connections over two
workers). A call is answered only once its row is stored, as before; if the batch fails, its calls are
answered with the store's fault. Used on SQLite only (Database.single_writer): PostgreSQL commits side
by side, and batching measured slower there.
"""

from __future__ import annotations

import threading
from typing import Callable

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from ..core.audit import AuditEvent


class AuditBatches:
    def __init__(self, reactor, pool: ThreadPool, store: Callable[[list[AuditEvent]], None],
                 stored: Callable[[list[AuditEvent]], None] = lambda events: None):
        """``store`` writes a list of events in one transaction (blocking; runs on ``pool``) or raises
        (StoreUnavailable when the store failed); ``stored`` sees each stored batch (on the reactor thread)."""
        self._reactor = reactor
        self._pool = pool
        self._store = store
        self._stored = stored
        self._lock = threading.Lock()  # the reactor adds, a database thread takes
        self._waiting: list[tuple[AuditEvent, defer.Deferred]] = []
        self._queued = False  # a batch job is queued and has not taken the waiting events yet

    def store(self, event: AuditEvent) -> defer.Deferred:
        """Fires with None once ``event`` is stored, or fails (:class:`StoreUnavailable` if the store did)."""
        stored = defer.Deferred()
        with self._lock:
            self._waiting.append((event, stored))
            queue_job = not self._queued
            self._queued = True
        if queue_job:
            deferToThreadPool(self._reactor, self._pool, self._write).addCallback(self._answer)
        return stored

    def _write(self) -> tuple[list[tuple[AuditEvent, defer.Deferred]], Exception | None]:
        with self._lock:
            batch, self._waiting = self._waiting, []
            self._queued = False  # events from now on need a job of their own
        try:
            self._store([event for event, _ in batch])
        except Exception as err:  # StoreUnavailable, or a bug: either way every waiting call is answered
            return batch, err
        return batch, None

    def _answer(self, result: tuple[list[tuple[AuditEvent, defer.Deferred]], Exception | None]) -> None:
        batch, err = result
        if err is None:
            self._stored([event for event, _ in batch])
        for _, stored in batch:
            if err is None:
                stored.callback(None)
            else:
                stored.errback(err)
