"""What every request shares, built once at start: the use cases and the login steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..config.settings import Settings
from ..core.audit import AuditEvent
from ..core.authentication import Authenticator
from ..core.credential_cache import CredentialCache
from ..core.passwords import PasswordHasher
from ..core.devices import Devices
from ..core.enrollment import Enrollment
from ..core.sessions import SessionPolicy
from ..core.validation import Validation
from ..store.database import Database
from .audit_trail import AuditTrail
from .application_logins import BearerLogins, ClientLogins
from .devices import DeviceOperations
from .login import PasswordLogins
from .oauth import OAuthTokens
from .identity import IdentityOperations
from .me_totp import MeTotpOperations
from .my_account import AccountOperations
from .sessions import SessionLogins, SessionOperations
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
    hasher: PasswordHasher = field(default_factory=PasswordHasher)  # OAuth2 client secrets, as passwords
    devices: Devices | None = None  # several devices per user (None: built from enrollment)
    operations: TotpOperations = field(init=False, repr=False)
    device_operations: DeviceOperations = field(init=False, repr=False)  # the device API's use cases
    logins: PasswordLogins = field(init=False, repr=False)  # HTTP Basic logins, refusals audited
    tokens: OAuthTokens = field(init=False, repr=False)  # OAuth2 access tokens
    client_logins: ClientLogins = field(init=False, repr=False)  # the token request's client credentials
    bearer_logins: BearerLogins = field(init=False, repr=False)  # access tokens
    session_operations: SessionOperations = field(init=False, repr=False)  # sign-in sessions
    session_logins: SessionLogins = field(init=False, repr=False)  # session tokens (cookie or bearer)
    me_totp_operations: MeTotpOperations = field(init=False, repr=False)  # WSO2's me/totp
    identity_operations: IdentityOperations = field(init=False, repr=False)  # the identity enrollment API
    account_operations: AccountOperations = field(init=False, repr=False)  # MyAccount (the pages)

    def __post_init__(self):
        operations = TotpOperations(self.settings, self.db, self.enrollment, self.validation, self.audit_trail,
                                    self.observe)
        object.__setattr__(self, "operations", operations)
        devices = self.devices if self.devices is not None else Devices(self.settings.totp, self.enrollment)
        object.__setattr__(self, "device_operations", DeviceOperations(self.settings, self.db, devices,
                                                                       self.audit_trail, self.observe))
        object.__setattr__(self, "logins", PasswordLogins(self.db, self.authenticator, operations.audit_alone))
        tokens = OAuthTokens(self.db, self.settings.totp.access_token_seconds, self.audit_trail, self.observe)
        cache_seconds = self.settings.credential_cache_seconds
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "client_logins", ClientLogins(self.db, self.hasher, CredentialCache(ttl=cache_seconds),
                                                               operations.audit_alone))
        object.__setattr__(self, "bearer_logins", BearerLogins(tokens, operations.audit_alone, ttl=cache_seconds))
        t = self.settings.totp
        policy = SessionPolicy(t.session_idle_seconds, t.session_max_seconds)
        sessions = SessionOperations(self.db, self.validation, policy, self.audit_trail, self.observe)
        object.__setattr__(self, "session_operations", sessions)
        object.__setattr__(self, "session_logins", SessionLogins(sessions, operations.audit_alone))
        object.__setattr__(self, "me_totp_operations",
                           MeTotpOperations(sessions, self.enrollment, self.validation, t.digits))
        object.__setattr__(self, "identity_operations", IdentityOperations(self.settings, sessions, self.enrollment))
        object.__setattr__(self, "account_operations", AccountOperations(self.settings, sessions, devices,
                                                                         self.enrollment))
