"""Several named devices per user and the device API's use cases (operations/devices.py), with no server:
a real SQLite store and key ring, codes from pyotp, time moved by a clock the test holds."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from conftest import Clock, make_conf
from totpadmin.config.loader import load_settings
from totpadmin.core import keyring
from totpadmin.core.application import SCOPES, Application
from totpadmin.core.devices import Devices
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.errors import (ChallengeGone, DeviceNameTaken, DeviceNotActive, DeviceNotPending, EnrollmentRequired,
                                   FirstDevicePending, InvalidDeviceName, NotAuthorized, TooManyDevices,
                                   TotpOffForApplication, UnknownChallenge, UnknownDevice, UnknownUser, UserLocked)
from totpadmin.core.principal import ADMIN, USER, Principal
from totpadmin.core.secretbox import SecretBox
from totpadmin.core.usernames import SUPER_TENANT, UserRef
from totpadmin.core.validation import Validation
from totpadmin.operations.caller import Caller
from totpadmin.operations.devices import DeviceOperations
from totpadmin.operations.totp import TotpOperations
from totpadmin.store.database import Database

TENANT = "shop.example"


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'totp-admin.db'}")
    db.create_schema()
    db.box = SecretBox(keyring.load_or_create(tmp_path / "secret-keys.json"))
    with db.transaction() as transaction:
        transaction.users.add_tenant(TENANT)
        for ref, role in ((UserRef(SUPER_TENANT, "admin"), ADMIN), (UserRef(TENANT, "alice"), USER),
                          (UserRef(TENANT, "bob"), USER), (UserRef(SUPER_TENANT, "carol"), USER)):
            transaction.users.add_user(ref, "not a password hash", role)
    yield db
    db.dispose()


@dataclass
class World:
    devices: DeviceOperations
    soap: TotpOperations
    clock: Clock
    db: Database


@pytest.fixture
def world(tmp_path, db) -> World:
    return build(tmp_path, db)


def build(tmp_path, db, properties=None) -> World:
    clock = Clock()
    settings = load_settings(data_dir=tmp_path, conf_dir=make_conf(tmp_path, properties=properties),
                             database_url=db.url)
    enrollment = Enrollment(settings.totp, clock=clock)
    validation = Validation(settings.totp, clock=clock)
    return World(DeviceOperations(settings, db, Devices(settings.totp, enrollment, clock=clock), clock=clock),
                 TotpOperations(settings, db, enrollment, validation), clock, db)


def app(policy: str = "required", client_id: str = "shop-app", tenant: str = TENANT) -> Caller:
    """An application's caller, as the bearer-token check hands it over."""
    return Caller(Application(1, client_id, "shop", tenant, frozenset(SCOPES), policy), request_id="r1",
                  source="192.0.2.9")


def admin(db: Database) -> Caller:
    with db.transaction(read_only=True) as transaction:
        login = transaction.users.find_login(UserRef(SUPER_TENANT, "admin"))
    return Caller(Principal(login.user_id, login.ref, login.role), request_id="r0", source="192.0.2.7")


def totp_of(added) -> pyotp.TOTP:
    query = parse_qs(urlsplit(added.new.registration_uri).query)
    assert query["secret"] == [added.new.secret]
    return pyotp.TOTP(added.new.secret)


def enroll(world: World, user: str, name: str, caller: Caller | None = None) -> pyotp.TOTP:
    added = world.devices.add_device(caller or app(), user, "TOTP", name)
    totp = totp_of(added)
    assert world.devices.activate_device(caller or app(), added.auth_id, totp.at(world.clock.now)) is not None
    world.clock.step()
    return totp


def sign_in(world: World, user: str, device: str | None, code: str, caller: Caller | None = None) -> bool:
    started = world.devices.start_authentication(caller or app(), user, device, "TOTP")
    return world.devices.finish_authentication(caller or app(), started.auth_id, "TOTP", code)


def test_the_first_device_is_pending_until_its_code_then_the_soap_operations_see_it(world):
    added = world.devices.add_device(app(), "alice", "TOTP", "phone")
    totp = totp_of(added)
    assert [(d.name, d.primary, d.active) for d in world.devices.list_devices(app(), "alice")] == [
        ("phone", True, False)]
    assert world.soap.is_totp_enabled(admin(world.db), f"alice@{TENANT}") is False, "verify before activate"

    assert world.devices.activate_device(app(), added.auth_id, "000000" if totp.at(world.clock.now) != "000000"
                                         else "111111") is None
    codes = world.devices.activate_device(app(), added.auth_id, totp.at(world.clock.now))
    assert len(codes) == 10, "the first device brings the user's recovery codes"
    assert world.soap.is_totp_enabled(admin(world.db), f"alice@{TENANT}") is True
    with pytest.raises(ChallengeGone):
        world.devices.activate_device(app(), added.auth_id, totp.at(world.clock.now))

    world.clock.step()
    assert world.soap.validate_totp(admin(world.db), f"alice@{TENANT}", totp.at(world.clock.now)) is True
    [phone] = world.devices.list_devices(app(), "alice")
    assert phone.active and phone.created_at is not None and phone.last_used_at is not None


