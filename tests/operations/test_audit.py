"""The audit trail end to end: one audit_events row per call, tied to the call by X-Request-ID; the
`totp-admin audit` command and its filters; and no secret, code or password in the trail or the log."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import unquote

import pyotp
import pytest
from lxml import etree

from conftest import ADMIN_PASSWORD, TNS
from wire import decode_qr, secret_of, soap11

PASSWORDS = {"bob@abc.com": "bobs-password-4711", "chief@xyz.org": "chiefs-password-0815"}
WRONG_PASSWORDS = ("wrong-password-for-admin-31337", "wrong-password-for-bob-27182")
OUTCOMES = {"success", "failure", "denied", "fault", "auth-failed"}
COLUMNS = "request_id, source, caller, operation, target, tenant, outcome, detail, at"


@dataclass
class Call:
    request_id: str
    caller: str
    operation: str
    target: str | None
    tenant: str | None
    outcome: str
    detail: str = ""


@dataclass
class Trail:
    server: object
    calls: list[Call]
    since: datetime  # between the first and the second half of the calls
    first_half: int  # how many calls came before ``since``
    secrets: list[str]  # everything that must never be written down


def _form(server, user, password, operation, username, **fields):
    with server.session(user, password) as s:
        return s.post(f"{server.url}/{operation}", data={"username": username, **fields}, timeout=30)


def _soap(server, user, password, operation, username, extra=""):
    body = soap11(operation, username)
    if extra:
        body = body.replace(f"</ns:{operation}>".encode(), f"{extra}</ns:{operation}>".encode())
    with server.session(user, password) as s:
        return s.post(server.url, data=body, timeout=30,
                      headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": f'"urn:{operation}"'})


def _returns(r) -> list[str]:
    root = etree.fromstring(r.content)
    return [el.text or "" for el in root.iter(f"{{{TNS}}}return")]


def _wrong_code(secret: str) -> str:
    """A well-formed code that is not valid anywhere near now."""
    totp = pyotp.TOTP(secret)
    near = {totp.at(time.time() + d) for d in range(-90, 91, 30)}
    return next(c for c in ("913579", "246802", "135792") if c not in near)


@pytest.fixture(scope="module")
def trail(tmp_path_factory) -> Trail:
    from conftest import new_database, server_factory

    tmp = tmp_path_factory.mktemp("audit")
    with new_database(tmp) as db, server_factory(tmp, db) as factory:
        srv = factory()
        for domain in ("abc.com", "xyz.org"):
            srv.cli("tenant", "add", domain)
        srv.cli("user", "add", "bob@abc.com", input=PASSWORDS["bob@abc.com"] + "\n")
        srv.cli("user", "add", "chief@xyz.org", "--role", "admin", input=PASSWORDS["chief@xyz.org"] + "\n")
        calls: list[Call] = []
        secrets = [ADMIN_PASSWORD, *PASSWORDS.values(), *WRONG_PASSWORDS]

        def record(r, caller, operation, target, tenant, outcome, detail=""):
            calls.append(Call(r.headers["X-Request-ID"], caller, operation, target, tenant, outcome, detail))
            return r

        # initTOTP: success
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "initTOTP", "bob@abc.com"),
                   "admin", "initTOTP", "bob@abc.com", "abc.com", "success")
        assert r.status_code == 200
        qr_value = _returns(r)[0]
        secret = secret_of(decode_qr(qr_value))
        secrets += [secret, "".join(qr_value.split())]

        # validateTOTP with a wrong code: failure (answered false)
        wrong = _wrong_code(secret)
        secrets.append(wrong)
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "validateTOTP", "bob@abc.com", verificationCode=wrong),
                   "admin", "validateTOTP", "bob@abc.com", "abc.com", "failure")
        assert _returns(r) == ["false"]

        # validateTOTP with the right code: success
        right = pyotp.TOTP(secret).now()
        secrets.append(right)
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "validateTOTP", "bob@abc.com", verificationCode=right),
                   "admin", "validateTOTP", "bob@abc.com", "abc.com", "success")
        assert _returns(r) == ["true"]

        # recovery codes, one of them spent
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "regenerateRecoveryCodes", "bob@abc.com"),
                   "admin", "regenerateRecoveryCodes", "bob@abc.com", "abc.com", "success")
        codes = _returns(r)
        assert len(codes) == 10
        secrets += codes + [c.replace("-", "") for c in codes]
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "validateTOTP", "bob@abc.com", verificationCode=codes[0]),
                   "admin", "validateTOTP", "bob@abc.com", "abc.com", "success")
        assert _returns(r) == ["true"]

        # a refused cross-tenant call: denied
        r = record(_form(srv, "chief@xyz.org", PASSWORDS["chief@xyz.org"], "initTOTP", "bob@abc.com"),
                   "chief@xyz.org", "initTOTP", "bob@abc.com", "abc.com", "denied", "NotAuthorized")
        assert r.headers["X-Fault-Reason"].endswith("User is not authorized perform the operation")

        time.sleep(0.05)
        since = datetime.now(timezone.utc)
        time.sleep(0.05)
        first_half = len(calls)

        # an unknown user, an unknown tenant: fault
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "resetTOTP", "ghost@abc.com"),
                   "admin", "resetTOTP", "ghost@abc.com", "abc.com", "fault", "UnknownUser")
        assert r.status_code == 500
        r = record(_form(srv, "admin", ADMIN_PASSWORD, "isTOTPEnabled", "x@nowhere.example"),
                   "admin", "isTOTPEnabled", "x@nowhere.example", "nowhere.example", "fault", "UnknownTenant")
        assert r.status_code == 500

        # wrong passwords: auth-failed, the caller as given, no target
        r = record(_form(srv, "admin", WRONG_PASSWORDS[0], "initTOTP", "bob@abc.com"),
                   "admin", "initTOTP", None, None, "auth-failed")
        assert r.headers["X-Fault-Reason"].startswith("Access Denied")
        r = record(_soap(srv, "bob@abc.com", WRONG_PASSWORDS[1], "isTOTPEnabled", "bob@abc.com"),
                   "bob@abc.com", "(soap)", None, None, "auth-failed")
        assert r.status_code == 500

        # SOAP: a pending secret, then enableTOTP with a wrong code (failure)
        r = record(_soap(srv, "admin", ADMIN_PASSWORD, "generateSecret", "bob@abc.com"),
                   "admin", "generateSecret", "bob@abc.com", "abc.com", "success")
        assert r.status_code == 200
        pending_value = _returns(r)[0]
        pending = secret_of(decode_qr(pending_value))
        secrets += [pending, "".join(pending_value.split())]
        wrong2 = _wrong_code(pending)
        secrets.append(wrong2)
        r = record(_soap(srv, "admin", ADMIN_PASSWORD, "enableTOTP", "bob@abc.com",
                         f"<ns:verificationCode>{wrong2}</ns:verificationCode>"),
                   "admin", "enableTOTP", "bob@abc.com", "abc.com", "failure")
        assert _returns(r) == ["false"]

        # a plain user on themself, with self operations off: denied
        r = record(_form(srv, "bob@abc.com", PASSWORDS["bob@abc.com"], "resetTOTP", "bob@abc.com"),
                   "bob@abc.com", "resetTOTP", "bob@abc.com", "abc.com", "denied", "NotAuthorized")
        assert r.status_code == 500

        yield Trail(server=srv, calls=calls, since=since, first_half=first_half, secrets=secrets)


def _rows(srv):
    return srv.database.query_audit(f"SELECT {COLUMNS} FROM audit_trail ORDER BY at, id")


def test_one_row_per_call_with_its_request_id(trail):
    rows = _rows(trail.server)
    assert [r[0] for r in rows] == [c.request_id for c in trail.calls]
    assert len({c.request_id for c in trail.calls}) == len(trail.calls)
    for row, call in zip(rows, trail.calls):
        request_id, source, caller, operation, target, tenant, outcome, detail, at = row
        assert source == "127.0.0.1"
        assert (caller, operation, target, tenant, outcome) == \
               (call.caller, call.operation, call.target, call.tenant, call.outcome), call
        assert outcome in OUTCOMES
        assert detail == call.detail
        assert at is not None


def test_every_outcome_is_represented(trail):
    assert {c.outcome for c in trail.calls} == OUTCOMES


def test_no_secret_code_or_password_in_the_audit_table_or_the_log(trail):
    everything = [str(v) for row in trail.server.database.query_audit("SELECT * FROM audit_trail") for v in row]
    log = trail.server.log()
    assert "request=" in log  # the audit log lines are there at all
    for secret in trail.secrets:
        assert not any(secret in v for v in everything), f"{secret!r} is in the audit trail"
        assert secret not in log, f"{secret!r} is in the server log"


# --- totp-admin audit ---


def _cli_rows(srv, *args: str) -> list[list[str]]:
    out = srv.cli("audit", *args).stdout.splitlines()
    assert out[0] == "time\trequest\tsource\tcaller\toperation\ttarget\toutcome\tdetail"
    return [line.split("\t") for line in out[1:]]


def _ids(rows) -> list[str]:
    return [r[1] for r in rows]


def _newest_first(calls) -> list[str]:
    return [c.request_id for c in reversed(calls)]


def test_cli_lists_every_event_newest_first(trail):
    rows = _cli_rows(trail.server)
    assert _ids(rows) == _newest_first(trail.calls)
    by_id = {c.request_id: c for c in trail.calls}
    for when, request_id, source, caller, operation, target, outcome, detail in rows:
        call = by_id[request_id]
        datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ")
        assert (source, caller, operation, target, outcome) == \
               ("127.0.0.1", call.caller, call.operation, call.target or "-", call.outcome)
        assert detail == (call.detail or "-")


@pytest.mark.parametrize("args, keep", [
    (("--user", "bob@abc.com"), lambda c: "bob@abc.com" in (c.caller, c.target)),
    (("--user", "chief@xyz.org"), lambda c: "chief@xyz.org" in (c.caller, c.target)),
    (("--tenant", "abc.com"), lambda c: c.tenant == "abc.com"),
    (("--tenant", "ABC.com"), lambda c: c.tenant == "abc.com"),
    (("--tenant", "nowhere.example"), lambda c: c.tenant == "nowhere.example"),
    (("--operation", "validateTOTP"), lambda c: c.operation == "validateTOTP"),
    (("--outcome", "denied"), lambda c: c.outcome == "denied"),
    (("--outcome", "auth-failed"), lambda c: c.outcome == "auth-failed"),
    (("--outcome", "failure"), lambda c: c.outcome == "failure"),
    (("--user", "bob@abc.com", "--operation", "validateTOTP", "--outcome", "success"),
     lambda c: c.target == "bob@abc.com" and c.operation == "validateTOTP" and c.outcome == "success"),
], ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_cli_filters(trail, args, keep):
    expected = [c for c in trail.calls if keep(c)]
    assert expected, "the filter must select something for the test to mean anything"
    assert len(expected) < len(trail.calls)
    assert _ids(_cli_rows(trail.server, *args)) == _newest_first(expected)


def test_cli_since(trail):
    since = trail.since.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert _ids(_cli_rows(trail.server, "--since", since)) == _newest_first(trail.calls[trail.first_half:])
    # The same instant written with an offset.
    local = trail.since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
    assert _ids(_cli_rows(trail.server, "--since", local)) == _newest_first(trail.calls[trail.first_half:])
    assert _cli_rows(trail.server, "--since", "2999-01-01T00:00:00Z") == []


def test_cli_limit(trail):
    assert _ids(_cli_rows(trail.server, "--limit", "3")) == _newest_first(trail.calls)[:3]
    assert _ids(_cli_rows(trail.server, "--limit", "1", "--outcome", "denied")) == \
           _newest_first([c for c in trail.calls if c.outcome == "denied"])[:1]


@pytest.mark.parametrize("args", [("--since", "yesterday"), ("--outcome", "maybe"), ("--limit", "many")])
def test_cli_rejects_bad_filters(trail, args):
    r = trail.server.cli("audit", *args, check=False)
    assert r.returncode == 2
    assert args[0] in r.stderr
    assert "Traceback" not in r.stderr


def test_calls_holding_nul_bytes_are_audited_too(make_server):
    srv = make_server()
    with srv.session("admin", WRONG_PASSWORDS[0]) as s:
        login = s.post(f"{srv.url}/%00", data={"username": "admin"}, timeout=30)
    with srv.session() as s:
        refused = s.post(f"{srv.url}/resetTOTP", data={"username": "\x00admin"}, timeout=30)
    assert login.headers.get("X-Fault-Reason") == "Access Denied. Authentication failed - Invalid credentials provided."
    assert refused.headers["X-Fault-Reason"].startswith("UTF-8''")  # the reason echoes the NUL: RFC 8187
    assert unquote(refused.headers["X-Fault-Reason"]).endswith("The username contains control characters")
    rows = srv.database.query_audit("SELECT request_id, caller, outcome, detail FROM audit_trail ORDER BY at, id")
    assert rows == [(login.headers["X-Request-ID"], "admin", "auth-failed", ""),
                    (refused.headers["X-Request-ID"], "admin", "fault", "InvalidUsername")]
