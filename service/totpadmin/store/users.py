"""Tenants and users: the SQL user store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core.authentication import LoginRecord
from ..core.errors import LastSuperAdmin, TenantExists, UnknownTenant, UnknownUser, UserExists
from ..core.precis_usernames import new_username
from ..core.principal import ADMIN, ROLES
from ..core.usernames import SUPER_TENANT, UserRef, tenant_domain
from .models import Tenant, User, UserSession

if TYPE_CHECKING:
    from .statements import InTransaction

_USERS = User.__table__
_TENANTS = Tenant.__table__
# Logins are looked up on every request: one statement, built once, run on the driver's cursor.
_LOGIN = select(_USERS.c.id, _TENANTS.c.domain, _USERS.c.username, _USERS.c.role, _USERS.c.password_hash) \
    .join(_TENANTS, _TENANTS.c.id == _USERS.c.tenant_id)
_LOGIN_BY_NAME = _LOGIN.where(_TENANTS.c.domain == bindparam("b_tenant"), _USERS.c.username == bindparam("b_name"))
_LOGIN_BY_ID = _LOGIN.where(_USERS.c.id == bindparam("b_user_id"))


def _record(user: User) -> LoginRecord:
    return LoginRecord(
        user_id=user.id,
        ref=UserRef(tenant=user.tenant.domain, name=user.username),
        role=user.role,
        password_hash=user.password_hash,
    )


class UserRepository:
    def __init__(self, transaction: InTransaction):
        self._transaction = transaction

    @property
    def _session(self) -> Session:
        return self._transaction.session

    # --- tenants ---

    def add_tenant(self, domain: str) -> Tenant:
        domain = tenant_domain(domain)
        if self._tenant(domain) is not None:
            raise TenantExists(domain)
        tenant = Tenant(domain=domain)
        self._session.add(tenant)
        try:
            self._session.flush()
        except IntegrityError:
            raise TenantExists(domain) from None
        return tenant

    def ensure_tenant(self, domain: str) -> Tenant:
        """The tenant, created if missing; safe when another process creates it at the same time."""
        existing = self._tenant(domain)
        if existing is not None:
            return existing
        try:
            with self._session.begin_nested():
                return self.add_tenant(domain)
        except TenantExists:
            return self._tenant(domain)

    def tenants(self) -> list[tuple[str, int]]:
        """(domain, number of users) for every tenant, by domain."""
        rows = self._session.execute(
            select(Tenant.domain, func.count(User.id)).outerjoin(User).group_by(Tenant.id).order_by(Tenant.domain)
        )
        return [(domain, count) for domain, count in rows]

    def _tenant(self, domain: str) -> Tenant | None:
        return self._session.scalar(select(Tenant).where(Tenant.domain == domain))

    # --- users ---

    def add_user(self, ref: UserRef, password_hash: str, role: str) -> UserRef:
        """Add a user under the PRECIS form of ``ref.name`` (core/precis_usernames.py); the name stored.
        :class:`InvalidUsername` for a name PRECIS refuses, :class:`UserExists` when a user of the
        tenant has this name up to case and width."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        name = new_username(ref.name)
        tenant = self._tenant(ref.tenant)
        if tenant is None:
            raise UnknownTenant(ref.tenant)
        stored = UserRef(ref.tenant, name.stored)
        existing = self._session.scalar(select(User.username).where(
            User.tenant_id == tenant.id, (User.username == name.stored) | (User.username_key == name.key)))
        if existing is not None:
            raise UserExists(UserRef(ref.tenant, existing).qualified, differing_in_case=existing != name.stored)
        self._session.add(User(tenant_id=tenant.id, username=name.stored, username_key=name.key,
                               password_hash=password_hash, role=role))
        try:
            self._session.flush()
        except IntegrityError:  # added by another transaction since the check
            raise UserExists(stored.qualified) from None
        return stored

    def set_password(self, ref: UserRef, password_hash: str) -> None:
        """A new password; the user's sessions end with the old one."""
        user = self._require(ref)
        user.password_hash = password_hash
        self._session.execute(delete(UserSession).where(UserSession.user_id == user.id))

    def remove_user(self, ref: UserRef) -> None:
        """Remove the user; :class:`LastSuperAdmin` for carbon.super's last admin."""
        user = self._require_keeping_a_super_admin(ref)
        if user.role == ADMIN:
            self._refuse_last_super_admin(user)
        self._session.delete(user)

    def set_role(self, ref: UserRef, role: str) -> bool:
        """Give the user ``role``; whether it changed. :class:`LastSuperAdmin` for demoting carbon.super's
        last admin."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        user = self._require_keeping_a_super_admin(ref)
        if user.role == role:
            return False
        if user.role == ADMIN:
            self._refuse_last_super_admin(user)
        user.role = role
        return True

    def _require_keeping_a_super_admin(self, ref: UserRef) -> User:
        """The user, for a change that could take an admin away. In carbon.super its tenant row is locked
        first (PostgreSQL; SQLite's writers take turns anyway): two such changes at once queue here, and
        the second counts the admins only after the first committed, so together they cannot remove
        the last two."""
        if ref.tenant == SUPER_TENANT:
            self._session.execute(select(Tenant.id).where(Tenant.domain == SUPER_TENANT).with_for_update())
        return self._require(ref)

    def _refuse_last_super_admin(self, user: User) -> None:
        if user.tenant.domain != SUPER_TENANT:
            return  # a tenant's admins can be replaced by carbon.super's
        admins = self._session.scalar(select(func.count(User.id)).where(User.tenant_id == user.tenant_id,
                                                                         User.role == ADMIN))
        if admins <= 1:
            raise LastSuperAdmin(UserRef(SUPER_TENANT, user.username).qualified)

    def users(self, tenant: str | None = None) -> list[LoginRecord]:
        query = select(User).join(Tenant).order_by(Tenant.domain, User.username)
        if tenant is not None:
            query = query.where(Tenant.domain == tenant)
        return [_record(u) for u in self._session.scalars(query)]

    def users_with_ids(self, tenant: str | None = None) -> list[tuple[LoginRecord, str]]:
        """As :meth:`users`, each with the user's stable public id (users.uuid)."""
        query = select(User).join(Tenant).order_by(Tenant.domain, User.username)
        if tenant is not None:
            query = query.where(Tenant.domain == tenant)
        return [(_record(u), u.uuid) for u in self._session.scalars(query)]

    def count(self) -> int:
        return self._session.scalar(select(func.count(User.id)))

    # --- logins (core.authentication.Logins) ---

    def find_login(self, ref: UserRef) -> LoginRecord | None:
        return self._login(_LOGIN_BY_NAME, {"b_tenant": ref.tenant, "b_name": ref.name})

    def get_login(self, user_id: int) -> LoginRecord | None:
        return self._login(_LOGIN_BY_ID, {"b_user_id": user_id})

    def _login(self, query, params: dict) -> LoginRecord | None:
        rows = self._transaction.fetch(query, params)
        if not rows:
            return None
        user_id, domain, username, role, password_hash = rows[0]
        return LoginRecord(user_id=user_id, ref=UserRef(tenant=domain, name=username), role=role,
                           password_hash=password_hash)

    def _user(self, tenant_id: int, name: str) -> User | None:
        return self._session.scalar(select(User).where(User.tenant_id == tenant_id, User.username == name))

    def _require(self, ref: UserRef) -> User:
        tenant = self._tenant(ref.tenant)
        if tenant is None:
            raise UnknownTenant(ref.tenant)
        user = self._user(tenant.id, ref.name)
        if user is None:
            raise UnknownUser(ref.qualified)
        return user
