"""What a service method sees: the long-lived services, the authenticated caller, and this request."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, TypeVar

from ..config.settings import Settings
from ..core import audit
from ..core.account import Account
from ..core.authentication import Authenticator
from ..core.enrollment import Enrollment
from ..core.errors import InvalidUsername, NotAuthorized, TotpAdminError
from ..core.policy import authorize
from ..core.principal import Principal
from ..core.usernames import UserRef, parse_username
from ..core.validation import Validation
from ..operations.caller import LoginChanged
from ..store.database import Database
from ..store.transaction import Transaction, WriteNeeded

T = TypeVar("T")
audit_log = logging.getLogger("totpadmin.audit")


@dataclass(frozen=True)
class Services:
    """Built once at start and shared by every request (all thread-safe)."""

    settings: Settings
    db: Database
    enrollment: Enrollment
    validation: Validation
    authenticator: Authenticator
    observe: Callable[[audit.AuditEvent], None] = lambda event: None  # e.g. metrics, after each audit event
    # The server stores the audit rows of calls that wrote nothing else many to a transaction, and answers
    # those calls once their rows are stored (server/database_rounds.py): such calls then only read.
    batch_audit: bool = False


@dataclass
class CallContext:
    """``ctx.udc`` of one spyne call."""

    services: Services
    principal: Principal
    request_id: str = ""
    peer: str = ""
    operation: str = ""  # set by the service before the method runs
    # For a principal taken from the credential cache: whether the stored login still matches, checked
    # in the call's own transaction (one transaction per call instead of two).
    confirm_login: Callable[[Transaction], bool] | None = None
    login_changed: bool = False
    # The audit event of a call that only read, for the server to store before answering (batch_audit).
    unstored_event: audit.AuditEvent | None = None

    def manage(self, username: str | None, action: Callable[[Account], T], *, allow_self: bool | None = None,
               verdict: bool = False, mostly_reads: bool = False) -> T:
        """Run ``action`` on ``username``'s account in one transaction, if the caller may, and audit it.
        ``allow_self``: None follows the SelfOperationsEnabled setting. ``verdict``: the result says
        success (true, non-empty) or failure (false, empty).

        The audit row goes into the same transaction, except for a ``mostly_reads`` action when the server
        batches audit rows: that runs in a read-only transaction first (no write lock), leaving its event
        in :attr:`unstored_event`, and only if it turns out to write, again as a writer."""
        if allow_self is None:
            allow_self = self.services.settings.totp.self_operations
        if mostly_reads and self.services.batch_audit:
            try:
                return self._manage(username, action, allow_self, verdict, read_only=True)
            except WriteNeeded:
                pass  # rolled back, nothing written: run it again as a writer
        return self._manage(username, action, allow_self, verdict, read_only=False)

    def _manage(self, username, action, allow_self, verdict, *, read_only: bool):
        with self.services.db.transaction(read_only=read_only) as unit:
            if self.confirm_login is not None and not self.confirm_login(unit):
                self.login_changed = True
                raise LoginChanged()
            ref = self.target(username)
            authorize(self.principal, ref, allow_self=allow_self)
            result = action(unit.accounts.find(ref, for_update=not read_only))  # a writer locks the row
            outcome = audit.FAILURE if verdict and not result else audit.SUCCESS
            event = self._event(ref, outcome)
            if not read_only:
                unit.audit.add(event)
        log_event(event)
        if read_only:
            self.unstored_event = event  # observed once stored
        else:
            self.services.observe(event)
        return result

    def target(self, username: str | None) -> UserRef:
        return parse_username(username, email_usernames=self.services.settings.carbon.email_usernames)

    def record_refusal(self, username: str | None, err: TotpAdminError) -> None:
        """Audit a refused call in a transaction of its own (the operation's was rolled back)."""
        try:
            ref = self.target(username)
        except InvalidUsername:
            ref = None
        outcome = audit.DENIED if isinstance(err, NotAuthorized) else audit.FAULT
        event = self._event(ref, outcome, type(err).__name__, raw_target=username)
        log_event(event)
        store_event(self.services, event)

    def _event(self, ref: UserRef | None, outcome: str, detail: str = "", raw_target: str | None = None):
        return audit.AuditEvent(
            request_id=self.request_id, source=self.peer, caller=self.principal.ref.qualified,
            operation=self.operation, target=ref.qualified if ref else raw_target, tenant=ref.tenant if ref else None,
            outcome=outcome, detail=detail,
        )


def log_fields(event: audit.AuditEvent) -> dict[str, str]:
    """The keys of every audit log line (JSON keys with ``--log-format json``): request_id, source,
    caller, operation, target, outcome, and detail when there is one. The target only if it parsed as a
    user (the event then names its tenant); a name that did not is client input, kept in the audit
    table, not the log: ``-``."""
    fields = {"request_id": event.request_id, "source": event.source, "caller": event.caller,
              "operation": event.operation, "target": event.target if event.tenant else "-",
              "outcome": event.outcome}
    if event.detail:
        fields["detail"] = event.detail
    return fields


def log_event(event: audit.AuditEvent) -> None:
    """The audit log line of ``event``. The caller is quoted: after a failed login it is the name the
    client sent, whatever it holds."""
    fields = log_fields(event)
    audit_log.info("request=%s source=%s caller=%r operation=%s target=%s outcome=%s%s", fields["request_id"],
                   fields["source"], fields["caller"], fields["operation"], fields["target"], fields["outcome"],
                   f" detail={event.detail}" if event.detail else "", extra=fields)


def store_event(services: Services, event: audit.AuditEvent) -> None:
    """Write one audit event on its own; a store outage is logged, not raised."""
    services.observe(event)
    if not services.db.add_audit_event(event):
        audit_log.warning("request=%s: audit event not stored: the database refused it or is unavailable",
                          event.request_id, extra=log_fields(event))
