"""The spyne service: TOTPAdminService's operations with their WSO2 wire names. Thin: each method hands
its arguments to the core through :meth:`CallContext.manage`.

Operations of connector 1.0.x (initTOTP, resetTOTP, refreshSecretKey), of later WSO2 versions
(generateSecret, enableTOTP, validateTOTP, retrieveSecretKey), and our own additions
(enableTOTPWithRecoveryCodes, regenerateRecoveryCodes, unlockTOTP, isTOTPEnabled).
"""

from __future__ import annotations

import logging

from spyne import Boolean, ServiceBase, Unicode, rpc

from ..core.errors import TotpAdminError
from . import faults
from .context import LoginChanged

log = logging.getLogger(__name__)

Codes = Unicode(max_occurs="unbounded")  # Axis2 writes a String[] as repeated <return> elements


def _operation(name: str, returns, *params):
    """``@rpc`` with Axis2's names: request ``name``, response ``nameResponse`` holding ``return``."""
    return rpc(*params, _returns=returns, _operation_name=name, _out_message_name=f"{name}Response",
               _out_variable_name="return", _throws=faults.ServiceFault)


class TOTPAdminService(ServiceBase):
    # --- connector 1.0.x ---

    @_operation("initTOTP", Unicode, Unicode)
    def init_totp(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.init_totp, mostly_reads=True)

    @_operation("resetTOTP", Boolean, Unicode)
    def reset_totp(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.reset_totp)

    @_operation("refreshSecretKey", Unicode, Unicode)
    def refresh_secret_key(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.refresh_secret_key)

    # --- later WSO2 connectors ---

    @_operation("generateSecret", Unicode, Unicode)
    def generate_secret(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.generate_secret)

    @_operation("enableTOTP", Boolean, Unicode, Unicode)
    def enable_totp(ctx, username, verificationCode):
        enrollment = ctx.udc.services.enrollment
        return ctx.udc.manage(username, lambda account: enrollment.enable_totp(account, verificationCode) is not None,
                              verdict=True)

    @_operation("validateTOTP", Boolean, Unicode, Unicode)
    def validate_totp(ctx, username, verificationCode):
        validation = ctx.udc.services.validation
        return ctx.udc.manage(username, lambda account: validation.validate_totp(account, verificationCode),
                              verdict=True)

    @_operation("retrieveSecretKey", Unicode, Unicode)
    def retrieve_secret_key(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.retrieve_secret_key, allow_self=True,
                              mostly_reads=True)

    # --- ours ---

    @_operation("enableTOTPWithRecoveryCodes", Codes, Unicode, Unicode)
    def enable_totp_with_recovery_codes(ctx, username, verificationCode):
        enrollment = ctx.udc.services.enrollment
        return ctx.udc.manage(username, lambda account: enrollment.enable_totp(account, verificationCode) or [],
                              verdict=True)

    @_operation("regenerateRecoveryCodes", Codes, Unicode)
    def regenerate_recovery_codes(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.regenerate_recovery_codes)

    @_operation("unlockTOTP", Boolean, Unicode)
    def unlock_totp(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.validation.unlock, allow_self=False)

    @_operation("isTOTPEnabled", Boolean, Unicode)
    def is_totp_enabled(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.validation.is_enabled, mostly_reads=True)

    @classmethod
    def call_wrapper(cls, ctx, args=None):
        """Turn domain errors into the faults legacy clients expect; never let a traceback out."""
        operation = ctx.udc.operation = ctx.descriptor.operation_name
        username = getattr(ctx.in_object, "username", None)
        try:
            return super().call_wrapper(ctx, args)
        except LoginChanged:
            raise  # not the operation's outcome: Endpoint.handle checks the login again and answers
        except TotpAdminError as err:
            ctx.udc.record_refusal(username, err)
            raise faults.for_error(operation, username, err) from None
        except Exception:
            log.exception("%s failed unexpectedly", operation)
            raise faults.internal(operation) from None
