"""Audit events outside a request's transaction: stored in a transaction of their own, and read back
from everywhere they are kept (the database's ``audit_events`` and, on SQLite, the serving processes'
audit files, audit_files.py), merged newest first."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError

from ..core.audit import AuditEvent
from ..core.errors import StoreUnavailable
from . import audit_files
from .audit_files import AuditFile
from .engine import unavailable
from .models import AuditRecord
from .transaction import Transaction


class AuditEvents:
    """The audit events of one database; ``transaction`` is Database.transaction, ``database_file`` the
    SQLite file that audit files sit beside (None: everything is in ``audit_events``)."""

    def __init__(self, transaction: Callable[..., AbstractContextManager[Transaction]], database_file: Path | None):
        self._transaction = transaction
        self._database_file = database_file
        self._file: AuditFile | None = None

    def add_all(self, events: list[AuditEvent]) -> None:
        """Write ``events`` in one transaction; :class:`StoreUnavailable` if it failed (nothing written)."""
        try:
            with self._transaction() as transaction:
                for event in events:
                    transaction.audit.add(event)
        except SQLAlchemyError as exc:  # e.g. a constraint the database enforces: nothing was written
            raise unavailable(exc) from exc

    def add(self, event: AuditEvent) -> bool:
        """Write one event in a transaction of its own; False (nothing written) if the database refused
        or could not be reached, so that auditing never turns a request into an error."""
        try:
            with self._transaction() as transaction:
                transaction.audit.add(event)
            return True
        except (StoreUnavailable, SQLAlchemyError):
            return False

    def claim_file(self) -> AuditFile | None:
        """This process's audit file for its read-only calls (see audit_files.py), held until
        :meth:`close`; None where they go to ``audit_events`` (PostgreSQL, in-memory SQLite)."""
        if self._file is None and self._database_file is not None:
            self._file = AuditFile.claim(self._database_file)
        return self._file

    def find(self, *, limit: int = 100, **filters) -> list[AuditRecord]:
        """Events, newest first, from ``audit_events`` and every audit file; ``filters`` as
        AuditRepository.find."""
        with self._transaction(read_only=True) as transaction:
            newest = transaction.audit.find(limit=limit, **filters)
        if self._database_file is None:
            return newest
        in_files = audit_files.find(self._database_file, limit=limit, **filters)
        return audit_files.newest_first([newest, *in_files], limit)

    def close(self) -> None:
        """Give the claimed audit file back."""
        if self._file is not None:
            self._file.close()
            self._file = None
