"""Shared secrets: how many random bytes, and how they are written for authenticator apps."""

from __future__ import annotations

import base64
import binascii
import os

BASE32 = "Base32"
BASE64 = "Base64"
ENCODINGS = (BASE32, BASE64)

# RFC 4226 R6: at least 128 bits, 160 recommended.
MIN_SECRET_BYTES = 16
DEFAULT_SECRET_BYTES = 20
MAX_SECRET_BYTES = 64


def new_secret(length: int = DEFAULT_SECRET_BYTES) -> bytes:
    """``length`` bytes from the operating system's CSPRNG."""
    if not MIN_SECRET_BYTES <= length <= MAX_SECRET_BYTES:
        raise ValueError(f"secret length must be {MIN_SECRET_BYTES}..{MAX_SECRET_BYTES} bytes")
    return os.urandom(length)


def encode_secret(secret: bytes, encoding: str) -> str:
    """Base32 (RFC 4648 upper case, no padding, as the Key URI format wants) or standard Base64."""
    if encoding == BASE32:
        return base64.b32encode(secret).decode("ascii").rstrip("=")
    if encoding == BASE64:
        return base64.b64encode(secret).decode("ascii")
    raise ValueError(f"unknown secret encoding {encoding!r}")


def decode_secret(text: str, encoding: str) -> bytes:
    """Inverse of :func:`encode_secret`; tolerant of lower case, spaces and missing padding."""
    cleaned = "".join(text.split())
    try:
        if encoding == BASE32:
            cleaned = cleaned.upper()
            return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
        if encoding == BASE64:
            return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid {encoding}") from exc
    raise ValueError(f"unknown secret encoding {encoding!r}")
