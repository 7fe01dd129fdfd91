"""The audit trail in SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core.audit import AuditEvent
from .models import AuditRecord

_MAX = 255


class AuditRepository:
    def __init__(self, session: Session):
        self._session = session

    def add(self, event: AuditEvent) -> None:
        self._session.add(AuditRecord(
            request_id=event.request_id[:64], source=event.source[:64], caller=event.caller[:_MAX],
            operation=event.operation[:64], target=event.target[:_MAX] if event.target else None,
            tenant=event.tenant[:_MAX] if event.tenant else None, outcome=event.outcome,
            detail=event.detail[:_MAX],
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
        return list(self._session.scalars(query))
