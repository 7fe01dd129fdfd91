"""A login's steps (operations/login.py), as the login pipeline runs them on three threads: the stored login
read on a database thread, the password checked (Argon2) on a thread of its own holding no connection, and
a failure audited on a database thread; and the SOAP endpoint's answers around them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from sqlalchemy import text

from test_plain_requests import endpoints, op, request, soap  # noqa: F401 (endpoints is a fixture)
from totpadmin.core.authentication import CacheState
from totpadmin.core.usernames import SUPER_TENANT, UserRef
from totpadmin.operations.login import PasswordCredentials


def audited_failures(db) -> int:
    with db.transaction(read_only=True) as unit:
        return unit.connection.execute(text("SELECT count(*) FROM audit_events WHERE outcome = 'auth-failed'")).scalar()


def test_the_password_is_checked_while_another_thread_holds_the_database(endpoints):  # noqa: F811
    endpoint = endpoints[0]
    req = request(*soap("1.1", op("initTOTP", username="alice")))
    logins = endpoint.logins
    found = logins.find(endpoint.credentials(req))
    assert found.ref == UserRef(SUPER_TENANT, "admin")
    # The store's only connection on SQLite (one of its pool on PostgreSQL) is taken meanwhile: a check
    # that needed the database would wait for it here until the timeout.
    with endpoint.services.db.transaction(), ThreadPoolExecutor(2) as pool:
        right = pool.submit(logins.check, endpoint.credentials(req), found)
        wrong = pool.submit(logins.check, PasswordCredentials("admin", "wrong"), found)
        unknown = pool.submit(logins.check, PasswordCredentials("nobody", "pw"), None)
        assert right.result(timeout=20).ref == UserRef(SUPER_TENANT, "admin")
        assert wrong.result(timeout=20) is None
        assert unknown.result(timeout=20) is None
    assert endpoint.login_state(req) is CacheState.CACHED, "a right password is remembered for the next call"


def test_a_refused_login_is_audited_and_answered_as_before(endpoints):  # noqa: F811
    endpoint = endpoints[0]
    wrong = request(*soap("1.1", op("initTOTP", username="alice")), user="nobody")
    before = audited_failures(endpoint.services.db)
    endpoint.logins.refuse(endpoint.credentials(wrong), endpoint.login_request(wrong))
    reply = endpoint.refused(wrong)
    assert (reply.status, reply.authenticated) == (500, False)
    assert b"Authentication failed - Invalid credentials provided." in reply.body
    assert audited_failures(endpoint.services.db) == before + 1
    whole = endpoint.handle(wrong)  # the three steps in one thread, as a call whose cached login changed
    assert (whole.status, whole.authenticated, whole.body) == (500, False, reply.body)
    assert audited_failures(endpoint.services.db) == before + 2


def test_an_unusable_request_is_answered_before_any_database_work(endpoints):  # noqa: F811
    endpoint = endpoints[0]
    no_credentials = replace(request(*soap("1.1", op("initTOTP", username="alice"))), credentials=None)
    assert endpoint.precheck(no_credentials).status == 401
    assert endpoint.precheck(replace(no_credentials, credentials=("a", "b"), content_type="text/plain")).status == 415
