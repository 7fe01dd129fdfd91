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
from ..core import audit
from ..core.application import OFF, OPTIONAL, Application
from ..core.device_challenges import ACTIVATION, AUTHENTICATION, Challenge, auth_hash, new_auth_id
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
PURGE_EVERY = 256  # authIds issued by this process between two deletions of long-expired ones


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
        self._added = 0  # authIds issued (a race between threads only moves a purge by one)

    def add_device(self, caller: Caller, user_name: str, device_type: str, device_name: str) -> AddedDevice:
        """A pending device and the authId that activates it."""
        _check_type(device_type)

        def action(transaction, account, app, _):
            new = self._devices.add(account, device_name)
            return AddedDevice(self._challenge(transaction, ACTIVATION, account, new.device, app), new), True
        return self._run(caller, "devices.add", self._by_name(user_name), action)

    def activate_device(self, caller: Caller, auth_id: str, code: str | None) -> list[str] | None:
        """Activate the authId's device with its first code: the recovery codes (empty unless it is the
        user's first device); None for a wrong code (the authId stays usable until it expires)."""
        def action(transaction, account, app, challenge: Challenge):
            device = self._device(account, challenge.device_id)
            codes = self._devices.activate(account, device, code)
            if codes is not None:
                transaction.challenges.spend(challenge.auth_hash)
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
            return StartedAuthentication(self._challenge(transaction, AUTHENTICATION, account, device, app)), True
        return self._run(caller, "deviceAuthentications.start", self._by_name(user_name), action)

    def finish_authentication(self, caller: Caller, auth_id: str, device_type: str, code: str | None) -> bool:
        """Whether ``code`` is the current code of the authId's device; a right one spends the authId."""
        _check_type(device_type)

        def action(transaction, account, app, challenge: Challenge):
            ok = self._devices.verify(account, self._device(account, challenge.device_id), code)
            if ok and not transaction.challenges.spend(challenge.auth_hash):
                raise ChallengeGone(spent=True)  # a concurrent call used it first
            return ok, ok
        return self._run(caller, "deviceAuthentications.validate", self._by_challenge(auth_id, AUTHENTICATION), action)

    # --- the steps every call takes ---

    def _run(self, caller: Caller, operation: str, locate, action) -> T:
        """``action(transaction, account, application, challenge) -> (result, succeeded)`` on the account
        (and authId's challenge, or None) that ``locate(transaction, application)`` finds, in one
        transaction, audited; a refusal (a domain error) is audited on its own and raised."""
        target = None
        try:
            with self._db.transaction() as transaction:
                if caller.confirm is not None and not caller.confirm(transaction):
                    raise LoginChanged()
                app = _application(caller)
                account, challenge = locate(transaction, app)
                target = account.ref
                result, succeeded = action(transaction, account, app, challenge)
                event = caller_event(caller, operation, target, audit.SUCCESS if succeeded else audit.FAILURE)
                self._trail.add(transaction, event)
        except TotpAdminError as err:
            outcome = audit.DENIED if isinstance(err, (NotAuthorized, TotpOffForApplication)) else audit.FAULT
            refusal = caller_event(caller, operation, target, outcome, type(err).__name__)
            self._trail.audit_alone(refusal, self._observe)
            raise
        log_event(event)
        self._observe(event)
        return result

    def _by_name(self, user_name: str):
        def locate(transaction: Transaction, app):
            return transaction.accounts.find(self._target(app, user_name)), None
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

    def _challenge(self, transaction: Transaction, kind: str, account, device: Device, app) -> str:
        auth_id = new_auth_id()
        now = self._clock()
        self._added += 1
        transaction.challenges.add(Challenge(
            auth_hash=auth_hash(auth_id), kind=kind, user_id=account.user_id, device_id=device.id,
            client=app.client_id, expires_at=now + self._settings.totp.device_auth_seconds, issued_at=now),
            purge=self._added % PURGE_EVERY == 1)
        return auth_id

    def _challenge_of(self, transaction: Transaction, auth_id: str, kind: str, app) -> Challenge:
        """The authId's challenge, if it is this application's and of this kind (else unknown: another
        application's authIds are not told apart from made-up ones), unspent and unexpired."""
        challenge = transaction.challenges.find(auth_hash(auth_id)) if isinstance(auth_id, str) else None
        if challenge is None or challenge.kind != kind or challenge.client != app.client_id:
            raise UnknownChallenge()
        if challenge.spent or self._clock() >= challenge.expires_at:
            raise ChallengeGone(spent=challenge.spent)
        return challenge

    def _device(self, account, device_id: int | None) -> Device:
        if device_id is None:
            return self._devices.rowless_primary(account)  # no device row to read
        for device in self._devices.list(account):
            if device.id == device_id:
                return device
        raise UnknownChallenge()  # its device was removed (the authId would have gone with it)


def _application(caller: Caller) -> Application:
    """The application the caller is; a user or admin (SOAP credentials) is refused."""
    app = caller.principal
    if not isinstance(app, Application):
        raise NotAuthorized()
    if app.totp_policy == OFF:
        raise TotpOffForApplication()
    return app


def _check_type(device_type: str) -> None:
    if device_type != TOTP:
        raise UnsupportedDeviceType()
