"""Reading credentials from an HTTP request. One kind today: HTTP Basic, giving a username and password
(``operations/login.py``'s PasswordCredentials). Bearer tokens and session cookies are read here too
when they come, each into a credentials type of its own with a verifier beside PasswordLogins."""

from __future__ import annotations

import base64
import binascii


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
