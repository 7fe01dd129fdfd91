"""When the supervisor of ``serve --workers N`` starts a dead worker again, and when it gives up.

A worker that dies is started again after a back-off, so that one that cannot start does not spin: 1 s
after its first death, doubled at each further death up to 30 s, and 1 s again once a worker has served
for a minute. Six deaths within 60 s, counted over all the workers (five restarts did not help), are a
crash loop: the supervisor stops and says so, instead of restarting forever something that cannot
work. Constants, not settings: nobody has needed other values yet.
"""

from __future__ import annotations

from collections import deque

FIRST_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 30.0
RESET_AFTER_SECONDS = 60.0  # a worker that ran this long starts its back-off again at the first delay
CRASH_LOOP_DEATHS = 6
CRASH_LOOP_SECONDS = 60.0


class RestartPolicy:
    """The back-off of each of ``workers`` workers and the deaths of the last :data:`CRASH_LOOP_SECONDS`."""

    def __init__(self, workers: int):
        self._delays = [FIRST_DELAY_SECONDS] * workers
        self._deaths: deque[float] = deque()

    def died(self, worker: int, ran_seconds: float, now: float) -> float | None:
        """Worker ``worker`` died at ``now`` (monotonic seconds) after running ``ran_seconds``: seconds
        to wait before starting it again, or None for a crash loop (give up)."""
        self._deaths.append(now)
        while self._deaths[0] <= now - CRASH_LOOP_SECONDS:
            self._deaths.popleft()
        if len(self._deaths) >= CRASH_LOOP_DEATHS:
            return None
        if ran_seconds >= RESET_AFTER_SECONDS:
            self._delays[worker] = FIRST_DELAY_SECONDS
        delay = self._delays[worker]
        self._delays[worker] = min(delay * 2, MAX_DELAY_SECONDS)
        return delay
