"""The names new users may get: PRECIS UsernameCaseMapped (RFC 8265 3.3), by the precis-i18n library.

A name (the part before the tenant, a ``SECONDARY/`` user-store prefix included) is width-mapped
(full-width ``ｂｏｂ`` is ``bob``), NFC-normalised and checked against the IdentifierClass of RFC 8264:
zero-width characters, bidi controls, spaces, control and other disallowed code points are refused, and
so is a mix of right-to-left and left-to-right the Bidi Rule forbids.

The name is *stored* in the UsernameCasePreserved form (width-mapped, NFC, the case as given): clients go
on sending ``Bob`` and finding ``Bob``. Its UsernameCaseMapped form (lower case) is the name's *key*:
no two users of a tenant share one, so ``bob`` is refused where ``Bob`` exists (the database's unique
index on tenant and key enforces it, also between two commands adding at once).

Only new names are checked. Logins and SOAP targets are looked up exactly as sent, as before: names an
older version stored that PRECIS would refuse (a space, an invisible character) keep working, and the
per-request path pays nothing (PRECIS takes ~10 us a name, ``parse_username`` ~2.4 us, and it runs twice
per SOAP call). Such names have no key (NULL), so they take no part in the duplicate check.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache

from .errors import InvalidUsername
from .usernames import MAX_USERNAME_LENGTH

# precis-i18n's reasons (UnicodeEncodeError.reason, after "DISALLOWED/"), in words.
_REASONS = {
    "spaces": "a space",
    "precis_ignorable_properties": "an invisible formatting character (such as a zero-width space or a bidi control)",
    "zero_width_joiner": "an invisible joining character",
    "zero_width_nonjoiner": "an invisible joining character",
    "controls": "a control character",
    "has_compat": "a compatibility character (such as a no-break space or a ligature)",
    "symbols": "a symbol",
    "punctuation": "a punctuation character other than ASCII's",
    "unassigned": "a code point that Unicode has not assigned",
    "old_hangul_jamo": "an old Hangul jamo",
}


@dataclass(frozen=True)
class NewName:
    stored: str  # UsernameCasePreserved: what the users table keeps and logins must send
    key: str  # UsernameCaseMapped: unique within a tenant


def new_username(name: str) -> NewName:
    """``name`` as a new user's name, or :class:`InvalidUsername` saying what PRECIS refuses in it."""
    if _plain_ascii(name):  # the same answer as PRECIS, ~40x faster
        return NewName(name, name.lower())
    try:
        stored = _profile("UsernameCasePreserved").enforce(name)
        key = _profile("UsernameCaseMapped").enforce(name)
    except UnicodeEncodeError as err:
        raise InvalidUsername(_explain(err)) from None
    if max(len(stored), len(key)) > MAX_USERNAME_LENGTH:
        raise InvalidUsername(f"The username is longer than {MAX_USERNAME_LENGTH} characters")
    return NewName(stored, key)


def name_key(stored: str) -> str | None:
    """The key of a stored name; None for one PRECIS refuses (stored by an older version)."""
    try:
        return new_username(stored).key
    except InvalidUsername:
        return None


def _plain_ascii(name: str) -> bool:
    """Printable ASCII without space: PRECIS leaves it as it is and only lower-cases its key."""
    return name.isascii() and name.isprintable() and " " not in name and 0 < len(name) <= MAX_USERNAME_LENGTH


def _explain(err: UnicodeEncodeError) -> str:
    kind = err.reason.partition("/")[2]
    if kind == "empty":
        return "The username is empty"
    if kind == "bidi_rule":
        return "The username mixes right-to-left and left-to-right text in a way RFC 8265 forbids"
    where = err.object[err.start] if err.end - err.start == 1 else None
    what = _REASONS.get(kind, "a character not allowed in usernames")
    if where is None:
        return f"The username is not allowed ({kind.replace('_', ' ')}; RFC 8265)"
    name = unicodedata.name(where, "")
    return (f"The username contains {what}: U+{ord(where):04X}{' ' + name if name else ''} at position "
            f"{err.start + 1}; usernames follow RFC 8265 (PRECIS)")


@cache
def _profile(name: str):
    from precis_i18n import get_profile  # imported by commands that add users, never by the request path

    return get_profile(name)
