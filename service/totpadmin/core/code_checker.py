"""One place that checks a code for a user: lockout first, then the code (or a recovery code), then the
bookkeeping: replay protection, failure counting, lockouts."""

from __future__ import annotations

import logging

from ..config.settings import TotpSettings
from . import recovery
from .account import Account
from .errors import UserLocked
from .lockout import GuardState, LockoutPolicy, after_failure, after_success
from .otp import OtpPolicy, matching_step

log = logging.getLogger(__name__)


class CodeChecker:
    def __init__(self, settings: TotpSettings, clock, recovery_hasher=recovery.RECOVERY_HASHER, on_lockout=None):
        self.otp = OtpPolicy(algorithm=settings.algorithm, digits=settings.digits, period=settings.time_step,
                             window_size=settings.window_size)
        self.lockout = LockoutPolicy(max_failures=settings.max_failed_attempts, base_seconds=settings.lockout_seconds,
                                     max_seconds=settings.max_lockout_seconds)
        self._clock = clock
        self._recovery_hasher = recovery_hasher
        self._on_lockout = on_lockout  # called with the user's UserRef when a lockout begins

    def now(self) -> float:
        return self._clock()

    def unlocked_state(self, account: Account) -> GuardState:
        """The account's state; :class:`UserLocked` while a lockout lasts (no code is even looked at)."""
        state = account.state()
        if state.locked(self.now()):
            raise UserLocked(state.locked_until)
        return state

    def totp_step(self, account: Account, key: bytes, code: str | None, state: GuardState, *,
                  replay_protected: bool = True) -> int | None:
        """The step ``code`` is valid for, claimed as used; None if the code is wrong or a replay."""
        after = state.last_step if replay_protected else None
        step = matching_step(key, code, self.now(), self.otp, after=after)
        if step is None:
            return None
        if replay_protected and not account.claim_step(step):
            return None  # a concurrent call accepted this step first
        return step

    def spend_recovery_code(self, account: Account, code: str | None) -> bool:
        parsed = recovery.parse(code)
        if parsed is None:
            return False
        lookup, normalized = parsed
        found = account.recovery_code_hash(lookup)
        if found is None:
            self._recovery_hasher.verify_decoy(normalized)
            return False
        code_id, code_hash = found
        return recovery.matches(code_hash, normalized, self._recovery_hasher) and account.spend_recovery_code(code_id)

    def succeeded(self, account: Account, state: GuardState) -> None:
        if state.failures or state.lockouts or state.locked_until is not None:
            new = after_success(state)
            account.save_state(failures=new.failures, lockouts=new.lockouts, locked_until=new.locked_until)

    def failed(self, account: Account, state: GuardState) -> None:
        new = after_failure(state, self.lockout, self.now())
        account.save_state(failures=new.failures, lockouts=new.lockouts, locked_until=new.locked_until)
        if new.lockouts > state.lockouts:
            log.warning("TOTP of %s locked for %d s after %d wrong codes", account.ref.qualified,
                        self.lockout.duration(state.lockouts), self.lockout.max_failures)
            if self._on_lockout is not None:
                self._on_lockout(account.ref)
