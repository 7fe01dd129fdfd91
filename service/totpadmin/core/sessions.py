"""Sign-in sessions of the self-service APIs and pages, with their assurance level (ACR).

A password gives a session at ACR 1; a TOTP code or a recovery code raises it to 2; a TOTP code entered
in the last :data:`STEP_UP_SECONDS` counts as 3 (step-up, for the most sensitive changes). The session
token (256 random bits) is shown to the client only; the store keeps its SHA-256. Every change of level
rotates the token (no fixation). A session ends after ``idle_seconds`` without a request, after
``max_seconds`` whatever happens, at sign-out, and when the user's password changes or TOTP is reset.

The CSRF token of a session is derived from its token (an HMAC), so it needs no storage and changes
with every rotation; any instance can check it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

ACR_PASSWORD, ACR_SECOND_FACTOR, ACR_STEP_UP = 1, 2, 3
STEP_UP_SECONDS = 300
TOUCH_SECONDS = 60  # a session's last use is written at most this often (its idle timeout is minutes)
TOKEN_BYTES = 32
_CSRF_CONTEXT = b"totp-admin/v1|csrf"

TOTP, RECOVERY = "totp", "recovery"  # what proved the second factor


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(token: str) -> str:
    digest = hmac.new(token.encode("utf-8"), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def csrf_matches(token: str, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant time)."""
    return presented is not None and hmac.compare_digest(csrf_token(token).encode("ascii"),
                                                         presented.encode("utf-8", "replace"))


@dataclass(frozen=True)
class SessionPolicy:
    idle_seconds: int
    max_seconds: int


@dataclass(frozen=True)
class Session:
    """A session as stored."""

    token_hash: str
    user_id: int
    level: int  # ACR_PASSWORD or ACR_SECOND_FACTOR
    created_at: float  # epoch seconds
    last_seen_at: float
    totp_at: float | None = None  # when a TOTP code was last entered in it

    def acr(self, now: float) -> int:
        if self.level >= ACR_SECOND_FACTOR and self.totp_at is not None and now - self.totp_at < STEP_UP_SECONDS:
            return ACR_STEP_UP
        return self.level

    def alive(self, policy: SessionPolicy, now: float) -> bool:
        return now - self.last_seen_at < policy.idle_seconds and now - self.created_at < policy.max_seconds

    def same_level(self, other: Session) -> bool:
        """Whether ``other`` is this session at the same level (its last use may differ)."""
        return (self.token_hash, self.user_id, self.level, self.created_at, self.totp_at) == \
            (other.token_hash, other.user_id, other.level, other.created_at, other.totp_at)

    def touch_due(self, now: float) -> bool:
        return now - self.last_seen_at >= TOUCH_SECONDS
