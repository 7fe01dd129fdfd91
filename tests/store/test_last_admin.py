"""carbon.super always keeps an admin: `user remove` and `user role ... user` refuse to take the last one
(exit 1, a clear message, nothing changed), in the users repository's transaction, also when two
commands race on PostgreSQL. A tenant's last admin is not protected: carbon.super's admins manage every
tenant and can make another."""

from __future__ import annotations

import threading

import pytest

from conftest import ADMIN_PASSWORD, Server
from totpadmin.core.errors import LastSuperAdmin
from totpadmin.core.principal import ADMIN
from totpadmin.core.usernames import SUPER_TENANT, UserRef

LAST = ("totp-admin: User admin is the last admin of carbon.super and cannot be removed or demoted; "
        "make another user admin first (totp-admin user role NAME admin)\n")
CHIEF_PW = "chief-of-the-day-4711"


def users(srv: Server) -> dict[str, str]:
    return dict(line.split("\t")[:2] for line in srv.cli("user", "list").stdout.splitlines())


def refused(srv: Server, *args: str) -> str:
    r = srv.cli(*args, check=False)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr, (r.returncode, r.stdout, r.stderr)
    return r.stderr


def reset_admin(srv: Server, user: str = "admin", password: str = ADMIN_PASSWORD):
    return srv.session(user, password).get(f"{srv.url}/resetTOTP", params={"username": "admin"})


def test_last_super_admin_cannot_be_removed_or_demoted(make_server):
    srv = make_server()
    srv.cli("user", "add", "bob", input="bob-password-4711\n")  # a super-tenant user, not an admin
    assert refused(srv, "user", "remove", "admin") == LAST
    assert refused(srv, "user", "role", "admin", "user") == LAST
    assert users(srv) == {"admin": "admin", "bob": "user"}
    assert reset_admin(srv).status_code == 200  # still an admin, and signs in


def test_with_another_super_admin_removal_and_demotion_are_allowed(make_server):
    srv = make_server()
    srv.cli("user", "add", "chief", input=CHIEF_PW + "\n")
    assert srv.cli("user", "role", "chief", "admin").stdout == "changed the role of chief to admin\n"
    assert srv.cli("user", "role", "chief", "admin").stdout == "chief already has the role admin\n"
    assert srv.cli("user", "role", "admin", "user").stdout == "changed the role of admin to user\n"
    assert users(srv) == {"admin": "user", "chief": "admin"}
    # The change reaches the running server at once (the cached login is re-checked against the store).
    r = reset_admin(srv)
    assert r.status_code == 500 and "not authorized" in r.headers["X-Fault-Reason"], r.text
    assert reset_admin(srv, "chief", CHIEF_PW).status_code == 200
    # Now chief is the last one; admin, a plain user again, may go.
    assert srv.cli("user", "remove", "admin").stdout == "removed user admin\n"
    assert refused(srv, "user", "remove", "chief") == LAST.replace("User admin", "User chief")
    assert refused(srv, "user", "role", "chief", "user") == LAST.replace("User admin", "User chief")
    assert users(srv) == {"chief": "admin"}


def test_a_tenants_last_admin_is_not_protected(make_server):
    srv = make_server()
    srv.cli("tenant", "add", "abc.com")
    srv.cli("user", "add", "boss@abc.com", "--role", "admin", input="boss-password-4711\n")
    assert srv.cli("user", "role", "boss@abc.com", "user").stdout == "changed the role of boss@abc.com to user\n"
    assert srv.cli("user", "role", "boss@abc.com", "admin").returncode == 0
    assert srv.cli("user", "remove", "boss@abc.com").stdout == "removed user boss@abc.com\n"


def test_role_of_unknown_user_or_role(make_server):
    srv = make_server()
    assert refused(srv, "user", "role", "nobody", "admin") == "totp-admin: User nobody does not exist\n"
    r = srv.cli("user", "role", "admin", "root", check=False)
    assert r.returncode == 2 and "invalid choice: 'root'" in r.stderr


def test_two_concurrent_removals_leave_an_admin(store, database):
    """Two transactions each remove one of the two super-tenant admins. The second must wait for the
    first (the super tenant's row is locked before counting) and then count one admin: refused. Without
    the lock both would count two, both would commit, and no admin would be left."""
    if database.schema is None:
        pytest.skip("SQLite: write transactions take turns on the database's writer lock")
    from totpadmin.store.database import Database

    with store.transaction() as unit:
        for name in ("admin", "chief"):
            unit.users.add_user(UserRef(SUPER_TENANT, name), "$argon2id$not-used", ADMIN)
    other = Database(database.url)
    outcome: dict[str, object] = {}

    def remove_chief():
        try:
            with other.transaction() as unit:
                outcome["pid"] = unit.connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
                unit.users.remove_user(UserRef(SUPER_TENANT, "chief"))
            outcome["chief"] = "removed"
        except LastSuperAdmin as err:
            outcome["chief"] = err

    def waits_for_a_lock() -> bool:
        pid = outcome.get("pid")
        return pid is not None and database.query(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid", pid=pid) == [("Lock",)]

    try:
        with store.transaction() as unit:
            unit.users.remove_user(UserRef(SUPER_TENANT, "admin"))
            unit.session.flush()  # the deletion sent, not committed
            second = threading.Thread(target=remove_chief)
            second.start()
            # Commit once the second transaction has finished (the bug) or waits for a lock (the fix).
            while second.is_alive() and not waits_for_a_lock():
                second.join(0.05)
        second.join(30)
        assert not second.is_alive()
    finally:
        other.dispose()
    assert isinstance(outcome["chief"], LastSuperAdmin), outcome
    assert database.query("SELECT username, role FROM users") == [("chief", "admin")]
