"""The device API's use cases (``protocols/json/ciam.py`` translates them): an application, signed in
with its access token, manages the TOTP devices of a user of its tenant and signs them in with a code.

Seed 001: "an administrator cannot enable MFA for another user": only an application's caller is
accepted here, and only for users of the application's own tenant. The application's TOTP policy
(``client add --totp``) decides what a sign-in of a user without an active device gets.
Each call is one transaction, audited like the SOAP operations (operations/totp.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

from ..config.settings import Settings
from ..core import audit, claims
from ..core.application import OFF, OPTIONAL, Application
from ..core.device_challenges import ACTIVATION, AUTHENTICATION, AuthIds, Challenge, device_tag
from ..core.device import Device
from ..core.devices import Devices, NewDevice
from ..core.errors import (ChallengeGone, DeviceNotActive, EnrollmentRequired, NotAuthorized, TotpAdminError,
                           TotpOffForApplication, UnknownChallenge, UnknownDevice, UnsupportedDeviceType)
from ..core.usernames import SUPER_TENANT, UserRef, parse_username
from ..store.database import Database
from ..store.transaction import Transaction
from .audit_log import log_event
from .audit_trail import AuditTrail, ImmediateAuditTrail
from .caller import Caller, LoginChanged
from .totp import caller_event

T = TypeVar("T")

TOTP = "TOTP"  # the one deviceType
PURGE_EVERY = 256  # authIds spent by this process between two deletions of expired spent ones


@dataclass(frozen=True)
class AddedDevice:
    auth_id: str  # activates the device with its first code
    new: NewDevice


@dataclass(frozen=True)
class StartedAuthentication:
    """``auth_id`` None: the user has no active device and the application's TOTP is optional."""

    auth_id: str | None


