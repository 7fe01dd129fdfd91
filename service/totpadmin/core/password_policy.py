"""Which new passwords are accepted: NIST SP 800-63B (rev 3 5.1.1.2, rev 4 3.1.1.2).

At least 8 characters (15 or more recommended), at most 256, any characters (spaces and all of Unicode),
no composition rules. Refused: the passwords on a list of commonly used ones (``data/``, see its README),
repeated or sequential strings (``aaaaaaaa``, ``12345678``, ``abcabcab``), and passwords built on the
username or the service's name (``totp``, ``totp-admin``, ``wso2``, ``carbon``) whose rest would be refused
on its own (``bob2024!`` for bob, ``Carbon.Super1``).

The checks compare the password's NFKC form, case-folded, so that full-width or ligature look-alikes and
case variants of a listed password are refused too. The password itself is hashed exactly as given, as
before: every stored hash keeps verifying, and a client that sends the same bytes keeps logging in.
(NIST asks verifiers to normalise *before hashing*, a SHOULD; doing that now would lock out stored
non-ASCII passwords whose NFKC form differs, so it is left for a change that can tell old hashes from new.)

The policy applies where a password is set (``user add``, ``user passwd``, ``TOTP_ADMIN_PASSWORD``), never
at login: passwords stored before it keep working.
"""

from __future__ import annotations

import gzip
import re
import unicodedata
from functools import cache
from importlib import resources

from .errors import PasswordRefused

MIN_LENGTH = 8
RECOMMENDED_LENGTH = 15
MAX_LENGTH = 256
SERVICE_WORDS = ("totp-admin", "totpadmin", "totp", "wso2", "carbon")  # "context-specific words"
COMMON_PASSWORDS = "common-passwords.txt.gz"
_MIN_CONTEXT_WORD = 3  # shorter usernames (or parts) would strip letters out of every password
_NOT_ALNUM = re.compile(r"[\W_]+")


def check_new_password(password: str, username: str) -> None:
    """Raise :class:`PasswordRefused` (saying why, never showing the password) unless ``password`` may
    be set for ``username`` (the name without the tenant)."""
    normal = unicodedata.normalize("NFKC", password)
    if len(normal) < MIN_LENGTH:
        raise PasswordRefused(f"The password is too short: it needs at least {MIN_LENGTH} characters, and "
                              f"{RECOMMENDED_LENGTH} or more are recommended (a few unrelated words make a "
                              "long password that is easy to remember)")
    if len(normal) > MAX_LENGTH:
        raise PasswordRefused(f"The password is too long: at most {MAX_LENGTH} characters")
    folded = normal.casefold()
    if _is_common(folded):
        raise PasswordRefused("The password is on the list of commonly used passwords; choose another")
    if _is_pattern(folded):
        raise PasswordRefused("The password is a repeated or sequential string (like aaaaaaaa or 12345678); "
                              "choose another")
    rest = _without(folded, _context_words(username))
    if rest != folded and (len(_strip_edges(rest)) < MIN_LENGTH or _is_common(rest) or _is_pattern(rest)):
        raise PasswordRefused("The password is built on the username or the service's name (totp, totp-admin, "
                              "wso2, carbon), and without it the rest is too short, common or a pattern; "
                              "choose another")


def _context_words(username: str) -> list[str]:
    """The username, its parts (``SECONDARY/bob``, ``bob@example.com``), and the service's names;
    longest first, so that ``totp-admin`` goes before ``totp``."""
    name = unicodedata.normalize("NFKC", username).casefold()
    words = {name, *(part for part in re.split(r"[/@.\s]+", name))}
    words = {w for w in words if len(w) >= _MIN_CONTEXT_WORD} | set(SERVICE_WORDS)
    return sorted(words, key=len, reverse=True)


def _without(folded: str, words: list[str]) -> str:
    for word in words:
        folded = folded.replace(word, "")
    return folded


def _is_common(folded: str) -> bool:
    """On the list as it is, without separators (``change-me``), or without the punctuation around it."""
    common = common_passwords()
    return any(form in common for form in (folded, _NOT_ALNUM.sub("", folded), _strip_edges(folded)))


def _strip_edges(folded: str) -> str:
    start, end = 0, len(folded)
    while start < end and not folded[start].isalnum():
        start += 1
    while end > start and not folded[end - 1].isalnum():
        end -= 1
    return folded[start:end]


def _is_pattern(folded: str) -> bool:
    """Nothing but one short piece repeated (``abababab``) or a run up or down (``abcdefgh``,
    ``98765432``, ``7890123``), also with punctuation around it."""
    return any(_repeats(s) or _runs(s) for s in {folded, _strip_edges(folded)} if s)


def _repeats(s: str) -> bool:
    n = len(s)
    return any(all(s[i] == s[i % period] for i in range(period, n)) for period in range(1, n // 2 + 1))


def _runs(s: str) -> bool:
    if len(s) < 3:
        return False
    steps = {_step(a, b) for a, b in zip(s, s[1:])}
    return steps == {1} or steps == {-1}


def _step(a: str, b: str) -> int:
    if a.isdigit() and b.isdigit() and a.isascii() and b.isascii():
        return (int(b) - int(a) + 5) % 10 - 5  # 9 -> 0 continues a run, as on a keyboard
    return ord(b) - ord(a)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list, NFKC and case-folded (read on first use: only commands that set a password)."""
    data = resources.files(__package__).joinpath("data", COMMON_PASSWORDS).read_bytes()
    lines = gzip.decompress(data).decode("utf-8").splitlines()
    return frozenset(unicodedata.normalize("NFKC", line.strip()).casefold() for line in lines if line.strip())
