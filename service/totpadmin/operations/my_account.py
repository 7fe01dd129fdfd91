"""MyAccount > Security as use cases (the self-service pages translate them, protocols/pages): a signed-in
user sees their TOTP status and devices, adds a device (verified by its first code before it counts),
renames and removes devices, chooses whether TOTP is required at their sign-in, and regenerates their
recovery codes.

Levels (core/sessions.py): a user with TOTP must have passed the second step (ACR 2); a user without
TOTP acts on a password session (ACR 1), which is how the first device is enrolled. Activating that
first device is a second factor too: the session is raised to ACR 2 under a new token (the first-login
enrollment then goes straight on). Regenerating recovery codes needs a code entered in the last five
minutes (ACR 3). The last active device cannot be removed while TOTP is required (operations/totp_policy.py).

Each call is one transaction, audited (``account.*``), through :meth:`SessionOperations.run`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..config.settings import Settings
from ..core.device import Device
from ..core.devices import Devices, NewDevice
from ..core.enrollment import Enrollment, is_enabled
from ..core.errors import AcrTooLow, NotAuthorized, TotpRequired
from ..core.sessions import ACR_PASSWORD, ACR_SECOND_FACTOR, ACR_STEP_UP, STEP_UP_SECONDS, TOTP
from .caller import Caller
from .sessions import NewSession, SessionOperations, SessionUser
from .totp_policy import MFA_METHOD, required_by


@dataclass(frozen=True)
class Security:
    """What MyAccount > Security shows."""

    user_name: str
    tenant: str
    acr: int
    totp_enabled: bool
    required_by: str | None  # operations/totp_policy.py: POLICY, APPLICATION, USER, or None
    devices: list[Device]
    recovery_codes_left: int
    step_up_until: float | None  # while ACR 3 lasts (recovery codes may be regenerated), epoch seconds


@dataclass(frozen=True)
class Activation:
    """A pending device's first code, checked. ``activated``: the device counts now; ``recovery_codes``:
    the user's new set, shown once (the first device only; else empty); ``session``: the session raised by
    the first device's code (under a new token), else None. Not activated: ``uri`` shows its QR again."""

    activated: bool
    recovery_codes: list[str]
    session: NewSession | None = None
    uri: str | None = None


class AccountOperations:
    def __init__(self, settings: Settings, sessions: SessionOperations, devices: Devices, enrollment: Enrollment,
                 *, clock=time.time):
        self._settings = settings
        self._sessions = sessions
        self._devices = devices
        self._enrollment = enrollment
        self._clock = clock

    def security(self, caller: Caller) -> Security:
        def action(transaction, me: SessionUser, account):
            acr = me.session.acr(self._clock())
            return Security(
                user_name=me.user.ref.name, tenant=me.user.ref.tenant, acr=acr,
                totp_enabled=is_enabled(account), required_by=required_by(self._settings, transaction, account),
                devices=self._devices.list(account, dated=True), recovery_codes_left=account.recovery_codes_left(),
                step_up_until=me.session.totp_at + STEP_UP_SECONDS if acr >= ACR_STEP_UP else None)
        return self._run(caller, "account.security", action, read_only=True)

    def add_device(self, caller: Caller, name: object) -> NewDevice:
        """A pending device: its secret and QR are shown once; it counts after :meth:`activate_device`."""
        return self._run(caller, "account.devices.add", lambda transaction, me, account:
                         self._devices.add(account, name))

    def activate_device(self, caller: Caller, name: str, code: str | None) -> Activation:
        def action(transaction, me: SessionUser, account):
            device = self._devices.find(account, name)
            first = not is_enabled(account)
            codes = self._devices.activate(account, device, code)
            if codes is None:
                return Activation(False, [], uri=self._devices.pending_uri(account, device))
            raised = self._sessions.raised(transaction, me, TOTP) if first else None
            return Activation(True, codes, raised)
        return self._run(caller, "account.devices.activate", action,
                         verdict=lambda activation: activation.activated)

    def rename_device(self, caller: Caller, name: str, new_name: object) -> Device:
        return self._run(caller, "account.devices.rename", lambda transaction, me, account:
                         self._devices.rename(account, self._devices.find(account, name), new_name))

    def remove_device(self, caller: Caller, name: str) -> bool:
        """Remove a device; the last active one only while TOTP is not required. Whether TOTP is still on
        (off: it was reset, and every session of the user ended, this one too)."""
        def action(transaction, me, account):
            device = self._devices.find(account, name)
            others = [d for d in self._devices.list(account) if d.active and d.name != device.name]
            if device.active and not others and required_by(self._settings, transaction, account):
                raise TotpRequired()
            self._devices.remove(account, device)
            return is_enabled(account)
        return self._run(caller, "account.devices.remove", action)

    def require_totp(self, caller: Caller, required: bool) -> None:
        """The user's own choice: TOTP at every sign-in (and their last device kept), or not."""
        self._run(caller, "account.requireTotp", lambda transaction, me, account:
                  account.set(MFA_METHOD, "totp" if required else "none"))

    def regenerate_recovery_codes(self, caller: Caller) -> list[str]:
        return self._run(caller, "account.recoveryCodes", lambda transaction, me, account:
                         self._enrollment.regenerate_recovery_codes(account), level=ACR_STEP_UP)

    # --- steps ---

    def _run(self, caller: Caller, operation: str, action, *, level: int | None = None, read_only: bool = False,
             verdict=None):
        """``action(transaction, me, account)`` as :meth:`SessionOperations.run` runs it, once the session is
        at ``level`` (default: signed in, i.e. 2 for a user with TOTP, else 1)."""
        me = caller.principal
        if not isinstance(me, SessionUser):
            raise NotAuthorized()

        def in_transaction(transaction):
            account = transaction.accounts.find_by_id(me.user.user_id, for_update=not read_only)
            needed = level or (ACR_SECOND_FACTOR if is_enabled(account) else ACR_PASSWORD)
            if me.session.acr(self._clock()) < needed:
                raise AcrTooLow(needed)
            return action(transaction, me, account)
        return self._sessions.run(caller, operation, me.user, in_transaction, read_only=read_only, verdict=verdict)
