"""Hostile bodies on every JSON POST of the real server (issue 19, section 5): deep nesting, huge numbers,
duplicate keys, wrong types, not UTF-8, lone surrogates, NUL characters, strings of up to 1 MB. Each is a
400 (413 past the server's body limit) with a message that says what was wrong, in the API's own error
body, never a traceback or a 5xx, on SQLite and on PostgreSQL (which refuses NUL in text)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

TENANT = "shop.example"
PW = "correct-horse-battery-7"
BASE = "/ciam-mfa/v2"
SOME_AUTH_ID = "0063f27c-787b-4046-8b8e-a75e241b5ea6"
POSTS = [f"{BASE}/devices", f"{BASE}/devices/{SOME_AUTH_ID}", f"{BASE}/deviceAuthentications",
         f"{BASE}/deviceAuthentications/{SOME_AUTH_ID}"]
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MB = 1 << 20


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from conftest import new_database, server_factory

    tmp = tmp_path_factory.mktemp("hostile")
    with new_database(tmp) as database, server_factory(tmp, database) as factory:
        srv = factory()
        srv.cli("tenant", "add", TENANT)
        srv.cli("user", "add", f"demouser@{TENANT}", input=f"{PW}\n")
        out = srv.cli("client", "add", "shop", "--tenant", TENANT).stdout
        lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
        client = lines["client_id"], lines["client_secret"]
        r = srv.session(*client).post(f"{srv.base}/oauth2/token", data={"grant_type": "client_credentials"},
                                      timeout=30)
        assert r.status_code == 200, r.text
        app = srv.session(None)
        app.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield SimpleNamespace(srv=srv, app=app, client=client)


def deep(levels: int) -> bytes:
    return b'{"otp": ' + b'{"a": ' * levels + b"1" + b"}" * levels + b"}"


# (body, status, code, words of the message)
HOSTILE_JSON = [
    pytest.param(deep(40), 400, "INVALID_REQUEST", "nests more than 32 levels", id="deep-nesting"),
    pytest.param(b"[" * 60_000, 400, "INVALID_REQUEST", "nests more than 32 levels", id="60k-brackets"),
    pytest.param(b'{"otp": 1' + b"0" * 5000 + b"}", 400, "INVALID_REQUEST", "more than 20 digits",
                 id="huge-integer"),
    pytest.param(b'{"otp": 1e999999}', 400, "INVALID_REQUEST", "out of range", id="huge-float"),
    pytest.param(b'{"otp": NaN}', 400, "INVALID_REQUEST", "NaN is not JSON", id="nan"),
    pytest.param(b'{"otp": "1", "otp": "2"}', 400, "INVALID_REQUEST", "appears more than once", id="duplicate-key"),
    pytest.param(b'{"userName": 7, "otp": 7, "deviceType": 7, "deviceName": 7}', 400, "INVALID_REQUEST",
                 "must be a string", id="numbers-for-strings"),
    pytest.param(b'{"userName": ["demouser"], "otp": {"a": 1}, "deviceType": true, "deviceName": []}', 400,
                 "INVALID_REQUEST", "must be a string", id="containers-for-strings"),
    pytest.param(b'{"otp": "\xff\xfe"}', 400, "INVALID_REQUEST", "not UTF-8", id="not-utf8"),
    pytest.param(b'\xef\xbb\xbf{"otp": "1"}', 400, "INVALID_REQUEST", "byte-order mark", id="bom"),
    pytest.param(b'[{"otp": "1"}]', 400, "INVALID_REQUEST", "must be a JSON object", id="top-level-array"),
    pytest.param(b"", 400, "INVALID_REQUEST", "not valid JSON", id="empty"),
    pytest.param(b'{"otp": "1"', 400, "INVALID_REQUEST", "not valid JSON", id="truncated"),
    pytest.param(b'{"otp": "' + b"7" * 300 + b'", "userName": "' + b"u" * 300 + b'", "deviceType": "'
                 + b"T" * 300 + b'", "deviceName": "' + b"d" * 300 + b'"}', 400, "INVALID_REQUEST",
                 "at most 255 characters", id="300-character-fields"),
    pytest.param(b'{"x": "' + b"x" * 5000 + b'"}', 400, "INVALID_REQUEST", "longer than 4096 characters",
                 id="5000-character-string"),
    pytest.param(b'{"x": "' + b"x" * (100 * 1024) + b'"}', 400, "INVALID_REQUEST", "longer than 65536 bytes",
                 id="100-KB-string"),
    pytest.param(b'{"x": "' + b"x" * MB + b'"}', 413, "TOO_LARGE", "longer than", id="1-MB-string"),
]


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("body, status, code, words", HOSTILE_JSON)
def test_hostile_json_on_every_post_is_a_clear_4xx(world, path, body, status, code, words):
    r = world.app.post(f"{world.srv.base}{path}", data=body, headers=JSON, timeout=60)
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/json"
    failure = r.json()
    assert failure["status"] == "FAILURE" and failure["code"] == code, failure
    assert words in failure["message"], failure
    assert len(r.content) < 1000, "the answer does not echo the body"


# Strings json.loads reads but no store should see: NUL (PostgreSQL refuses it in text), a lone
# surrogate (not encodable as UTF-8), control characters. Each field of each POST gets one.
ODD_STRINGS = [pytest.param("demo\x00user", id="nul"), pytest.param("\ud800", id="lone-surrogate"),
               pytest.param("demo\x1buser\n", id="control-characters")]
BODIES = {
    f"{BASE}/devices": {"userName": "demouser", "deviceType": "TOTP", "deviceName": "Mydevice"},
    f"{BASE}/devices/{SOME_AUTH_ID}": {"otp": "523471"},
    f"{BASE}/deviceAuthentications": {"userName": "demouser", "deviceName": "Mydevice", "deviceType": "TOTP"},
    f"{BASE}/deviceAuthentications/{SOME_AUTH_ID}": {"deviceType": "TOTP", "otp": "523471"},
}


@pytest.mark.parametrize("odd", ODD_STRINGS)
@pytest.mark.parametrize("path, field", [(path, field) for path, body in BODIES.items() for field in body])
def test_odd_strings_in_any_field_are_4xx_not_5xx(world, path, field, odd):
    import json

    body = json.dumps({**BODIES[path], field: odd}).encode("ascii")  # \u escapes: valid JSON text
    r = world.app.post(f"{world.srv.base}{path}", data=body, headers=JSON, timeout=30)
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/json" and r.json()["status"] == "FAILURE", r.text
    assert "Traceback" not in world.srv.log()


def test_odd_strings_in_the_query_and_path_are_4xx_not_5xx(world):
    s, base = world.app, f"{world.srv.base}{BASE}"
    for url in (f"{base}/devices?userName=demo%00user", f"{base}/devices?userName=%ED%A0%80",
                f"{base}/devices?userName=%FF", f"{base}/devices/Mydevice?userName=demo%00user"):
        for method in ("GET", "DELETE"):
            r = s.request(method, url, timeout=30)
            assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text[:300])
            assert r.json()["status"] == "FAILURE", r.text
    for segment in ("%00", "%ED%A0%80", "%FF", "a%00b"):
        for path in (f"/devices/{segment}", f"/deviceAuthentications/{segment}"):
            r = s.post(f"{base}{path}", json={"otp": "1", "deviceType": "TOTP"}, timeout=30)
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
            assert r.json()["status"] == "FAILURE", r.text
        r = s.delete(f"{base}/devices/{segment}?userName=demouser", timeout=30)
        assert 400 <= r.status_code < 500, (segment, r.status_code, r.text[:300])
    assert "Traceback" not in world.srv.log()


# The token endpoint's form body (the form has no nesting or numbers: its hostile cases are these).
HOSTILE_FORMS = [
    pytest.param(b"grant_type=client_credentials&grant_type=client_credentials", 400, "appears more than once",
                 id="duplicate-field"),
    pytest.param(b"grant_type=client_credentials&scope=%FF%FE", 400, "not URL-encoded UTF-8", id="not-utf8-escape"),
    pytest.param(b"grant_type=client_credentials&scope=\xff", 400, "not URL-encoded UTF-8", id="not-ascii-byte"),
    pytest.param(b"grant_type=client_credentials&x=" + b"a" * 2000, 400, "longer than 1024 characters",
                 id="2000-character-field"),
    pytest.param(b"grant_type=client_credentials&x=" + b"a" * (100 * 1024), 400, "longer than 8192 bytes",
                 id="100-KB-form"),
    pytest.param(b"grant_type=client_credentials&" + b"a=b&" * 40, 400, "more than 16 fields", id="many-fields"),
    pytest.param(b"grant_type=client_credentials&x=" + b"%41" * 2000, 400, "%-escapes", id="many-escapes"),
    pytest.param(b"grant_type=client_credentials&x=" + b"a" * MB, 413, "longer than", id="1-MB-form"),
    pytest.param(b"grant_type=client_credentials&scope=mfa%3Adevices%00", 400, "scope", id="nul-in-scope"),
    pytest.param(b"grant_type=client_credentials%00", 400, "grant_type", id="nul-in-grant-type"),
]


@pytest.mark.parametrize("body, status, words", HOSTILE_FORMS)
def test_hostile_token_forms_are_a_clear_4xx(world, body, status, words):
    r = world.srv.session(*world.client).post(f"{world.srv.base}/oauth2/token", data=body, headers=FORM,
                                              timeout=60)
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"] == "application/json"
    answer = r.json()
    message = answer.get("error_description") or answer.get("message")
    assert words in message, answer
    if status == 400:
        assert answer["error"] in ("invalid_request", "invalid_scope", "unsupported_grant_type"), answer


@pytest.mark.parametrize("client_id, secret", [("demo\x00client", "secret"), ("\ud800", "secret"),
                                               ("x" * 200, "secret"), ("client", "\x00" * 10)])
def test_odd_client_credentials_are_invalid_client_not_5xx(world, client_id, secret):
    import base64
    from urllib.parse import quote

    cid, sec = quote(client_id, errors="surrogatepass"), quote(secret)  # RFC 6749 2.3.1: form-encoded
    basic = "Basic " + base64.b64encode(f"{cid}:{sec}".encode("ascii")).decode("ascii")
    session = world.srv.session(None)
    for data, headers in ((f"grant_type=client_credentials&client_id={cid}&client_secret={sec}", FORM),
                          ("grant_type=client_credentials", {**FORM, "Authorization": basic})):
        r = session.post(f"{world.srv.base}/oauth2/token", data=data, headers=headers, timeout=30)
        assert r.status_code in (400, 401), (data, r.status_code, r.text[:300])
        assert r.json()["error"] in ("invalid_client", "invalid_request"), r.text
    assert "Traceback" not in world.srv.log()
