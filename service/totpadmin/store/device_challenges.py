"""The spent authIds of the device API (core/device_challenges.py: an authId is a sealed token, stored
only once used), by their SHA-256, until they expire. Statements built once, run on the driver's cursor
(store/statements.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .models import SpentAuthId

if TYPE_CHECKING:
    from .statements import InTransaction

_SPENT = SpentAuthId.__table__
# INSERT … ON CONFLICT DO NOTHING (each dialect has its own construct for it): of two calls spending one
# authId at once, the second waits for the first and inserts nothing.
_SPEND = {name: dialect.insert(_SPENT).values(auth_hash=bindparam("b_hash"), expires_at=bindparam("b_expires_at"))
          .on_conflict_do_nothing(index_elements=[_SPENT.c.auth_hash])
          for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))}
_IS_SPENT = select(_SPENT.c.expires_at).where(_SPENT.c.auth_hash == bindparam("b_hash"))
_PURGE = delete(_SPENT).where(_SPENT.c.expires_at < bindparam("b_before"))


class ChallengeRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    def spend(self, auth_hash: str, expires_at: float, *, purge_before: float | None = None) -> bool:
        """Record the authId as used; False if it already was. ``purge_before``: first forget the spent
        authIds that expired before then (the caller does it now and then, so the table stays small)."""
        if purge_before is not None:
            self._transaction.change(_PURGE, {"b_before": purge_before})
        spend = _SPEND[self._transaction.connection.dialect.name]
        return self._transaction.change(spend, {"b_hash": auth_hash, "b_expires_at": expires_at}) == 1

    def is_spent(self, auth_hash: str) -> bool:
        return bool(self._transaction.fetch(_IS_SPENT, {"b_hash": auth_hash}))
