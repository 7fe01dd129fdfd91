"""The spyne service: TOTPAdminService's operations with their WSO2 wire names. A translator: each
method hands its arguments to the matching :class:`~totpadmin.operations.totp.TotpOperations` call, and
:meth:`TOTPAdminService.call_wrapper` turns the domain errors raised into the faults legacy clients expect.

Operations of connector 1.0.x (initTOTP, resetTOTP, refreshSecretKey), of later WSO2 versions
(generateSecret, enableTOTP, validateTOTP, retrieveSecretKey), and our own additions
(enableTOTPWithRecoveryCodes, regenerateRecoveryCodes, unlockTOTP, isTOTPEnabled).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from spyne import Boolean, ServiceBase, Unicode, rpc

from ...core.errors import TotpAdminError
from ...operations.caller import Caller, LoginChanged
from ...operations.totp import TotpOperations
from . import faults

log = logging.getLogger(__name__)

Codes = Unicode(max_occurs="unbounded")  # Axis2 writes a String[] as repeated <return> elements


@dataclass
class SoapCall:
    """What a service method sees of one call (spyne's ``ctx.udc``): the use cases and who calls them.
    ``login_changed``: the call was rolled back because the cached login it ran as changed (spyne turns
    the exception into a fault; the endpoint reads this and checks the login again)."""

    operations: TotpOperations
    caller: Caller
    login_changed: bool = False


def _operation(name: str, returns, *params):
    """``@rpc`` with Axis2's names: request ``name``, response ``nameResponse`` holding ``return``."""
    return rpc(*params, _returns=returns, _operation_name=name, _out_message_name=f"{name}Response",
               _out_variable_name="return", _throws=faults.ServiceFault)


class TOTPAdminService(ServiceBase):
    # --- connector 1.0.x ---

    @_operation("initTOTP", Unicode, Unicode)
    def init_totp(ctx, username):
        return ctx.udc.operations.init_totp(ctx.udc.caller, username)

    @_operation("resetTOTP", Boolean, Unicode)
    def reset_totp(ctx, username):
        return ctx.udc.operations.reset_totp(ctx.udc.caller, username)

    @_operation("refreshSecretKey", Unicode, Unicode)
    def refresh_secret_key(ctx, username):
        return ctx.udc.operations.refresh_secret_key(ctx.udc.caller, username)

    # --- later WSO2 connectors ---

    @_operation("generateSecret", Unicode, Unicode)
    def generate_secret(ctx, username):
        return ctx.udc.operations.generate_secret(ctx.udc.caller, username)

    @_operation("enableTOTP", Boolean, Unicode, Unicode)
    def enable_totp(ctx, username, verificationCode):
        return ctx.udc.operations.enable_totp(ctx.udc.caller, username, verificationCode)

    @_operation("validateTOTP", Boolean, Unicode, Unicode)
    def validate_totp(ctx, username, verificationCode):
        return ctx.udc.operations.validate_totp(ctx.udc.caller, username, verificationCode)

    @_operation("retrieveSecretKey", Unicode, Unicode)
    def retrieve_secret_key(ctx, username):
        return ctx.udc.operations.retrieve_secret_key(ctx.udc.caller, username)

    # --- ours ---

    @_operation("enableTOTPWithRecoveryCodes", Codes, Unicode, Unicode)
    def enable_totp_with_recovery_codes(ctx, username, verificationCode):
        return ctx.udc.operations.enable_totp_with_recovery_codes(ctx.udc.caller, username, verificationCode)

    @_operation("regenerateRecoveryCodes", Codes, Unicode)
    def regenerate_recovery_codes(ctx, username):
        return ctx.udc.operations.regenerate_recovery_codes(ctx.udc.caller, username)

    @_operation("unlockTOTP", Boolean, Unicode)
    def unlock_totp(ctx, username):
        return ctx.udc.operations.unlock_totp(ctx.udc.caller, username)

    @_operation("isTOTPEnabled", Boolean, Unicode)
    def is_totp_enabled(ctx, username):
        return ctx.udc.operations.is_totp_enabled(ctx.udc.caller, username)

    @classmethod
    def call_wrapper(cls, ctx, args=None):
        """Turn domain errors (audited already by the operation) into the faults legacy clients expect;
        never let a traceback out."""
        operation = ctx.descriptor.operation_name
        try:
            return super().call_wrapper(ctx, args)
        except LoginChanged:
            ctx.udc.login_changed = True
            raise  # not the operation's outcome: Endpoint.handle checks the login again and answers
        except TotpAdminError as err:
            raise faults.for_error(operation, getattr(ctx.in_object, "username", None), err) from None
        except Exception:
            log.exception("%s failed unexpectedly", operation)
            raise faults.internal(operation) from None
