"""HOTP (RFC 4226) and TOTP (RFC 6238) codes.

Pure functions: the time is always passed in, never read from a clock here.
"""

from __future__ import annotations

import hashlib
import hmac

ALGORITHMS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def hotp(key: bytes, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The ``digits``-digit HOTP value of ``key`` at ``counter``, zero-padded."""
    if counter < 0:
        raise ValueError("counter must not be negative")
    mac = hmac.new(key, counter.to_bytes(8, "big"), ALGORITHMS[algorithm]).digest()
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(unix_time: float, *, period: int = 30, t0: int = 0) -> int:
    """The RFC 6238 counter T for ``unix_time``: whole periods elapsed since ``t0``."""
    return int((unix_time - t0) // period)


def totp(key: bytes, unix_time: float, *, period: int = 30, digits: int = 6, algorithm: str = "SHA1") -> str:
    """The TOTP value of ``key`` at ``unix_time`` (seconds since the epoch)."""
    return hotp(key, time_step(unix_time, period=period), digits=digits, algorithm=algorithm)


def window_offsets(window_size: int) -> range:
    """Step offsets a verifier accepts for WSO2's ``windowSize``: 3 means one step either side.

    googleauth checks ``-(w-1)//2 .. w//2`` in Java's integer division (which rounds towards zero).
    """
    if window_size < 1:
        raise ValueError("window_size must be at least 1")
    return range(-((window_size - 1) // 2), window_size // 2 + 1)
