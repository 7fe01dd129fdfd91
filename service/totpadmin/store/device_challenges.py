"""The authIds of the device API (core/device_challenges.py), stored as their SHA-256 only. Every sign-in
adds one and reads one: statements built once, run on the driver's cursor (store/statements.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select, update

from ..core.device_challenges import KEPT_SECONDS, Challenge
from .models import DeviceChallenge

if TYPE_CHECKING:
    from .statements import InTransaction

_CHALLENGES = DeviceChallenge.__table__
_C = _CHALLENGES.c
_HASH = bindparam("b_hash")
_PURGE = delete(_CHALLENGES).where(_C.expires_at < bindparam("b_before"))
_INSERT = insert(_CHALLENGES).values(auth_hash=_HASH, kind=bindparam("b_kind"), user_id=bindparam("b_user_id"),
                                     device_id=bindparam("b_device_id"), client=bindparam("b_client"),
                                     expires_at=bindparam("b_expires_at"), spent=bindparam("b_spent"))
_FIND = select(_C.kind, _C.user_id, _C.device_id, _C.client, _C.expires_at, _C.spent).where(_C.auth_hash == _HASH)
_SPEND = update(_CHALLENGES).where(_C.auth_hash == _HASH, _C.spent == bindparam("b_was")).values(spent=bindparam("b_spent"))


class ChallengeRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    def add(self, challenge: Challenge, *, purge: bool = False) -> None:
        """Store a new authId. ``purge``: first delete every authId that expired over KEPT_SECONDS ago
        (the caller does it now and then, so that the table stays small without a sign-in paying for it)."""
        if purge:
            self._transaction.change(_PURGE, {"b_before": challenge.issued_at - KEPT_SECONDS})
        self._transaction.change(_INSERT, {"b_hash": challenge.auth_hash, "b_kind": challenge.kind,
                                           "b_user_id": challenge.user_id, "b_device_id": challenge.device_id,
                                           "b_client": challenge.client, "b_expires_at": challenge.expires_at,
                                           "b_spent": False})

    def find(self, auth_hash: str) -> Challenge | None:
        rows = self._transaction.fetch(_FIND, {"b_hash": auth_hash})
        if not rows:
            return None
        kind, user_id, device_id, client, expires_at, spent = rows[0]
        return Challenge(auth_hash=auth_hash, kind=kind, user_id=user_id, device_id=device_id, client=client,
                         expires_at=expires_at, spent=bool(spent))

    def spend(self, auth_hash: str) -> bool:
        """Mark it used; False if it already was (a concurrent call used it first: the conditional
        UPDATE lets only one succeed)."""
        return self._transaction.change(_SPEND, {"b_hash": auth_hash, "b_was": False, "b_spent": True}) == 1
