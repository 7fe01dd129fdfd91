"""The identity enrollment API (Misakey's paths and bodies, seed 003), translated to and from
operations/identity.py, on the sign-in sessions (cookie ``accesstoken`` with ``X-CSRF-Token``, or
``Authorization: Bearer``):

- ``GET /identities/{id}/totp/enroll`` -> ``{"id", "base64_image"}`` (a PNG of the QR);
- ``POST /identities/{id}/totp/enroll`` ``{"id", "code"}`` -> ``{"recovery_codes": [...]}``;
- ``POST /identities/{id}/totp/recovery-codes`` -> ``{"recovery_codes": [...]}`` (the old set erased);
- ``DELETE /identities/{id}/totp`` -> 204; ``PUT /identities/{id}/mfa-method`` ``{"method"}`` -> 204.

Starting an enrollment changes state, so its ``GET`` needs the CSRF token too when it comes by cookie.
Failures are ``{"status": "FAILURE", "code", "message"}``; a session below the level a call needs is 403
``ACR_TOO_LOW`` with ``requiredAcr``.
"""

from __future__ import annotations

import base64
from dataclasses import replace

from ...core import errors
from ...core.qr_image import png
from ...operations.identity import METHODS, IdentityOperations
from ..messages import ApiReply, ApiRequest
from .fields import BadRequest, Missing, body_fields, path_param, required
from . import replies
from .replies import JSON, NO_STORE, failure, json_reply, user_locked
from .routes import Prepared, Route
from .session import session_credentials, signed_out

BASE = "/identities/{id}"

_FAILURES: dict[type, tuple[int, str]] = {
    errors.NotAuthorized: (403, "FORBIDDEN"),
    errors.SessionEnded: (401, "SESSION_ENDED"),
    errors.UnknownChallenge: (404, "ENROLLMENT_NOT_FOUND"),
    errors.ChallengeGone: (410, "ENROLLMENT_EXPIRED"),
    errors.NoPendingSecret: (410, "ENROLLMENT_EXPIRED"),
    errors.TotpNotEnabled: (409, "TOTP_NOT_ENABLED"),
    errors.TotpRequired: (409, "TOTP_REQUIRED"),
    errors.SecretUnreadable: (500, "SECRET_UNREADABLE"),
}


def routes(identities: IdentityOperations) -> list[Route]:
    return [
        Route("GET", f"{BASE}/totp/enroll", _StartEnrollment(identities)),
        Route("POST", f"{BASE}/totp/enroll", _FinishEnrollment(identities)),
        Route("POST", f"{BASE}/totp/recovery-codes", _RecoveryCodes(identities)),
        Route("DELETE", f"{BASE}/totp", _Remove(identities)),
        Route("PUT", f"{BASE}/mfa-method", _MfaMethod(identities)),
    ]


class _Handler:
    operation = ""
    fields: tuple[str, ...] = ()
    changes_state_on_get = False

    def __init__(self, identities: IdentityOperations):
        self._identities = identities

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        # A GET that changes state is checked for CSRF as a POST would be.
        checked = replace(request, method="POST") if self.changes_state_on_get else request
        credentials = session_credentials(checked)
        if isinstance(credentials, ApiReply):
            return credentials
        try:
            data = {"identity": path_param(request, "id")}
            if self.fields:
                data.update(body_fields(request, self.fields))
        except BadRequest as bad:
            return bad.reply
        return Prepared(credentials, self.operation, data)

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        try:
            return self.call(caller, prepared.data)
        except Missing as err:
            return failure(400, "INVALID_REQUEST", str(err))
        except errors.AcrTooLow as err:
            return json_reply(403, {"status": "FAILURE", "code": "ACR_TOO_LOW", "message": str(err),
                                    "requiredAcr": err.needed})
        except errors.UserLocked as err:
            return user_locked(err.until, str(err))
        except errors.TotpAdminError as err:
            status, code = next((found for kind, found in _FAILURES.items() if isinstance(err, kind)),
                                (400, "INVALID_REQUEST"))
            return failure(status, code, str(err))

    def call(self, caller, data: dict) -> ApiReply:
        raise NotImplementedError

    def refused(self, prepared: Prepared) -> ApiReply:
        return signed_out()

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        return replies.throttled(retry_after)

    def unavailable(self, prepared: Prepared, error) -> ApiReply:
        return replies.unavailable()


class _StartEnrollment(_Handler):
    operation = "identity.totp.enroll.start"
    changes_state_on_get = True

    def call(self, caller, data: dict) -> ApiReply:
        started = self._identities.start_enrollment(caller, data["identity"])
        return json_reply(200, {"id": started.id, "base64_image": base64.b64encode(png(started.uri)).decode("ascii")},
                          NO_STORE)


class _FinishEnrollment(_Handler):
    operation = "identity.totp.enroll.finish"
    fields = ("id", "code")

    def call(self, caller, data: dict) -> ApiReply:
        codes = self._identities.finish_enrollment(caller, data["identity"], required(data, "id"),
                                                   required(data, "code"))
        if codes is None:
            return failure(401, "INVALID_OTP", "The code is not valid")
        return json_reply(200, {"recovery_codes": codes}, NO_STORE)


class _RecoveryCodes(_Handler):
    operation = "identity.totp.recoveryCodes"

    def call(self, caller, data: dict) -> ApiReply:
        return json_reply(200, {"recovery_codes": self._identities.regenerate_recovery_codes(caller, data["identity"])},
                          NO_STORE)


class _Remove(_Handler):
    operation = "identity.totp.remove"

    def call(self, caller, data: dict) -> ApiReply:
        self._identities.remove(caller, data["identity"])
        return ApiReply(204, JSON, b"")


class _MfaMethod(_Handler):
    operation = "identity.mfaMethod"
    fields = ("method",)

    def call(self, caller, data: dict) -> ApiReply:
        method = required(data, "method")
        if method not in METHODS:
            return failure(400, "INVALID_REQUEST", f"method must be one of: {', '.join(METHODS)}")
        self._identities.set_mfa_method(caller, data["identity"], method)
        return ApiReply(204, JSON, b"")
