"""validateTOTP: is this the user's current code (or one of their recovery codes)?"""

from __future__ import annotations

import time

from ..config.settings import TotpSettings
from . import claims, recovery, secret_codec
from .account import Account
from .code_checker import CodeChecker
from .devices import other_device_accepts
from .enrollment import is_enabled
from .errors import TotpNotEnabled
from .otp import matching_step
from .sessions import RECOVERY, TOTP


class Validation:
    def __init__(self, settings: TotpSettings, *, clock=time.time, recovery_hasher=recovery.RECOVERY_HASHER,
                 on_lockout=None):
        self._settings = settings
        self._checker = CodeChecker(settings, clock, recovery_hasher, on_lockout)

    def validate_totp(self, account: Account, code: str | None) -> bool:
        """True once per valid code: of the primary device, another active device of the user, or a
        recovery code. A user without TOTP: a fault when TOTP is mandatory
        (``enableTOTP=true``), else False without counting a failure. Wrong codes, replays and
        wrong recovery codes count toward the lockout; while locked, :class:`UserLocked`."""
        return self.second_factor(account, code) is not None

    def second_factor(self, account: Account, code: str | None) -> str | None:
        """As :meth:`validate_totp`, saying what ``code`` was: :data:`~.sessions.TOTP` (a device's
        current code), :data:`~.sessions.RECOVERY` (a recovery code, now spent), or None (wrong)."""
        state = self._checker.unlocked_state(account)
        if not is_enabled(account):
            if self._settings.mandatory:
                raise TotpNotEnabled(mandatory=True)
            return None
        encoding = account.get(claims.ENCODING) or self._settings.encoding
        key = secret_codec.decode_secret(account.get(claims.SECRET_KEY), encoding)
        if self._checker.totp_step(account, key, code, state) is not None \
                or other_device_accepts(account, code, self._checker, self._settings.encoding):
            proof = TOTP
        elif self._checker.spend_recovery_code(account, code):
            proof = RECOVERY
        else:
            self._checker.failed(account, state)
            return None
        self._checker.succeeded(account, state)
        return proof

    def replayed(self, account: Account, code: str | None) -> bool:
        """Whether ``code``, just refused, is the primary device's code for a step already used (a replay,
        told apart from a wrong code so that a person can be told to wait for the next code)."""
        last_step = account.state().last_step
        secret = account.get(claims.SECRET_KEY) if is_enabled(account) else None
        if last_step is None or not secret:
            return False
        key = secret_codec.decode_secret(secret, account.get(claims.ENCODING) or self._settings.encoding)
        step = matching_step(key, code, self._checker.now(), self._checker.otp)
        return step is not None and step <= last_step

    def unlock(self, account: Account) -> bool:
        """End a lockout and forget counted failures (an admin's action)."""
        account.save_state(failures=0, locked_until=None)
        return True

    @staticmethod
    def is_enabled(account: Account) -> bool:
        return is_enabled(account)
