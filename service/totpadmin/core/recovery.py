"""Single-use recovery codes: made here, shown once, stored only as slow hashes.

A code is 16 Base32 characters shown as ``abcd-efgh-ijkl-mnop``. The first four are a lookup id (not
secret) so that checking a code costs one slow hash, not one per stored code; the other twelve are the
secret: 60 bits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from .passwords import PasswordHasher

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
LOOKUP_CHARS = 4
SECRET_CHARS = 12
CODE_CHARS = LOOKUP_CHARS + SECRET_CHARS

# OWASP's minimum Argon2id setting: ample for 60 random bits, and 10 codes hash in well under a second.
RECOVERY_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class IssuedCode:
    shown: str  # what the user writes down
    lookup: str
    code_hash: str


def issue(count: int, hasher: PasswordHasher = RECOVERY_HASHER) -> list[IssuedCode]:
    """``count`` new codes with distinct lookup ids."""
    issued: list[IssuedCode] = []
    lookups: set[str] = set()
    while len(issued) < count:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
        if raw[:LOOKUP_CHARS] in lookups:
            continue
        lookups.add(raw[:LOOKUP_CHARS])
        shown = "-".join(raw[i : i + 4] for i in range(0, CODE_CHARS, 4))
        issued.append(IssuedCode(shown=shown, lookup=raw[:LOOKUP_CHARS], code_hash=hasher.hash(raw)))
    return issued


def parse(text: str | None) -> tuple[str, str] | None:
    """``(lookup, normalized code)`` if ``text`` has the shape of a recovery code, else None."""
    if text is None:
        return None
    raw = "".join(ch for ch in text.lower() if ch not in " -")
    if len(raw) != CODE_CHARS or any(ch not in ALPHABET for ch in raw):
        return None
    return raw[:LOOKUP_CHARS], raw


def matches(code_hash: str, normalized: str, hasher: PasswordHasher = RECOVERY_HASHER) -> bool:
    return hasher.verify(code_hash, normalized)
