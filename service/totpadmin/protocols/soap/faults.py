"""Faults as WSO2's TOTPAdminService raises them.

A *declared* fault is Java's TOTPException: Axis2 puts a ``TOTPAdminServiceTOTPException`` element into
the detail. An *undeclared* one (a runtime exception in the original, e.g. an unknown tenant) has an
empty detail. Messages never carry secrets, codes, passwords or library internals.
"""

from __future__ import annotations

from spyne import Fault

from ...core import errors

# The legacy message prefix of each operation's TOTPException, as the connector words it.
_LEGACY_PREFIX = {
    "initTOTP": "TOTPAdminService failed to generateTOTP key for the user : {user}",
    "refreshSecretKey": "TOTPAdminService failed to generateTOTP key for the user : {user}",
    "resetTOTP": "Can not find the user realm for the user : {user}",
    "generateSecret": "TOTPAdminService failed to generate a secret key for the user : {user}",
    "enableTOTP": "TOTPAdminService failed to enable TOTP for the user : {user}",
    "enableTOTPWithRecoveryCodes": "TOTPAdminService failed to enable TOTP for the user : {user}",
    "validateTOTP": "TOTPAdminService failed to validate the TOTP of the user : {user}",
    "retrieveSecretKey": "TOTPAdminService failed to retrieve the secret key of the user : {user}",
    "regenerateRecoveryCodes": "TOTPAdminService failed to regenerate recovery codes for the user : {user}",
    "unlockTOTP": "TOTPAdminService failed to unlock TOTP for the user : {user}",
    "isTOTPEnabled": "TOTPAdminService failed to read the TOTP status of the user : {user}",
}


MAX_ECHOED_USERNAME = 100


class ServiceFault(Fault):
    def __init__(self, reason: str, *, declared: bool, client: bool = False, code: str | None = None):
        super().__init__(faultcode="Client" if client else "Server", faultstring=reason)
        self.reason = reason
        self.declared = declared
        self.client = client
        self.code = code  # a SOAP fault code other than Client/Server, e.g. MustUnderstand


def for_error(operation: str, username: str | None, err: errors.TotpAdminError) -> ServiceFault:
    """The fault the original would raise for ``err`` in ``operation``, with the cause spelled out."""
    if isinstance(err, (errors.UnknownTenant, errors.StoreUnavailable, errors.AuthenticationFailed)):
        return ServiceFault(str(err), declared=False)
    if isinstance(err, errors.NotAuthorized):
        return ServiceFault(str(err), declared=True)
    prefix = _LEGACY_PREFIX.get(operation, "TOTPAdminService failed for the user : {user}")
    shown = username if username else "null"
    if len(shown) > MAX_ECHOED_USERNAME:
        shown = shown[:MAX_ECHOED_USERNAME] + "..."
    return ServiceFault(f"{prefix.format(user=shown)}. {err}", declared=True)


def internal(operation: str) -> ServiceFault:
    """For anything unexpected: Axis2's words for an exception without a message; details go to the log."""
    return ServiceFault(f"Exception occurred while trying to invoke service method {operation}", declared=False)


_CLIENT_REASONS = {
    "Client.XMLSyntaxError": "The request body is not well-formed XML",
    "Client.SoapError": "The request body is not a SOAP envelope of the version its Content-Type names",
    "Client.ValidationError": "The request has a repeated, unknown or malformed parameter",
}


def from_spyne(fault: Fault, operation: str | None) -> ServiceFault:
    """Translate a fault spyne raised while reading a request into one without library detail."""
    if isinstance(fault, ServiceFault):
        return fault
    code = fault.faultcode or ""
    if code.startswith("Client.ResourceNotFound"):
        return ServiceFault(f"The operation {operation or '(none)'} is not provided by TOTPAdminService",
                            declared=False, client=True)
    if code.startswith("Client"):
        reason = next((text for prefix, text in _CLIENT_REASONS.items() if code.startswith(prefix)),
                      "The request could not be read")
        return ServiceFault(reason, declared=False, client=True)
    return internal(operation or "(unknown)")
