"""Where a login is decided, for every protocol: the throttle, the credential cache, one password check
at a time per credentials, the check itself on a thread pool of its own, the audit of a refusal, and a
second look when a cached login turned out to have changed during the call.

A protocol hands :meth:`LoginPipeline.run` the request's credentials and the call to make as the
caller; it gets back the call's result, or a :class:`Refused` to answer in its own format. The steps
themselves are plain calls of a verifier (``operations/login.py``); this module only decides where and
when each runs. Everything here runs on the reactor thread.

Why share checks: a password check costs Argon2's CPU (tens of milliseconds). When a client's cache
entry expired, every call it had in flight would miss at once and check the password itself; now calls
with the same credentials share the check in progress, and a call that finds its entry due for renewal
(``core/credential_cache.py``) starts a check in the background while the entry still serves, so a
client that calls steadily never waits for one. A shared check's verdict is the same for all who share
it (equal credentials against one stored hash); each call still goes on by itself: a refused one is
audited on its own, while the throttle counts calls with the same credentials in progress as one guess.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

from twisted.internet import defer, task
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ..core.authentication import CacheState
from ..core.client_address import throttle_key
from ..core.errors import StoreUnavailable
from ..core.throttle import LoginThrottle
from ..operations.caller import Caller, LoginChanged
from ..operations.login import Request, Verifier
from .observability import Metrics

log = logging.getLogger(__name__)

LOGIN, RENEWAL = "login", "renewal"  # why a password was checked (the metric's label)
THROTTLED, BAD_CREDENTIALS, STORE_UNAVAILABLE = "throttled", "bad credentials", "store unavailable"


@dataclass(frozen=True)
class Refused:
    """A login that did not happen, for the protocol to answer: ``THROTTLED`` (``retry_after`` seconds;
    ``about``: the throttle's ADDRESS or USERNAME), ``BAD_CREDENTIALS`` (audited), or
    ``STORE_UNAVAILABLE`` (``error``: the store's)."""

    reason: str
    retry_after: int = 0
    about: str = ""
    error: StoreUnavailable | None = None


class LoginPipeline:
    def __init__(self, reactor, verifiers: dict[type, Verifier], on_database: Callable[..., defer.Deferred],
                 hash_pool: ThreadPool, throttle: LoginThrottle, metrics: Metrics):
        """``verifiers``: one per credential kind, by the credentials' type. ``on_database(function,
        *args)``: ``function`` on the database threads, as a Deferred."""
        self._reactor = reactor
        self._verifiers = verifiers
        self._on_database = on_database
        self._hash_pool = hash_pool
        self._throttle = throttle
        self._metrics = metrics
        self._pending: dict[bytes, _Shared] = {}

    def run(self, credentials, request: Request, call: Callable[[Caller], defer.Deferred]) -> defer.Deferred:
        """``call(caller)``'s result once the credentials are verified, or a :class:`Refused`. A call
        that raises :class:`LoginChanged` (its cached login was no longer the stored one) is made again
        after a full check."""
        verifier = self._verifiers[type(credentials)]
        verdict = self._throttle.verdict(credentials.claimed, throttle_key(request.source), verifier.key(credentials))
        if verdict.refuse_for:
            return defer.succeed(Refused(THROTTLED, retry_after=max(1, math.ceil(verdict.refuse_for)),
                                         about=verdict.refused))
        outcome = _Outcome()
        d = task.deferLater(self._reactor, verdict.delay, lambda: None) if verdict.delay else defer.succeed(None)
        d.addCallback(lambda _: self._login(verifier, credentials, request))
        d.addCallback(self._call, verifier, credentials, request, call, outcome)
        d.addBoth(self._settle, verdict.attempt, outcome)
        return d

    def _login(self, verifier: Verifier, credentials, request: Request, *, cached: bool = True) -> defer.Deferred:
        """The caller, or a :class:`Refused`."""
        if cached:
            state = verifier.state(credentials)
            caller = verifier.cached(credentials, request) if state is not CacheState.MISSING else None
            if caller is not None:
                if state is CacheState.RENEWAL_DUE:
                    self._renew(verifier, credentials)
                return defer.succeed(caller)
        d = self._check(verifier, credentials)
        d.addCallbacks(self._checked, self._unavailable, callbackArgs=(verifier, credentials, request))
        return d

    def _checked(self, principal, verifier: Verifier, credentials, request: Request):
        if principal is not None:
            return Caller(principal, request.request_id, request.source)
        d = self._on_database(verifier.refuse, credentials, request)
        d.addErrback(lambda failure: log.error("request=%s: failed login not audited", request.request_id,
                                               exc_info=(failure.type, failure.value, failure.getTracebackObject())))
        d.addCallback(lambda _: Refused(BAD_CREDENTIALS))
        return d

    @staticmethod
    def _unavailable(failure: Failure) -> Refused:
        failure.trap(StoreUnavailable)
        return Refused(STORE_UNAVAILABLE, error=failure.value)

    def _call(self, login, verifier: Verifier, credentials, request: Request, call, outcome: _Outcome):
        if isinstance(login, Refused):
            outcome.signed_in = False if login.reason == BAD_CREDENTIALS else None
            return login
        outcome.signed_in = True
        d = defer.maybeDeferred(call, login)
        d.addErrback(self._changed, verifier, credentials, request, call, outcome)
        return d

    def _changed(self, failure: Failure, verifier: Verifier, credentials, request: Request, call, outcome: _Outcome):
        failure.trap(LoginChanged)
        verifier.forget(credentials)
        d = self._login(verifier, credentials, request, cached=False)
        d.addCallback(self._call, verifier, credentials, request, call, outcome)
        return d

    def _settle(self, result, attempt, outcome: _Outcome):
        self._throttle.settle(attempt, outcome.signed_in)
        return result

    # --- password checks: one at a time per credentials --------------------------------------------

    def _check(self, verifier: Verifier, credentials) -> defer.Deferred:
        """The principal, or None for wrong credentials, from the check in progress for these
        credentials or a new one."""
        key = verifier.key(credentials)
        shared = self._pending.get(key)
        if shared is None:
            return self._start(key, verifier, credentials, LOGIN)
        return shared.wait()

    def _renew(self, verifier: Verifier, credentials) -> None:
        """Check the credentials again in the background, unless a check is in progress; right ones get
        a new cache entry. The call itself goes on with the entry it found."""
        key = verifier.key(credentials)
        if key not in self._pending:
            self._start(key, verifier, credentials, RENEWAL).addErrback(self._renewal_failed)

    def _start(self, key: bytes, verifier: Verifier, credentials, reason: str) -> defer.Deferred:
        """A new check, shared under ``key`` until it is over; the Deferred of this request's share."""
        shared = self._pending[key] = _Shared(done=lambda: self._pending.pop(key, None))
        mine = shared.wait()
        # The stored login is read on the database threads; the password is hashed on a pool of its own,
        # so that the hashing holds neither those threads, which every call queues for, nor a connection
        # (SQLite has one of each).
        d = self._on_database(verifier.find, credentials)
        d.addCallback(self._hash, verifier, credentials, reason)
        shared.follow(d)
        return mine

    def _hash(self, found, verifier: Verifier, credentials, reason: str):
        if not verifier.hashes:  # a token's check is a comparison: no hash pool, no password-check metric
            return verifier.check(credentials, found)
        self._metrics.password_checks.labels(reason).inc()
        return deferToThreadPool(self._reactor, self._hash_pool, verifier.check, credentials, found)

    @staticmethod
    def _renewal_failed(failure: Failure) -> None:
        if not failure.check(StoreUnavailable):
            log.error("renewing a cached login failed", exc_info=(failure.type, failure.value, failure.getTracebackObject()))


class _Outcome:
    """For the throttle: True (signed in), False (refused), None (neither, e.g. the store failed)."""

    signed_in: bool | None = None


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
