"""WSO2's me/totp API (/api/users/v1/me/totp, /t/{tenant}/...) on the real server over HTTPS with
`requests`, as WSO2 IS's MyAccount calls it: INIT shows a pending secret (TOTP is not on until VALIDATE),
VALIDATE with a number or a string, GET, VIEW, GET secret, DELETE; HTTP Basic for VALIDATE only; WSO2's
error bodies; the active secret shown again and DELETE only at ACR 2. Codes from pyotp."""

from __future__ import annotations

import base64
import time
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests

TENANT = "shop.example"
PW = "correct-horse-battery-7"
ME = "/api/users/v1/me/totp"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import TestDatabase, new_database, server_factory

    tmp = tmp_path_factory.mktemp("me-totp")
    with new_database(tmp) as database, server_factory(tmp, database) as factory:
        srv = factory()
        srv.cli("tenant", "add", TENANT)
        for user in ("alice", "bob", "carol", "dave"):
            srv.cli("user", "add", f"{user}@{TENANT}", input=f"{PW}\n")
        yield srv
        del TestDatabase


class User:
    """A signed-in user calling me/totp with the session's token, as a non-browser client does."""

    def __init__(self, srv, name: str):
        self.srv = srv
        self.http = srv.session(None)
        r = self.http.post(f"{srv.base}/api/session", json={"userName": f"{name}@{TENANT}", "password": PW}, timeout=30)
        assert r.status_code == 201, r.text
        self.use(r.json()["accessToken"])
        self.http.cookies.clear()

    def use(self, token: str) -> None:
        self.http.headers["Authorization"] = f"Bearer {token}"

    def post(self, body: dict, path: str = ME) -> requests.Response:
        return self.http.post(f"{self.srv.base}{path}", json=body, timeout=30)

    def get(self, path: str = ME) -> requests.Response:
        return self.http.get(f"{self.srv.base}{path}", timeout=30)

    def delete(self, path: str = ME) -> requests.Response:
        return self.http.delete(f"{self.srv.base}{path}", timeout=30)

    def second_factor(self, code: str) -> None:
        r = self.http.post(f"{self.srv.base}/api/session/second-factor", json={"code": code}, timeout=30)
        assert r.status_code == 200, r.text
        self.use(r.json()["accessToken"])
        self.http.cookies.clear()


def uri_of(r: requests.Response) -> str:
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["qrCodeUrl"], validate=True).decode()


