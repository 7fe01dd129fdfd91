"""WSO2 IS's ``me/totp`` REST API (``/api/users/v1/me/totp`` and ``/t/{tenant}/api/users/v1/me/totp``),
wire-compatible, translated to and from operations/me_totp.py:

- ``POST`` ``{"action": "INIT" | "REFRESH" | "VIEW"}`` -> 200 ``{"qrCodeUrl": Base64 of the otpauth URI}``;
  ``{"action": "VALIDATE", "verificationCode"}`` (a number or a string of digits) -> 200 ``{"isValid"}``;
- ``GET`` -> 200 ``{"qrCodeUrl"}``; ``DELETE`` -> 200, no body; ``GET …/secret`` -> 200 ``{"secret"}``.

The caller is a session (``Authorization: Bearer`` or the cookie, with CSRF for changes); HTTP Basic is
taken for VALIDATE only, as WSO2 does (else 403 ``OTP-10005``). Errors are WSO2's ErrorDTO
``{"code", "message", "description", "traceId"}`` with its codes; the unauthenticated 401 is the one of
WSO2's valve, with a numeric ``code``. Differences from WSO2: docs/me-totp.md.
"""

from __future__ import annotations

import base64

from ...core import errors
from ...operations.login import PasswordCredentials
from ...operations.me_totp import MeTotpOperations
from ..messages import ApiReply, ApiRequest
from .body import BadJson, parse_object
from .replies import JSON, json_reply
from .routes import Prepared, Route
from .session import session_credentials

PATH = "/api/users/v1/me/totp"
ACTIONS = ("INIT", "REFRESH", "VALIDATE", "VIEW")
MAX_CODE = 32
_NOT_EXPECTED = ("Invalid Request.", "Provided request body content is not in the expected format.")

# Domain error -> (HTTP status, code, message); the description is the error's own text.
_FAILURES: dict[type, tuple[int, str, str]] = {
    errors.AcrTooLow: (403, "OTP-10006", "Access denied."),
    errors.NotAuthorized: (403, "OTP-10005", "Access denied."),
    errors.NoQrCode: (404, "OTP-10003", "QR Code URL doesn't exist."),
    errors.UserLocked: (423, "OTP-10007", "Account locked."),
    errors.TotpNotEnabled: (409, "OTP-10008", "TOTP is not enabled."),
    errors.SessionEnded: (401, "OTP-10001", "Access denied."),
    errors.SecretUnreadable: (500, "OTP-15002", "Error while decrypting the SecretKey"),
}


def routes(me_totp: MeTotpOperations) -> list[Route]:
    out = []
    for base in (PATH, "/t/{tenant}" + PATH):
        out += [Route("POST", base, _Post(me_totp)), Route("GET", base, _Get(me_totp)),
                Route("DELETE", base, _Delete(me_totp)), Route("GET", base + "/secret", _Secret(me_totp))]
    return out


def error(status: int, code: str, message: str, description: str, request_id: str,
          headers: tuple[tuple[str, str], ...] = ()) -> ApiReply:
    return json_reply(status, {"code": code, "message": message, "description": description, "traceId": request_id},
                      headers)


def unauthorized(request_id: str, host: str = "") -> ApiReply:
    """The 401 of WSO2's authentication valve: a numeric ``code``."""
    return json_reply(401, {"code": 401, "message": "Unauthorized",
                            "description": "Authorization failure. Authorization information was invalid or missing "
                                           "from your request.", "traceId": request_id},
                      (("WWW-Authenticate", f"Bearer realm={host or 'totp-admin'}"),))


