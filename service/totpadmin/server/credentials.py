"""Reading credentials from an HTTP request: HTTP Basic (a username and password, or an OAuth2 client's
id and secret), Bearer (an OAuth2 access token, RFC 6750 2.1, or a session token) and the session
cookie ``accesstoken``. Each becomes a credentials type of
``operations/`` with its verifier. Sent more than once, the header counts as absent: which one would
count is ambiguous (a proxy may have checked the other)."""

from __future__ import annotations

import base64
import binascii
import re


def basic_credentials(headers: list[bytes] | None) -> tuple[str, str] | None:
    """(user, password) from the ``Authorization: Basic ...`` header; None if absent, malformed, or sent
    more than once (which one would count is ambiguous: a proxy may have checked the other)."""
    if not headers or len(headers) != 1:
        return None
    scheme, _, encoded = headers[0].strip().partition(b" ")
    if scheme.lower() != b"basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user or not password:
        return None
    return user, password


# RFC 6750 2.1: b64token, the characters an access token may have.
_TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
MAX_TOKEN = 512


def bearer_token(headers: list[bytes] | None) -> str | None:
    """The token of the ``Authorization: Bearer ...`` header; None if absent, malformed or sent twice."""
    if not headers or len(headers) != 1:
        return None
    scheme, _, token = headers[0].strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or len(token) > MAX_TOKEN or not _TOKEN.fullmatch(token):
        return None
    return token.decode("ascii")


SESSION_COOKIE = b"accesstoken"  # Misakey's name (seed 003); ``tokentype=bearer`` is set beside it
_SESSION_TOKEN = re.compile(rb"[A-Za-z0-9_-]{20,128}")


def session_cookie(value: bytes | None) -> str | None:
    """The session token of the ``accesstoken`` cookie; None if absent or not a token's shape."""
    if value is None or not _SESSION_TOKEN.fullmatch(value):
        return None
    return value.decode("ascii")
