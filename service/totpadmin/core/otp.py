"""HOTP (RFC 4226) and TOTP (RFC 6238) codes: making them, and finding the time step a code belongs to.

Pure functions: the time is always passed in, never read from a clock here. Matching is constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

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


@dataclass(frozen=True)
class OtpPolicy:
    algorithm: str = "SHA1"
    digits: int = 6
    period: int = 30
    window_size: int = 3  # WSO2's windowSize: 3 = one step either side


def normalize_code(code: str | None, digits: int) -> str | None:
    """The code as the app shows it, or None if it cannot be one.

    Spaces are dropped; a shorter all-digit code gets its leading zeros back, because WSO2's later
    connector typed the code as an int, so clients generated from its WSDL send 12345 for 012345.
    """
    if code is None:
        return None
    text = "".join(code.split())
    if not text.isascii() or not text.isdigit() or len(text) > digits:
        return None
    return text.zfill(digits)


def matching_step(key: bytes, code: str | None, now: float, policy: OtpPolicy, *, after: int | None = None) -> int | None:
    """The newest time step within the window whose code equals ``code``, or None.

    Steps at or before ``after`` (the last step already accepted) never match: RFC 6238 5.2. Every
    candidate is computed and compared in constant time, so timing says nothing about which one matched.
    """
    wanted = normalize_code(code, policy.digits)
    current = time_step(now, period=policy.period)
    found = None
    for offset in window_offsets(policy.window_size):
        step = current + offset
        if step < 0:
            continue
        candidate = hotp(key, step, digits=policy.digits, algorithm=policy.algorithm)
        equal = hmac.compare_digest(candidate, wanted or "x" * policy.digits)
        fresh = after is None or step > after
        if equal and fresh and wanted is not None:
            found = step
    return found
