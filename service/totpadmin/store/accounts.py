"""A user's claims as the core sees them (:class:`totpadmin.core.enrollment.Account`).

Sensitive claims are sealed with the :class:`SecretBox` on write and opened on read, with the tenant,
user and claim URI bound in as associated data.
"""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from ..core import claims
from ..core.errors import UnknownTenant, UnknownUser
from ..core.lockout import GuardState
from ..core.recovery import IssuedCode
from ..core.secretbox import SecretBox, associated_data
from ..core.usernames import UserRef
from .models import Claim, RecoveryCode, Tenant, TotpState, User

_GUARD_FIELDS = tuple(f.name for f in fields(GuardState))


class StoredAccount:
    def __init__(self, session: Session, box: SecretBox | None, user: User, ref: UserRef):
        self.ref = ref
        self.user_id = user.id
        self._session = session
        self._box = box
        self._tenant_id = user.tenant_id
        rows = session.scalars(select(Claim).where(Claim.user_id == user.id))
        self._claims: dict[str, Claim] = {row.uri: row for row in rows}

    def _aad(self, uri: str) -> bytes:
        return associated_data(self._tenant_id, self.user_id, uri)

    @property
    def _secrets(self) -> SecretBox:
        if self._box is None:
            raise RuntimeError("encrypted claims need the key ring; this store was opened without it")
        return self._box

    def get(self, uri: str) -> str | None:
        row = self._claims.get(uri)
        if row is None:
            return None
        if row.key_id is None:
            return row.value
        return self._secrets.open(row.key_id, row.value, self._aad(uri))

    def stored(self, uri: str) -> str | None:
        row = self._claims.get(uri)
        return None if row is None else row.value

    def set(self, uri: str, value: str | None) -> None:
        row = self._claims.get(uri)
        if value is None:
            if row is not None:
                self._session.delete(row)
                del self._claims[uri]
            return
        key_id = None
        if uri in claims.SENSITIVE:
            key_id, value = self._secrets.seal(value, self._aad(uri))
        if row is None:
            row = Claim(user_id=self.user_id, uri=uri, value=value, key_id=key_id)
            self._session.add(row)
            self._claims[uri] = row
        else:
            row.value, row.key_id = value, key_id
        self._session.flush()


    # --- verification bookkeeping (core.lockout.GuardState) ---

    def state(self) -> GuardState:
        row = self._session.get(TotpState, self.user_id, populate_existing=True)
        if row is None:
            return GuardState()
        return GuardState(**{name: getattr(row, name) for name in _GUARD_FIELDS})

    def save_state(self, **changes) -> None:
        """Write some fields of the state (the caller holds the user's row lock)."""
        unknown = set(changes) - set(_GUARD_FIELDS)
        if unknown:
            raise ValueError(f"unknown state fields {sorted(unknown)}")
        self._ensure_state_row()
        self._session.execute(update(TotpState).where(TotpState.user_id == self.user_id).values(**changes))

    def claim_step(self, step: int) -> bool:
        """Record ``step`` as used if it is newer than every used one: one conditional UPDATE, so two
        processes racing with the same code cannot both succeed."""
        self._ensure_state_row()
        result = self._session.execute(
            update(TotpState)
            .where(TotpState.user_id == self.user_id,
                   or_(TotpState.last_step.is_(None), TotpState.last_step < step))
            .values(last_step=step)
        )
        return result.rowcount == 1

    def _ensure_state_row(self) -> None:
        if self._session.get(TotpState, self.user_id) is None:
            self._session.execute(insert(TotpState).values(user_id=self.user_id, failures=0, lockouts=0))

    # --- recovery codes ---

    def replace_recovery_codes(self, codes: list[IssuedCode]) -> None:
        self._session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == self.user_id))
        for code in codes:
            self._session.add(RecoveryCode(user_id=self.user_id, lookup=code.lookup, code_hash=code.code_hash))
        self._session.flush()

    def recovery_code_hash(self, lookup: str) -> tuple[int, str] | None:
        row = self._session.execute(
            select(RecoveryCode.id, RecoveryCode.code_hash)
            .where(RecoveryCode.user_id == self.user_id, RecoveryCode.lookup == lookup)
        ).first()
        return None if row is None else (row.id, row.code_hash)

    def spend_recovery_code(self, code_id: int) -> bool:
        """Delete the code; False if it was already gone (spent by a concurrent call)."""
        result = self._session.execute(delete(RecoveryCode).where(RecoveryCode.id == code_id))
        return result.rowcount == 1

    def recovery_codes_left(self) -> int:
        return self._session.scalar(select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == self.user_id))


class AccountRepository:
    def __init__(self, session: Session, box: SecretBox | None):
        self._session = session
        self._box = box

    def find(self, ref: UserRef, *, for_update: bool = True) -> StoredAccount:
        """The account of ``ref``, its user row locked for the rest of the transaction."""
        tenant = self._session.scalar(select(Tenant).where(Tenant.domain == ref.tenant))
        if tenant is None:
            raise UnknownTenant(ref.tenant)
        query = select(User).where(User.tenant_id == tenant.id, User.username == ref.name)
        if for_update:
            query = query.with_for_update(of=User)
        user = self._session.scalar(query)
        if user is None:
            raise UnknownUser(ref.qualified)
        return StoredAccount(self._session, self._box, user, ref)
