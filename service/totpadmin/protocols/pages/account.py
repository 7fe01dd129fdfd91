"""MyAccount > Security (``/account``) and the first-login enrollment (``/account/enroll``), translated to
and from operations/my_account.py. Every change is a form POST with the session's CSRF field; after it
the browser is sent back to ``/account`` (303) with a short note named in ``?done=`` (never a value).
Secrets, QR images and recovery codes are shown in the answer to the POST that made them, once."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from ...core import errors
from ...core.qr_image import png
from ...core.sessions import csrf_token
from ...operations.my_account import AccountOperations
from ...operations.totp_policy import APPLICATION, POLICY
from ..json.routes import Prepared, Route
from ..messages import ApiReply
from ..session_cookie import cookie_headers
from .base import ACCOUNT, PageHandler
from .render import message, page, redirect

ENROLL = f"{ACCOUNT}/enroll"
DEFAULT_DEVICE = "Authenticator app"
_NOTES = {
    "confirmed": "Confirmed. For the next five minutes you can regenerate your recovery codes.",
    "added": "Your new authenticator is ready.",
    "renamed": "The authenticator was renamed.",
    "removed": "The authenticator was removed.",
    "required": "A code will be required at every sign-in.",
    "optional": "Your choice is saved.",
}
_REQUIRED_BY = {POLICY: "your organisation's policy", APPLICATION: "an application you use"}


def routes(accounts: AccountOperations) -> list[Route]:
    return [
        Route("GET", ACCOUNT, _SecurityPage(accounts)),
        Route("GET", ENROLL, _EnrollPage(accounts)),
        Route("POST", f"{ACCOUNT}/devices", _AddDevice(accounts)),
        Route("POST", f"{ACCOUNT}/devices/activate", _ActivateDevice(accounts)),
        Route("POST", f"{ACCOUNT}/devices/rename", _RenameDevice(accounts)),
        Route("POST", f"{ACCOUNT}/devices/remove", _RemoveDevice(accounts)),
        Route("POST", f"{ACCOUNT}/recovery-codes", _RecoveryCodes(accounts)),
        Route("POST", f"{ACCOUNT}/require", _RequireTotp(accounts)),
    ]


class _Handler(PageHandler):
    def __init__(self, accounts: AccountOperations):
        self._accounts = accounts

    def failed(self, err: errors.TotpAdminError) -> ApiReply:
        if isinstance(err, (errors.NoPendingSecret, errors.DevicePendingExpired)):
            return message(410, "This set-up expired", "The QR code was not used in time. Start again: you will "
                           "get a new one.", back=ENROLL, back_label="Start again")
        if isinstance(err, errors.TotpRequired):
            return message(409, "This authenticator is needed",
                           "A code is required at your sign-in, so your last authenticator cannot be removed. "
                           "Add another one first, or turn the requirement off.")
        return super().failed(err)


class _SecurityPage(_Handler):
    operation = "account.security"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        security = self._accounts.security(caller)
        if security.required_by and not security.totp_enabled:
            return redirect(ENROLL)
        return page(200, "security.html", title="Security", s=security, csrf=csrf_token(prepared.credentials.token),
                    note=_NOTES.get(prepared.data["query"].get("done", "")),
                    required_by=_REQUIRED_BY.get(security.required_by or ""), when=_when)


class _EnrollPage(_Handler):
    operation = "account.security"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        security = self._accounts.security(caller)
        title = "Add an authenticator" if security.totp_enabled else "Set up two-step verification"
        return page(200, "enroll.html", title=title, s=security, csrf=csrf_token(prepared.credentials.token),
                    default_name="" if any(d.active for d in security.devices) else DEFAULT_DEVICE,
                    required_by=_REQUIRED_BY.get(security.required_by or "", "your own choice"))


def _new_device_page(status: int, token: str, name: str, uri: str, *, error: str | None = None) -> ApiReply:
    secret = parse_qs(urlsplit(uri).query).get("secret", [""])[0]
    return page(status, "new_device.html", title="Scan the QR code", name=name, csrf=csrf_token(token),
                qr="data:image/png;base64," + base64.b64encode(png(uri)).decode("ascii"),
                key=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)), error=error)


class _AddDevice(_Handler):
    operation = "account.devices.add"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        name = prepared.data["form"].get("name", "").strip() or DEFAULT_DEVICE
        new = self._accounts.add_device(caller, name)
        return _new_device_page(200, prepared.credentials.token, new.device.name, new.registration_uri)


class _ActivateDevice(_Handler):
    operation = "account.devices.activate"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        form = prepared.data["form"]
        name, code = form.get("name", ""), form.get("code", "").strip()
        activation = self._accounts.activate_device(caller, name, code)
        token = prepared.credentials.token
        if not activation.activated:
            return _new_device_page(401, token, name, activation.uri,
                                    error="That code is not right. Enter the code your app shows now.")
        cookies = cookie_headers(activation.session.token) if activation.session else ()
        if not activation.recovery_codes:
            return redirect(f"{ACCOUNT}?done=added", cookies)
        return recovery_codes_page(activation.recovery_codes, first=True, headers=cookies)


def recovery_codes_page(codes: list[str], *, first: bool, headers=()) -> ApiReply:
    text = "\n".join(["totp-admin recovery codes: each works once, instead of a code from your app.", "", *codes, ""])
    return page(200, "recovery_codes.html", headers, title="Your recovery codes", codes=codes, first=first,
                download="data:text/plain;charset=utf-8;base64," + base64.b64encode(text.encode()).decode("ascii"))


class _RenameDevice(_Handler):
    operation = "account.devices.rename"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        form = prepared.data["form"]
        self._accounts.rename_device(caller, form.get("name", ""), form.get("new_name", "").strip())
        return redirect(f"{ACCOUNT}?done=renamed")


class _RemoveDevice(_Handler):
    operation = "account.devices.remove"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        if not self._accounts.remove_device(caller, prepared.data["form"].get("name", "")):
            return redirect("/login?done=totp-off", cookie_headers(None))  # a reset ends every session
        return redirect(f"{ACCOUNT}?done=removed")


class _RecoveryCodes(_Handler):
    operation = "account.recoveryCodes"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        return recovery_codes_page(self._accounts.regenerate_recovery_codes(caller), first=False)


class _RequireTotp(_Handler):
    operation = "account.requireTotp"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        required = prepared.data["form"].get("required") == "on"
        self._accounts.require_totp(caller, required)
        return redirect(f"{ACCOUNT}?done={'required' if required else 'optional'}")


def _when(moment: datetime | None) -> str:
    """A stored (naive UTC) time for people; "never" when absent."""
    if moment is None:
        return "never"
    return moment.replace(tzinfo=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
