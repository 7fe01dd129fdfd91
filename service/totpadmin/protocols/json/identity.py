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
from ...core import errors
from ...core.qr_image import png
from ...operations.identity import IdentityOperations
from ...operations.totp_policy import METHODS
from ..messages import ApiReply, ApiRequest
from .fields import path_param, required
from .replies import JSON, NO_STORE, failure, json_reply
from .routes import Prepared, Route
from .session import SessionHandler

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


class _Handler(SessionHandler):
    failures = _FAILURES

    def __init__(self, identities: IdentityOperations):
        self._identities = identities

    def read(self, request: ApiRequest) -> dict:
        return {"identity": path_param(request, "id"), **super().read(request)}


class _StartEnrollment(_Handler):
    operation = "identity.totp.enroll.start"
    changes_state_on_get = True

    def call(self, caller, prepared: Prepared) -> ApiReply:
        data = prepared.data
        started = self._identities.start_enrollment(caller, data["identity"])
        return json_reply(200, {"id": started.id, "base64_image": base64.b64encode(png(started.uri)).decode("ascii")},
                          NO_STORE)


class _FinishEnrollment(_Handler):
    operation = "identity.totp.enroll.finish"
    fields = ("id", "code")

    def call(self, caller, prepared: Prepared) -> ApiReply:
        data = prepared.data
        codes = self._identities.finish_enrollment(caller, data["identity"], required(data, "id"),
                                                   required(data, "code"))
        if codes is None:
            return failure(401, "INVALID_OTP", "The code is not valid")
        return json_reply(200, {"recovery_codes": codes}, NO_STORE)


class _RecoveryCodes(_Handler):
    operation = "identity.totp.recoveryCodes"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        data = prepared.data
        return json_reply(200, {"recovery_codes": self._identities.regenerate_recovery_codes(caller, data["identity"])},
                          NO_STORE)


class _Remove(_Handler):
    operation = "identity.totp.remove"

    def call(self, caller, prepared: Prepared) -> ApiReply:
        data = prepared.data
        self._identities.remove(caller, data["identity"])
        return ApiReply(204, JSON, b"")


class _MfaMethod(_Handler):
    operation = "identity.mfaMethod"
    fields = ("method",)

    def call(self, caller, prepared: Prepared) -> ApiReply:
        data = prepared.data
        method = required(data, "method")
        if method not in METHODS:
            return failure(400, "INVALID_REQUEST", f"method must be one of: {', '.join(METHODS)}")
        self._identities.set_mfa_method(caller, data["identity"], method)
        return ApiReply(204, JSON, b"")
