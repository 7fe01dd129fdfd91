"""What a service method sees: the long-lived services and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, TypeVar

from ..config.settings import Settings
from ..core.authentication import Authenticator
from ..core.account import Account
from ..core.enrollment import Enrollment
from ..core.policy import authorize
from ..core.principal import Principal
from ..core.usernames import parse_username
from ..core.validation import Validation
from ..store.database import Database

T = TypeVar("T")


@dataclass(frozen=True)
class Services:
    """Built once at start and shared by every request (all thread-safe)."""

    settings: Settings
    db: Database
    enrollment: Enrollment
    validation: Validation
    authenticator: Authenticator


@dataclass(frozen=True)
class CallContext:
    """``ctx.udc`` of one spyne call."""

    services: Services
    principal: Principal

    def manage(self, username: str | None, action: Callable[[Account], T], *, allow_self: bool = False) -> T:
        """Run ``action`` on ``username``'s account in one transaction, if the caller may."""
        ref = parse_username(username, email_usernames=self.services.settings.carbon.email_usernames)
        authorize(self.principal, ref, allow_self=allow_self)
        with self.services.db.transaction() as unit:
            return action(unit.accounts.find(ref))
