"""WSO2's ``me/totp`` (the user's own TOTP, as WSO2 IS's MyAccount calls it), as use cases on the
signed-in user's primary TOTP device (the claims the SOAP operations use). protocols/json/me_totp.py
translates the wire. Where WSO2 is unsafe this does the safe thing (docs/me-totp.md lists each):

- INIT, REFRESH, VIEW and ``GET …/secret`` never activate a secret: they show a *pending* one, which only a
  right code (VALIDATE) makes active (WSO2 marks TOTP enabled at INIT, and VIEW activates a secret outright);
- VALIDATE uses the configured step, window, replay protection and lockout (WSO2 ignores them);
- ``GET /me/totp`` without any secret is 404 (WSO2 answers a QR for a secret it never stores);
- showing the *active* secret again (VIEW, GET, ``GET …/secret``) and removing TOTP need a session raised
  with a second factor (ACR 2): a stolen password alone must not copy or remove the authenticator.
"""

from __future__ import annotations

import time

from ..core import claims
from ..core.enrollment import Enrollment, is_enabled
from ..core.errors import AcrTooLow, NoPendingSecret, NoQrCode, NotAuthorized
from ..core.principal import Principal
from ..core.sessions import ACR_SECOND_FACTOR
from ..core.validation import Validation
from .caller import Caller
from .sessions import SessionOperations, SessionUser


class MeTotpOperations:
    def __init__(self, sessions: SessionOperations, enrollment: Enrollment, validation: Validation, digits: int, *,
                 clock=time.time):
        self.digits = digits  # of a code (WSO2's verificationCode is a number: its leading zeros are restored)
        self._sessions = sessions
        self._enrollment = enrollment
        self._validation = validation
        self._clock = clock

    def init(self, caller: Caller) -> str:
        """The otpauth URI of the pending secret (the same one again while it waits)."""
        return self._run(caller, "me.totp.init", lambda account: self._pending_uri(account, new=False))

    def refresh(self, caller: Caller) -> str:
        """The otpauth URI of a new pending secret."""
        return self._run(caller, "me.totp.refresh", lambda account: self._pending_uri(account, new=True))

    def view(self, caller: Caller) -> str:
        """The active secret's URI (ACR 2), else the pending one's (made if none)."""
        def action(account):
            if is_enabled(account):
                self._require(caller, ACR_SECOND_FACTOR)
                return self._uri(account, account.get(claims.SECRET_KEY))
            return self._pending_uri(account, new=False)
        return self._run(caller, "me.totp.view", action)

    def qr(self, caller: Caller) -> str:
        """``GET /me/totp``: the active secret's URI (ACR 2), else the pending one's; :class:`NoQrCode` if
        there is neither."""
        def action(account):
            if is_enabled(account):
                self._require(caller, ACR_SECOND_FACTOR)
                return self._uri(account, account.get(claims.SECRET_KEY))
            pending = account.get(claims.VERIFY_SECRET_KEY)
            if not pending:
                raise NoQrCode()
            return self._uri(account, pending)
        return self._run(caller, "me.totp.get", action, read_only=True)

    def secret(self, caller: Caller) -> str:
        """``GET /me/totp/secret``: the active secret (ACR 2), else the pending one (made if none)."""
        def action(account):
            if is_enabled(account):
                self._require(caller, ACR_SECOND_FACTOR)
                return account.get(claims.SECRET_KEY)
            return self._enrollment.pending_secret(account)
        return self._run(caller, "me.totp.secret", action)

    def validate(self, caller: Caller, code: str | None) -> bool:
        """Against the pending secret if one waits (a right code activates it), else the active one; a
        user without either: False. Wrong codes count toward the lockout."""
        def action(account):
            if account.get(claims.VERIFY_SECRET_KEY):
                try:
                    return self._enrollment.enable_totp(account, code) is not None
                except NoPendingSecret:  # it expired: the active secret (if any) still counts
                    pass
            return is_enabled(account) and self._validation.validate_totp(account, code)
        return self._run(caller, "me.totp.validate", action, verdict=bool, sessionless=True)

    def delete(self, caller: Caller) -> None:
        """Remove TOTP (as resetTOTP: devices, recovery codes and the user's sessions too); ACR 2 if on."""
        def action(account):
            if is_enabled(account):
                self._require(caller, ACR_SECOND_FACTOR)
            self._enrollment.reset_totp(account)
        self._run(caller, "me.totp.delete", action)

    # --- steps ---

    def _pending_uri(self, account, *, new: bool) -> str:
        return self._uri(account, self._enrollment.pending_secret(account, new=new))

    def _uri(self, account, secret_text: str) -> str:
        return self._enrollment.qr_url(account.ref, secret_text, always_period=True)  # as WSO2's me/totp

    def _require(self, caller: Caller, level: int) -> None:
        me = caller.principal
        if isinstance(me, SessionUser) and me.session.acr(self._clock()) >= level:
            return
        raise AcrTooLow(level)

    def _run(self, caller: Caller, operation: str, action, *, read_only: bool = False, verdict=None,
             sessionless: bool = False):
        """``action(account)`` on the caller's own account. Only ``sessionless`` calls accept a password's
        caller (WSO2 takes HTTP Basic for VALIDATE alone)."""
        user = _user(caller, sessionless)
        return self._sessions.run(
            caller, operation, user,
            lambda transaction: action(transaction.accounts.find_by_id(user.user_id, for_update=not read_only)),
            read_only=read_only, verdict=verdict)


def _user(caller: Caller, sessionless: bool) -> Principal:
    me = caller.principal
    if isinstance(me, SessionUser):
        return me.user
    if sessionless and isinstance(me, Principal):
        return me
    raise NotAuthorized()