def test_validate_totp_accepts_a_code_of_any_active_device_once(world):
    phone = enroll(world, "alice", "phone")
    tablet = enroll(world, "alice", "tablet")
    assert phone.secret != tablet.secret
    names = [(d.name, d.primary, d.active) for d in world.devices.list_devices(app(), "alice")]
    assert names == [("phone", True, True), ("tablet", False, True)]

    user = f"alice@{TENANT}"
    assert world.soap.validate_totp(admin(world.db), user, tablet.at(world.clock.now)) is True
    assert world.soap.validate_totp(admin(world.db), user, tablet.at(world.clock.now)) is False, "a replay"
    assert world.soap.validate_totp(admin(world.db), user, phone.at(world.clock.now)) is True, "each its own replay state"
    assert sign_in(world, "alice", "tablet", phone.at(world.clock.now + 30)) is False, "the code of another device"
    world.clock.step()
    assert sign_in(world, "alice", "tablet", tablet.at(world.clock.now)) is True


def test_device_names_and_the_limit(tmp_path, db):
    world = build(tmp_path, db, {"maxDevicesPerUser": "3"})
    enroll(world, "alice", "phone")
    with pytest.raises(DeviceNameTaken):
        world.devices.add_device(app(), "alice", "TOTP", "PHONE")
    for bad in ("", " phone", "a/b", "x" * 65, "tab\tlet", None, 7):
        with pytest.raises(InvalidDeviceName):
            world.devices.add_device(app(), "alice", "TOTP", bad)
    first = world.devices.add_device(app(), "alice", "TOTP", "tablet")
    again = world.devices.add_device(app(), "alice", "TOTP", "tablet")  # a pending one is replaced
    assert first.new.secret != again.new.secret
    with pytest.raises(UnknownChallenge):
        world.devices.activate_device(app(), first.auth_id, totp_of(first).at(world.clock.now))
    assert world.devices.activate_device(app(), again.auth_id, totp_of(again).at(world.clock.now)) == []
    world.devices.add_device(app(), "alice", "TOTP", "watch")
    with pytest.raises(TooManyDevices):
        world.devices.add_device(app(), "alice", "TOTP", "laptop")


def test_a_second_device_waits_for_the_first(world):
    world.devices.add_device(app(), "alice", "TOTP", "phone")
    with pytest.raises(FirstDevicePending):
        world.devices.add_device(app(), "alice", "TOTP", "tablet")


def test_removing_the_primary_device_promotes_the_next_and_the_last_resets_totp(world):
    enroll(world, "alice", "phone")
    tablet = enroll(world, "alice", "tablet")
    user = f"alice@{TENANT}"
    world.devices.remove_device(app(), "alice", "phone")
    assert [(d.name, d.primary) for d in world.devices.list_devices(app(), "alice")] == [("tablet", True)]
    assert world.soap.validate_totp(admin(world.db), user, tablet.at(world.clock.now)) is True, "now the claims' secret"
    with pytest.raises(UnknownDevice):
        world.devices.remove_device(app(), "alice", "phone")
    world.devices.remove_device(app(), "alice", "tablet")
    assert world.devices.list_devices(app(), "alice") == []
    assert world.soap.is_totp_enabled(admin(world.db), user) is False


def test_reset_totp_removes_every_device(world):
    enroll(world, "alice", "phone")
    enroll(world, "alice", "tablet")
    world.soap.reset_totp(admin(world.db), f"alice@{TENANT}")
    assert world.devices.list_devices(app(), "alice") == []


def test_an_enrolment_made_over_soap_is_the_device_default(world):
    qr = world.soap.init_totp(admin(world.db), f"alice@{TENANT}")
    totp = pyotp.TOTP(parse_qs(urlsplit(base64.b64decode(qr).decode()).query)["secret"][0])
    [default] = world.devices.list_devices(app(), "alice")
    assert (default.name, default.primary, default.active, default.id) == ("default", True, True, None)
    assert sign_in(world, "alice", "default", totp.at(world.clock.now)) is True
    [still] = world.devices.list_devices(app(), "alice")
    assert still.id is None, "signing in writes no row for it (its authId names it by a NULL device)"


def test_a_device_soap_activated_first_is_not_pending_for_its_authid(world):
    added = world.devices.add_device(app(), "alice", "TOTP", "phone")
    code = totp_of(added).at(world.clock.now)
    assert world.soap.enable_totp(admin(world.db), f"alice@{TENANT}", code) is True
    with pytest.raises(DeviceNotPending):
        world.devices.activate_device(app(), added.auth_id, code)


