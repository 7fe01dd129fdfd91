"""HTML replies: a template rendered with autoescaping (user and device names stay text), and the
headers every page carries: a Content-Security-Policy that allows this server's own style sheet, script
and images (and the QR's ``data:`` image) and nothing inline, no framing, no caching, no referrer to other sites."""

from __future__ import annotations

from urllib.parse import quote

import jinja2

from ..messages import ApiReply

HTML = "text/html; charset=utf-8"
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),  # not no-referrer: Chromium would then send forms with "Origin: null"
    ("Cache-Control", "no-store"),
)

_templates = jinja2.Environment(loader=jinja2.PackageLoader("totpadmin.protocols.pages", "templates"),
                                autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                                lstrip_blocks=True)
_templates.filters["url_text"] = lambda text: quote(text, safe="")


def page(status: int, template: str, headers: tuple[tuple[str, str], ...] = (), **context) -> ApiReply:
    context = {"note": None, "error": None, **context}  # every page may show a note and an error
    body = _templates.get_template(template).render(**context).encode("utf-8")
    return ApiReply(status, HTML, body, headers=SECURITY_HEADERS + headers)


def message(status: int, title: str, text: str, *, back: str = "/account", back_label: str = "Back",
            headers: tuple[tuple[str, str], ...] = ()) -> ApiReply:
    """A page that says one thing, with a way on (no dead ends)."""
    return page(status, "message.html", headers, title=title, text=text, back=back, back_label=back_label)


def redirect(location: str, headers: tuple[tuple[str, str], ...] = ()) -> ApiReply:
    """303 See Other: after a form, the browser GETs ``location`` (a path of this server)."""
    return ApiReply(303, HTML, b"", headers=SECURITY_HEADERS + (("Location", location),) + headers)