def secret_of(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["secret"][0]


def wso2_error(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["code"] == code and body["message"] and body["description"] and body["traceId"], body
    return body


class Codes:
    """Codes of ever newer steps, each accepted now (the window takes a step either side; replays are
    refused): the previous step's, the current one's, the next one's, then the test waits a step."""

    def __init__(self, totp: pyotp.TOTP):
        self.totp = totp
        if time.time() % totp.interval > totp.interval - 12:  # too near the step's end for three calls
            time.sleep(totp.interval - time.time() % totp.interval + 0.05)
        self.step = int(time.time() // totp.interval) - 2

    def next(self) -> str:
        self.step += 1
        while self.step > int(time.time() // self.totp.interval) + 1:
            time.sleep(self.totp.interval - time.time() % self.totp.interval + 0.05)
        return self.totp.at(self.step * self.totp.interval)


def totp_enabled(srv, user: str) -> bool:
    r = srv.session().post(srv.url + "/isTOTPEnabled", data={"username": f"{user}@{TENANT}"})
    return ">true<" in r.text


def test_myaccount_flow_init_validate_then_view_secret_and_delete(srv):
    alice = User(srv, "alice")
    uri = uri_of(alice.post({"action": "INIT"}))
    assert uri.startswith(f"otpauth://totp/{TENANT}:alice?") and "period=30" in uri
    assert uri_of(alice.post({"action": "INIT"})) == uri, "INIT again shows the same pending secret"
    assert not totp_enabled(srv, "alice"), "verify before activate: INIT does not turn TOTP on"
    totp = pyotp.TOTP(secret_of(uri))
    codes = Codes(totp)

    assert alice.post({"action": "VALIDATE", "verificationCode": "000000" if totp.now() != "000000" else "111111"}
                      ).json() == {"isValid": False}
    code = codes.next()
    assert alice.post({"action": "VALIDATE", "verificationCode": int(code)}).json() == {"isValid": True}
    assert totp_enabled(srv, "alice")

    # The active secret is shown again only to a session raised with a code.
    wso2_error(alice.get(), 403, "OTP-10006")
    wso2_error(alice.get(ME + "/secret"), 403, "OTP-10006")
    wso2_error(alice.delete(), 403, "OTP-10006")
    alice.second_factor(codes.next())
    assert uri_of(alice.get()) == uri and uri_of(alice.post({"action": "VIEW"})) == uri
    assert alice.get(ME + "/secret").json() == {"secret": secret_of(uri)}
    assert alice.post({"action": "VALIDATE", "verificationCode": codes.next()}).json() == {"isValid": True}

    r = alice.delete()
    assert r.status_code == 200 and r.content == b""
    assert not totp_enabled(srv, "alice")
    assert alice.get().status_code == 401, "a TOTP reset ends the user's sessions"


def test_refresh_makes_a_new_pending_secret_and_the_old_one_stays_active_until_validate(srv):
    bob = User(srv, "bob")
    first = pyotp.TOTP(secret_of(uri_of(bob.post({"action": "INIT"}))))
    old = Codes(first)
    assert bob.post({"action": "VALIDATE", "verificationCode": old.next()}).json() == {"isValid": True}
    bob.second_factor(old.next())
    refreshed = uri_of(bob.post({"action": "REFRESH"}))
    second = pyotp.TOTP(secret_of(refreshed))
    assert second.secret != first.secret
    admin = srv.session()
    check = admin.post(srv.url + "/validateTOTP", data={"username": f"bob@{TENANT}", "verificationCode": old.next()})
    assert ">true<" in check.text, "the old secret stays active until the new one is validated"
    new = Codes(second)
    new.step = old.step  # the user's replay state is per user: newer steps only
    assert bob.post({"action": "VALIDATE", "verificationCode": new.next()}).json() == {"isValid": True}
    check = admin.post(srv.url + "/validateTOTP", data={"username": f"bob@{TENANT}", "verificationCode": new.next()})
    assert ">true<" in check.text


def test_basic_authentication_only_for_validate_and_tenants_by_path(srv):
    carol = User(srv, "carol")
    totp = pyotp.TOTP(secret_of(uri_of(carol.post({"action": "INIT"}, f"/t/{TENANT}{ME}"))))
    basic = srv.session(f"carol@{TENANT}", PW)
    r = basic.post(f"{srv.base}{ME}", json={"action": "VALIDATE", "verificationCode": totp.now()}, timeout=30)
    assert r.status_code == 200 and r.json() == {"isValid": True}, r.text
    body = wso2_error(basic.post(f"{srv.base}{ME}", json={"action": "INIT"}, timeout=30), 403, "OTP-10005")
    assert body["description"] == "This method is blocked for the requests with basic authentication."
    wso2_error(basic.get(f"{srv.base}{ME}", timeout=30), 403, "OTP-10005")

    r = carol.get(f"/t/other.example{ME}")
    assert r.status_code == 401 and r.json()["code"] == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")
    r = srv.session(None).get(f"{srv.base}{ME}", timeout=30)
    assert r.status_code == 401 and r.json()["message"] == "Unauthorized"


def test_wso2s_errors(srv):
    dave = User(srv, "dave")
    wso2_error(dave.get(), 404, "OTP-10003")  # no secret at all: nothing to show (WSO2 shows an unstored one)
    assert wso2_error(dave.post({}), 400, "UE-10000")["description"] == "Property action cannot be null."
    wso2_error(dave.post({"action": "FLY"}), 400, "UE-10000")
    wso2_error(dave.post({"action": "VALIDATE", "verificationCode": "12ab"}), 400, "UE-10000")
    wso2_error(dave.post({"action": "VALIDATE"}), 400, "OTP-10004")
    r = dave.http.post(f"{srv.base}{ME}", data="{", headers={"Content-Type": "application/json"}, timeout=30)
    wso2_error(r, 400, "UE-10000")
    # GET secret makes a pending secret, as INIT would, and INIT shows that one.
    secret = dave.get(ME + "/secret").json()["secret"]
    assert secret_of(uri_of(dave.post({"action": "INIT"}))) == secret
    assert "Traceback" not in srv.log()
