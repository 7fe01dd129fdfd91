"""Password guessing over HTTP Basic is slowed per username and blocked per client address
(core/throttle.py, the login* keys of conf/totp.properties), without refusing credentials that signed in
before, and the client address behind a trusted proxy (core/client_address.py), end to end.

Unless a test says otherwise its calls come from 127.0.0.1, so the per-address block applies to all of
them; each test has a server (and so a throttle) of its own. Durations are compared, with generous margins, against the
duration of an attempt that cannot have been held back (the first failure of a username: it includes the
TLS handshake and the Argon2 check), and against delays of whole seconds: these check behaviour, not
performance.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
import requests

from conftest import ADMIN_PASSWORD, TNS
from wire import from_address, soap11

AUTH_FAULT = "Access Denied. Authentication failed - Invalid credentials provided."
THROTTLE = {"loginFailuresBeforeDelay": "2", "loginMaxDelaySeconds": "2", "loginFailuresBeforeBlock": "6",
            "loginBlockSeconds": "3"}
SLOWED = 0.8  # a held-back attempt took at least this much longer than one that was not (delays >= 1 s)


def attempt(server, user: str, password: str, operation: str = "isTOTPEnabled"):
    """One form call as ``user``; (response, seconds it took)."""
    with server.session(user, password) as s:
        started = time.monotonic()
        r = s.post(f"{server.url}/{operation}", data={"username": "admin"}, timeout=30)
        return r, time.monotonic() - started


def assert_auth_failed(r):
    assert r.status_code == 500, (r.status_code, r.text)
    assert r.headers.get("X-Fault-Reason") == AUTH_FAULT
    assert r.text == f"<faultstring>{AUTH_FAULT}</faultstring>"


def assert_ok(r):
    assert r.status_code == 200, (r.status_code, r.headers.get("X-Fault-Reason"), r.text)
    assert r.text.startswith(f'<ns:isTOTPEnabledResponse xmlns:ns="{TNS}">')


def assert_blocked(r, about: str = "from this address", longest: int = int(THROTTLE["loginBlockSeconds"])):
    assert r.status_code == 429, (r.status_code, r.text)
    assert r.reason == "Too Many Requests"  # Twisted alone says "Unknown Status"
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= longest
    assert r.text == f"Too many failed logins {about}; try again later\n"


def test_failures_are_slowed_then_the_address_is_blocked_then_released(make_server):
    srv = make_server(properties=THROTTLE)
    timings = []
    for _ in range(6):  # failures 1-2 at once, 3 after 1 s, 4-6 after 2 s (capped); the 6th blocks
        r, took = attempt(srv, "admin", "wrong-password")
        assert_auth_failed(r)
        timings.append(took)
    base = min(timings[:2])
    assert abs(timings[1] - timings[0]) < SLOWED, timings  # the first two answered at once
    assert timings[2] >= base + SLOWED * 0.8, timings  # the third after about 1 s
    assert timings[3] >= timings[0] + SLOWED, timings  # the fourth after 2 s
    assert all(t >= base + SLOWED for t in timings[3:]), timings
    blocked_at = time.monotonic()

    # Blocked: any other username, and even the right password of credentials that have not signed in
    # before (test_credentials_that_signed_in_pass_a_blocked_address has those that did).
    r, _ = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_blocked(r)
    r, _ = attempt(srv, "someone-else", "whatever")
    assert_blocked(r)
    r = srv.session().post(srv.url, data=soap11("isTOTPEnabled", "admin"),
                           headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '"urn:isTOTPEnabled"'})
    assert_blocked(r)

    # The block ends by itself; the right password then works (still slowed for this username).
    time.sleep(max(0.0, float(THROTTLE["loginBlockSeconds"]) + 0.2 - (time.monotonic() - blocked_at)))
    r, _ = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_ok(r)


def test_a_success_resets_the_usernames_delay(make_server):
    srv = make_server(properties=THROTTLE)
    timings = []
    for _ in range(2):
        r, took = attempt(srv, "admin", "wrong-password")
        assert_auth_failed(r)
        timings.append(took)
    base = min(timings)
    r, took = attempt(srv, "admin", "wrong-password")  # the third failure is held back
    assert_auth_failed(r)
    assert took >= base + SLOWED * 0.8

    r, took = attempt(srv, "admin", ADMIN_PASSWORD)  # held back too (the username has 3 failures) ...
    assert_ok(r)
    assert took >= SLOWED  # (2 s; a cached password costs no Argon2 check)
    # ... but it resets the username: the next failures are answered at once again. Without the
    # reset this one would wait 2 s.
    r, took = attempt(srv, "admin", "wrong-password")
    assert_auth_failed(r)
    assert took < base + 1.2, (took, base)


def test_unknown_and_known_usernames_are_answered_alike(make_server):
    """No user enumeration: a wrong password for an existing user, a user that does not exist, and a
    user of a tenant that does not exist get the same status, fault and body, on every binding."""
    srv = make_server(properties=THROTTLE)
    answers = []
    for user in ("admin", "nobody", "nobody@nowhere.example"):
        r, _ = attempt(srv, user, "wrong-password")
        assert_auth_failed(r)
        answers.append((r.status_code, r.headers.get("X-Fault-Reason"), r.headers["Content-Type"], r.text))
    assert len(set(answers)) == 1, answers

    soap = []
    for user in ("admin", "nobody"):
        with srv.session(user, "wrong-password") as s:
            r = s.post(srv.url, data=soap11("isTOTPEnabled", "admin"),
                       headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '"urn:isTOTPEnabled"'})
        assert r.status_code == 500 and AUTH_FAULT in r.text
        soap.append((r.status_code, r.headers["Content-Type"], r.text))
    assert soap[0] == soap[1]


def test_a_hammered_username_does_not_slow_or_block_the_admin(make_server):
    """Another username's failures (below the address's limit) slow only that username: the admin's
    right password is answered at once, even while one of the attacker's attempts is being held back
    (the delay must not tie up the server)."""
    srv = make_server(properties=THROTTLE)
    timings = []
    for _ in range(3):
        r, took = attempt(srv, "mallory", "guess")
        assert_auth_failed(r)
        timings.append(took)
    base = min(timings)

    held = {}
    fourth = threading.Thread(target=lambda: held.setdefault("r", attempt(srv, "mallory", "guess")))
    fourth.start()  # held back 2 s
    time.sleep(0.2)
    r, took = attempt(srv, "admin", ADMIN_PASSWORD)
    still_waiting = fourth.is_alive()
    fourth.join(30)
    assert_ok(r)
    assert took < base + SLOWED, (took, base)
    assert still_waiting, "the admin's call was answered only after the attacker's delayed one"
    assert_auth_failed(held["r"][0])
    assert held["r"][1] >= SLOWED


def test_the_username_is_never_refused_outright(make_server):
    """With the per-address block out of reach, hammering the admin's username only slows it: never 429,
    each delay capped at loginMaxDelaySeconds (1 s here, to keep the test short: uncapped, the 5th attempt
    would wait 4 s and the 10th 256 s), and the right password still gets in."""
    srv = make_server(properties={**THROTTLE, "loginMaxDelaySeconds": "1", "loginFailuresBeforeBlock": "1000"})
    timings = []
    for _ in range(10):
        r, took = attempt(srv, "admin", "wrong-password")
        assert r.status_code != 429
        assert_auth_failed(r)
        timings.append(took)
    base = min(timings[:2])
    assert abs(timings[1] - timings[0]) < SLOWED, timings
    # Held back about 1 s each; uncapped, the 4th would wait 2 s, the 5th 4 s, the 6th 8 s.
    assert all(base + SLOWED * 0.8 <= t < base + 1.9 for t in timings[2:]), (base, timings)
    r, took = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_ok(r)
    assert took < base + 1.9


def test_missing_or_malformed_credentials_are_challenged_not_counted(make_server):
    """401 with a challenge, and never a failure toward the block: many of them, then the admin gets in
    at once."""
    srv = make_server(properties=THROTTLE)
    with srv.session(None) as s:
        for header in (None, "Basic", "Basic !!!", "Bearer abc", "Basic " + "YWRtaW4=") * 3:
            headers = {"Authorization": header} if header else {}
            r = s.post(f"{srv.url}/isTOTPEnabled", data={"username": "admin"}, headers=headers)
            assert r.status_code == 401, header
            assert r.headers["WWW-Authenticate"].startswith("Basic realm=")
    r, took = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_ok(r)
    assert took < 1.5  # had the 401s counted as failures of "admin", this would wait 2 s


@pytest.mark.parametrize("path, user", [("/%00", "admin"), ("/isTOTPEnabled", "adm\x00in")], ids=["nul-in-path", "nul-in-username"])
def test_failures_are_counted_whatever_the_request_holds(make_server, path, user):
    """Wrong passwords are answered as such and counted toward the address's block even when the path or
    the username holds a NUL byte."""
    srv = make_server(properties={**THROTTLE, "loginFailuresBeforeDelay": "100"})  # only the block matters here
    for _ in range(int(THROTTLE["loginFailuresBeforeBlock"])):
        with srv.session(user, "wrong-password") as s:
            r = s.post(srv.url + path, data={"username": "admin"}, timeout=30)
        assert r.status_code == 500
        assert r.headers.get("X-Fault-Reason") == AUTH_FAULT, (r.headers.get("Content-Type"), r.text)
    r, _ = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_blocked(r)


def test_credentials_that_signed_in_pass_a_blocked_address(make_server):
    """The address is blocked by someone's guessing; the admin, who signed in from it before, still gets
    in with the right password (form and SOAP), without waiting; a wrong one for the admin is refused
    unchecked."""
    srv = make_server(properties={**THROTTLE, "loginFailuresBeforeDelay": "100"})
    r, _ = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_ok(r)
    for n in range(int(THROTTLE["loginFailuresBeforeBlock"])):
        r, _ = attempt(srv, f"mallory{n}", "guess")
        assert_auth_failed(r)
    r, _ = attempt(srv, "mallory", "guess")
    assert_blocked(r)

    r, took = attempt(srv, "admin", ADMIN_PASSWORD)
    assert_ok(r)
    with srv.session() as s:
        r = s.post(srv.url, data=soap11("isTOTPEnabled", "admin"),
                   headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '"urn:isTOTPEnabled"'})
    assert r.status_code == 200 and "isTOTPEnabledResponse" in r.text
    r, _ = attempt(srv, "admin", "wrong-password")
    assert_blocked(r)


def test_parallel_guesses_for_one_username_are_spaced_or_refused(make_server):
    """Twelve wrong passwords for one username at the same moment: the first two are checked at once,
    the next after 1 and 3 s (a delay after the one before), and those that would wait longer than two
    delays (4 s) get 429 with Retry-After. Before, all twelve waited the same delay and then ran."""
    srv = make_server(properties={**THROTTLE, "loginFailuresBeforeBlock": "1000"})
    sessions = [srv.session("admin", f"guess-{n}") for n in range(12)]
    for s in sessions:  # connected (TLS) beforehand, so that the guesses arrive together
        assert s.get(f"{srv.base}/health").status_code == 200
    barrier = threading.Barrier(len(sessions))
    answers = [None] * len(sessions)

    def guess(n):
        barrier.wait()
        answers[n] = sessions[n].post(f"{srv.url}/isTOTPEnabled", data={"username": "admin"}, timeout=30)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    checked = [r for r in answers if r.status_code != 429]
    refused = [r for r in answers if r.status_code == 429]
    for r in checked:
        assert_auth_failed(r)
    for r in refused:
        assert_blocked(r, "for this username", longest=60)
    # 4 when they arrive within a second of each other; a 5th only if they came 1-3 s apart.
    assert 4 <= len(checked) <= 5, [r.status_code for r in answers]
    for s in sessions:
        s.close()


def proxied(srv, source: str, forwarded_for: str | None, user: str = "admin", password: str = ADMIN_PASSWORD,
            headers: dict[str, str] | None = None):
    """One form call from ``source`` (a loopback address) carrying ``X-Forwarded-For``; the response."""
    with from_address(srv.session(user, password), source) as s:
        headers = {**({"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}), **(headers or {})}
        return s.post(f"{srv.url}/isTOTPEnabled", data={"username": "admin"}, headers=headers, timeout=30)


def audit_sources(srv) -> list[tuple[str, str, str]]:
    return srv.database.query_audit("SELECT source, caller, outcome FROM audit_trail ORDER BY at, id")


def test_a_trusted_proxy_names_the_client_and_only_its_address_is_blocked(make_server):
    """127.0.0.2 is a trusted proxy: its X-Forwarded-For names the client (the rightmost entry, not the
    one the client wrote on the left), for the throttle, the audit and the access log. The guesser's
    address is blocked; another client behind the same proxy signs in with credentials that never signed
    in before. Any other peer's X-Forwarded-For is ignored."""
    srv = make_server(properties={**THROTTLE, "loginFailuresBeforeDelay": "100", "loginFailuresBeforeBlock": "3",
                                  "trustedProxies": "127.0.0.2, 10.0.0.0/8"})
    guesser = "198.51.100.1, 203.0.113.9"  # the client claims 198.51.100.1; the proxy saw 203.0.113.9
    for _ in range(3):
        assert_auth_failed(proxied(srv, "127.0.0.2", guesser, password="wrong-password"))
    assert_blocked(proxied(srv, "127.0.0.2", guesser, password="wrong-password"))
    assert_blocked(proxied(srv, "127.0.0.2", "203.0.113.9, 10.1.1.1", user="other", password="x"))  # via 2 proxies

    assert_ok(proxied(srv, "127.0.0.2", "203.0.113.10"))  # another client of the proxy
    assert_ok(proxied(srv, "127.0.0.2", None))  # the proxy itself
    assert_ok(proxied(srv, "127.0.0.2", "]]not an address[["))  # malformed: the proxy is the client
    # Not a trusted proxy: its header is ignored, whatever it claims.
    assert_auth_failed(proxied(srv, "127.0.0.3", "203.0.113.10", password="wrong-password"))
    assert_auth_failed(proxied(srv, "127.0.0.1", "127.0.0.2", password="wrong-password"))

    assert audit_sources(srv) == [("203.0.113.9", "admin", "auth-failed")] * 3 + [
        ("203.0.113.10", "admin", "success"), ("127.0.0.2", "admin", "success"), ("127.0.0.2", "admin", "success"),
        ("127.0.0.3", "admin", "auth-failed"), ("127.0.0.1", "admin", "auth-failed")]
    access = [line for line in srv.log().splitlines() if '"POST /services/TOTPAdminService/isTOTPEnabled"' in line]
    assert sum('203.0.113.9 "POST' in line for line in access) == 5, access
    assert not any("198.51.100.1" in line for line in access)


def test_a_trusted_proxy_may_use_forwarded_instead(make_server):
    """trustedProxyHeader=Forwarded (RFC 7239): its for= names the client, quoted IPv6 with a port
    included; X-Forwarded-For is then ignored, even from the trusted proxy; a malformed Forwarded leaves
    the proxy as the client."""
    srv = make_server(properties={"trustedProxies": "127.0.0.2", "trustedProxyHeader": "Forwarded"})
    spoofed = {"X-Forwarded-For": "203.0.113.5"}
    assert_ok(proxied(srv, "127.0.0.2", None, headers={
        **spoofed, "Forwarded": 'for=198.51.100.1, for="[2001:DB8:cafe::17]:4711";proto=https'}))
    assert_ok(proxied(srv, "127.0.0.2", None, headers={**spoofed, "Forwarded": "for=_hidden"}))
    assert_ok(proxied(srv, "127.0.0.2", None, headers=spoofed))
    assert_ok(proxied(srv, "127.0.0.3", None, headers={"Forwarded": "for=198.51.100.1"}))  # not trusted
    assert [source for source, _, _ in audit_sources(srv)] == ["2001:db8:cafe::17", "127.0.0.2", "127.0.0.2",
                                                               "127.0.0.3"]
