"""Checking a TOTP code: which time step it belongs to, if any. Constant time, clock passed in."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .otp import hotp, time_step, window_offsets


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
