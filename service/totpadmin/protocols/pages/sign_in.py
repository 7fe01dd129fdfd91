"""Signing in and out in a browser: ``/login`` (user name and password; tenant users as ``user@tenant``, or
at ``/t/{tenant}/login``), then ``/login/code`` (a code from the authenticator, or a recovery code), and
``POST /logout``. The same page ``/login/code?next=recovery-codes`` asks for a fresh code before recovery
codes are regenerated (step-up, ACR 3)."""

from __future__ import annotations

from ...core import errors
from ...core.sessions import csrf_token
from ...operations.login import PasswordCredentials
from ...operations.sessions import NewSession, SessionOperations
from ..json.routes import Prepared, Route
from ..messages import ApiReply, ApiRequest
from ..session_cookie import cookie_headers
from .base import ACCOUNT, LOGIN, SECOND_STEP, PageHandler, locked, signed_out
from .render import page, redirect

STEP_UP = "recovery-codes"  # the one place a fresh code is asked for (?next=)
_NOTES = {"signed-out": "You are signed out.",
          "totp-off": "Two-step verification is off, and you are signed out everywhere. Sign in again."}


def routes(sessions: SessionOperations) -> list[Route]:
    return [
        Route("GET", LOGIN, _SignInPage()),
        Route("POST", LOGIN, _SignIn(sessions)),
        Route("GET", "/t/{tenant}/login", _SignInPage()),
        Route("POST", "/t/{tenant}/login", _SignIn(sessions)),
        Route("GET", SECOND_STEP, _SecondStepPage(sessions)),
        Route("POST", SECOND_STEP, _SecondStep(sessions)),
        Route("POST", "/logout", _SignOut(sessions)),
    ]


def sign_in_page(status: int, request: ApiRequest, *, error: str | None = None, user_name: str = "") -> ApiReply:
    tenant = request.path_params.get("tenant")
    note = _NOTES.get((request.query.get("done") or [""])[0])
    return page(status, "sign_in.html", title="Sign in", tenant=tenant,
                action=f"/t/{tenant}/login" if tenant else LOGIN, error=error, note=note, user_name=user_name)


class _SignInPage(PageHandler):
    signed_in = False

    def public(self, request: ApiRequest, form: dict[str, str]) -> ApiReply:
        return sign_in_page(200, request)


class _SignIn(PageHandler):
    operation = "session.signIn"
    signed_in = False

    def __init__(self, sessions: SessionOperations):
        self._sessions = sessions

    def public(self, request: ApiRequest, form: dict[str, str]) -> Prepared | ApiReply:
        user_name, password = form.get("username", "").strip(), form.get("password", "")
        if not user_name or not password:
            return sign_in_page(400, request, error="Enter your user name and password.", user_name=user_name)
        tenant = request.path_params.get("tenant")
        qualified = f"{user_name}@{tenant}" if tenant and "@" not in user_name else user_name
        return Prepared(PasswordCredentials(qualified, password), self.operation, (request, user_name))

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        request, user_name = prepared.data
        try:
            new = self._sessions.sign_in(caller)
        except errors.TotpAdminError:
            return sign_in_page(400, request, error="This account cannot sign in here.", user_name=user_name)
        return redirect(SECOND_STEP if new.view.totp_enabled else ACCOUNT, cookie_headers(new.token))

    def refused(self, prepared: Prepared) -> ApiReply:
        request, user_name = prepared.data
        return sign_in_page(401, request, error="The user name or password is not right.", user_name=user_name)

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        request, user_name = prepared.data
        return sign_in_page(429, request, error=f"Too many attempts. Wait {retry_after} seconds, then try again.",
                            user_name=user_name)


def second_step_page(status: int, token: str, *, next_: str | None, recovery: bool, error: str | None = None,
                     user_name: str = "") -> ApiReply:
    return page(status, "second_step.html", title="Confirm it's you" if next_ else "Two-step verification",
                csrf=csrf_token(token), next=next_, recovery=recovery, error=error, user_name=user_name)


class _SecondStepPage(PageHandler):
    operation = "session.get"

    def __init__(self, sessions: SessionOperations):
        self._sessions = sessions

    def call(self, caller, prepared: Prepared) -> ApiReply:
        view = self._sessions.describe(caller)
        query = prepared.data["query"]
        next_ = STEP_UP if query.get("next") == STEP_UP else None
        if not view.totp_enabled or (view.acr >= 2 and next_ is None):
            return redirect(ACCOUNT)
        return second_step_page(200, prepared.credentials.token, next_=next_,
                                recovery=query.get("method") == "recovery", user_name=view.user_name)


class _SecondStep(PageHandler):
    operation = "session.secondFactor"

    def __init__(self, sessions: SessionOperations):
        self._sessions = sessions

    def call(self, caller, prepared: Prepared) -> ApiReply:
        form = prepared.data["form"]
        next_ = STEP_UP if form.get("next") == STEP_UP else None
        recovery = form.get("method") == "recovery"
        token = prepared.credentials.token
        code = form.get("code", "").strip()
        if not code:
            return second_step_page(400, token, next_=next_, recovery=recovery, error="Enter a code.")
        try:
            raised = self._sessions.second_factor(caller, code)
        except errors.UserLocked as err:
            return locked(err.until, back=SECOND_STEP)
        except errors.TotpNotEnabled:
            return redirect(ACCOUNT)
        if not isinstance(raised, NewSession) and raised.locked_until is not None:
            return locked(raised.locked_until, back=SECOND_STEP)
        if not isinstance(raised, NewSession):
            error = ("That code was used already. Wait for the next code in your app, then enter it."
                     if raised.replayed else
                     "That recovery code is not right, or was used already." if recovery else
                     "That code is not right. Check your authenticator app and try again.")
            return second_step_page(401, token, next_=next_, recovery=recovery, error=error)
        where = f"{ACCOUNT}?done=confirmed#recovery-codes" if next_ else ACCOUNT
        return redirect(where, cookie_headers(raised.token))


class _SignOut(PageHandler):
    operation = "session.signOut"

    def __init__(self, sessions: SessionOperations):
        self._sessions = sessions

    def call(self, caller, prepared: Prepared) -> ApiReply:
        self._sessions.sign_out(caller)
        return redirect(f"{LOGIN}?done=signed-out", cookie_headers(None))

    def refused(self, prepared: Prepared) -> ApiReply:
        return signed_out()
