"""authIds of the device API: a device to activate, or a sign-in to finish with a code.

An authId is a random UUID (122 random bits: unguessable), shown once; only its SHA-256 is stored. It is
bound to its user, device and application, expires (deviceAuthenticationLifetime), and is spent by its
first successful use; a wrong code leaves it usable, each wrong code counting toward the user's lockout.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

ACTIVATION, AUTHENTICATION = "activation", "authentication"
KEPT_SECONDS = 3600  # an expired or spent authId is told apart from an unknown one (410, not 404) this long


@dataclass(frozen=True)
class Challenge:
    auth_hash: str
    kind: str  # ACTIVATION or AUTHENTICATION
    user_id: int
    device_id: int | None  # None: the primary device of an older enrolment (no row)
    client: str  # the application's client_id
    expires_at: float  # epoch seconds
    spent: bool = False
    issued_at: float = 0.0


def new_auth_id() -> str:
    return str(uuid.uuid4())


def auth_hash(auth_id: str) -> str:
    return hashlib.sha256(auth_id.encode("utf-8")).hexdigest()
