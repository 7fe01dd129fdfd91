"""The audit trail in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import insert, select

from ..core.audit import AuditEvent
from .models import AuditRecord

if TYPE_CHECKING:
    from .database import Unit

_INSERT = insert(AuditRecord.__table__)

_MAX = 255


def _text(value: str | None, limit: int = _MAX) -> str | None:
    """Printable characters only (PostgreSQL refuses NUL; logs and terminals hate control characters)."""
    if value is None:
        return None
    if value.isprintable():
        return value[:limit]
    return "".join(ch if ch.isprintable() else "?" for ch in value[:limit])


class AuditRepository:
    def __init__(self, unit: Unit):
        self._unit = unit

    def add(self, event: AuditEvent) -> None:
        self._unit.connection.execute(_INSERT, dict(
            request_id=_text(event.request_id, 64), source=_text(event.source, 64), caller=_text(event.caller),
            operation=_text(event.operation, 64), target=_text(event.target), tenant=_text(event.tenant),
            outcome=event.outcome, detail=_text(event.detail),
        ))

    def find(self, *, tenant: str | None = None, user: str | None = None, operation: str | None = None,
             outcome: str | None = None, since: datetime | None = None, limit: int = 100) -> list[AuditRecord]:
        """Newest first. ``user`` matches the caller or the target."""
        query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
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
        return list(self._unit.session.scalars(query))
