"""An application calling with an OAuth2 access token: the principal of the JSON APIs (docs/oauth2.md).

Not a :class:`~.principal.Principal` (a user): core.policy refuses it, so the SOAP admin operations
never run for a token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MFA_DEVICES = "mfa:devices"  # manage a user's devices
MFA_AUTHENTICATE = "mfa:authenticate"  # device authentications
SCOPES = (MFA_DEVICES, MFA_AUTHENTICATE)  # every scope the service knows; a new client gets them all

REQUIRED, OPTIONAL, OFF = "required", "optional", "off"
TOTP_POLICIES = (REQUIRED, OPTIONAL, OFF)  # a client's --totp: Asgardeo's "TOTP as a second factor" per app


@dataclass(frozen=True)
class ClientRecord:
    """A stored OAuth2 client, as a login needs it (the secret only as its Argon2 hash)."""

    id: int  # the row's id
    client_id: str
    name: str
    tenant: str
    scopes: frozenset[str]
    totp_policy: str
    secret_hash: str

    def application(self, scopes: frozenset[str] | None = None) -> Application:
        """The principal of this client; ``scopes``: those of its token, when narrower."""
        return Application(self.id, self.client_id, self.name, self.tenant,
                           self.scopes if scopes is None else scopes, self.totp_policy)


@dataclass(frozen=True)
class Application:
    """An authenticated OAuth2 client: what it may do (``scopes``) and its TOTP policy."""

    client_row: int
    client_id: str
    name: str
    tenant: str
    scopes: frozenset[str]
    totp_policy: str

    @property
    def audit_name(self) -> str:
        """Who the audit says called: ``client:NAME@tenant`` (no user name has a colon before the @)."""
        return f"client:{self.name}@{self.tenant}"


def parse_scopes(text: str | None) -> frozenset[str] | None:
    """The scopes of a space-separated ``scope`` (RFC 6749 3.3); None if one is not known here. An
    absent or empty text is the empty set."""
    scopes = frozenset((text or "").split(" ")) - {""}
    return scopes if scopes <= frozenset(SCOPES) else None


def scope_text(scopes: frozenset[str]) -> str:
    """The space-separated form, in a stable order."""
    return " ".join(sorted(scopes))


def token_digest(token: str) -> str:
    """What the store keeps of an access token: its SHA-256, hex. A token is 256 random bits, so a fast
    hash is enough (nothing to guess), and one indexed lookup finds it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
