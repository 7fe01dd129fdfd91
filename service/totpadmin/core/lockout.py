"""Brute-force protection: how failures turn into timed lockouts (RFC 4226 7.3)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    base_seconds: int = 300
    max_seconds: int = 86400

    def duration(self, lockouts_so_far: int) -> int:
        """Seconds of the next lockout: the base, doubled for each earlier one, capped."""
        return min(self.base_seconds * 2 ** min(lockouts_so_far, 32), self.max_seconds)


@dataclass(frozen=True)
class GuardState:
    """A user's verification bookkeeping, as stored."""

    last_step: int | None = None  # newest time step accepted; older and equal ones are replays
    failures: int = 0  # wrong codes since the last success or lockout
    lockouts: int = 0  # lockouts since the last success: each doubles the next one
    locked_until: float | None = None  # epoch seconds
    pending_expires_at: float | None = None  # epoch seconds; generateSecret's secret dies then

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until


def after_failure(state: GuardState, policy: LockoutPolicy, now: float) -> GuardState:
    """The state after one more wrong code: counted, and a lockout when the count reaches the limit."""
    failures = state.failures + 1
    if failures < policy.max_failures:
        return replace(state, failures=failures)
    return replace(state, failures=0, lockouts=state.lockouts + 1,
                    locked_until=now + policy.duration(state.lockouts))


def after_success(state: GuardState) -> GuardState:
    return replace(state, failures=0, lockouts=0, locked_until=None)


def unlocked(state: GuardState) -> GuardState:
    return replace(state, failures=0, locked_until=None)
