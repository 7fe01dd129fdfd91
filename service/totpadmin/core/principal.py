"""Who is calling, once their credentials have been checked."""

from __future__ import annotations

from dataclasses import dataclass

from .usernames import SUPER_TENANT, UserRef

ADMIN = "admin"
USER = "user"
ROLES = (ADMIN, USER)


@dataclass(frozen=True)
class Principal:
    user_id: int
    ref: UserRef
    role: str

    @property
    def audit_name(self) -> str:
        """Who the audit says called (core.application.Application has the same)."""
        return self.ref.qualified

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_super_admin(self) -> bool:
        return self.is_admin and self.ref.tenant == SUPER_TENANT
