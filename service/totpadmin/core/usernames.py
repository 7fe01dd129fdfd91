"""Split a Carbon username into tenant domain and tenant-aware name, as Carbon's MultitenantUtils does.

``bob`` is ``bob`` in ``carbon.super``; ``bob@abc.com`` is ``bob`` in ``abc.com`` (the text after the
last ``@``, lower-cased). With email usernames enabled, one ``@`` belongs to the name
(``bob@gmail.com`` is a super-tenant user) and a second one separates the tenant. A user-store prefix
such as ``SECONDARY/`` stays part of the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidTenantDomain, InvalidUsername

SUPER_TENANT = "carbon.super"
MAX_USERNAME_LENGTH = 255
_DOMAIN_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TENANT_DOMAIN = re.compile(rf"{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*")


def tenant_domain(raw: str) -> str:
    """``raw`` as a tenant domain (lower-cased); :class:`InvalidTenantDomain` unless it is a DNS-style name."""
    domain = raw.strip().lower()
    if len(domain) > 253 or not _TENANT_DOMAIN.fullmatch(domain):
        raise InvalidTenantDomain(raw)
    return domain


@dataclass(frozen=True)
class UserRef:
    """A user named within a tenant."""

    tenant: str
    name: str

    @property
    def qualified(self) -> str:
        """The name as a client writes it: ``name`` for the super tenant, ``name@tenant`` otherwise."""
        return self.name if self.tenant == SUPER_TENANT else f"{self.name}@{self.tenant}"


def parse_username(raw: str | None, *, email_usernames: bool = False) -> UserRef:
    """Parse ``raw`` into a :class:`UserRef`; raise :class:`InvalidUsername` if it names nobody."""
    if raw is None or not raw.strip(" "):
        raise InvalidUsername("The username is missing or empty")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in raw):
        raise InvalidUsername("The username contains control characters")
    raw = raw.strip(" ")
    if len(raw) > MAX_USERNAME_LENGTH:
        raise InvalidUsername(f"The username is longer than {MAX_USERNAME_LENGTH} characters")

    name, tenant = raw, SUPER_TENANT
    if email_usernames:
        if raw.count("@") >= 2:
            name, _, tenant = raw.rpartition("@")
        elif raw.lower().endswith("@" + SUPER_TENANT):
            name = raw[: -len(SUPER_TENANT) - 1]
    elif "@" in raw:
        name, _, tenant = raw.rpartition("@")
    tenant = tenant.lower()
    if not name or not tenant:
        raise InvalidUsername(f"The username {raw} has an empty name or tenant domain")
    return UserRef(tenant=tenant, name=name)
