"""An ``application/x-www-form-urlencoded`` body decoded within limits (the OAuth2 token request; the
SOAP service's form bodies have protocols/soap/body_limits.py). A real token request has four fields of
under 100 characters; the limits leave room and bound the work: the size and the counts of ``&`` and
``%`` are checked on the raw bytes (C speed) before anything is decoded. A repeated field is refused
(RFC 6749 3.2: "Request and response parameters MUST NOT be included more than once")."""

from __future__ import annotations

from urllib.parse import unquote_plus

MAX_BYTES = 8 * 1024
MAX_FIELDS = 16
MAX_ESCAPES = 1024
MAX_VALUE = 1024


class BadForm(ValueError):
    """A form this service does not read; ``str()`` is a message for the client (never a value)."""


def parse_form(body: bytes) -> dict[str, str]:
    """Each field's value; :class:`BadForm` for a body too large, not UTF-8, or repeating a field."""
    if len(body) > MAX_BYTES:
        raise BadForm(f"The form body is longer than {MAX_BYTES} bytes")
    if body.count(b"&") + 1 > MAX_FIELDS:
        raise BadForm(f"The form has more than {MAX_FIELDS} fields")
    if body.count(b"%") > MAX_ESCAPES:
        raise BadForm(f"The form has more than {MAX_ESCAPES} %-escapes")
    fields: dict[str, str] = {}
    for part in body.split(b"&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition(b"=")
        try:
            name = unquote_plus(raw_name.decode("ascii"), errors="strict")
            value = unquote_plus(raw_value.decode("ascii"), errors="strict")
        except UnicodeError:
            raise BadForm("The form is not URL-encoded UTF-8") from None
        if len(name) > MAX_VALUE or len(value) > MAX_VALUE:
            raise BadForm(f"A form field is longer than {MAX_VALUE} characters")
        if name in fields:
            raise BadForm(f"The parameter {name[:64]!r} appears more than once")
        fields[name] = value
    return fields
