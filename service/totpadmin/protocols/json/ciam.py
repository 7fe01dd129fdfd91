"""The CIAM device API (``/ciam-mfa/v2``, seeds 001 and 002), translated to and from
operations/devices.py. An application calls with its access token (``mfa:devices`` to manage devices,
``mfa:authenticate`` for sign-ins) for a user of its own tenant.

Successes answer ``{"status": "SUCCESS", "message", ...}`` as the seeds show; every failure is
``{"status": "FAILURE", "code", "message"}`` with its HTTP status (:data:`_FAILURES`).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from ...core import errors
from ...core.application import MFA_AUTHENTICATE, MFA_DEVICES
from ...core.device import Device
from ...core.qr_image import png
from ...operations.devices import DeviceOperations
from ..messages import ApiReply, ApiRequest
from . import replies
from .bearer import bearer_credentials, scope_missing
from .fields import BadRequest, Missing, body_fields, path_param, query_value, required
from .replies import JSON, NO_STORE, bearer_refused, failure, json_reply, user_locked
from .routes import Prepared, Route

BASE = "/ciam-mfa/v2"

VALIDATED = "OTP has been validated successfully"
GET_THE_OTP = "Please get the OTP from registered device to authenticate"

# Domain error -> (HTTP status, code). Anything else a use case raises is a defect: 500, logged.
_FAILURES: dict[type, tuple[int, str]] = {
    errors.InvalidUsername: (400, "INVALID_USERNAME"),
    errors.InvalidTenantDomain: (400, "INVALID_USERNAME"),
    errors.InvalidDeviceName: (400, "INVALID_DEVICE_NAME"),
    errors.UnsupportedDeviceType: (400, "UNSUPPORTED_DEVICE_TYPE"),
    errors.NotAuthorized: (403, "FORBIDDEN"),
    errors.TotpOffForApplication: (403, "TOTP_OFF"),
    errors.UnknownTenant: (404, "USER_NOT_FOUND"),
    errors.UnknownUser: (404, "USER_NOT_FOUND"),
    errors.UnknownDevice: (404, "DEVICE_NOT_FOUND"),
    errors.UnknownChallenge: (404, "AUTH_ID_NOT_FOUND"),
    errors.DeviceNameTaken: (409, "DEVICE_NAME_TAKEN"),
    errors.TooManyDevices: (409, "TOO_MANY_DEVICES"),
    errors.DeviceNotPending: (409, "DEVICE_NOT_PENDING"),
    errors.DeviceNotActive: (409, "DEVICE_NOT_ACTIVE"),
    errors.FirstDevicePending: (409, "FIRST_DEVICE_PENDING"),
    errors.EnrollmentRequired: (409, "ENROLLMENT_REQUIRED"),
    errors.ChallengeGone: (410, "AUTH_ID_EXPIRED"),
    errors.DevicePendingExpired: (410, "DEVICE_PENDING_EXPIRED"),
    errors.NoPendingSecret: (410, "DEVICE_PENDING_EXPIRED"),
    errors.UserLocked: (423, "USER_LOCKED"),
    errors.SecretUnreadable: (500, "SECRET_UNREADABLE"),
}


def routes(devices: DeviceOperations) -> list[Route]:
    return [
        Route("POST", f"{BASE}/devices", _AddDevice(devices)),
        Route("GET", f"{BASE}/devices", _ListDevices(devices)),
        Route("POST", f"{BASE}/devices/{{authId}}", _ActivateDevice(devices)),
        Route("DELETE", f"{BASE}/devices/{{deviceName}}", _RemoveDevice(devices)),
        Route("POST", f"{BASE}/deviceAuthentications", _StartAuthentication(devices)),
        Route("POST", f"{BASE}/deviceAuthentications/{{authId}}", _FinishAuthentication(devices)),
    ]


class _Handler:
    """A :class:`~.routes.JsonHandler` of the device API: the bearer token, the JSON body (for a POST)
    or the query, the scope, the use case, its domain errors as JSON failures."""

    operation = ""
    scope = MFA_DEVICES
    fields: tuple[str, ...] = ()  # the body's string fields this call reads (absent ones are None)

    def __init__(self, devices: DeviceOperations):
        self._devices = devices

    def prepare(self, request: ApiRequest) -> Prepared | ApiReply:
        credentials = bearer_credentials(request)
        if isinstance(credentials, ApiReply):
            return credentials
        try:
            data = self.read(request)
        except BadRequest as bad:
            return bad.reply
        return Prepared(credentials, self.operation, data)

    def read(self, request: ApiRequest) -> dict:
        """What the call needs from the request (path, query and body)."""
        data = {name: path_param(request, name) for name in request.path_params}
        if request.method == "POST":
            data.update(body_fields(request, self.fields))
        return data

    def handle(self, prepared: Prepared, caller) -> ApiReply:
        refused = scope_missing(caller.principal, self.scope)
        if refused is not None:
            return refused
        try:
            return self.call(caller, prepared.data)
        except errors.TotpAdminError as err:
            return _failure(err)

    def call(self, caller, data: dict) -> ApiReply:
        raise NotImplementedError

    def refused(self, prepared: Prepared) -> ApiReply:
        return bearer_refused()

    def throttled(self, prepared: Prepared, retry_after: int) -> ApiReply:
        return replies.throttled(retry_after)

    def unavailable(self, prepared: Prepared, error) -> ApiReply:
        return replies.unavailable()


class _AddDevice(_Handler):
    operation = "devices.add"
    fields = ("userName", "deviceType", "deviceName")

    def call(self, caller, data: dict) -> ApiReply:
        added = self._devices.add_device(caller, required(data, "userName"), required(data, "deviceType"),
                                         required(data, "deviceName"))
        uri = added.new.registration_uri
        return json_reply(201, {
            "authId": added.auth_id, "status": "SUCCESS",
            "message": "Scan the QR code with the authenticator app, then validate its OTP to activate the device",
            "secret": added.new.secret, "registrationUri": uri,
            "qrCode": base64.b64encode(png(uri)).decode("ascii"),
        }, NO_STORE + (("Location", f"{BASE}/devices/{added.auth_id}"),))


class _ActivateDevice(_Handler):
    operation = "devices.activate"
    fields = ("otp",)

    def call(self, caller, data: dict) -> ApiReply:
        codes = self._devices.activate_device(caller, data["authId"], required(data, "otp"))
        if codes is None:
            return _wrong_otp()
        document = {"status": "SUCCESS", "message": VALIDATED}
        if codes:
            document["recoveryCodes"] = codes  # the user's first device: shown once
        return json_reply(200, document, NO_STORE)


class _ListDevices(_Handler):
    operation = "devices.list"

    def read(self, request: ApiRequest) -> dict:
        return {"userName": query_value(request, "userName")}

    def call(self, caller, data: dict) -> ApiReply:
        user = required(data, "userName")
        return json_reply(200, {"userName": user, "devices": [_device(d) for d in
                                                              self._devices.list_devices(caller, user)]})


class _RemoveDevice(_Handler):
    operation = "devices.remove"

    def read(self, request: ApiRequest) -> dict:
        return {"deviceName": path_param(request, "deviceName"), "userName": query_value(request, "userName")}

    def call(self, caller, data: dict) -> ApiReply:
        self._devices.remove_device(caller, required(data, "userName"), data["deviceName"])
        return ApiReply(204, JSON, b"")


class _StartAuthentication(_Handler):
    operation = "deviceAuthentications.start"
    scope = MFA_AUTHENTICATE
    fields = ("userName", "deviceName", "deviceType")

    def call(self, caller, data: dict) -> ApiReply:
        started = self._devices.start_authentication(caller, required(data, "userName"), data.get("deviceName"),
                                                     required(data, "deviceType"))
        if started.auth_id is None:
            return json_reply(200, {"status": "NOT_REQUIRED",
                                    "message": "The user has no TOTP device and this application does not require "
                                               "one: go on without a second factor"})
        return json_reply(201, {"authId": started.auth_id, "status": "SUCCESS", "message": GET_THE_OTP},
                          (("Location", f"{BASE}/deviceAuthentications/{started.auth_id}"),))


class _FinishAuthentication(_Handler):
    operation = "deviceAuthentications.validate"
    scope = MFA_AUTHENTICATE
    fields = ("deviceType", "otp")

    def call(self, caller, data: dict) -> ApiReply:
        ok = self._devices.finish_authentication(caller, data["authId"], required(data, "deviceType"),
                                                 required(data, "otp"))
        return json_reply(200, {"status": "SUCCESS", "message": VALIDATED}) if ok else _wrong_otp()


# --- writing replies ---


def _failure(err: errors.TotpAdminError) -> ApiReply:
    if isinstance(err, Missing):
        return failure(400, "INVALID_REQUEST", str(err))
    status, code = next((found for kind, found in _FAILURES.items() if isinstance(err, kind)),
                        (400, "INVALID_REQUEST"))
    if isinstance(err, errors.ChallengeGone) and err.spent:
        code = "AUTH_ID_USED"
    if isinstance(err, errors.UserLocked):
        return user_locked(err.until, str(err))
    return failure(status, code, str(err))


def _wrong_otp() -> ApiReply:
    return failure(401, "INVALID_OTP", "The OTP is not valid")


def _device(device: Device) -> dict:
    return {"deviceName": device.name, "deviceType": "TOTP", "status": "ACTIVE" if device.active else "PENDING",
            "primary": device.primary, "createdAt": _time(device.created_at), "lastUsedAt": _time(device.last_used_at)}


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=timezone.utc).isoformat(timespec="seconds")

