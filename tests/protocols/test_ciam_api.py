"""The CIAM device API (/ciam-mfa/v2, seeds 001 and 002) on the real server over HTTPS with `requests`:
an application's token, a user's devices paired by QR (decoded back by zbarimg) and activated with a
code, sign-ins by authId, codes from pyotp and oathtool, and every failure as JSON with its status."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from urllib.parse import parse_qs, quote, urlsplit

import pyotp
import pytest
import requests


TENANT = "shop.example"
BASE = "/ciam-mfa/v2"
PW = "correct-horse-battery-7"


def add_client(srv, name: str, tenant: str = TENANT, *extra: str) -> tuple[str, str]:
    out = srv.cli("client", "add", name, "--tenant", tenant, *extra).stdout
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return lines["client_id"], lines["client_secret"]


def token(srv, client: tuple[str, str], scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    r = srv.session(*client).post(f"{srv.base}/oauth2/token", data=data, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


class App:
    """An application calling the device API with its bearer token."""

    def __init__(self, srv, access_token: str):
        self.srv = srv
        self.session = srv.session(None)
        self.session.headers["Authorization"] = f"Bearer {access_token}"

    def call(self, method: str, path: str, body: dict | None = None, **params) -> requests.Response:
        return self.session.request(method, f"{self.srv.base}{BASE}{path}", json=body, params=params or None,
                                    timeout=30)

    def add(self, user: str, name: str) -> requests.Response:
        return self.call("POST", "/devices", {"userName": user, "deviceType": "TOTP", "deviceName": name})

    def activate(self, auth_id: str, otp: str) -> requests.Response:
        return self.call("POST", f"/devices/{auth_id}", {"otp": otp})

    def start(self, user: str, device: str | None = None) -> requests.Response:
        body = {"userName": user, "deviceType": "TOTP", **({"deviceName": device} if device else {})}
        return self.call("POST", "/deviceAuthentications", body)

    def finish(self, auth_id: str, otp: str) -> requests.Response:
        return self.call("POST", f"/deviceAuthentications/{auth_id}", {"deviceType": "TOTP", "otp": otp})

    def enroll(self, user: str, name: str) -> pyotp.TOTP:
        r = self.add(user, name)
        assert r.status_code == 201, r.text
        totp = pyotp.TOTP(r.json()["secret"])
        r = self.activate(r.json()["authId"], totp.now())
        assert r.status_code == 200, r.text
        return totp


def assert_failure(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["status"] == "FAILURE" and body["code"] == code and body["message"], body
    assert "Traceback" not in r.text
    return body


def code_of_step(totp: pyotp.TOTP, step: int) -> str:
    """The code of time step ``step``, once the server accepts it (its window: one step either side of
    the current one). Replays are refused, so each sign-in of a device needs a newer step than the last."""
    while int(time.time() // totp.interval) < step - 1:
        time.sleep(totp.interval - time.time() % totp.interval + 0.05)
    return totp.at(step * totp.interval)


def step_now(totp: pyotp.TOTP) -> int:
    return int(time.time() // totp.interval)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import TestDatabase, new_database, server_factory

    tmp = tmp_path_factory.mktemp("ciam")
    with new_database(tmp) as database, server_factory(tmp, database) as factory:
        srv = factory(properties={"maxFailedAttempts": "3"})
        srv.cli("tenant", "add", TENANT)
        for user in ("alice", "bob", "carol", "dave", "erin"):
            srv.cli("user", "add", f"{user}@{TENANT}", input=f"{PW}\n")
        srv.cli("user", "add", "zed", input=f"{PW}\n")  # carbon.super
        client = add_client(srv, "shop")
        yield srv, App(srv, token(srv, client)), client
        del TestDatabase


def test_the_seeds_flow_enroll_by_qr_activate_then_sign_in(world):
    srv, app, _ = world
    r = app.add("alice", "Mydevice")
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"authId", "status", "message", "secret", "registrationUri", "qrCode"}
    assert body["status"] == "SUCCESS" and r.headers["Location"] == f"{BASE}/devices/{body['authId']}"
    assert r.headers["Cache-Control"] == "no-store"
    uri = body["registrationUri"]
    assert uri.startswith(f"otpauth://totp/{TENANT}:alice?") and parse_qs(urlsplit(uri).query)["secret"] == [body["secret"]]
    png = base64.b64decode(body["qrCode"], validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    if shutil.which("zbarimg"):
        decoded = subprocess.run(["zbarimg", "--raw", "-q", "-"], input=png, capture_output=True, check=True)
        assert decoded.stdout.decode().strip() == uri

    totp = pyotp.TOTP(body["secret"])
    listed = app.call("GET", "/devices", userName="alice").json()["devices"]
    assert [(d["deviceName"], d["status"]) for d in listed] == [("Mydevice", "PENDING")]
    r = app.activate(body["authId"], totp.now())
    assert r.status_code == 200 and r.json()["status"] == "SUCCESS", r.text
    assert r.json()["message"] == "OTP has been validated successfully"
    assert len(r.json()["recoveryCodes"]) == 10

    r = app.start("alice", "Mydevice")
    assert r.status_code == 201, r.text
    assert r.json()["message"] == "Please get the OTP from registered device to authenticate"
    auth_id = r.json()["authId"]
    r = app.finish(auth_id, totp.at(time.time() + totp.interval))  # the next step's: the current one activated
    assert r.status_code == 200 and r.json() == {"status": "SUCCESS", "message": "OTP has been validated successfully"}
    assert_failure(app.finish(auth_id, totp.now()), 410, "AUTH_ID_USED")

    # The same enrolment over SOAP: the device is the user's TOTP.
    admin = srv.session()
    r = admin.post(f"{srv.url}/isTOTPEnabled", data={"username": f"alice@{TENANT}"}, timeout=30)
    assert r.status_code == 200 and ">true<" in r.text, r.text
    devices = app.call("GET", "/devices", userName="alice").json()["devices"]
    assert devices[0]["status"] == "ACTIVE" and devices[0]["lastUsedAt"] and "secret" not in devices[0]


@pytest.mark.skipif(shutil.which("oathtool") is None, reason="oathtool not installed")
def test_a_second_device_with_oathtool_codes_and_validate_totp_accepts_it(world):
    srv, app, _ = world
    app.enroll("bob", "phone")
    r = app.add("bob", "tablet")
    assert r.status_code == 201
    secret = r.json()["secret"]

    def oathtool(step: int) -> str:
        at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(step * 30))
        return subprocess.run(["oathtool", "--totp", "-b", "--now", at, secret], capture_output=True, text=True,
                              check=True).stdout.strip()
    tablet = pyotp.TOTP(secret)
    step = step_now(tablet)
    assert oathtool(step) == tablet.at(step * 30), "two independent implementations agree"
    activated = app.activate(r.json()["authId"], oathtool(step))
    assert activated.status_code == 200 and "recoveryCodes" not in activated.json(), activated.text
    r = app.start("bob", "tablet")
    assert app.finish(r.json()["authId"], oathtool(step + 1)).status_code == 200
    # validateTOTP (form POST) accepts a code of any active device
    admin = srv.session()
    r = admin.post(f"{srv.url}/validateTOTP", data={"username": f"bob@{TENANT}",
                                                     "verificationCode": code_of_step(tablet, step + 2)}, timeout=30)
    assert r.status_code == 200 and ">true<" in r.text, r.text
    names = [(d["deviceName"], d["primary"]) for d in app.call("GET", "/devices", userName="bob").json()["devices"]]
    assert names == [("phone", True), ("tablet", False)]

    r = app.call("DELETE", f"/devices/{quote('tablet')}", userName="bob")
    assert r.status_code == 204 and r.content == b""
    assert_failure(app.call("DELETE", "/devices/tablet", userName="bob"), 404, "DEVICE_NOT_FOUND")


def test_failures_are_json_with_fitting_statuses(world):
    srv, app, client = world
    totp = app.enroll("carol", "phone")
    assert_failure(app.add("carol", "phone"), 409, "DEVICE_NAME_TAKEN")
    assert_failure(app.add("nobody", "phone"), 404, "USER_NOT_FOUND")
    assert_failure(app.add("zed@carbon.super", "phone"), 403, "FORBIDDEN")
    assert_failure(app.add("carol", "a/b"), 400, "INVALID_DEVICE_NAME")
    assert_failure(app.call("POST", "/devices", {"userName": "carol", "deviceType": "SMS", "deviceName": "x"}),
                   400, "UNSUPPORTED_DEVICE_TYPE")
    assert_failure(app.call("POST", "/devices", {"userName": "carol", "deviceType": "TOTP"}), 400, "INVALID_REQUEST")
    assert_failure(app.call("POST", "/devices", {"userName": 7, "deviceType": "TOTP", "deviceName": "x"}),
                   400, "INVALID_REQUEST")
    assert_failure(app.start("carol", "tablet"), 404, "DEVICE_NOT_FOUND")
    assert_failure(app.finish("0063f27c-787b-4046-8b8e-a75e241b5ea6", "123456"), 404, "AUTH_ID_NOT_FOUND")
    assert_failure(app.start("dave"), 409, "ENROLLMENT_REQUIRED")

    auth_id = app.start("carol", "phone").json()["authId"]
    wrong = "000000" if totp.now() != "000000" else "111111"
    for _ in range(3):
        assert_failure(app.finish(auth_id, wrong), 401, "INVALID_OTP")
    locked = assert_failure(app.finish(auth_id, totp.now()), 423, "USER_LOCKED")
    assert locked["lockedUntil"] and int(app.finish(auth_id, totp.now()).headers["Retry-After"]) > 0

    # Hostile bodies: 400 with a message, never a traceback.
    raw = {"Content-Type": "application/json"}
    for body in (b"{" * 100_000, b'{"userName": "a", "userName": "b"}', b'{"n": 1' + b"0" * 5000 + b"}",
                 b"\xff\xfe{}", b"[]", b'{"userName": "' + b"x" * (1 << 20) + b'"}', b"nul"):
        r = app.session.post(f"{srv.base}{BASE}/devices", data=body, headers=raw, timeout=30)
        assert r.status_code in (400, 413), (r.status_code, r.text[:200])
        assert r.json()["status"] == "FAILURE"
    r = app.session.post(f"{srv.base}{BASE}/devices", data="userName=x", timeout=30,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_failure(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_tokens_scopes_and_admin_credentials(world):
    srv, app, client = world
    r = srv.session(None).post(f"{srv.base}{BASE}/devices", timeout=30,
                               json={"userName": "erin", "deviceType": "TOTP", "deviceName": "x"})
    assert_failure(r, 401, "INVALID_TOKEN")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # An administrator cannot enable MFA for another user (seed 001): SOAP credentials do not work here.
    r = srv.session().post(f"{srv.base}{BASE}/devices", timeout=30,
                           json={"userName": "erin", "deviceType": "TOTP", "deviceName": "x"})
    assert_failure(r, 401, "INVALID_TOKEN")
    wrong = App(srv, "not-a-token")
    r = wrong.add("erin", "x")
    assert_failure(r, 401, "INVALID_TOKEN")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]

    sign_in_only = App(srv, token(srv, client, scope="mfa:authenticate"))
    r = sign_in_only.add("erin", "x")
    assert_failure(r, 403, "INSUFFICIENT_SCOPE")
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]

    foreign = App(srv, token(srv, add_client(srv, "other-shop", "carbon.super")))
    assert_failure(foreign.add(f"erin@{TENANT}", "x"), 403, "FORBIDDEN")
    assert_failure(foreign.add("erin", "x"), 404, "USER_NOT_FOUND")  # erin of carbon.super: no such user
    assert app.add("erin", "x").status_code == 201


def test_the_applications_totp_policy(world):
    srv, _, _ = world
    optional = App(srv, token(srv, add_client(srv, "optional-shop", TENANT, "--totp", "optional")))
    r = optional.start("dave")
    assert r.status_code == 200 and r.json()["status"] == "NOT_REQUIRED", r.text
    off = App(srv, token(srv, add_client(srv, "off-shop", TENANT, "--totp", "off")))
    assert_failure(off.start("dave"), 403, "TOTP_OFF")


def test_nothing_secret_in_the_log(world):
    srv, app, _ = world
    r = app.add("erin", "x")  # a pending device of the same name is replaced
    secret = r.json()["secret"]
    log = srv.log()
    assert secret not in log and r.json()["authId"] not in log
    assert "devices.add" in log
