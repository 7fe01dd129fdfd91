"""What every request shares, built once at start: the use cases and the login steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..config.settings import Settings
from ..core.audit import AuditEvent
from ..core.authentication import Authenticator
from ..core.enrollment import Enrollment
from ..core.validation import Validation
from ..store.database import Database
from .audit_trail import AuditTrail
from .login import PasswordLogins
from .totp import TotpOperations


@dataclass(frozen=True)
class Services:
    """The long-lived parts a protocol's requests use (all thread-safe). ``audit_trail``: where audit
    rows go (None: each in its call's transaction); ``observe`` sees each audit event (e.g. metrics)."""

    settings: Settings
    db: Database
    enrollment: Enrollment
    validation: Validation
    authenticator: Authenticator
    observe: Callable[[AuditEvent], None] = lambda event: None
    audit_trail: AuditTrail | None = None
    operations: TotpOperations = field(init=False, repr=False)
    logins: PasswordLogins = field(init=False, repr=False)  # HTTP Basic logins, refusals audited

    def __post_init__(self):
        operations = TotpOperations(self.settings, self.db, self.enrollment, self.validation, self.audit_trail,
                                    self.observe)
        object.__setattr__(self, "operations", operations)
        object.__setattr__(self, "logins", PasswordLogins(self.db, self.authenticator, operations.audit_alone))
