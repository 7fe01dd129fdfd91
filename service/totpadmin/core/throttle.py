"""Slowing and refusing password guessing (HTTP Basic authentication). The design and what it allows an
attacker, in numbers: docs/login-throttling.md.

Credentials that verified in this process within ``known_good_seconds`` (remembered by the credential
cache's HMAC key, never the password) pass untouched: a guesser cannot lock out a client that knows its
password. Every other attempt is counted under its username and its client address from the moment it
is let through, so that parallel guesses count as they start, not as they end; a success takes its own
attempt back and, as NIST SP 800-63B 5.2.2 advises, forgets the username's failures from that address.
- address: after ``block_after`` attempts within ``window_seconds`` the address is refused (429) for
  ``block_seconds``, without its passwords being checked;
- username: after ``delay_after`` attempts within the window, each further check waits 1, 2, 4, ...
  seconds, up to ``max_delay``, after the start of the one before, so parallel attempts queue rather
  than run together; one that would have to wait more than two such delays is refused (429) instead;
- username: after ``account_failures_per_day`` attempts within a day it is refused (429) until the
  oldest of them is a day old.
An attempt with the same credentials as one in progress shares its place (and its password check) and
counts once. Unknown and known usernames are treated alike. Everything lives in this process's memory:
each process throttles by itself.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass

DAY = 86400.0
ADDRESS, USERNAME = "address", "username"  # what a refusal is about


@dataclass(frozen=True)
class ThrottlePolicy:
    window_seconds: int = 600
    delay_after: int = 3
    max_delay: float = 8.0
    block_after: int = 20
    block_seconds: int = 300
    account_failures_per_day: int = 100
    known_good_seconds: float = 7 * DAY


@dataclass(eq=False)
class Attempt:
    """One login let through; settle it with :meth:`LoginThrottle.settle`."""

    username: str
    source: str
    key: bytes
    at: float
    start: float = 0.0  # when its password may be checked
    known_good: bool = False  # its credentials verified recently: not counted
    shared: bool = False  # the same credentials as an attempt in progress: counted under that one
    failed: bool = False


@dataclass(frozen=True)
class Verdict:
    refuse_for: float = 0.0  # > 0: answer 429 now, retry after this many seconds
    refused: str = ""  # ADDRESS or USERNAME
    delay: float = 0.0  # > 0: wait this long before checking the password
    attempt: Attempt | None = None  # what to settle once the login's outcome is known


class _Account:
    __slots__ = ("attempts", "next_start")

    def __init__(self, cap: int):
        self.attempts: deque[Attempt] = deque(maxlen=cap)  # the newest, at most a day's cap of them
        self.next_start = 0.0


class _Address:
    __slots__ = ("attempts", "blocked_until")

    def __init__(self):
        self.attempts: deque[Attempt] = deque()
        self.blocked_until = 0.0


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy = ThrottlePolicy(), *, clock=time.monotonic,
                 max_keys: int = 100_000, max_known_good: int = 10_000):
        self._policy = policy
        self._clock = clock
        self._max_keys = max_keys
        self._max_known_good = max_known_good
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._addresses: OrderedDict[str, _Address] = OrderedDict()
        self._known_good: OrderedDict[bytes, float] = OrderedDict()  # login key -> until when
        self._in_progress: dict[bytes, Attempt] = {}
        self._lock = threading.Lock()

    def verdict(self, username: str, source: str, key: bytes) -> Verdict:
        """Whether an attempt by ``username`` from ``source`` (the client address's throttle key) with
        credentials whose login key is ``key`` may go on, and after what wait."""
        now = self._clock()
        p = self._policy
        with self._lock:
            until = self._known_good.get(key)
            if until is not None and now < until:
                return Verdict(attempt=Attempt(username, source, key, now, now, known_good=True))
            address = self._entry(self._addresses, source, _Address)
            if now < address.blocked_until:
                return Verdict(refuse_for=address.blocked_until - now, refused=ADDRESS)
            ahead = self._in_progress.get(key)
            if ahead is not None:
                return Verdict(delay=max(0.0, ahead.start - now),
                               attempt=Attempt(username, source, key, now, ahead.start, shared=True))
            _expire(address.attempts, now - p.window_seconds)
            if len(address.attempts) >= p.block_after:  # that many still in progress: they decide
                return Verdict(refuse_for=1.0, refused=ADDRESS)
            account = self._entry(self._accounts, username, lambda: _Account(p.account_failures_per_day))
            attempts = account.attempts
            if len(attempts) == attempts.maxlen and attempts[0].at > now - DAY:
                return Verdict(refuse_for=attempts[0].at + DAY - now, refused=USERNAME)
            recent = sum(1 for a in attempts if a.at > now - p.window_seconds)
            delay = 0.0 if recent < p.delay_after else min(2.0 ** (recent - p.delay_after), p.max_delay)
            start = max(now, account.next_start) + delay
            if start - now > 2 * p.max_delay:
                return Verdict(refuse_for=start - now - 2 * p.max_delay, refused=USERNAME)
            account.next_start = start
            attempt = Attempt(username, source, key, now, start)
            attempts.append(attempt)
            address.attempts.append(attempt)
            self._in_progress[key] = attempt
            return Verdict(delay=start - now, attempt=attempt)

    def settle(self, attempt: Attempt | None, succeeded: bool | None) -> None:
        """The outcome of an attempt let through: True (signed in), False (refused), None (neither,
        e.g. the store was unavailable: the attempt is taken back)."""
        if attempt is None:
            return
        now = self._clock()
        with self._lock:
            if self._in_progress.get(attempt.key) is attempt:
                del self._in_progress[attempt.key]
            if succeeded:
                self._succeeded(attempt, now)
            elif succeeded is False and not attempt.shared:
                self._failed(attempt, now)
            elif succeeded is None and not (attempt.shared or attempt.known_good):
                self._take_back(attempt)

    def _succeeded(self, attempt: Attempt, now: float) -> None:
        if self._policy.known_good_seconds > 0:
            self._known_good[attempt.key] = now + self._policy.known_good_seconds
            self._known_good.move_to_end(attempt.key)
            while len(self._known_good) > self._max_known_good:
                self._known_good.popitem(last=False)
        if not (attempt.known_good or attempt.shared):
            self._take_back(attempt)
        account = self._accounts.get(attempt.username)
        # NIST SP 800-63B 5.2.2: forget the username's failures from where it signed in.
        if account is not None and any(a.failed and a.source == attempt.source for a in account.attempts):
            kept = [a for a in account.attempts if not (a.failed and a.source == attempt.source)]
            account.attempts.clear()
            account.attempts.extend(kept)

    def _failed(self, attempt: Attempt, now: float) -> None:
        attempt.failed = True
        address = self._entry(self._addresses, attempt.source, _Address)
        if attempt.known_good:  # the password changed (or the user went): its credentials are guesses now
            self._known_good.pop(attempt.key, None)
            attempt.at = now
            self._entry(self._accounts, attempt.username,
                        lambda: _Account(self._policy.account_failures_per_day)).attempts.append(attempt)
            address.attempts.append(attempt)
        _expire(address.attempts, now - self._policy.window_seconds)
        if sum(a.failed for a in address.attempts) >= self._policy.block_after:
            address.blocked_until = now + self._policy.block_seconds
            address.attempts.clear()

    def _take_back(self, attempt: Attempt) -> None:
        for table, name in ((self._accounts, attempt.username), (self._addresses, attempt.source)):
            entry = table.get(name)
            if entry is not None:
                try:
                    entry.attempts.remove(attempt)
                except ValueError:
                    pass

    def _entry(self, table: OrderedDict, name: str, make):
        entry = table.get(name)
        if entry is None:
            entry = table[name] = make()
            while len(table) > self._max_keys:
                table.popitem(last=False)
        table.move_to_end(name)
        return entry


def _expire(attempts: deque[Attempt], before: float) -> None:
    while attempts and attempts[0].at <= before:
        attempts.popleft()
