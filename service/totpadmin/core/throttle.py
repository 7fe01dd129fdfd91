"""Slowing and refusing password guessing (HTTP Basic authentication).

Failures are counted per username and per client address within a sliding window:
- per username, each attempt after ``delay_after`` failures waits 1, 2, 4, … seconds up to ``max_delay``;
  a username is never refused outright, so an attacker cannot lock an admin out, only slow them;
- per address, after ``block_after`` failures the address is refused for ``block_seconds``.
Unknown and known usernames are treated alike. Counts live in this process's memory: each instance
throttles by itself.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottlePolicy:
    window_seconds: int = 600
    delay_after: int = 3
    max_delay: float = 8.0
    block_after: int = 20
    block_seconds: int = 300


@dataclass(frozen=True)
class Verdict:
    refuse_for: float = 0.0  # > 0: answer 429 now, retry after this many seconds
    delay: float = 0.0  # > 0: wait this long before checking the password


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy = ThrottlePolicy(), *, clock=time.monotonic, max_keys: int = 100_000):
        self._policy = policy
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._blocked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def verdict(self, username: str, source: str) -> Verdict:
        now = self._clock()
        with self._lock:
            until = self._blocked_until.get(source)
            if until is not None:
                if now < until:
                    return Verdict(refuse_for=until - now)
                del self._blocked_until[source]
            count = len(self._recent(("user", username), now))
        excess = count - self._policy.delay_after
        if excess < 0:
            return Verdict()
        return Verdict(delay=min(2.0 ** excess, self._policy.max_delay))

    def failed(self, username: str, source: str) -> None:
        now = self._clock()
        with self._lock:
            self._record(("user", username), now)
            if len(self._record(("source", source), now)) >= self._policy.block_after:
                self._blocked_until[source] = now + self._policy.block_seconds
                self._failures.pop(("source", source), None)

    def succeeded(self, username: str, source: str) -> None:
        with self._lock:
            self._failures.pop(("user", username), None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self._policy.window_seconds:
            times.popleft()
        return times

    def _record(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._recent(key, now)
        if key not in self._failures:
            self._failures[key] = times
        self._failures.move_to_end(key)
        times.append(now)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)
        return times
