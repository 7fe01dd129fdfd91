"""Sign-in sessions and their assurance levels (operations/sessions.py), with no server: a real SQLite
store and key ring, TOTP codes from pyotp, time moved by a clock the test holds."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from conftest import Clock, make_conf
from totpadmin.config.loader import load_settings
from totpadmin.core import keyring
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.errors import NotAuthorized, SessionEnded, UserLocked
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.principal import ADMIN, USER, Principal
from totpadmin.core.secretbox import SecretBox
from totpadmin.core.sessions import SessionPolicy, csrf_matches, csrf_token, token_hash
from totpadmin.core.usernames import SUPER_TENANT, UserRef
from totpadmin.core.validation import Validation
from totpadmin.operations.caller import Caller
from totpadmin.operations.sessions import SessionCredentials, SessionOperations, NewSession, WrongCode
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
        transaction.users.add_user(UserRef(SUPER_TENANT, "admin"), "not a password hash", ADMIN)
        transaction.users.add_user(UserRef(TENANT, "alice"), "not a password hash", USER)
    yield db
    db.dispose()


@dataclass
class World:
    sessions: SessionOperations
    soap: TotpOperations
    clock: Clock
    db: Database


@pytest.fixture
def world(tmp_path, db) -> World:
    clock = Clock()
    settings = load_settings(data_dir=tmp_path, conf_dir=make_conf(tmp_path), database_url=db.url)
    enrollment = Enrollment(settings.totp, clock=clock)
    validation = Validation(settings.totp, clock=clock)
    return World(SessionOperations(db, validation, SessionPolicy(idle_seconds=1800, max_seconds=43200), clock=clock),
                 TotpOperations(settings, db, enrollment, validation), clock, db)


def password_caller(db: Database, ref: UserRef) -> Caller:
    """The caller the login pipeline hands over once the password was checked."""
    with db.transaction(read_only=True) as transaction:
        login = transaction.users.find_login(ref)
    return Caller(Principal(login.user_id, login.ref, login.role), request_id="r1", source="192.0.2.9")


def session_caller(world: World, token: str) -> Caller:
    """The caller the login pipeline hands over for a session token (None: refused)."""
    found = world.sessions.find(SessionCredentials(token, from_cookie=True))
    if found is None:
        raise NotAuthorized()
    return Caller(found, request_id="r2", source="192.0.2.9")


def enroll(world: World, ref: UserRef) -> tuple[pyotp.TOTP, list[str]]:
    admin = password_caller(world.db, UserRef(SUPER_TENANT, "admin"))
    qr = world.soap.init_totp(admin, ref.qualified)
    totp = pyotp.TOTP(parse_qs(urlsplit(base64.b64decode(qr).decode()).query)["secret"][0])
    codes = world.soap.regenerate_recovery_codes(admin, ref.qualified)
    return totp, codes


ALICE = UserRef(TENANT, "alice")


def test_a_password_gives_acr_1_and_a_totp_code_2_then_3_for_five_minutes(world):
    totp, _ = enroll(world, ALICE)
    new = world.sessions.sign_in(password_caller(world.db, ALICE))
    view = new.view
    assert (view.user_name, view.tenant, view.acr, view.totp_enabled) == ("alice", TENANT, 1, True)
    assert uuid.UUID(view.id).version == 4
    with world.db.transaction(read_only=True) as transaction:
        stored = transaction.connection.exec_driver_sql("SELECT token_hash FROM sessions").scalars().all()
    assert stored == [token_hash(new.token)], "only the token's SHA-256 is stored"

    raised = world.sessions.second_factor(session_caller(world, new.token), totp.at(world.clock.now))
    assert raised is not None and raised.token != new.token, "rotated at the change of level"
    assert raised.view.acr == 3, "a TOTP code just entered: step-up"
    with pytest.raises(NotAuthorized):
        session_caller(world, new.token)  # the old token is gone
    world.clock.now += 301
    assert world.sessions.describe(session_caller(world, raised.token)).acr == 2
    assert world.sessions.describe(session_caller(world, raised.token)).id == view.id, "a stable id"


def test_a_code_used_already_is_told_apart_from_a_wrong_one(world):
    totp, _ = enroll(world, ALICE)
    code = totp.at(world.clock.now)
    first = world.sessions.sign_in(password_caller(world.db, ALICE))
    assert isinstance(world.sessions.second_factor(session_caller(world, first.token), code), NewSession)
    again = world.sessions.sign_in(password_caller(world.db, ALICE))
    assert world.sessions.second_factor(session_caller(world, again.token), code) == WrongCode(replayed=True)
    wrong = "000000" if code != "000000" else "111111"
    assert world.sessions.second_factor(session_caller(world, again.token), wrong) == WrongCode(replayed=False)
    with world.db.transaction(read_only=True) as transaction:
        outcomes = transaction.connection.exec_driver_sql(
            "SELECT outcome FROM audit_events WHERE operation = 'session.secondFactor' ORDER BY id").scalars().all()
    assert outcomes == ["success", "failure", "failure"], "a refused code is audited as a failure"


def test_a_recovery_code_gives_2_but_not_3_and_wrong_codes_lock_as_validate_totp(world):
    totp, codes = enroll(world, ALICE)
    new = world.sessions.sign_in(password_caller(world.db, ALICE))
    raised = world.sessions.second_factor(session_caller(world, new.token), codes[0])
    assert raised.view.acr == 2
    assert world.sessions.second_factor(session_caller(world, raised.token), codes[0]) == WrongCode(), "spent"
    wrong = "000000" if totp.at(world.clock.now) != "000000" else "111111"
    for _ in range(3):  # maxFailedAttempts=5: the spent recovery code was the first failure
        assert world.sessions.second_factor(session_caller(world, raised.token), wrong) == WrongCode()
    locking = world.sessions.second_factor(session_caller(world, raised.token), wrong)
    assert locking.locked_until is not None and locking.locked_until > world.clock.now, "the fifth one locks"
    with pytest.raises(UserLocked):
        world.sessions.second_factor(session_caller(world, raised.token), totp.at(world.clock.now))


def test_sessions_end_when_idle_at_their_limit_at_sign_out_and_with_the_password_or_a_reset(world):
    totp, _ = enroll(world, ALICE)
    caller = password_caller(world.db, ALICE)

    idle = world.sessions.sign_in(caller)
    world.clock.now += 1799
    world.sessions.describe(session_caller(world, idle.token))  # used: its idle time starts again
    world.clock.now += 1799
    world.sessions.describe(session_caller(world, idle.token))
    world.clock.now += 1800
    with pytest.raises(NotAuthorized):
        session_caller(world, idle.token)

    busy = world.sessions.sign_in(caller)
    for _ in range(43200 // 1500):
        world.clock.now += 1500
        world.sessions.describe(session_caller(world, busy.token))
    world.clock.now += 1500
    with pytest.raises(NotAuthorized):
        session_caller(world, busy.token)  # past sessionMaxSeconds, however busy

    out = world.sessions.sign_in(caller)
    world.sessions.sign_out(session_caller(world, out.token))
    with pytest.raises(NotAuthorized):
        session_caller(world, out.token)

    for end in ("password", "reset"):
        new = world.sessions.sign_in(caller)
        other = world.sessions.sign_in(caller)
        found = session_caller(world, new.token)
        with world.db.transaction() as transaction:
            if end == "password":
                transaction.users.set_password(ALICE, PasswordHasher().hash("a new password 1234"))
            else:
                transaction.accounts.find(ALICE).end_sessions()
        with pytest.raises(NotAuthorized):
            session_caller(world, other.token)
        with pytest.raises(SessionEnded):
            world.sessions.describe(found)  # a call already past its login finds it gone


def test_reset_totp_ends_the_users_sessions(world):
    enroll(world, ALICE)
    new = world.sessions.sign_in(password_caller(world.db, ALICE))
    world.soap.reset_totp(password_caller(world.db, UserRef(SUPER_TENANT, "admin")), ALICE.qualified)
    with pytest.raises(NotAuthorized):
        session_caller(world, new.token)


def test_the_csrf_token_derives_from_the_session_token():
    assert csrf_matches("token-a", csrf_token("token-a"))
    assert not csrf_matches("token-b", csrf_token("token-a"))
    assert not csrf_matches("token-a", None) and not csrf_matches("token-a", "")
    assert "token-a" not in csrf_token("token-a")
