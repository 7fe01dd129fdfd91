"""Several named TOTP devices per user (Keycloak, privacyIDEA; the CIAM device API of issue 19).

The *primary* device is the one the legacy claims describe (secretkey, verifySecretkey, totpEnabled) and
the SOAP operations keep acting on; its replay state is the user's. Every other device has its own
secret and replay state in its row. A user enrolled before devices existed has no row for the primary
device: it is shown as "default" and has no row (an authId names it by a NULL device). The lockout stays per
user: a wrong code for any device counts toward it.

Every device starts *pending* and becomes active only when a code from it is verified (verify before
activate).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..config.settings import TotpSettings
from . import claims, recovery, secret_codec
from .account import Account
from .device import Device
from .code_checker import CodeChecker
from .enrollment import Enrollment, is_enabled
from .errors import (DeviceNameTaken, DeviceNotActive, DeviceNotPending, DevicePendingExpired, FirstDevicePending,
                     InvalidDeviceName, TooManyDevices, UnknownDevice)
from .otp import matching_step

DEFAULT_NAME = "default"  # the primary device of an enrolment older than devices
MAX_NAME_LENGTH = 64


@dataclass(frozen=True)
class NewDevice:
    """A device just added: its secret and enrollment URL are shown to the user once."""

    device: Device
    secret: str
    registration_uri: str


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH or not name.isprintable() \
            or "/" in name or name != name.strip():
        raise InvalidDeviceName()
    return name


class Devices:
    def __init__(self, settings: TotpSettings, enrollment: Enrollment, *, clock=time.time,
                 new_secret=secret_codec.new_secret, recovery_hasher=recovery.RECOVERY_HASHER, on_lockout=None):
        self._settings = settings
        self._enrollment = enrollment
        self._new_secret = new_secret
        self._checker = CodeChecker(settings, clock, recovery_hasher, on_lockout)

    def now(self) -> float:
        return self._checker.now()

    def list(self, account: Account, *, dated: bool = False) -> list[Device]:
        """The user's devices, the primary first, then by age; ``dated``: with their dates."""
        rows = account.devices(dated=dated)
        primary = next((d for d in rows if d.primary), None)
        enabled = is_enabled(account)
        if primary is not None:
            # The claims say whether the primary device is active: SOAP's enableTOTP may have activated it.
            if enabled != primary.active:
                primary = replace(primary, active=enabled)
            elif not enabled and not account.get(claims.VERIFY_SECRET_KEY):
                primary = None  # its pending secret is gone (resetTOTP, or replaced): nothing to show
        elif enabled:
            primary = Device(id=None, name=DEFAULT_NAME, primary=True, active=True)
        others = [d for d in rows if not d.primary]
        return ([primary] if primary else []) + others

    def rowless_primary(self, account: Account) -> Device:
        """The primary device of an enrolment older than devices (an authId names it by no row), as
        :meth:`list` shows it, without reading the device rows. :class:`UnknownDevice` once TOTP was
        reset (and so the authId's device is gone)."""
        if not is_enabled(account):
            raise UnknownDevice(DEFAULT_NAME)
        return Device(id=None, name=DEFAULT_NAME, primary=True, active=True)

    def find(self, account: Account, name: str) -> Device:
        for device in self.list(account):
            if device.name == name:
                return device
        raise UnknownDevice(name)

    def add(self, account: Account, name: object) -> NewDevice:
        """A pending device. A pending device of the same name is replaced (an enrollment started again);
        an active one is not."""
        name = check_name(name)
        devices = self.list(account)
        same = next((d for d in devices if d.name.casefold() == name.casefold()), None)
        if same is not None:
            if same.active:
                raise DeviceNameTaken(same.name)
            self._drop(account, same)
            devices = [d for d in devices if d is not same]
        primary = next((d for d in devices if d.primary), None)
        if primary is not None and not primary.active:
            raise FirstDevicePending()  # else a user could hold an active device while TOTP is not enabled
        if len(devices) >= self._settings.max_devices:
            raise TooManyDevices(self._settings.max_devices)
        secret_text = secret_codec.encode_secret(self._new_secret(self._settings.secret_bytes),
                                                 self._settings.encoding)
        if primary is None:
            # The first device is the one the legacy claims describe: pending as after generateSecret.
            account.set(claims.VERIFY_SECRET_KEY, secret_text)
            account.save_state(pending_expires_at=self.now() + self._settings.pending_secret_seconds)
            device_id = account.add_device(name, primary=True, secret=None, pending_expires_at=None)
            device = Device(device_id, name, primary=True, active=False)
        else:
            expires = self.now() + self._settings.pending_secret_seconds
            device_id = account.add_device(name, primary=False, secret=secret_text, pending_expires_at=expires)
            device = Device(device_id, name, primary=False, active=False, pending_expires_at=expires)
        return NewDevice(device, secret_text, self._enrollment.qr_url(account.ref, secret_text))

    def rename(self, account: Account, device: Device, name: object) -> Device:
        """Give ``device`` a new name, unique among the user's devices (case-insensitively). A non-primary
        device's secret is sealed to its name, so it is sealed again under the new one."""
        name = check_name(name)
        if any(d.name.casefold() == name.casefold() and d.id != device.id for d in self.list(account)):
            raise DeviceNameTaken(name)
        if device.id is None:  # the primary device of an older enrolment: it gets its row now
            device_id = account.add_device(name, primary=True, secret=None, pending_expires_at=None,
                                           active=device.active)
            return replace(device, id=device_id, name=name)
        secret = None if device.primary else account.device_secret(device.id)
        account.rename_device(device.id, name, secret)
        return replace(device, name=name)

    def pending_uri(self, account: Account, device: Device) -> str:
        """The enrollment URL of a pending device again (its QR, shown again after a wrong first code)."""
        if device.active:
            raise DeviceNotPending()
        return self._enrollment.qr_url(account.ref, self._key_text(account, device))

    def activate(self, account: Account, device: Device, code: str | None) -> list[str] | None:
        """Activate a pending device if ``code`` is right for it: the user's new recovery codes when it is
        the primary device, else []; None if the code is wrong (counted toward the lockout)."""
        if device.active:
            raise DeviceNotPending()
        if device.primary:
            codes = self._enrollment.enable_totp(account, code)
            if codes is not None:
                account.update_device(device.id, active=True, last_used_at=_utcnow())
            return codes
        state = self._checker.unlocked_state(account)
        if device.pending_expires_at is not None and self.now() >= device.pending_expires_at:
            raise DevicePendingExpired()
        step = matching_step(self._key(account, device), code, self.now(), self._checker.otp)
        if step is None:
            self._checker.failed(account, state)
            return None
        self._checker.succeeded(account, state)
        account.update_device(device.id, active=True, pending_expires_at=None, last_step=step,
                              last_used_at=_utcnow())
        return []

    def verify(self, account: Account, device: Device, code: str | None) -> bool:
        """Whether ``code`` is the device's current code, once (replays refused); counted toward the lockout."""
        if not device.active:
            raise DeviceNotActive()
        state = self._checker.unlocked_state(account)
        if self._check_code(account, device, code, state):
            self._checker.succeeded(account, state)
            if device.id is not None:
                account.update_device(device.id, last_used_at=_utcnow())
            return True
        self._checker.failed(account, state)
        return False

    def remove(self, account: Account, device: Device) -> None:
        """Remove a device. Removing the primary device makes the oldest other active device primary;
        with none, TOTP is reset (as resetTOTP)."""
        if not device.primary:
            account.remove_device(device.id)
            return
        successor = next((d for d in account.devices() if not d.primary and d.active), None)
        if successor is None:
            self._enrollment.reset_totp(account)  # removes every device
            return
        if device.id is not None:
            account.remove_device(device.id)
        else:
            account.forget_primary_challenges()  # they would now name the successor
        self._enrollment.install_secret(account, self._key_text(account, successor))
        state = account.state()
        steps = [s for s in (state.last_step, successor.last_step) if s is not None]
        account.save_state(last_step=max(steps) if steps else None)
        account.update_device(successor.id, primary=True, secret=None, last_step=None)

    # --- shared steps ---

    def _drop(self, account: Account, device: Device) -> None:
        if device.primary:
            account.set(claims.VERIFY_SECRET_KEY, None)
        if device.id is not None:
            account.remove_device(device.id)

    def _check_code(self, account: Account, device: Device, code: str | None, state) -> bool:
        key = self._key(account, device)
        if device.primary:
            return self._checker.totp_step(account, key, code, state) is not None
        return _claimed_step(account, device, key, code, self._checker)

    def _key_text(self, account: Account, device: Device) -> str:
        if device.primary:
            return account.get(claims.SECRET_KEY if device.active else claims.VERIFY_SECRET_KEY)
        return account.device_secret(device.id)

    def _key(self, account: Account, device: Device) -> bytes:
        encoding = (account.get(claims.ENCODING) if device.primary and device.active else None) \
            or self._settings.encoding
        return secret_codec.decode_secret(self._key_text(account, device), encoding)


def other_device_accepts(account: Account, code: str | None, checker: CodeChecker, encoding: str) -> bool:
    """Whether ``code`` is the current code of one of the user's active non-primary devices (claimed as
    used): validateTOTP's second chance, after the primary device's code did not match. Costs a read only
    then, so a right code for the primary device (the usual call) costs nothing more."""
    for device in account.devices():
        if not device.primary and device.active:
            key = secret_codec.decode_secret(account.device_secret(device.id), encoding)
            if _claimed_step(account, device, key, code, checker):
                account.update_device(device.id, last_used_at=_utcnow())
                return True
    return False


def _claimed_step(account: Account, device: Device, key: bytes, code: str | None, checker: CodeChecker) -> bool:
    step = matching_step(key, code, checker.now(), checker.otp, after=device.last_step)
    return step is not None and account.claim_device_step(device.id, step)


def _utcnow() -> datetime:
    """Naive UTC, as the store keeps times."""
    return datetime.now(timezone.utc).replace(tzinfo=None)
