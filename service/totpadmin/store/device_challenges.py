"""The authIds of the device API (core/device_challenges.py), stored as their SHA-256 only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from ..core.device_challenges import KEPT_SECONDS, Challenge
from .models import DeviceChallenge

if TYPE_CHECKING:
    from .statements import InTransaction

_CHALLENGES = DeviceChallenge.__table__


class ChallengeRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    def add(self, challenge: Challenge) -> None:
        """Store a new authId; the user's authIds that expired over KEPT_SECONDS ago are deleted first
        (the table stays small)."""
        c = _CHALLENGES.c
        conn = self._transaction.connection
        conn.execute(delete(_CHALLENGES).where(c.user_id == challenge.user_id,
                                               c.expires_at < challenge.issued_at - KEPT_SECONDS))
        conn.execute(insert(_CHALLENGES).values(
            auth_hash=challenge.auth_hash, kind=challenge.kind, user_id=challenge.user_id,
            device_id=challenge.device_id, client=challenge.client, expires_at=challenge.expires_at, spent=False))

    def find(self, auth_hash: str, *, for_update: bool = True) -> Challenge | None:
        c = _CHALLENGES.c
        query = select(c.auth_hash, c.kind, c.user_id, c.device_id, c.client, c.expires_at, c.spent).where(
            c.auth_hash == auth_hash)
        row = self._transaction.connection.execute(query.with_for_update() if for_update else query).first()
        if row is None:
            return None
        return Challenge(auth_hash=row.auth_hash, kind=row.kind, user_id=row.user_id, device_id=row.device_id,
                         client=row.client, expires_at=row.expires_at, spent=row.spent)

    def spend(self, auth_hash: str) -> bool:
        """Mark it used; False if it already was (a concurrent call used it first)."""
        c = _CHALLENGES.c
        result = self._transaction.connection.execute(
            update(_CHALLENGES).where(c.auth_hash == auth_hash, c.spent.is_(False)).values(spent=True))
        return result.rowcount == 1
