"""The spyne service: TOTPAdminService's operations with their WSO2 wire names. Thin: each method hands
its argument to the core through :meth:`CallContext.manage`."""

from __future__ import annotations

import logging

from spyne import Boolean, ServiceBase, Unicode, rpc

from ..core.errors import TotpAdminError
from . import faults

log = logging.getLogger(__name__)


def _operation(name: str, returns):
    """``@rpc`` with Axis2's names: request ``name``, response ``nameResponse`` holding ``return``."""
    return rpc(Unicode, _returns=returns, _operation_name=name, _out_message_name=f"{name}Response",
               _out_variable_name="return", _throws=faults.ServiceFault)


class TOTPAdminService(ServiceBase):
    @_operation("initTOTP", Unicode)
    def init_totp(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.init_totp)

    @_operation("resetTOTP", Boolean)
    def reset_totp(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.reset_totp)

    @_operation("refreshSecretKey", Unicode)
    def refresh_secret_key(ctx, username):
        return ctx.udc.manage(username, ctx.udc.services.enrollment.refresh_secret_key)

    @classmethod
    def call_wrapper(cls, ctx, args=None):
        """Turn domain errors into the faults legacy clients expect; never let a traceback out."""
        operation = ctx.descriptor.operation_name
        username = getattr(ctx.in_object, "username", None)
        try:
            return super().call_wrapper(ctx, args)
        except TotpAdminError as err:
            log.info("%s refused: %s", operation, type(err).__name__)
            raise faults.for_error(operation, username, err) from None
        except Exception:
            log.exception("%s failed unexpectedly", operation)
            raise faults.internal(operation) from None
