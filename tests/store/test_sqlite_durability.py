"""SQLite commits with synchronous=NORMAL; transactions that change secrets or recovery codes sync the
write-ahead log before they return. Observed at the system call: which files get fsync'ed."""

from __future__ import annotations

import os

import pytest

from totpadmin.config.settings import TotpSettings
from totpadmin.core import claims, keyring
from totpadmin.core.enrollment import Enrollment
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.principal import ADMIN
from totpadmin.core.secretbox import SecretBox
from totpadmin.core.usernames import UserRef
from totpadmin.store.database import Database

ADMIN_REF = UserRef("carbon.super", "admin")
CHEAP = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'd.db'}", box=SecretBox(keyring.load_or_create(tmp_path / "k.json")))
    database.create_schema()
    with database.transaction() as unit:
        unit.users.add_user(ADMIN_REF, CHEAP.hash("pw"), ADMIN)
    yield database
    database.dispose()


@pytest.fixture
def synced(monkeypatch, tmp_path):
    """Names of the files fsync'ed (through os.fsync, as the store does) while the test runs."""
    names: list[str] = []
    real = os.fsync

    def spy(fd):
        names.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return names


def test_sqlite_runs_wal_with_synchronous_normal(db):
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL


def test_enrolment_syncs_the_log_and_an_idempotent_call_does_not(db, synced):
    enrollment = Enrollment(TotpSettings())
    with db.transaction() as unit:
        first = enrollment.init_totp(unit.accounts.find(ADMIN_REF))
    assert synced == ["d.db-wal"], "a new secret must be on disk before it is handed out"

    synced.clear()
    with db.transaction() as unit:
        assert enrollment.init_totp(unit.accounts.find(ADMIN_REF)) == first
    assert synced == []


def test_verification_bookkeeping_is_not_synced(db, synced):
    with db.transaction() as unit:
        account = unit.accounts.find(ADMIN_REF)
        account.save_state(failures=1)
        assert account.claim_step(123)
    assert synced == []


def test_recovery_codes_and_cleared_claims_are_synced(db, synced):
    enrollment = Enrollment(TotpSettings(), recovery_hasher=CHEAP)
    with db.transaction() as unit:
        enrollment.init_totp(unit.accounts.find(ADMIN_REF))
    synced.clear()
    with db.transaction() as unit:
        enrollment.regenerate_recovery_codes(unit.accounts.find(ADMIN_REF))
    assert synced == ["d.db-wal"]
    synced.clear()
    with db.transaction() as unit:
        enrollment.reset_totp(unit.accounts.find(ADMIN_REF))
    assert synced == ["d.db-wal"]
    with db.transaction(read_only=True) as unit:
        assert unit.accounts.find(ADMIN_REF, for_update=False).get(claims.SECRET_KEY) is None
