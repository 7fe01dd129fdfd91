"""MyAccount's use cases (operations/my_account.py) on a real SQLite store with a moved clock: the levels
each call needs, the first device raising the session, verify before it counts, rename (a non-primary
device's secret sealed again under its new name), the last device kept while TOTP is required, and
recovery codes only at ACR 3. The pages' flows in a browser are in tests/pages."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from test_sessions import ALICE, World, db, password_caller, session_caller, world  # noqa: F401 (fixtures)
from totpadmin.config.loader import load_settings
from totpadmin.core.devices import Devices
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.errors import AcrTooLow, DeviceNameTaken, NotAuthorized, TotpRequired
from totpadmin.operations.my_account import AccountOperations
from totpadmin.operations.totp_policy import USER
from conftest import make_conf


@pytest.fixture
def accounts(world: World, tmp_path) -> AccountOperations:
    settings = load_settings(data_dir=tmp_path, conf_dir=make_conf(tmp_path), database_url=world.db.url)
    enrollment = Enrollment(settings.totp, clock=world.clock)
    return AccountOperations(settings, world.sessions, Devices(settings.totp, enrollment, clock=world.clock),
                             enrollment, clock=world.clock)


def totp_of(uri: str) -> pyotp.TOTP:
    return pyotp.TOTP(parse_qs(urlsplit(uri).query)["secret"][0])


def test_the_first_device_raises_the_session_later_ones_need_acr_2_and_codes_need_acr_3(world, accounts):
    new = world.sessions.sign_in(password_caller(world.db, ALICE))
    caller = session_caller(world, new.token)
    assert accounts.security(caller).totp_enabled is False
    phone = accounts.add_device(caller, "Phone")
    totp = totp_of(phone.registration_uri)
    wrong = accounts.activate_device(caller, "Phone", "000000" if totp.at(world.clock.now) != "000000" else "1")
    assert not wrong.activated and wrong.uri == phone.registration_uri, "a wrong code: the same QR again"
    done = accounts.activate_device(caller, "Phone", totp.at(world.clock.now))
    assert done.activated and len(done.recovery_codes) == 10
    assert done.session is not None and done.session.view.acr == 3, "the verified code is a second factor"

    raised = session_caller(world, done.session.token)
    world.clock.step(11)  # step-up over: ACR 2
    assert accounts.security(raised).acr == 2
    with pytest.raises(AcrTooLow) as low:
        accounts.regenerate_recovery_codes(raised)
    assert low.value.needed == 3
    tablet = accounts.add_device(raised, "Tablet")
    second = accounts.activate_device(raised, "Tablet", totp_of(tablet.registration_uri).at(world.clock.now))
    assert second.activated and second.recovery_codes == [] and second.session is None

    again = world.sessions.sign_in(password_caller(world.db, ALICE))  # a password only: ACR 1
    with pytest.raises(AcrTooLow):
        accounts.add_device(session_caller(world, again.token), "Laptop")


def test_rename_keeps_the_device_working_and_names_stay_unique(world, accounts):
    new = world.sessions.sign_in(password_caller(world.db, ALICE))
    caller = session_caller(world, new.token)
    phone = accounts.add_device(caller, "Phone")
    done = accounts.activate_device(caller, "Phone", totp_of(phone.registration_uri).at(world.clock.now))
    caller = session_caller(world, done.session.token)
    tablet = accounts.add_device(caller, "Tablet")
    tablet_totp = totp_of(tablet.registration_uri)
    accounts.activate_device(caller, "Tablet", tablet_totp.at(world.clock.now))
    with pytest.raises(DeviceNameTaken):
        accounts.rename_device(caller, "Tablet", "PHONE")
    accounts.rename_device(caller, "Tablet", "iPad")
    assert [d.name for d in accounts.security(caller).devices] == ["Phone", "iPad"]

    world.clock.step()
    later = world.sessions.sign_in(password_caller(world.db, ALICE))
    raised = world.sessions.second_factor(session_caller(world, later.token), tablet_totp.at(world.clock.now))
    assert raised.view.acr == 3, "the renamed device's secret still opens: sealed again under its new name"


def test_the_last_device_stays_while_totp_is_required(world, accounts):
    new = world.sessions.sign_in(password_caller(world.db, ALICE))
    caller = session_caller(world, new.token)
    phone = accounts.add_device(caller, "Phone")
    token = accounts.activate_device(caller, "Phone", totp_of(phone.registration_uri).at(world.clock.now)).session.token
    caller = session_caller(world, token)
    accounts.require_totp(caller, True)
    assert accounts.security(caller).required_by == USER
    with pytest.raises(TotpRequired):
        accounts.remove_device(caller, "Phone")
    accounts.require_totp(caller, False)
    assert accounts.remove_device(caller, "Phone") is False, "TOTP off"
    with pytest.raises(NotAuthorized):
        session_caller(world, token)  # the reset ended every session, this one too
