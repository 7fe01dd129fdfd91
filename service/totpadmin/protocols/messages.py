"""The HTTP-neutral request and reply the protocols work on: the server builds the one from Twisted's
request and writes the other back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ApiRequest:
    method: str  # "GET" or "POST"
    operation: str | None  # last path segment after the service name, e.g. "initTOTP"; None if absent
    content_type: str  # media type only, lower case, e.g. "text/xml"; "" when absent
    body: bytes = b""
    query: dict[str, list[str]] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None  # from a well-formed Basic Authorization header
    bearer: str | None = None  # from a well-formed Bearer Authorization header (an access token)
    authorization_sent: bool = False  # any Authorization header, well-formed or not
    path_params: dict[str, str] = field(default_factory=dict)  # a JSON route's {name} segments
    session_token: str | None = None  # the ``accesstoken`` cookie (a sign-in session), if well-formed
    csrf_token: str | None = None  # the ``X-CSRF-Token`` header
    origin: str | None = None  # the ``Origin`` header, as browsers send it
    host: str = ""  # the ``Host`` header
    peer: str = ""
    request_id: str = ""


@dataclass(frozen=True)
class ApiReply:
    status: int
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    authenticated: bool | None = None  # whether the Basic credentials verified; None: not checked