class _Handler:
    operation = "me.totp"
    basic_allowed = False  # HTTP Basic (a password) instead of a session

    def __init__(self, me_totp: MeTotpOperations):
        self._me = me_totp

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        data = self.read(request)
        if isinstance(data, ApiReply):
            return data
        data["request_id"], data["host"] = request.request_id, request.host
        data["tenant"] = request.path_params.get("tenant")
        if request.bearer is None and request.session_token is None and request.credentials is not None:
            if not self.basic_allowed and data.get("action") != "VALIDATE":
                return error(403, "OTP-10005", "Access denied.",
                             "This method is blocked for the requests with basic authentication.", request.request_id)
            return Prepared(PasswordCredentials(*request.credentials), self.operation, data)
        credentials = session_credentials(request)
        if isinstance(credentials, ApiReply):
            if credentials.status == 401:
                return unauthorized(request.request_id, request.host)
            return credentials  # 403 CSRF
        return Prepared(credentials, self.operation, data)

    def read(self, request: ApiRequest) -> dict | ApiReply:
        return {}

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        data = prepared.data
        tenant = data.get("tenant")
        user = getattr(caller.principal, "user", caller.principal)
        if tenant is not None and tenant.lower() != user.ref.tenant:
            return unauthorized(data["request_id"], data["host"])  # another tenant's user
        try:
            return self.call(caller, data)
        except errors.TotpAdminError as err:
            status, code, message = next((found for kind, found in _FAILURES.items() if isinstance(err, kind)),
                                         (400, "UE-10000", "Invalid Request"))
            return error(status, code, message, str(err), data["request_id"])

    def call(self, caller, data: dict) -> ApiReply:
        raise NotImplementedError

    def refused(self, prepared: Prepared) -> ApiReply:
        return unauthorized(prepared.data["request_id"], prepared.data["host"])

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        return error(429, "OTP-10009", "Too many requests.", "Too many failed attempts; try again later.",
                     prepared.data["request_id"], (("Retry-After", str(retry_after)),))

    def unavailable(self, prepared: Prepared, error_) -> ApiReply:
        return error(503, "SE-50000", "Unexpected Processing Error.", "The TOTP store is unavailable; try again later.",
                     prepared.data["request_id"], (("Retry-After", "5"),))


class _Post(_Handler):
    def read(self, request: ApiRequest) -> dict | ApiReply:
        if request.content_type != JSON:
            return error(415, "UE-10001", "Unsupported Media Type", f"The body must be {JSON}.", request.request_id)
        try:
            document = parse_object(request.body)
        except BadJson:
            return error(400, "UE-10000", *_NOT_EXPECTED, request.request_id)
        action = document.get("action")
        if action is None:
            return error(400, "UE-10000", "Invalid Request", "Property action cannot be null.", request.request_id)
        if action not in ACTIONS:
            return error(400, "UE-10000", *_NOT_EXPECTED, request.request_id)
        code = document.get("verificationCode")
        if isinstance(code, bool) or not isinstance(code, (int, str, type(None))):
            return error(400, "UE-10000", *_NOT_EXPECTED, request.request_id)
        if isinstance(code, int):  # WSO2's field is an Integer: 12345 is the code 012345
            code = str(code).zfill(self._me.digits) if code >= 0 else None
        if isinstance(code, str) and (len(code) > MAX_CODE or not code.isdigit()):
            return error(400, "UE-10000", *_NOT_EXPECTED, request.request_id)
        if action == "VALIDATE" and code is None:
            # WSO2 answers this with 505 (HTTP Version Not Supported); it is the client's error: 400.
            return error(400, "OTP-10004", "Verification code not present.",
                         "Validation operation requires verification code to be present.", request.request_id)
        return {"action": action, "code": code}

    def call(self, caller, data: dict) -> ApiReply:
        action = data["action"]
        if action == "VALIDATE":
            return json_reply(200, {"isValid": self._me.validate(caller, data["code"])})
        use = {"INIT": self._me.init, "REFRESH": self._me.refresh, "VIEW": self._me.view}[action]
        return _qr(use(caller))


class _Get(_Handler):
    def call(self, caller, data: dict) -> ApiReply:
        return _qr(self._me.qr(caller))


class _Delete(_Handler):
    def call(self, caller, data: dict) -> ApiReply:
        self._me.delete(caller)
        return ApiReply(200, JSON, b"")


class _Secret(_Handler):
    def call(self, caller, data: dict) -> ApiReply:
        return json_reply(200, {"secret": self._me.secret(caller)}, (("Cache-Control", "no-store"),))


def _qr(uri: str) -> ApiReply:
    """``qrCodeUrl``: standard Base64 (one line, padded) of the otpauth URI, as WSO2 answers it."""
    return json_reply(200, {"qrCodeUrl": base64.b64encode(uri.encode("utf-8")).decode("ascii")},
                      (("Cache-Control", "no-store"),))
