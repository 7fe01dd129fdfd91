"""operations/: the use cases as plain Python calls, with no server, no HTTP and no SOAP: a real SQLite
store and key ring, a caller as the login pipeline would hand it over, typed results and domain errors."""

from __future__ import annotations

import base64
import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from sqlalchemy import text

from conftest import make_conf
from totpadmin.config.loader import load_settings
from totpadmin.core import keyring
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.errors import NotAuthorized
from totpadmin.core.principal import ADMIN, USER, Principal
from totpadmin.core.secretbox import SecretBox
from totpadmin.core.usernames import SUPER_TENANT, UserRef
from totpadmin.core.validation import Validation
from totpadmin.operations.audit_trail import AuditTrail, BatchedAuditTrail, ImmediateAuditTrail
from totpadmin.operations.caller import Caller, LoginChanged
from totpadmin.operations.totp import TotpOperations
from totpadmin.store.database import Database


@pytest.fixture
def db(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'totp-admin.db'}")
    db.create_schema()
    db.box = SecretBox(keyring.load_or_create(tmp_path / "secret-keys.json"))
    with db.transaction() as unit:
        for name, role in (("admin", ADMIN), ("alice", USER), ("bob", USER)):
            unit.users.add_user(UserRef(SUPER_TENANT, name), "not a password hash", role)
    yield db
    db.dispose()


def operations(tmp_path, db: Database, trail: AuditTrail | None = None) -> TotpOperations:
    settings = load_settings(data_dir=tmp_path, conf_dir=make_conf(tmp_path), database_url=db.url)
    return TotpOperations(settings, db, Enrollment(settings.totp), Validation(settings.totp), trail)


def caller(db: Database, name: str, request_id: str = "r1") -> Caller:
    with db.transaction(read_only=True) as unit:
        login = unit.users.find_login(UserRef(SUPER_TENANT, name))
    return Caller(Principal(login.user_id, login.ref, login.role), request_id=request_id, source="192.0.2.7")


def audit_rows(db: Database) -> list[tuple]:
    with db.transaction(read_only=True) as unit:
        return [tuple(row) for row in unit.connection.execute(text(
            "SELECT request_id, source, caller, operation, target, outcome, detail FROM audit_events ORDER BY id"))]


def secret_of(qr_code: str) -> str:
    """The secret in the otpauth:// URL that generateSecret and initTOTP return as Base64."""
    url = base64.b64decode(qr_code).decode("utf-8")
    return parse_qs(urlsplit(url).query)["secret"][0]


def test_verify_before_activate_then_validate(tmp_path, db):
    ops = operations(tmp_path, db)
    admin = caller(db, "admin")

    pending = pyotp.TOTP(secret_of(ops.generate_secret(admin, "alice")))
    assert ops.is_totp_enabled(admin, "alice") is False, "a pending secret is not active yet"
    assert ops.enable_totp(admin, "alice", pending.now()) is True
    assert ops.is_totp_enabled(admin, "alice") is True

    assert ops.validate_totp(admin, "alice", pending.now()) is False, "the code that enabled it is spent"
    assert ops.validate_totp(admin, "alice", pending.at(time.time() + pending.interval)) is True, "the next step's"

    outcomes = [(op, outcome) for _, _, _, op, _, outcome, _ in audit_rows(db)]
    assert outcomes == [("generateSecret", "success"), ("isTOTPEnabled", "success"), ("enableTOTP", "success"),
                        ("isTOTPEnabled", "success"), ("validateTOTP", "failure"), ("validateTOTP", "success")]


def test_a_user_acting_on_another_user_is_refused_and_audited(tmp_path, db):
    ops = operations(tmp_path, db)

    with pytest.raises(NotAuthorized):
        ops.init_totp(caller(db, "bob", request_id="r-bob"), "alice")

    assert audit_rows(db) == [("r-bob", "192.0.2.7", "bob", "initTOTP", "alice",
                               "denied", "NotAuthorized")]
    assert ops.is_totp_enabled(caller(db, "admin"), "alice") is False, "nothing was done"


def test_the_batched_trail_stores_the_rows_of_read_only_calls_when_they_are_taken(tmp_path, db):
    trail = BatchedAuditTrail(db)
    ops = operations(tmp_path, db, trail)
    admin = caller(db, "admin")

    ops.init_totp(admin, "alice")  # enrols: writes, so its row goes into its own transaction
    assert [row[3] for row in audit_rows(db)] == ["initTOTP"]

    assert ops.init_totp(admin, "alice")  # enrolled now: only reads
    assert ops.is_totp_enabled(admin, "alice") is True
    assert len(audit_rows(db)) == 1, "rows of read-only calls wait for the round"

    left = trail.take_left()  # as a round does after each call, then stores them together
    assert [(e.operation, e.outcome) for e in left] == [("initTOTP", "success"), ("isTOTPEnabled", "success")]
    trail.store(left)
    assert [row[3] for row in audit_rows(db)] == ["initTOTP", "initTOTP", "isTOTPEnabled"]
    assert trail.take_left() == []


def test_the_immediate_trail_never_reads_first(tmp_path, db):
    ops = operations(tmp_path, db, ImmediateAuditTrail(db))
    ops.init_totp(caller(db, "admin"), "alice")
    ops.init_totp(caller(db, "admin"), "alice")
    assert [row[3] for row in audit_rows(db)] == ["initTOTP", "initTOTP"]


def test_a_cached_login_that_changed_is_refused_inside_the_call_and_not_audited(tmp_path, db):
    ops = operations(tmp_path, db)
    stale = replace(caller(db, "admin"), confirm=lambda unit: False)

    with pytest.raises(LoginChanged):
        ops.reset_totp(stale, "alice")

    assert audit_rows(db) == [], "not the operation's outcome: the protocol checks the login again"
