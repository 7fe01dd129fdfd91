"""What every page does around its call: read the form (``application/x-www-form-urlencoded``, bounded),
refuse a form from another site (``Origin``) or without the session's CSRF token (the hidden ``csrf``
field) before anything is read or changed, send a visitor without a session to sign in, and turn the
use cases' refusals into pages a person can act on."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ...core import errors
from ...operations.sessions import SessionCredentials
from ..json.form_body import BadForm, parse_form
from ..messages import ApiReply, ApiRequest
from ..json.routes import Prepared
from ..session_cookie import cookie_headers, csrf_ok, foreign_origin
from .render import message, redirect

FORM = "application/x-www-form-urlencoded"
LOGIN = "/login"
SECOND_STEP = "/login/code"
ACCOUNT = "/account"


class PageHandler:
    """A page. ``signed_in``: it needs a session (the cookie); a POST then needs the CSRF field. Subclasses
    write :meth:`call` (on the database threads, as the session's user)."""

    operation = ""
    signed_in = True

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        form: dict[str, str] = {}
        if request.method == "POST":
            if foreign_origin(request):
                return message(403, "Request refused", "This form was sent from another site.", back=ACCOUNT)
            if request.content_type != FORM:
                return message(415, "Request refused", "This page takes an HTML form.", back=ACCOUNT)
            try:
                form = parse_form(request.body)
            except BadForm as err:
                return message(400, "Request refused", str(err), back=ACCOUNT)
        if not self.signed_in:
            return self.public(request, form)
        if request.session_token is None:
            return redirect(LOGIN)
        if request.method == "POST" and not csrf_ok(request, form.get("csrf")):
            return message(403, "This form has expired",
                           "Nothing was changed. Open the page again and retry.", back=ACCOUNT)
        data = {"form": form, "query": {k: v[0] for k, v in request.query.items() if len(v) == 1}}
        return Prepared(SessionCredentials(request.session_token, from_cookie=True), self.operation, data)

    def public(self, request: ApiRequest, form: dict[str, str]) -> Prepared | ApiReply:
        raise NotImplementedError

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        try:
            return self.call(caller, prepared)
        except (errors.SessionEnded, errors.NotAuthorized):
            return signed_out()
        except errors.AcrTooLow as err:
            return self.too_low(err.needed)
        except errors.UserLocked as err:
            return locked(err.until, back=ACCOUNT)
        except errors.TotpAdminError as err:
            return self.failed(err)

    def call(self, caller, prepared: Prepared) -> ApiReply:
        raise NotImplementedError

    def too_low(self, needed: int) -> ApiReply:
        return redirect(SECOND_STEP if needed <= 2 else f"{SECOND_STEP}?next=recovery-codes")

    def failed(self, err: errors.TotpAdminError) -> ApiReply:
        return message(400, "That did not work", str(err), back=ACCOUNT)

    def refused(self, prepared: Prepared) -> ApiReply:
        return signed_out()

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        return message(429, "Too many attempts", f"Wait {retry_after} seconds, then try again.", back=LOGIN,
                       headers=(("Retry-After", str(retry_after)),))

    def unavailable(self, prepared: Prepared, error) -> ApiReply:
        return message(503, "Please try again", "The service is busy or briefly unavailable.", back=ACCOUNT,
                       headers=(("Retry-After", "1"),))


def signed_out() -> ApiReply:
    """Back to the sign-in page, the ended session's cookies cleared."""
    return redirect(LOGIN, cookie_headers(None))


def locked(until: float, *, back: str) -> ApiReply:
    when = datetime.fromtimestamp(until, timezone.utc).strftime("%H:%M:%S UTC")
    minutes = max(1, round((until - time.time()) / 60))
    return message(423, "Too many wrong codes",
                   f"Codes are locked for your account until {when} (about {minutes} minute"
                   f"{'s' if minutes != 1 else ''}). Try again then, or ask an administrator to unlock it.",
                   back=back, back_label="Back")
