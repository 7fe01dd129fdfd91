"""The audit trail in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, insert, select

from ..core.audit import AuditEvent
from .models import AuditRecord, _now

if TYPE_CHECKING:
    from .statements import InTransaction

_COLUMNS = ("at", "request_id", "source", "caller", "operation", "target", "tenant", "outcome", "detail")
# Run on the driver's cursor (store/statements.py): every column named; its parameters: insert_params.
INSERT = insert(AuditRecord.__table__).values(**{name: bindparam(f"b_{name}") for name in _COLUMNS})

_MAX = 255


def _text(value: str | None, limit: int = _MAX) -> str | None:
    """Printable characters only (PostgreSQL refuses NUL; logs and terminals hate control characters)."""
    if value is None:
        return None
    if value.isprintable():
        return value[:limit]
    return "".join(ch if ch.isprintable() else "?" for ch in value[:limit])


def insert_params(event: AuditEvent) -> dict:
    """The parameters of :data:`INSERT` for ``event``, recorded now."""
    return {"b_at": _now(), "b_request_id": _text(event.request_id, 64), "b_source": _text(event.source, 64),
            "b_caller": _text(event.caller), "b_operation": _text(event.operation, 64),
            "b_target": _text(event.target), "b_tenant": _text(event.tenant), "b_outcome": event.outcome,
            "b_detail": _text(event.detail)}


class AuditRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    def add(self, event: AuditEvent) -> None:
        self._transaction.change(INSERT, insert_params(event))

    def find(self, *, tenant: str | None = None, user: str | None = None, operation: str | None = None,
             outcome: str | None = None, since: datetime | None = None, limit: int = 100) -> list[AuditRecord]:
        """Newest first (by time, then id). ``user`` matches the caller or the target."""
        query = select(AuditRecord).order_by(AuditRecord.at.desc(), AuditRecord.id.desc()).limit(limit)
        if tenant:
            query = query.where(AuditRecord.tenant == tenant)
        if user:
            query = query.where((AuditRecord.caller == user) | (AuditRecord.target == user))
        if operation:
            query = query.where(AuditRecord.operation == operation)
        if outcome:
            query = query.where(AuditRecord.outcome == outcome)
        if since:
            query = query.where(AuditRecord.at >= since)
        return list(self._transaction.session.scalars(query))