class DeviceOperations:
    def __init__(self, settings: Settings, db: Database, devices: Devices, audit_trail: AuditTrail | None = None,
                 observe: Callable[[audit.AuditEvent], None] = lambda event: None, *, clock=time.time):
        self._settings = settings
        self._db = db
        self._devices = devices
        self._trail = audit_trail if audit_trail is not None else ImmediateAuditTrail(db)
        self._observe = observe
        self._clock = clock
        self._auth_ids = AuthIds(db.box.refresh, settings.totp.device_auth_seconds)
        self._spent = 0  # authIds spent (a race between threads only moves a purge by one)

    def add_device(self, caller: Caller, user_name: str, device_type: str, device_name: str) -> AddedDevice:
        """A pending device and the authId that activates it."""
        _check_type(device_type)

        def action(transaction, account, app, _):
            new = self._devices.add(account, device_name)
            return AddedDevice(self._challenge(ACTIVATION, account, new.device, app), new), True
        return self._run(caller, "devices.add", self._by_name(user_name), action)

    def activate_device(self, caller: Caller, auth_id: str, code: str | None) -> list[str] | None:
        """Activate the authId's device with its first code: the recovery codes (empty unless it is the
        user's first device); None for a wrong code (the authId stays usable until it expires)."""
        def action(transaction, account, app, challenge: Challenge):
            device = self._device(account, challenge)
            codes = self._devices.activate(account, device, code)
            if codes is not None:
                self._spend(transaction, challenge)
            return codes, codes is not None
        return self._run(caller, "devices.activate", self._by_challenge(auth_id, ACTIVATION), action)

    def list_devices(self, caller: Caller, user_name: str) -> list[Device]:
        return self._run(caller, "devices.list", self._by_name(user_name),
                         lambda transaction, account, app, _: (self._devices.list(account, dated=True), True))

    def remove_device(self, caller: Caller, user_name: str, device_name: str) -> None:
        def action(transaction, account, app, _):
            self._devices.remove(account, self._devices.find(account, device_name))
            return None, True
        return self._run(caller, "devices.remove", self._by_name(user_name), action)

    def start_authentication(self, caller: Caller, user_name: str, device_name: str | None,
                             device_type: str) -> StartedAuthentication:
        _check_type(device_type)

        def action(transaction, account, app, _):
            devices = self._devices.list(account)
            active = [d for d in devices if d.active]
            if not active:
                if app.totp_policy == OPTIONAL:
                    return StartedAuthentication(None), True
                raise EnrollmentRequired()
            if not device_name:
                device = active[0]  # the primary device, when it is active
            else:
                device = next((d for d in devices if d.name == device_name), None)
                if device is None:
                    raise UnknownDevice(device_name)
                if not device.active:
                    raise DeviceNotActive()
            return StartedAuthentication(self._challenge(AUTHENTICATION, account, device, app)), True
        # Nothing is written (the authId is a sealed token): where the audit trail allows, a reader.
        read_only = self._trail.reads_first
        return self._run(caller, "deviceAuthentications.start", self._by_name(user_name, for_update=not read_only),
                         action, read_only=read_only)

    def finish_authentication(self, caller: Caller, auth_id: str, device_type: str, code: str | None) -> bool:
        """Whether ``code`` is the current code of the authId's device; a right one spends the authId."""
        _check_type(device_type)

        def action(transaction, account, app, challenge: Challenge):
            ok = self._devices.verify(account, self._device(account, challenge), code)
            if ok:
                self._spend(transaction, challenge)
            return ok, ok
        return self._run(caller, "deviceAuthentications.validate", self._by_challenge(auth_id, AUTHENTICATION), action)

    # --- the steps every call takes ---

    def _run(self, caller: Caller, operation: str, locate, action, *, read_only: bool = False) -> T:
        """``action(transaction, account, application, challenge) -> (result, succeeded)`` on the account
        (and authId's challenge, or None) that ``locate(transaction, application)`` finds, in one
        transaction, audited; a refusal (a domain error) is audited on its own and raised. ``read_only``:
        the action writes nothing, and its audit row is left to the batched trail (audit_trail.py)."""
        target = None
        try:
            with self._db.transaction(read_only=read_only) as transaction:
                if caller.confirm is not None and not caller.confirm(transaction):
                    raise LoginChanged()
                app = _application(caller)
                account, challenge = locate(transaction, app)
                target = account.ref
                result, succeeded = action(transaction, account, app, challenge)
                event = caller_event(caller, operation, target, audit.SUCCESS if succeeded else audit.FAILURE)
                if not read_only:
                    self._trail.add(transaction, event)
        except TotpAdminError as err:
            outcome = audit.DENIED if isinstance(err, (NotAuthorized, TotpOffForApplication)) else audit.FAULT
            refusal = caller_event(caller, operation, target, outcome, type(err).__name__)
            log_event(refusal)
            self._observe(refusal)
            self._trail.add_alone(refusal)
            raise
        log_event(event)
        if read_only:
            self._trail.leave(event)  # observed once stored
        else:
            self._observe(event)
        return result

    def _by_name(self, user_name: str, *, for_update: bool = True):
        def locate(transaction: Transaction, app):
            return transaction.accounts.find(self._target(app, user_name), for_update=for_update), None
        return locate

    def _by_challenge(self, auth_id: str, kind: str):
        def locate(transaction: Transaction, app):
            challenge = self._challenge_of(transaction, auth_id, kind, app)
            return transaction.accounts.find_by_id(challenge.user_id), challenge
        return locate

    def _target(self, app, user_name: str) -> UserRef:
        """``user_name`` in the application's tenant; naming another tenant is refused."""
        ref = parse_username(user_name, email_usernames=self._settings.carbon.email_usernames)
        explicit = ref.tenant != SUPER_TENANT or user_name.strip(" ").lower().endswith("@" + SUPER_TENANT)
        if not explicit:
            return UserRef(app.tenant, ref.name)
        if ref.tenant != app.tenant:
            raise NotAuthorized()
        return ref

    def _challenge(self, kind: str, account, device: Device, app) -> str:
        return self._auth_ids.issue(kind, app.client_id, account.user_id, device.id, _tag(account, device),
                                    self._clock())

    def _challenge_of(self, transaction: Transaction, auth_id: str, kind: str, app) -> Challenge:
        """The authId's challenge, if this application issued it for this kind of call (else unknown:
        another application's authIds are not told apart from made-up ones), unspent and unexpired."""
        challenge = self._auth_ids.open(auth_id, kind, app.client_id, self._clock())
        if transaction.challenges.is_spent(challenge.auth_hash):
            raise ChallengeGone(spent=True)
        return challenge

    def _spend(self, transaction: Transaction, challenge: Challenge) -> None:
        self._spent += 1
        purge = self._clock() if self._spent % PURGE_EVERY == 1 else None
        if not transaction.challenges.spend(challenge.auth_hash, challenge.expires_at, purge_before=purge):
            raise ChallengeGone(spent=True)  # a concurrent call used it first

    def _device(self, account, challenge: Challenge) -> Device:
        """The authId's device, as it is now: the same row (or the primary device without one) under the
        same name; else unknown (the device was removed, or its row id went to another device)."""
        if challenge.device_id is None:
            device = self._devices.rowless_primary(account)  # no device row to read
        else:
            device = next((d for d in self._devices.list(account) if d.id == challenge.device_id), None)
        if device is None or _tag(account, device) != challenge.device_tag:
            raise UnknownChallenge()
        return device


def _application(caller: Caller) -> Application:
    """The application the caller is; a user or admin (SOAP credentials) is refused."""
    app = caller.principal
    if not isinstance(app, Application):
        raise NotAuthorized()
    if app.totp_policy == OFF:
        raise TotpOffForApplication()
    return app


def _tag(account, device: Device) -> bytes:
    return device_tag(device.name, account.stored(claims.SECRET_KEY) if device.id is None else None)


def _check_type(device_type: str) -> None:
    if device_type != TOTP:
        raise UnsupportedDeviceType()
