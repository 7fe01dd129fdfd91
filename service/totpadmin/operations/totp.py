"""Every TOTP use case as a plain call: who may do what to whose TOTP, in one transaction, audited.

A protocol (SOAP today, JSON next) authenticates the caller, calls one method here with typed
arguments, and translates the result, or the domain error raised (core.errors), back to its wire.
Everything a call must do whatever the protocol happens here, once: authorization (core.policy), the
transaction, confirming a cached login inside it, the audit row and log line, the metrics.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from ..config.settings import Settings
from ..core import audit
from ..core.account import Account
from ..core.audit import AuditEvent
from ..core.enrollment import Enrollment
from ..core.errors import InvalidUsername, NotAuthorized, TotpAdminError
from ..core.policy import authorize
from ..core.usernames import UserRef, parse_username
from ..core.validation import Validation
from ..store.database import Database
from ..store.transaction import WriteNeeded
from .audit_log import log_event
from .audit_trail import AuditTrail, ImmediateAuditTrail
from .caller import Caller, LoginChanged

T = TypeVar("T")


class TotpOperations:
    """Built once at start and shared by every request (thread-safe). Each operation takes the
    :class:`Caller` and the target's username (``user`` or ``user@tenant``), and is audited under its
    WSO2 name. ``observe`` sees each audit event once it is stored (e.g. metrics)."""

    def __init__(self, settings: Settings, db: Database, enrollment: Enrollment, validation: Validation,
                 audit_trail: AuditTrail | None = None,
                 observe: Callable[[AuditEvent], None] = lambda event: None):
        self._settings = settings
        self._db = db
        self._enrollment = enrollment
        self._validation = validation
        self._trail = audit_trail if audit_trail is not None else ImmediateAuditTrail(db)
        self._observe = observe

    # --- connector 1.0.x: immediate enrolment ---

    def init_totp(self, caller: Caller, username: str | None) -> str:
        """Enable TOTP, keeping an existing secret; the Base64 QR URL."""
        return self._manage(caller, "initTOTP", username, self._enrollment.init_totp, mostly_reads=True)

    def reset_totp(self, caller: Caller, username: str | None) -> bool:
        """Disable TOTP: secret, pending secret and recovery codes gone."""
        return self._manage(caller, "resetTOTP", username, self._enrollment.reset_totp)

    def refresh_secret_key(self, caller: Caller, username: str | None) -> str:
        """A new active secret; the encrypted secret as stored."""
        return self._manage(caller, "refreshSecretKey", username, self._enrollment.refresh_secret_key)

    # --- later WSO2 connectors: verify before activate ---

    def generate_secret(self, caller: Caller, username: str | None) -> str:
        """A pending secret (its Base64 QR URL) that :meth:`enable_totp` activates."""
        return self._manage(caller, "generateSecret", username, self._enrollment.generate_secret)

    def enable_totp(self, caller: Caller, username: str | None, code: str | None) -> bool:
        """Activate the pending secret if ``code`` is right for it."""
        enrollment = self._enrollment
        return self._manage(caller, "enableTOTP", username,
                            lambda account: enrollment.enable_totp(account, code) is not None, verdict=True)

    def validate_totp(self, caller: Caller, username: str | None, code: str | None) -> bool:
        """Whether ``code`` is the user's current code or one of their recovery codes (once each)."""
        validation = self._validation
        return self._manage(caller, "validateTOTP", username,
                            lambda account: validation.validate_totp(account, code), verdict=True)

    def retrieve_secret_key(self, caller: Caller, username: str | None) -> str:
        """The active secret in clear, when the configuration allows it; users may read their own."""
        return self._manage(caller, "retrieveSecretKey", username, self._enrollment.retrieve_secret_key,
                            allow_self=True, mostly_reads=True)

    # --- ours ---

    def enable_totp_with_recovery_codes(self, caller: Caller, username: str | None, code: str | None) -> list[str]:
        """As :meth:`enable_totp`; the new recovery codes, or none if the code was wrong."""
        enrollment = self._enrollment
        return self._manage(caller, "enableTOTPWithRecoveryCodes", username,
                            lambda account: enrollment.enable_totp(account, code) or [], verdict=True)

    def regenerate_recovery_codes(self, caller: Caller, username: str | None) -> list[str]:
        """A new set of recovery codes; the old set stops working."""
        return self._manage(caller, "regenerateRecoveryCodes", username, self._enrollment.regenerate_recovery_codes)

    def unlock_totp(self, caller: Caller, username: str | None) -> bool:
        """End a lockout (admins only, never on oneself)."""
        return self._manage(caller, "unlockTOTP", username, self._validation.unlock, allow_self=False)

    def is_totp_enabled(self, caller: Caller, username: str | None) -> bool:
        return self._manage(caller, "isTOTPEnabled", username, self._validation.is_enabled, mostly_reads=True)

    # --- audit outside a call ---

    def audit_alone(self, event: AuditEvent) -> None:
        """Audit an event outside any call's transaction (a refused call, a failed login): the log
        line, the metrics, and the row in a transaction of its own (a store outage is logged, not raised)."""
        self._trail.audit_alone(event, self._observe)

    # --- the steps every operation takes ---

    def _manage(self, caller: Caller, operation: str, username: str | None, action: Callable[[Account], T], *,
                allow_self: bool | None = None, verdict: bool = False, mostly_reads: bool = False) -> T:
        """Run ``action`` on ``username``'s account in one transaction, if the caller may, and audit
        it; a refusal (a domain error) is audited in a transaction of its own and raised.
        ``allow_self``: None follows the SelfOperationsEnabled setting. ``verdict``: the result says
        success (true, non-empty) or failure (false, empty). ``mostly_reads``: the action seldom
        writes, so where the audit trail reads first it runs read-only first (no write lock), and only
        if it turns out to write, again as a writer."""
        if allow_self is None:
            allow_self = self._settings.totp.self_operations
        try:
            if mostly_reads and self._trail.reads_first:
                try:
                    return self._once(caller, operation, username, action, allow_self, verdict, read_only=True)
                except WriteNeeded:
                    pass  # rolled back, nothing written: run it again as a writer
            return self._once(caller, operation, username, action, allow_self, verdict, read_only=False)
        except TotpAdminError as err:
            self._audit_refusal(caller, operation, username, err)
            raise

    def _once(self, caller: Caller, operation: str, username: str | None, action: Callable[[Account], T],
              allow_self: bool, verdict: bool, *, read_only: bool) -> T:
        with self._db.transaction(read_only=read_only) as transaction:
            if caller.confirm is not None and not caller.confirm(transaction):
                raise LoginChanged()
            ref = self._target(username)
            authorize(caller.principal, ref, allow_self=allow_self)
            result = action(transaction.accounts.find(ref, for_update=not read_only))  # a writer locks the row
            outcome = audit.FAILURE if verdict and not result else audit.SUCCESS
            event = caller_event(caller, operation, ref, outcome)
            if not read_only:
                self._trail.add(transaction, event)
        log_event(event)
        if read_only:
            self._trail.leave(event)  # observed once stored
        else:
            self._observe(event)
        return result

    def _target(self, username: str | None) -> UserRef:
        return parse_username(username, email_usernames=self._settings.carbon.email_usernames)

    def _audit_refusal(self, caller: Caller, operation: str, username: str | None, err: TotpAdminError) -> None:
        try:
            ref = self._target(username)
        except InvalidUsername:
            ref = None
        outcome = audit.DENIED if isinstance(err, NotAuthorized) else audit.FAULT
        self.audit_alone(caller_event(caller, operation, ref, outcome, type(err).__name__, raw_target=username))


def caller_event(caller: Caller, operation: str, ref: UserRef | None, outcome: str, detail: str = "",
                 raw_target: str | None = None) -> AuditEvent:
    """The audit event of a call by ``caller`` on ``ref`` (or, when it did not parse, ``raw_target``)."""
    return AuditEvent(request_id=caller.request_id, source=caller.source, caller=caller.principal.audit_name,
                      operation=operation, target=ref.qualified if ref else raw_target,
                      tenant=ref.tenant if ref else None, outcome=outcome, detail=detail)
