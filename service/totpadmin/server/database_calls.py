"""Where a call that needs the database runs: on the database thread pool, one job per call
(:class:`ThreadPoolCalls`), or on SQLite's one database thread in rounds (:class:`DatabaseRounds`).
``build_site`` picks one, together with the audit trail that goes with it.

Rounds: on SQLite every call runs on one database thread (store/database.py: one connection per
process). Handed over one by one, each call costs a wake-up of that thread and, with its answer, one of
the reactor; and the audit row a read-only call leaves (operations/audit_trail.py) would need a further
job and a further wake-up to be stored. Here the calls wait in a queue: a round takes every call
waiting when it starts and runs them back to back, stores the audit rows they left in one transaction
(group commit; in the process's own audit file, store/audit_files.py, so that the other workers notice
nothing), then hands all their answers to the reactor at once. Calls that arrive meanwhile make the next
round.

A call is answered only once its row is stored; if the store fails, each call that left a row fails
with :class:`RowsNotStored` (any other error, a bug, as itself) and its answer is withheld. Not used
on PostgreSQL, whose connections commit side by side on a thread each (docs/performance.md).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable, Protocol

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..core.audit import AuditEvent
from ..core.errors import StoreUnavailable
from ..operations.audit_trail import BatchedAuditTrail


class DatabaseCalls(Protocol):
    def run(self, function: Callable, *args) -> defer.Deferred:
        """``function(*args)`` where database work runs; fires with its result (or its failure)."""


class ThreadPoolCalls:
    """Each call a job of its own on the database thread pool (PostgreSQL: a connection per thread)."""

    def __init__(self, reactor, pool: ThreadPool):
        self._reactor = reactor
        self._pool = pool

    def run(self, function: Callable, *args) -> defer.Deferred:
        return deferToThreadPool(self._reactor, self._pool, function, *args)


class RowsNotStored(Exception):
    """The audit rows of a round could not be stored (``cause``: the store's error)."""

    def __init__(self, cause: StoreUnavailable):
        super().__init__(str(cause))
        self.cause = cause


class DatabaseRounds:
    """SQLite's one database thread, taking the calls in rounds, with the audit rows they leave in
    ``trail`` stored together at the end of each round."""

    def __init__(self, reactor, pool: ThreadPool, trail: BatchedAuditTrail,
                 stored: Callable[[list[AuditEvent]], None] = lambda events: None):
        """``pool``: the database thread; ``stored`` sees each stored batch (on the reactor thread)."""
        self._reactor = reactor
        self._pool = pool
        self._trail = trail
        self._stored = stored
        self._lock = threading.Lock()  # the reactor adds calls, the database thread takes them
        self._waiting: deque = deque()
        self._working = False  # a job on the pool is taking rounds; it stops when none is waiting

    def run(self, function: Callable, *args) -> defer.Deferred:
        """``function(*args)`` in a coming round; fires with its result once the audit rows it left are
        stored."""
        done = defer.Deferred()
        with self._lock:
            self._waiting.append((function, args, done))
            start, self._working = not self._working, True
        if start:
            self._pool.callInThread(self._work)
        return done

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._waiting:
                    self._working = False
                    return
                calls, self._waiting = self._waiting, deque()
            self._round(calls)

    def _round(self, calls) -> None:
        results = []
        events = []
        for function, args, done in calls:
            try:
                result = function(*args)
            except BaseException:  # as deferToThreadPool would: the caller's errback decides
                result = Failure()
            left = self._trail.take_left()
            results.append((done, result, bool(left)))
            events.extend(left)
        error = None
        if events:
            try:
                self._trail.store(events)
            except Exception:  # StoreUnavailable, or a bug: either way every call is answered
                error = Failure()
        self._reactor.callFromThread(self._answer, results, events, error)

    def _answer(self, results, events: list[AuditEvent], error: Failure | None) -> None:
        if events and error is None:
            self._stored(events)
        for done, result, audited in results:
            if isinstance(result, Failure):
                done.errback(result)
            elif audited and error is not None:
                done.errback(RowsNotStored(error.value) if error.check(StoreUnavailable) else error)
            else:
                done.callback(result)
