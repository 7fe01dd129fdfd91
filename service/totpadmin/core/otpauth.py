"""The ``otpauth://`` enrollment URL and the Base64 form TOTPAdminService returns it in."""

from __future__ import annotations

import base64
from urllib.parse import quote

# Characters left as they are in the label. Unreserved characters plus '@' and '/' (a pchar and a path
# separator apps keep), so plain and DOMAIN/-prefixed usernames give the legacy bytes exactly.
_LABEL_SAFE = "@/"


def otpauth_url(issuer: str, account: str, secret: str, *, period: int = 30, digits: int = 6,
                algorithm: str = "SHA1", always_period: bool = False) -> str:
    """``otpauth://totp/<issuer>:<account>?secret=<secret>&issuer=<issuer>``.

    Everything that could break an app's parser is percent-encoded (spaces as %20, ':' in either part,
    non-ASCII as UTF-8, '+' '/' '=' of a Base64 secret). ``period``, ``digits`` and ``algorithm`` are
    written only when they differ from the Key URI defaults (30, 6, SHA1), so the default output is
    byte-for-byte the WSO2 connector's. ``always_period``: ``&period`` even at 30, as WSO2 IS's
    ``me/totp`` writes it.
    """
    label = f"{quote(issuer, safe=_LABEL_SAFE)}:{quote(account, safe=_LABEL_SAFE)}"
    url = f"otpauth://totp/{label}?secret={quote(secret, safe='')}&issuer={quote(issuer, safe='')}"
    if period != 30 or always_period:
        url += f"&period={period}"
    if digits != 6:
        url += f"&digits={digits}"
    if algorithm != "SHA1":
        url += f"&algorithm={algorithm}"
    return url


def legacy_base64(text: str, *, chunked: bool = True) -> str:
    """Base64 of ``text``'s UTF-8 bytes.

    ``chunked`` reproduces commons-codec 1.4's ``encodeBase64String`` that the WSO2 connector used:
    76-character lines, each ending in CRLF, the last one included.
    """
    if not chunked:
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    return base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
