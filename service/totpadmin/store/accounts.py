"""A user's claims as the core sees them (:class:`totpadmin.core.enrollment.Account`).

Sensitive claims are sealed with the :class:`SecretBox` on write and opened on read, with the tenant,
user and claim URI bound in as associated data.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import claims
from ..core.errors import UnknownTenant, UnknownUser
from ..core.secretbox import SecretBox, associated_data
from ..core.usernames import UserRef
from .models import Claim, Tenant, User


class StoredAccount:
    def __init__(self, session: Session, box: SecretBox, user: User, ref: UserRef):
        self.ref = ref
        self.user_id = user.id
        self._session = session
        self._box = box
        self._tenant_id = user.tenant_id
        rows = session.scalars(select(Claim).where(Claim.user_id == user.id))
        self._claims: dict[str, Claim] = {row.uri: row for row in rows}

    def _aad(self, uri: str) -> bytes:
        return associated_data(self._tenant_id, self.user_id, uri)

    def get(self, uri: str) -> str | None:
        row = self._claims.get(uri)
        if row is None:
            return None
        if row.key_id is None:
            return row.value
        return self._box.open(row.key_id, row.value, self._aad(uri))

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
            key_id, value = self._box.seal(value, self._aad(uri))
        if row is None:
            row = Claim(user_id=self.user_id, uri=uri, value=value, key_id=key_id)
            self._session.add(row)
            self._claims[uri] = row
        else:
            row.value, row.key_id = value, key_id
        self._session.flush()


class AccountRepository:
    def __init__(self, session: Session, box: SecretBox):
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
