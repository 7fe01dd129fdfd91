"""The audit log line: one per audited event, with the same keys in text and JSON logs."""

from __future__ import annotations

import logging

from ..core.audit import AuditEvent

audit_log = logging.getLogger("totpadmin.audit")


def log_fields(event: AuditEvent) -> dict[str, str]:
    """The keys of every audit log line (JSON keys with ``--log-format json``): request_id, source,
    caller, operation, target, outcome, and detail when there is one. The target only if it parsed as a
    user (the event then names its tenant); a name that did not is client input, kept in the audit
    table, not the log: ``-``."""
    fields = {"request_id": event.request_id, "source": event.source, "caller": event.caller,
              "operation": event.operation, "target": event.target if event.tenant and event.target else "-",
              "outcome": event.outcome}
    if event.detail:
        fields["detail"] = event.detail
    return fields


def log_event(event: AuditEvent) -> None:
    """The audit log line of ``event``. The caller is quoted: after a failed login it is the name the
    client sent, whatever it holds."""
    fields = log_fields(event)
    audit_log.info("request=%s source=%s caller=%r operation=%s target=%s outcome=%s%s", fields["request_id"],
                   fields["source"], fields["caller"], fields["operation"], fields["target"], fields["outcome"],
                   f" detail={event.detail}" if event.detail else "", extra=fields)
