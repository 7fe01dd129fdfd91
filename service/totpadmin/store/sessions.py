"""Sign-in sessions (core/sessions.py), by the SHA-256 of their token. Statements built once, run on the
driver's cursor (store/statements.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select, update

from ..core.sessions import Session
from .models import User, UserSession

if TYPE_CHECKING:
    from .statements import InTransaction

_S = UserSession.__table__
_C = _S.c
_HASH = bindparam("b_hash")
_USER = bindparam("b_user_id")
_ADD = insert(_S).values(token_hash=_HASH, user_id=_USER, level=bindparam("b_level"),
                         created_at=bindparam("b_created_at"), last_seen_at=bindparam("b_last_seen_at"),
                         totp_at=bindparam("b_totp_at"))
_FIND = select(_C.user_id, _C.level, _C.created_at, _C.last_seen_at, _C.totp_at).where(_C.token_hash == _HASH)
_TOUCH = update(_S).where(_C.token_hash == _HASH).values(last_seen_at=bindparam("b_now"))
# Rotation: the row keeps its user and start, under a new token, if the old token is still its own.
_ROTATE = update(_S).where(_C.token_hash == _HASH).values(
    token_hash=bindparam("b_new_hash"), level=bindparam("b_level"), totp_at=bindparam("b_totp_at"),
    last_seen_at=bindparam("b_now"))
_END = delete(_S).where(_C.token_hash == _HASH)
_END_ALL = delete(_S).where(_C.user_id == _USER)
_PURGE = delete(_S).where(_C.last_seen_at < bindparam("b_before"))
_UUID = select(User.__table__.c.uuid).where(User.__table__.c.id == _USER)


class SessionRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    def add(self, session: Session) -> None:
        self._transaction.change(_ADD, {"b_hash": session.token_hash, "b_user_id": session.user_id,
                                        "b_level": session.level, "b_created_at": session.created_at,
                                        "b_last_seen_at": session.last_seen_at, "b_totp_at": session.totp_at})

    def find(self, token_hash: str) -> Session | None:
        rows = self._transaction.fetch(_FIND, {"b_hash": token_hash})
        if not rows:
            return None
        user_id, level, created_at, last_seen_at, totp_at = rows[0]
        return Session(token_hash, user_id, level, created_at, last_seen_at, totp_at)

    def touch(self, token_hash: str, now: float) -> None:
        self._transaction.change(_TOUCH, {"b_hash": token_hash, "b_now": now})

    def rotate(self, old: Session, new: Session) -> bool:
        """Move the session to ``new``'s token, level and times; False if the old token was no longer it."""
        return self._transaction.change(_ROTATE, {"b_hash": old.token_hash, "b_new_hash": new.token_hash,
                                                  "b_level": new.level, "b_totp_at": new.totp_at,
                                                  "b_now": new.last_seen_at}) == 1

    def end(self, token_hash: str) -> bool:
        return self._transaction.change(_END, {"b_hash": token_hash}) == 1

    def end_all(self, user_id: int) -> int:
        """End every session of the user (password changed, TOTP reset); how many there were."""
        return self._transaction.change(_END_ALL, {"b_user_id": user_id})

    def purge(self, idle_before: float) -> int:
        """Delete sessions idle since before ``idle_before`` (expired: nobody can use them)."""
        return self._transaction.change(_PURGE, {"b_before": idle_before})

    def user_uuid(self, user_id: int) -> str | None:
        rows = self._transaction.fetch(_UUID, {"b_user_id": user_id})
        return rows[0][0] if rows else None
