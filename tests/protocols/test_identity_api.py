"""The identity enrollment API (Misakey's paths and bodies, seed 003) on the real server over HTTPS with
`requests`, as a browser calls it: the `accesstoken` cookie and `X-CSRF-Token`; the QR PNG decoded back
(zbarimg); codes from pyotp; ACR rules (enroll 1, remove and MFA method 2, recovery codes 3); another
identity refused; unknown, spent and expired enrollments; TOTP kept while it is required."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import requests

TENANT = "shop.example"
PW = "correct-horse-battery-7"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import TestDatabase, new_database, server_factory

    tmp = tmp_path_factory.mktemp("identity")
    with new_database(tmp) as database, server_factory(tmp, database) as factory:
        srv = factory(properties={"pendingSecretLifetime": "60"})
        srv.cli("tenant", "add", TENANT)
        srv.cli("tenant", "add", "strict.example")
        for user in (f"alice@{TENANT}", f"bob@{TENANT}", "carol@strict.example"):
            srv.cli("user", "add", user, input=f"{PW}\n")
        yield srv
        del TestDatabase


class Browser:
    """A signed-in browser: the session cookie, and the CSRF token on every call."""

    def __init__(self, srv, user: str):
        self.srv = srv
        self.http = srv.session(None)
        r = self.http.post(f"{srv.base}/api/session", json={"userName": user, "password": PW}, timeout=30)
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]

    def call(self, method: str, path: str, body: dict | None = None, csrf: bool = True) -> requests.Response:
        headers = {"X-CSRF-Token": self.http.get(f"{self.srv.base}/api/session", timeout=30).json()["csrfToken"]} \
            if csrf else {}
        return self.http.request(method, f"{self.srv.base}{path}", json=body, headers=headers, timeout=30)

    def step_up(self, code: str) -> None:
        r = self.call("POST", "/api/session/second-factor", {"code": code})
        assert r.status_code == 200, r.text


def failure(r: requests.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == "FAILURE" and body["code"] == code and body["message"], body
    return body


def qr_secret(png: bytes) -> str:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    if shutil.which("zbarimg"):
        decoded = subprocess.run(["zbarimg", "--raw", "-q", "-"], input=png, capture_output=True, check=True)
        uri = decoded.stdout.decode().strip()
        return parse_qs(urlsplit(uri).query)["secret"][0]
    pytest.skip("zbarimg is not installed (.ci/run installs zbar-tools)")


def enroll(browser: Browser) -> tuple[pyotp.TOTP, list[str]]:
    r = browser.call("GET", f"/identities/{browser.id}/totp/enroll")
    assert r.status_code == 200, r.text
    totp = pyotp.TOTP(qr_secret(base64.b64decode(r.json()["base64_image"], validate=True)))
    r = browser.call("POST", f"/identities/{browser.id}/totp/enroll", {"id": r.json()["id"], "code": totp.now()})
    assert r.status_code == 200, r.text
    return totp, r.json()["recovery_codes"]


def later_code(totp: pyotp.TOTP) -> str:
    """The next step's code: the window takes it now, and the one just used is not replayed."""
    return totp.at(time.time() + totp.interval)


def test_enroll_by_qr_then_recovery_codes_at_acr_3(srv):
    alice = Browser(srv, f"alice@{TENANT}")
    path = f"/identities/{alice.id}/totp/enroll"
    failure(alice.call("GET", path, csrf=False), 403, "CSRF")  # starting an enrollment changes state
    r = alice.call("GET", path)
    assert set(r.json()) == {"id", "base64_image"} and uuid.UUID(r.json()["id"])
    totp = pyotp.TOTP(qr_secret(base64.b64decode(r.json()["base64_image"])))
    enrollment = r.json()["id"]
    failure(alice.call("POST", path, {"id": enrollment, "code": "000000" if totp.now() != "000000" else "111111"}),
            401, "INVALID_OTP")
    failure(alice.call("POST", path, {"id": str(uuid.uuid4()), "code": totp.now()}), 404, "ENROLLMENT_NOT_FOUND")
    r = alice.call("POST", path, {"id": enrollment, "code": totp.now()})
    assert r.status_code == 200 and len(r.json()["recovery_codes"]) == 10, r.text
    first_set = r.json()["recovery_codes"]
    failure(alice.call("POST", path, {"id": enrollment, "code": later_code(totp)}), 410, "ENROLLMENT_EXPIRED")

    codes = f"/identities/{alice.id}/totp/recovery-codes"
    assert failure(alice.call("POST", codes), 403, "ACR_TOO_LOW")["requiredAcr"] == 3
    alice.step_up(later_code(totp))
    r = alice.call("POST", codes)
    assert r.status_code == 200 and len(r.json()["recovery_codes"]) == 10
    assert not set(r.json()["recovery_codes"]) & set(first_set), "the old set is erased"


def test_another_identity_is_refused_whatever_it_names(srv):
    alice, bob = Browser(srv, f"alice@{TENANT}"), Browser(srv, f"bob@{TENANT}")
    for other in (bob.id, str(uuid.uuid4())):
        failure(alice.call("GET", f"/identities/{other}/totp/enroll"), 403, "FORBIDDEN")
        failure(alice.call("DELETE", f"/identities/{other}/totp"), 403, "FORBIDDEN")
    failure(srv.session(None).get(f"{srv.base}/identities/{bob.id}/totp/enroll", timeout=30), 401, "NOT_SIGNED_IN")


def test_totp_stays_while_required_by_the_user_or_an_application(srv):
    carol = Browser(srv, "carol@strict.example")
    totp, recovery = enroll(carol)
    remove, method = f"/identities/{carol.id}/totp", f"/identities/{carol.id}/mfa-method"
    assert failure(carol.call("DELETE", remove), 403, "ACR_TOO_LOW")["requiredAcr"] == 2
    carol.step_up(recovery[0])  # a recovery code: ACR 2
    assert carol.call("PUT", method, {"method": "totp"}).status_code == 204
    failure(carol.call("DELETE", remove), 409, "TOTP_REQUIRED")
    assert carol.call("PUT", method, {"method": "none"}).status_code == 204
    srv.cli("client", "add", "strict-app", "--tenant", "strict.example", "--totp", "required")
    failure(carol.call("DELETE", remove), 409, "TOTP_REQUIRED")
    srv.cli("client", "remove", "strict-app", "--tenant", "strict.example")
    failure(carol.call("PUT", method, {"method": "sms"}), 400, "INVALID_REQUEST")
    assert carol.call("DELETE", remove).status_code == 204
    assert carol.http.get(f"{srv.base}/api/session", timeout=30).status_code == 401, "removing TOTP ends sessions"
    assert "Traceback" not in srv.log()
