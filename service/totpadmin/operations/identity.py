"""The identity enrollment API's use cases (Misakey's, seed 003; protocols/json/identity.py translates
them): a signed-in user enrolls TOTP on their own identity, regenerates recovery codes, removes TOTP and
chooses whether TOTP is required at their sign-in. Each call names the identity by its stable id (the
user's UUID); another identity's id is refused, whatever it names.

Levels (core/sessions.py): enrolling needs ACR 1, removing TOTP and choosing the method 2, regenerating
recovery codes 3. TOTP cannot be removed while it is required for the user: by the policy
(``enableTOTP=true``), by an application of their tenant (``client add --totp required``), or by their own
choice (``mfa-method`` ``totp``).

The enrollment id is a random UUID, stored as its SHA-256 with the device API's authIds (kind
``enrollment``), bound to the user, single-use, expiring with the pending secret (pendingSecretLifetime).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..config.settings import Settings
from ..core.device_challenges import Challenge, auth_hash, new_auth_id
from ..core.enrollment import Enrollment, is_enabled
from ..core.errors import (AcrTooLow, ChallengeGone, NotAuthorized, TotpNotEnabled, TotpRequired, UnknownChallenge)
from ..core.sessions import ACR_PASSWORD, ACR_SECOND_FACTOR, ACR_STEP_UP
from .caller import Caller
from .sessions import SessionOperations, SessionUser
from .totp_policy import MFA_METHOD, METHODS, required_by

ENROLLMENT = "enrollment"  # the kind of its row among the device API's authIds
SELF_SERVICE = "self-service"  # the row's "client": the user themselves


@dataclass(frozen=True)
class StartedEnrollment:
    id: str  # the enrollment's id, shown once
    uri: str  # the otpauth URI of the pending secret


class IdentityOperations:
    def __init__(self, settings: Settings, sessions: SessionOperations, enrollment: Enrollment, *, clock=time.time):
        self._settings = settings
        self._sessions = sessions
        self._enrollment = enrollment
        self._clock = clock

    def start_enrollment(self, caller: Caller, identity: str) -> StartedEnrollment:
        """A new pending secret and the enrollment id that finishes it (the active secret, if any,
        stays until then)."""
        def action(transaction, account):
            secret = self._enrollment.pending_secret(account, new=True)
            enrollment_id = new_auth_id()
            now = self._clock()
            transaction.challenges.add(Challenge(
                auth_hash=auth_hash(enrollment_id), kind=ENROLLMENT, user_id=account.user_id, device_id=None,
                client=SELF_SERVICE, expires_at=now + self._settings.totp.pending_secret_seconds, issued_at=now))
            return StartedEnrollment(enrollment_id, self._enrollment.qr_url(account.ref, secret))
        return self._run(caller, "identity.totp.enroll.start", identity, ACR_PASSWORD, action)

    def finish_enrollment(self, caller: Caller, identity: str, enrollment_id: str, code: str) -> list[str] | None:
        """Activate the enrollment's secret with its first code: the new recovery codes (the old set is
        erased); None for a wrong code (counted toward the lockout; the enrollment stays usable)."""
        def action(transaction, account):
            found = transaction.challenges.find(auth_hash(enrollment_id))
            if found is None or found.kind != ENROLLMENT or found.user_id != account.user_id:
                raise UnknownChallenge()
            if found.spent or self._clock() >= found.expires_at:
                raise ChallengeGone(spent=found.spent)
            codes = self._enrollment.enable_totp(account, code)
            if codes is not None:
                transaction.challenges.spend(found.auth_hash)
            return codes
        return self._run(caller, "identity.totp.enroll.finish", identity, ACR_PASSWORD, action,
                         verdict=lambda codes: codes is not None)

    def regenerate_recovery_codes(self, caller: Caller, identity: str) -> list[str]:
        return self._run(caller, "identity.totp.recoveryCodes", identity, ACR_STEP_UP,
                         lambda transaction, account: self._enrollment.regenerate_recovery_codes(account))

    def remove(self, caller: Caller, identity: str) -> None:
        """Remove TOTP (as resetTOTP: devices, recovery codes and the user's sessions go too)."""
        def action(transaction, account):
            if not is_enabled(account):
                raise TotpNotEnabled(mandatory=False)
            if required_by(self._settings, transaction, account):
                raise TotpRequired()
            self._enrollment.reset_totp(account)
        self._run(caller, "identity.totp.remove", identity, ACR_SECOND_FACTOR, action)

    def set_mfa_method(self, caller: Caller, identity: str, method: str) -> None:
        if method not in METHODS:
            raise ValueError(method)

        def action(transaction, account):
            if method == "totp" and not is_enabled(account):
                raise TotpNotEnabled(mandatory=False)
            account.set(MFA_METHOD, method)
        self._run(caller, "identity.mfaMethod", identity, ACR_SECOND_FACTOR, action)

    # --- steps ---

    def _run(self, caller: Caller, operation: str, identity: str, level: int, action, *, verdict=None):
        me = caller.principal
        if not isinstance(me, SessionUser):
            raise NotAuthorized()

        def in_transaction(transaction):
            if transaction.sessions.user_uuid(me.user.user_id) != identity:
                raise NotAuthorized()  # another identity, whether or not it exists
            if me.session.acr(self._clock()) < level:
                raise AcrTooLow(level)
            return action(transaction, transaction.accounts.find_by_id(me.user.user_id))
        return self._sessions.run(caller, operation, me.user, in_transaction, verdict=verdict)
