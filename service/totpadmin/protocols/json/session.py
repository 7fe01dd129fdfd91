"""Sign-in sessions over JSON (``/api/session``), translated to and from operations/sessions.py:

- ``POST /api/session`` ``{"userName", "password"}``: signs in (ACR 1); 201 with the session's cookies
  and, for clients without cookies, its token as ``accessToken`` (then ``Authorization: Bearer``);
- ``GET /api/session``: ``{"id", "userName", "tenant", "acr", "totpEnabled", "csrfToken"}``;
- ``POST /api/session/second-factor`` ``{"code"}`` (a TOTP code or a recovery code): ACR 2, or 3 with a
  TOTP code; the session gets a new token (new cookies, ``accessToken``);
- ``DELETE /api/session``: signs out (204), the cookies cleared.

A call authenticated by the cookie that changes anything must carry the session's CSRF token in
``X-CSRF-Token``, and its ``Origin``, when the browser sends one, must be this server's: else 403 and
nothing changes (checked before the login, so nothing is even read). Bearer calls need neither.
"""

from __future__ import annotations

from dataclasses import replace

from ...core import errors
from ...core.sessions import csrf_matches, csrf_token
from ..session_cookie import SAFE_METHODS, cookie_headers, foreign_origin
from ...operations.login import PasswordCredentials
from ...operations.sessions import NewSession, SessionCredentials, SessionOperations, SessionView
from ..messages import ApiReply, ApiRequest
from . import replies
from .fields import BadRequest, Missing, body_fields, required
from .replies import JSON, NO_STORE, failure, json_reply, user_locked
from .routes import Prepared, Route

BASE = "/api/session"

_FAILURES: dict[type, tuple[int, str]] = {
    errors.InvalidUsername: (400, "INVALID_USERNAME"),
    errors.InvalidTenantDomain: (400, "INVALID_USERNAME"),
    errors.NotAuthorized: (403, "FORBIDDEN"),
    errors.TotpNotEnabled: (409, "TOTP_NOT_ENABLED"),
    errors.SessionEnded: (401, "SESSION_ENDED"),
    errors.UserLocked: (423, "USER_LOCKED"),
}


def routes(sessions: SessionOperations) -> list[Route]:
    return [
        Route("POST", BASE, _SignIn(sessions)),
        Route("GET", BASE, _Describe(sessions)),
        Route("DELETE", BASE, _SignOut(sessions)),
        Route("POST", f"{BASE}/second-factor", _SecondFactor(sessions)),
    ]


def session_credentials(request: ApiRequest) -> SessionCredentials | ApiReply:
    """The request's session: ``Authorization: Bearer`` (which another site cannot make a browser send),
    else the cookie; 401 without either. A call by cookie that is not a read must pass the CSRF checks
    (:func:`csrf_refusal`)."""
    if request.bearer is not None:
        return SessionCredentials(request.bearer)
    if request.session_token is not None:
        refused = csrf_refusal(request)
        if refused is not None:
            return refused
        return SessionCredentials(request.session_token, from_cookie=True)
    return signed_out()


def csrf_refusal(request: ApiRequest) -> ApiReply | None:
    if request.method in SAFE_METHODS:
        return None
    if foreign_origin(request):
        return failure(403, "CSRF", "The request comes from another site (Origin)")
    if not csrf_matches(request.session_token, request.csrf_token):
        return failure(403, "CSRF", "The X-CSRF-Token header is missing or is not this session's")
    return None


def signed_out() -> ApiReply:
    return failure(401, "NOT_SIGNED_IN", "Sign in first", headers=(("WWW-Authenticate", 'Bearer realm="totp-admin"'),))


class SessionHandler:
    """A JSON call made in a sign-in session (here, and the identity API's): the session's credentials
    (CSRF-checked for a change by cookie), the body's ``fields``, the call, its domain errors as JSON
    failures (``failures``; a too-low level is 403 ``ACR_TOO_LOW`` with ``requiredAcr``)."""

    operation = ""
    fields: tuple[str, ...] = ()
    changes_state_on_get = False  # a GET that changes state is CSRF-checked as a POST would be
    failures: dict[type, tuple[int, str]] = _FAILURES

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        checked = replace(request, method="POST") if self.changes_state_on_get else request
        credentials = session_credentials(checked)
        if isinstance(credentials, ApiReply):
            return credentials
        try:
            data = self.read(request)
        except BadRequest as bad:
            return bad.reply
        return Prepared(credentials, self.operation, data)

    def read(self, request: ApiRequest) -> dict:
        return body_fields(request, self.fields) if self.fields else {}

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        try:
            return self.call(caller, prepared)
        except Missing as err:
            return failure(400, "INVALID_REQUEST", str(err))
        except errors.TotpAdminError as err:
            return self.failure_of(err)

    def call(self, caller, prepared: Prepared) -> ApiReply:
        raise NotImplementedError

    def failure_of(self, err: errors.TotpAdminError) -> ApiReply:
        if isinstance(err, errors.AcrTooLow):
            return json_reply(403, {"status": "FAILURE", "code": "ACR_TOO_LOW", "message": str(err),
                                    "requiredAcr": err.needed})
        if isinstance(err, errors.UserLocked):
            return user_locked(err.until, str(err))
        status, code = next((found for kind, found in self.failures.items() if isinstance(err, kind)),
                            (400, "INVALID_REQUEST"))
        return failure(status, code, str(err))

    def refused(self, prepared: Prepared) -> ApiReply:
        return signed_out()

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        return replies.throttled(retry_after)

    def unavailable(self, prepared: Prepared, error) -> ApiReply:
        return replies.unavailable()


class _Handler(SessionHandler):
    def __init__(self, sessions: SessionOperations):
        self._sessions = sessions


class _SignIn(_Handler):
    operation = "session.signIn"
    fields = ("userName", "password")

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        try:
            data = body_fields(request, self.fields)
            credentials = PasswordCredentials(required(data, "userName"), required(data, "password"))
        except BadRequest as bad:
            return bad.reply
        except Missing as err:
            return failure(400, "INVALID_REQUEST", str(err))
        return Prepared(credentials, self.operation)

    def call(self, caller, prepared: Prepared) -> ApiReply:
        return _session_reply(201, self._sessions.sign_in(caller))

    def refused(self, prepared: Prepared) -> ApiReply:
        return failure(401, "INVALID_CREDENTIALS", "The user name or password is wrong")


class _Describe(_Handler):
    operation = "session.get"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        return json_reply(200, _view(self._sessions.describe(caller), prepared.credentials.token), NO_STORE)


class _SecondFactor(_Handler):
    operation = "session.secondFactor"
    fields = ("code",)

    def call(self, caller, prepared: Prepared) -> ApiReply:
        raised = self._sessions.second_factor(caller, required(prepared.data, "code"))
        if not isinstance(raised, NewSession):
            return failure(401, "INVALID_OTP", "The code is not valid")
        return _session_reply(200, raised)


class _SignOut(_Handler):
    operation = "session.signOut"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        self._sessions.sign_out(caller)
        return ApiReply(204, JSON, b"", headers=NO_STORE + cookie_headers(None))


def _view(view: SessionView, token: str) -> dict:
    return {"id": view.id, "userName": view.user_name, "tenant": view.tenant, "acr": view.acr,
            "totpEnabled": view.totp_enabled, "csrfToken": csrf_token(token)}


def _session_reply(status: int, new: NewSession) -> ApiReply:
    document = _view(new.view, new.token) | {"accessToken": new.token, "tokenType": "bearer"}
    return json_reply(status, document, NO_STORE + cookie_headers(new.token))


