"""JSON replies, as the HTTP-neutral :class:`~..messages.ApiReply` the server writes back."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from ..messages import ApiReply

JSON = "application/json"
# RFC 6749 5.1: token responses, and errors near them, are never cached.
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))


def json_reply(status: int, document: dict, headers: tuple[tuple[str, str], ...] = ()) -> ApiReply:
    return ApiReply(status, JSON, json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
                    headers=headers)


def failure(status: int, code: str, message: str, headers: tuple[tuple[str, str], ...] = ()) -> ApiReply:
    """The JSON APIs' error body: ``{"status": "FAILURE", "code", "message"}`` (the CIAM API's)."""
    return json_reply(status, {"status": "FAILURE", "code": code, "message": message}, headers)


def not_found() -> ApiReply:
    return failure(404, "NOT_FOUND", "No such resource")


def method_not_allowed(allowed: list[str]) -> ApiReply:
    return failure(405, "METHOD_NOT_ALLOWED", "Method not allowed", headers=(("Allow", ", ".join(allowed)),))


def too_large(limit: int) -> ApiReply:
    return failure(413, "TOO_LARGE", f"The request body is longer than {limit} bytes")


def internal_error() -> ApiReply:
    return failure(500, "INTERNAL_ERROR", "Internal server error")


def bearer_refused() -> ApiReply:
    """RFC 6750 3.1: a missing, wrong, expired or revoked access token."""
    return failure(401, "INVALID_TOKEN", "The access token is missing, invalid or expired",
                   headers=(("WWW-Authenticate", 'Bearer realm="totp-admin", error="invalid_token"'),))


def insufficient_scope(scope: str) -> ApiReply:
    """RFC 6750 3.1: the token lacks the scope the call needs."""
    return failure(403, "INSUFFICIENT_SCOPE", f"The access token lacks the scope {scope}",
                   headers=(("WWW-Authenticate", f'Bearer realm="totp-admin", error="insufficient_scope", '
                                                 f'scope="{scope}"'),))


def user_locked(until: float, message: str) -> ApiReply:
    """423: the user is locked out until ``until`` (epoch seconds): ``lockedUntil`` and ``Retry-After``."""
    when = datetime.fromtimestamp(until, timezone.utc).isoformat(timespec="seconds")
    retry = max(1, int(until - datetime.now(timezone.utc).timestamp()) + 1)
    return json_reply(423, {"status": "FAILURE", "code": "USER_LOCKED", "message": f"{message} (locked until {when})",
                            "lockedUntil": when}, (("Retry-After", str(retry)),))


def throttled(retry_after: int) -> ApiReply:
    """429: the login throttle (the JSON APIs' FAILURE body)."""
    return failure(429, "TOO_MANY_REQUESTS", "Too many failed attempts; try again later",
                   (("Retry-After", str(retry_after)),))


def unavailable() -> ApiReply:
    """503: the store is unreachable (the JSON APIs' FAILURE body)."""
    return failure(503, "UNAVAILABLE", "The TOTP store is unavailable; try again later", (("Retry-After", "5"),))
