"""Password checks (Argon2) on a real server (server/login_pipeline.py): calls with the same credentials
share one check, and a client that calls steadily has its cached login renewed before it expires.

Counted with the server's own metric, ``totp_password_checks_total{reason=login|renewal}``: one per
Argon2 check the server ran.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from conftest import ADMIN_PASSWORD, free_port
from test_login_throttle import AUTH_FAULT
from test_observability import metric

CALLS = 8


def checks(port: int, reason: str) -> float:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return metric(text, "totp_password_checks_total", reason=reason) or 0.0


def at_once(server, password: str, calls: int = CALLS) -> list[requests.Response]:
    """``calls`` form calls as admin, each on a connection of its own that is open (TLS done) before any
    call is sent, so that they reach the server together."""
    sessions = [server.session("admin", password) for _ in range(calls)]
    for s in sessions:
        assert s.get(server.base + "/health", timeout=30).status_code == 200
    ready = threading.Barrier(calls)

    def call(s):
        ready.wait(timeout=30)
        return s.post(f"{server.url}/isTOTPEnabled", data={"username": "admin"}, timeout=60)

    with ThreadPoolExecutor(calls) as pool:
        answers = list(pool.map(call, sessions))
    for s in sessions:
        s.close()
    return answers


def test_calls_with_new_credentials_share_one_password_check(make_server):
    port = free_port()
    srv = make_server(extra=("--metrics-port", str(port)))
    answers = at_once(srv, ADMIN_PASSWORD)
    assert [r.status_code for r in answers] == [200] * CALLS, [r.text for r in answers]
    assert checks(port, "login") == 1
    assert srv.session().post(f"{srv.url}/isTOTPEnabled", data={"username": "admin"}).status_code == 200
    assert checks(port, "login") == 1, "and the next call finds the login cached"


def test_a_wrong_password_sent_at_once_is_checked_once_and_each_call_refused(make_server):
    port = free_port()
    # No delays for repeated failures here (they would send late calls to checks of their own).
    srv = make_server(properties={"loginFailuresBeforeDelay": "100", "loginFailuresBeforeBlock": "100"},
                      extra=("--metrics-port", str(port)))
    answers = at_once(srv, "Wr0ng-pass-Z")
    for r in answers:
        assert (r.status_code, r.headers.get("X-Fault-Reason")) == (500, AUTH_FAULT), r.text
    assert checks(port, "login") == 1
    refused = srv.database.query_audit("SELECT count(*) FROM audit_trail WHERE outcome = 'auth-failed'")
    assert refused == [(CALLS,)], "each call is audited as a failed login of its own"
    assert "Wr0ng-pass-Z" not in srv.log()


def test_a_steady_client_has_its_login_renewed_before_it_expires(make_server):
    port = free_port()
    srv = make_server(start=False)
    srv.env["TOTP_CREDENTIAL_CACHE_SECONDS"] = "4"  # due for renewal in its last second
    srv.start("--metrics-port", str(port))
    with srv.session() as s:
        deadline = time.monotonic() + 60
        while checks(port, "renewal") < 2:
            assert time.monotonic() < deadline, "no renewals"
            for _ in range(10):
                r = s.post(f"{srv.url}/isTOTPEnabled", data={"username": "admin"}, timeout=30)
                assert r.status_code == 200, r.text
    # Two renewals span more than one life of the entry; the client never went without it.
    assert checks(port, "login") == 1
