"""Sign-in sessions over JSON (/api/session) on the real server over HTTPS with `requests`: a password
gives ACR 1 and the `accesstoken` cookie (HttpOnly, Secure, SameSite=Lax, with `tokentype=bearer`), a
TOTP code ACR 3 then 2, a recovery code 2; the token rotates at each level; cookie calls that change
anything need the CSRF token and a same-site Origin (else 403 and nothing changes); bearer calls need
neither; sign-out ends it; no token reaches the logs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pyotp
import pytest
import requests
from sqlalchemy import text

from wire import decode_qr, secret_of

TENANT = "shop.example"
PW = "correct-horse-battery-7"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import TestDatabase, new_database, server_factory

    tmp = tmp_path_factory.mktemp("sessions")
    with new_database(tmp) as database, server_factory(tmp, database) as factory:
        srv = factory()
        srv.cli("tenant", "add", TENANT)
        for user in ("alice", "bob"):
            srv.cli("user", "add", f"{user}@{TENANT}", input=f"{PW}\n")
        yield srv
        del TestDatabase


def returned(r: requests.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [e.text or "" for e in ET.fromstring(r.content).iter() if e.tag.endswith("}return")]


def enroll(srv, user: str) -> tuple[pyotp.TOTP, list[str]]:
    admin = srv.session()
    [qr] = returned(admin.post(srv.url + "/initTOTP", data={"username": user}))
    codes = returned(admin.post(srv.url + "/regenerateRecoveryCodes", data={"username": user}))
    return pyotp.TOTP(secret_of(decode_qr(qr))), codes


def sign_in(srv, user: str, password: str = PW) -> tuple[requests.Session, requests.Response]:
    browser = srv.session(None)
    r = browser.post(f"{srv.base}/api/session", json={"userName": user, "password": password}, timeout=30)
    return browser, r


def csrf(browser: requests.Session, srv) -> str:
    return browser.get(f"{srv.base}/api/session", timeout=30).json()["csrfToken"]


def test_sign_in_then_a_second_factor_by_cookie_with_the_csrf_token(world):
    srv = world
    totp, _ = enroll(srv, f"alice@{TENANT}")
    browser, r = sign_in(srv, f"alice@{TENANT}")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["userName"], body["tenant"], body["acr"], body["totpEnabled"]) == ("alice", TENANT, 1, True)
    assert r.headers["Cache-Control"] == "no-store"
    cookies = r.raw.headers.getlist("Set-Cookie")
    token = body["accessToken"]
    assert f"accesstoken={token}; HttpOnly; Path=/; Secure; SameSite=Lax" in cookies
    assert "tokentype=bearer; Path=/; Secure; SameSite=Lax" in cookies
    listed = srv.cli("user", "list", "--tenant", TENANT).stdout
    assert body["id"] in listed, "the id is the user's, as user list shows it"

    session = browser.get(f"{srv.base}/api/session", timeout=30).json()
    assert session == {k: body[k] for k in ("id", "userName", "tenant", "acr", "totpEnabled", "csrfToken")}

    url = f"{srv.base}/api/session/second-factor"
    code = {"code": totp.now()}
    r = browser.post(url, json=code, timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "CSRF", "no CSRF token: refused"
    r = browser.post(url, json=code, headers={"X-CSRF-Token": session["csrfToken"], "Origin": "https://evil.example"},
                     timeout=30)
    assert r.status_code == 403 and r.json()["code"] == "CSRF", "another site's Origin: refused"
    assert browser.get(f"{srv.base}/api/session", timeout=30).json()["acr"] == 1, "nothing changed"

    r = browser.post(url, json=code, headers={"X-CSRF-Token": session["csrfToken"], "Origin": srv.base}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["acr"] == 3 and r.json()["accessToken"] != token, "step-up, under a new token"
    assert browser.get(f"{srv.base}/api/session", timeout=30).json()["acr"] == 3, "the new cookie works"
    old = srv.session(None)
    old.headers["Authorization"] = f"Bearer {token}"
    assert old.get(f"{srv.base}/api/session", timeout=30).status_code == 401, "the old token is gone"

    log = srv.log()
    assert token not in log and r.json()["accessToken"] not in log and session["csrfToken"] not in log


def test_bearer_sessions_need_no_csrf_token_and_a_recovery_code_gives_acr_2(world):
    srv = world
    _, codes = enroll(srv, f"bob@{TENANT}")
    _, r = sign_in(srv, f"bob@{TENANT}")
    client = srv.session(None)
    client.headers["Authorization"] = f"Bearer {r.json()['accessToken']}"
    r = client.post(f"{srv.base}/api/session/second-factor", json={"code": "000000"}, timeout=30)
    assert r.status_code == 401 and r.json()["code"] == "INVALID_OTP"
    r = client.post(f"{srv.base}/api/session/second-factor", json={"code": codes[0]}, timeout=30)
    assert r.status_code == 200 and r.json()["acr"] == 2, r.text
    client.headers["Authorization"] = f"Bearer {r.json()['accessToken']}"
    assert client.delete(f"{srv.base}/api/session", timeout=30).status_code == 204
    assert client.get(f"{srv.base}/api/session", timeout=30).status_code == 401


def test_wrong_passwords_missing_sessions_and_sign_out_by_cookie(world):
    srv = world
    _, r = sign_in(srv, f"alice@{TENANT}", "not the password")
    assert r.status_code == 401 and r.json()["code"] == "INVALID_CREDENTIALS"
    r = srv.session(None).get(f"{srv.base}/api/session", timeout=30)
    assert r.status_code == 401 and r.json()["code"] == "NOT_SIGNED_IN"
    r = srv.session(None).post(f"{srv.base}/api/session", data="userName=x", timeout=30)
    assert r.status_code == 415

    browser, r = sign_in(srv, f"alice@{TENANT}")
    assert browser.delete(f"{srv.base}/api/session", timeout=30).status_code == 403, "CSRF"
    r = browser.delete(f"{srv.base}/api/session", headers={"X-CSRF-Token": csrf(browser, srv)}, timeout=30)
    assert r.status_code == 204
    assert "accesstoken=; HttpOnly; Path=/; Secure; SameSite=Lax; Max-Age=0" in r.raw.headers.getlist("Set-Cookie")
    assert browser.get(f"{srv.base}/api/session", timeout=30).status_code == 401


def test_sessions_end_when_idle(make_server):
    srv = make_server(properties={"sessionIdleSeconds": "60"})
    srv.cli("user", "add", "carol", input=f"{PW}\n")
    browser, r = sign_in(srv, "carol")
    assert r.status_code == 201
    assert browser.get(f"{srv.base}/api/session", timeout=30).status_code == 200
    engine = srv.database.engine()
    with engine.begin() as conn:  # as if its last use were 61 s ago
        conn.execute(text("UPDATE sessions SET last_seen_at = last_seen_at - 61, created_at = created_at - 61"))
    engine.dispose()
    assert browser.get(f"{srv.base}/api/session", timeout=30).status_code == 401