def test_authids_are_bound_to_their_application_kind_and_time(world):
    phone = enroll(world, "alice", "phone")
    started = world.devices.start_authentication(app(), "alice", "phone", "TOTP")
    code = phone.at(world.clock.now)
    with pytest.raises(UnknownChallenge):
        world.devices.finish_authentication(app(client_id="other-app"), started.auth_id, "TOTP", code)
    with pytest.raises(UnknownChallenge):
        world.devices.activate_device(app(), started.auth_id, code)
    with pytest.raises(UnknownChallenge):
        world.devices.finish_authentication(app(), "0063f27c-787b-4046-8b8e-a75e241b5ea6", "TOTP", code)
    assert world.devices.finish_authentication(app(), started.auth_id, "TOTP", code) is True
    with pytest.raises(ChallengeGone):
        world.devices.finish_authentication(app(), started.auth_id, "TOTP", code)

    late = world.devices.start_authentication(app(), "alice", None, "TOTP")
    world.clock.now += 301
    with pytest.raises(ChallengeGone):
        world.devices.finish_authentication(app(), late.auth_id, "TOTP", phone.at(world.clock.now))


def test_wrong_codes_lock_the_user_as_validate_totp_does(world):
    phone = enroll(world, "alice", "phone")
    started = world.devices.start_authentication(app(), "alice", "phone", "TOTP")
    wrong = "000000" if phone.at(world.clock.now) != "000000" else "111111"
    for _ in range(5):
        assert world.devices.finish_authentication(app(), started.auth_id, "TOTP", wrong) is False
    with pytest.raises(UserLocked):
        world.devices.finish_authentication(app(), started.auth_id, "TOTP", phone.at(world.clock.now))


def test_applications_act_only_in_their_tenant_and_users_never_here(world):
    with pytest.raises(NotAuthorized):
        world.devices.add_device(app(), f"carol@{SUPER_TENANT}", "TOTP", "phone")
    with pytest.raises(NotAuthorized):
        world.devices.add_device(app(tenant=SUPER_TENANT), f"alice@{TENANT}", "TOTP", "phone")
    with pytest.raises(UnknownUser):
        world.devices.add_device(app(tenant=SUPER_TENANT), "alice", "TOTP", "phone")
    with pytest.raises(NotAuthorized):
        world.devices.add_device(admin(world.db), f"alice@{TENANT}", "TOTP", "phone")
    assert world.devices.add_device(app(tenant=SUPER_TENANT), "carol", "TOTP", "phone").auth_id


def test_the_applications_totp_policy(world):
    with pytest.raises(EnrollmentRequired):
        world.devices.start_authentication(app("required"), "bob", None, "TOTP")
    assert world.devices.start_authentication(app("optional"), "bob", None, "TOTP").auth_id is None
    with pytest.raises(TotpOffForApplication):
        world.devices.start_authentication(app("off"), "bob", None, "TOTP")
    with pytest.raises(TotpOffForApplication):
        world.devices.add_device(app("off"), "bob", "TOTP", "phone")


def test_enrolments_of_a_store_from_before_devices_keep_working_after_the_upgrade(tmp_path, db):
    """A store at revision 0002 (before devices) with a SOAP enrolment: after `db upgrade` to 0004 the code
    on the user's phone is accepted and the enrolment is the device "default"."""
    from alembic import command

    from totpadmin.store import schema

    world = build(tmp_path, db)
    qr = world.soap.init_totp(admin(db), f"alice@{TENANT}")
    totp = pyotp.TOTP(parse_qs(urlsplit(base64.b64decode(qr).decode()).query)["secret"][0])
    with db.engine.begin() as conn:
        cfg = schema._config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert schema.current_revision(db.engine) == "0002"
    schema.upgrade(db.engine)
    assert schema.current_revision(db.engine) == schema.head_revision()

    assert [(d.name, d.active) for d in world.devices.list_devices(app(), "alice")] == [("default", True)]
    assert world.soap.validate_totp(admin(db), f"alice@{TENANT}", totp.at(world.clock.now)) is True


def test_a_sign_in_names_an_active_device(world):
    enroll(world, "alice", "phone")
    world.devices.add_device(app(), "alice", "TOTP", "tablet")
    with pytest.raises(DeviceNotActive):
        world.devices.start_authentication(app(), "alice", "tablet", "TOTP")
    with pytest.raises(UnknownDevice):
        world.devices.start_authentication(app(), "alice", "watch", "TOTP")
    assert world.devices.start_authentication(app(), "alice", None, "TOTP").auth_id


def test_long_expired_authids_are_deleted_now_and_then(world):
    from totpadmin.core.device_challenges import KEPT_SECONDS, Challenge, auth_hash
    from totpadmin.operations.devices import PURGE_EVERY

    enroll(world, "alice", "phone")
    old = Challenge(auth_hash=auth_hash("old"), kind="authentication", user_id=2, device_id=None, client="x",
                    expires_at=world.clock.now - KEPT_SECONDS - 1, issued_at=world.clock.now - KEPT_SECONDS - 301)
    with world.db.transaction() as transaction:
        transaction.challenges.add(old)
    count = "SELECT count(*) FROM device_challenges"
    with world.db.transaction(read_only=True) as transaction:
        before = transaction.connection.exec_driver_sql(count).scalar()
    for _ in range(PURGE_EVERY):  # the enrolment's authId was the first of this process: the purge comes again
        world.devices.start_authentication(app(), "alice", "phone", "TOTP")
    with world.db.transaction(read_only=True) as transaction:
        assert transaction.challenges.find(old.auth_hash) is None
        assert transaction.connection.exec_driver_sql(count).scalar() == before - 1 + PURGE_EVERY
