"""Password checks (Argon2) for logins not in the credential cache: one at a time per credentials, and
ahead of an entry's expiry.

Why: a check costs ~150 ms of CPU. When a client's cache entry expired, every call it had in flight
missed at once and each checked the password itself: ten connections cost ten checks, which held both
CPUs of the bench machine for ~0.8 s, once a minute per process (p99 0.7-0.9 s instead of ~10 ms).
Now calls with the same credentials share the check in progress, and a call that finds its entry
due for renewal (core/credential_cache.py) starts a check in the background while the entry still
serves, so a client that calls steadily does not wait for one at all.

A shared check's verdict is the same for all who share it (equal credentials against one stored
hash); each call still goes on by itself: a refused one is audited on its own (the throttle counts
calls with the same credentials in progress as one guess). Everything here runs on the reactor thread.
"""

from __future__ import annotations

import logging
from typing import Callable

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..api.endpoint import Endpoint
from ..api.messages import ApiReply, ApiRequest
from .observability import Metrics

log = logging.getLogger(__name__)

LOGIN, RENEWAL = "login", "renewal"  # why a password was checked (the metric's label)


class LoginChecks:
    def __init__(self, reactor, endpoint: Endpoint, on_database: Callable[..., defer.Deferred],
                 hash_pool: ThreadPool, metrics: Metrics):
        """``on_database(function, *args)``: ``function`` on the database threads, as a Deferred."""
        self._reactor = reactor
        self._endpoint = endpoint
        self._on_database = on_database
        self._hash_pool = hash_pool
        self._metrics = metrics
        self._pending: dict[bytes, _Shared] = {}

    def check(self, request: ApiRequest) -> defer.Deferred:
        """The caller (a Principal), None for a wrong password, or the reply refusing the request (an
        ApiReply of its own), from the check in progress for these credentials or a new one."""
        key = self._endpoint.login_key(request)
        shared = self._pending.get(key)
        if shared is None:
            return self._start(key, request, LOGIN)
        return shared.wait().addCallback(self._verdict_for, request)

    def renew(self, request: ApiRequest) -> None:
        """Check the request's credentials again in the background, unless a check is in progress; a
        right password gets a new cache entry. The call itself goes on with the entry it found."""
        key = self._endpoint.login_key(request)
        if key not in self._pending:
            self._start(key, request, RENEWAL).addErrback(self._renewal_failed)

    def _start(self, key: bytes, request: ApiRequest, reason: str) -> defer.Deferred:
        """A new check, shared under ``key`` until it is over; the Deferred of this request's share."""
        shared = self._pending[key] = _Shared(done=lambda: self._pending.pop(key, None))
        mine = shared.wait()
        shared.follow(self._steps(request, reason))
        return mine

    def _steps(self, request: ApiRequest, reason: str) -> defer.Deferred:
        # The stored hash is read on the database threads; the password is hashed on a pool of its own,
        # so that Argon2 holds neither those threads, which every call queues for, nor a connection
        # (SQLite has one of each).
        d = self._on_database(self._endpoint.find_login, request)
        d.addCallback(self._check_password, request, reason)
        return d

    def _check_password(self, found, request: ApiRequest, reason: str):
        if isinstance(found, ApiReply):
            return found
        self._metrics.password_checks.labels(reason).inc()
        return deferToThreadPool(self._reactor, self._hash_pool, self._endpoint.check_password, request, found)

    def _verdict_for(self, verdict, request: ApiRequest):
        """A shared check's verdict for another call: a reply made for the first call (e.g. the store's
        fault, in its binding) is not this call's, so this call then takes the steps alone."""
        if isinstance(verdict, ApiReply):
            return self._steps(request, LOGIN)
        return verdict

    @staticmethod
    def _renewal_failed(failure: Failure) -> None:
        log.error("renewing a cached login failed", exc_info=(failure.type, failure.value, failure.getTracebackObject()))


class _Shared:
    """One Deferred's result (:meth:`follow`) for every waiter; ``done`` runs first, when it arrives."""

    def __init__(self, *, done: Callable[[], object]):
        self._waiters: list[defer.Deferred] = []
        self._done = done

    def follow(self, source: defer.Deferred) -> None:
        source.addBoth(self._arrived)

    def wait(self) -> defer.Deferred:
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def _arrived(self, result) -> None:
        self._done()  # first: a call that arrives from now on starts a check of its own
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(result)
