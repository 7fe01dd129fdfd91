"""The sign-in session in a browser, as the JSON APIs and the pages both carry it: the ``accesstoken``
cookie (HttpOnly, Secure, SameSite=Lax; ``tokentype=bearer`` beside it, as Misakey sets them) and the
checks a change made by cookie must pass: the session's CSRF token, and an ``Origin``, when the browser
sends one, of this server."""

from __future__ import annotations

from ..core.sessions import csrf_matches
from .messages import ApiRequest

COOKIE = "accesstoken"
_ATTRIBUTES = "Path=/; Secure; SameSite=Lax"
SAFE_METHODS = ("GET", "HEAD")


def cookie_headers(token: str | None) -> tuple[tuple[str, str], ...]:
    """The session's Set-Cookie headers; ``token`` None: both cleared."""
    if token is None:
        gone = "; Max-Age=0"
        return (("Set-Cookie", f"{COOKIE}=; HttpOnly; {_ATTRIBUTES}{gone}"),
                ("Set-Cookie", f"tokentype=; {_ATTRIBUTES}{gone}"))
    return (("Set-Cookie", f"{COOKIE}={token}; HttpOnly; {_ATTRIBUTES}"),
            ("Set-Cookie", f"tokentype=bearer; {_ATTRIBUTES}"))


def foreign_origin(request: ApiRequest) -> bool:
    """Whether the browser says the request comes from another site."""
    return request.origin is not None and request.origin != f"https://{request.host}"


def csrf_ok(request: ApiRequest, presented: str | None) -> bool:
    """Whether a change by cookie may go on: a same-site request with the session's CSRF token."""
    return request.session_token is not None and not foreign_origin(request) \
        and csrf_matches(request.session_token, presented)
