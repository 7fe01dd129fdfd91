"""server/database_calls.py's rounds on a real thread pool: calls run in rounds, the audit rows of a round are stored
together before any of its calls is answered, and one call's error or a failed store answers every call.

The test's own thread stands in for the reactor: it runs what the database thread hands over with
callFromThread, in order (the server's reactor does the same)."""

from __future__ import annotations

import queue
import threading

import pytest
from twisted.python.threadpool import ThreadPool

from totpadmin.protocols.messages import ApiReply
from totpadmin.core.audit import SUCCESS, AuditEvent
from totpadmin.core.errors import StoreUnavailable
from totpadmin.operations.audit_trail import BatchedAuditTrail
from totpadmin.server.database_calls import DatabaseRounds, RowsNotStored


class ReactorThread:
    """callFromThread for the test's thread: what is handed over runs in :meth:`run_until`."""

    def __init__(self):
        self.handed = queue.Queue()

    def callFromThread(self, function, *args):  # noqa: N802 (Twisted's name)
        self.handed.put((function, args))

    def run_until(self, done, timeout=10.0):
        while not done():
            function, args = self.handed.get(timeout=timeout)
            function(*args)


def event(n: int) -> AuditEvent:
    return AuditEvent(request_id=f"r{n}", source="127.0.0.1", caller="admin", operation="initTOTP",
                      target=f"user{n}", tenant="carbon.super", outcome=SUCCESS)


class Trail(BatchedAuditTrail):
    """A batched audit trail storing with ``store``; :meth:`reply` is a call that leaves a row in it."""

    def __init__(self, store):
        super().__init__(None, store=store)

    def reply(self, n: int, *, audited: bool = True) -> ApiReply:
        if audited:
            self.leave(event(n))
        return ApiReply(200, "text/plain", str(n).encode())

    def unaudited_reply(self, n: int) -> ApiReply:
        return self.reply(n, audited=False)


def rounds_storing(reactor, pool, store, **options) -> tuple[DatabaseRounds, Trail]:
    trail = Trail(store)
    return DatabaseRounds(reactor, pool, trail, **options), trail


@pytest.fixture
def pool():
    pool = ThreadPool(minthreads=1, maxthreads=1, name="test database")
    pool.start()
    yield pool
    pool.stop()


def outcomes(deferreds) -> list:
    got = [None] * len(deferreds)
    for i, d in enumerate(deferreds):
        d.addCallbacks(lambda r, i=i: got.__setitem__(i, r), lambda f, i=i: got.__setitem__(i, f))
    return got


def test_calls_waiting_together_make_one_round_and_are_answered_once_their_rows_are_stored(pool):
    reactor = ReactorThread()
    stored_batches, seen_by_reactor = [], []
    answered = []
    gate = threading.Event()

    def store(events):
        assert not answered, "no call of the round is answered before its rows are stored"
        stored_batches.append([e.request_id for e in events])

    rounds, trail = rounds_storing(reactor, pool, store, stored=lambda events: seen_by_reactor.append(len(events)))
    started = threading.Event()

    def hold():  # the first round: holds the database thread while the others queue up
        started.set()
        gate.wait(10)
        return trail.reply(0)

    first = rounds.run(hold)
    assert started.wait(10)
    waiting = [rounds.run(trail.reply, n) for n in range(1, 6)] + [rounds.run(trail.unaudited_reply, 6)]
    for d in [first, *waiting]:
        d.addCallback(lambda r: answered.append(r) or r)
    got = outcomes([first, *waiting])
    gate.set()
    reactor.run_until(lambda: all(g is not None for g in got))

    assert stored_batches == [["r0"], ["r1", "r2", "r3", "r4", "r5"]], "the calls that waited made one round"
    assert seen_by_reactor == [1, 5]
    assert [g.body for g in got] == [str(n).encode() for n in range(7)]
    left, looked = [], threading.Event()
    pool.callInThread(lambda: left.append(trail.take_left()) or looked.set())  # the database thread's leftovers
    assert looked.wait(10)
    assert left == [[]], "answered with the row stored"


def test_a_failing_call_fails_alone(pool):
    reactor = ReactorThread()
    stored = []
    rounds, trail = rounds_storing(reactor, pool, lambda events: stored.extend(e.request_id for e in events))

    def broken():
        raise ValueError("a bug")

    gate = threading.Event()
    first = rounds.run(gate.wait, 10)
    calls = [rounds.run(trail.reply, 1), rounds.run(broken), rounds.run(trail.reply, 2)]
    got = outcomes([first, *calls])
    gate.set()
    reactor.run_until(lambda: all(g is not None for g in got))

    assert got[1].body == b"1" and got[3].body == b"2"
    assert got[2].check(ValueError)
    assert stored == ["r1", "r2"]


@pytest.mark.parametrize("error, expected", [(StoreUnavailable("disk I/O error"), RowsNotStored),
                                             (KeyError("a bug"), KeyError)])
def test_when_the_rows_cannot_be_stored_their_calls_are_not_answered_and_the_others_are(pool, error, expected):
    reactor = ReactorThread()
    stored_seen = []

    def store(events):
        raise error

    rounds, trail = rounds_storing(reactor, pool, store, stored=stored_seen.append)
    gate = threading.Event()
    first = rounds.run(gate.wait, 10)
    calls = [rounds.run(trail.reply, 1), rounds.run(trail.unaudited_reply, 2)]
    got = outcomes([first, *calls])
    gate.set()
    reactor.run_until(lambda: all(g is not None for g in got))

    assert got[1].check(expected), got[1]
    if expected is RowsNotStored:
        assert got[1].value.cause is error
    assert got[2].body == b"2", "a call that left no row is answered"
    assert stored_seen == []


def test_the_database_thread_is_let_go_when_no_call_waits(pool):
    reactor = ReactorThread()
    rounds, trail = rounds_storing(reactor, pool, lambda events: None)
    for n in range(3):  # each call after the last round ended starts a job again
        got = outcomes([rounds.run(trail.unaudited_reply, n)])
        reactor.run_until(lambda: got[0] is not None)
        assert got[0].body == str(n).encode()
        pool_idle = threading.Event()
        pool.callInThread(pool_idle.set)  # runs only once the rounds' job has returned (one thread)
        assert pool_idle.wait(10)
