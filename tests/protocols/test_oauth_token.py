"""POST /oauth2/token (RFC 6749 4.4, 5.1, 5.2) on the real server over HTTPS with `requests`: both
kinds of client authentication, every error, scope down-selection, expiry, tokens dying with their
client and its secret, throttling, and nothing secret in the log or the database. Whether a token is
live is asked of the database the server uses, through operations/oauth.py (no route takes a token yet)."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from totpadmin.core.application import token_digest
from totpadmin.operations.oauth import OAuthTokens
from totpadmin.store.database import Database

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def add_client(srv, name: str = "shop", tenant: str = "carbon.super", *extra: str) -> tuple[str, str]:
    out = srv.cli("client", "add", name, "--tenant", tenant, *extra).stdout
    lines = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return lines["client_id"], lines["client_secret"]


def token_request(srv, data: dict | str | None = None, *, auth=None, headers=None) -> requests.Response:
    s = srv.session(None)
    if auth is not None:
        s.auth = auth
    body = {"grant_type": "client_credentials"} if data is None else data
    return s.post(f"{srv.base}/oauth2/token", data=body, headers=headers or {}, timeout=30)


def assert_error(r: requests.Response, status: int, error: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == "application/json"
    for name, value in NO_STORE.items():
        assert r.headers[name] == value
    body = r.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    if error == "invalid_client":
        assert r.headers["WWW-Authenticate"] == 'Basic realm="totp-admin"'


def live(srv, token: str):
    """The application a token stands for, asked of the server's database; None if dead."""
    db = Database(srv.database.url)
    try:
        return OAuthTokens(db, 3600).find(token)
    finally:
        db.dispose()


@pytest.fixture
def srv(make_server):
    return make_server()


def test_basic_and_form_authentication_give_a_bearer_token(srv):
    client_id, secret = add_client(srv)
    for r in (token_request(srv, auth=(client_id, secret)),
              token_request(srv, {"grant_type": "client_credentials", "client_id": client_id,
                                  "client_secret": secret})):
        assert r.status_code == 200, r.text
        for name, value in NO_STORE.items():
            assert r.headers[name] == value
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["scope"] == "mfa:authenticate mfa:devices"
        application, _ = live(srv, body["access_token"])
        assert application.audit_name == "client:shop@carbon.super"
        assert application.scopes == {"mfa:authenticate", "mfa:devices"}
    audit = srv.database.query_audit("SELECT caller, operation, outcome, tenant FROM audit_trail "
                                     "WHERE operation = 'oauth2.token'")
    assert audit == [("client:shop@carbon.super", "oauth2.token", "success", "carbon.super")] * 2


def test_scope_down_selection_and_refusals(srv):
    client_id, secret = add_client(srv, "narrow", "carbon.super", "--scope", "mfa:authenticate")
    auth = (client_id, secret)
    r = token_request(srv, {"grant_type": "client_credentials", "scope": "mfa:authenticate"}, auth=auth)
    assert r.status_code == 200 and r.json()["scope"] == "mfa:authenticate"
    assert live(srv, r.json()["access_token"])[0].scopes == {"mfa:authenticate"}
    assert_error(token_request(srv, {"grant_type": "client_credentials", "scope": "mfa:devices"}, auth=auth),
                 400, "invalid_scope")  # known, not granted
    assert_error(token_request(srv, {"grant_type": "client_credentials", "scope": "openid"}, auth=auth),
                 400, "invalid_scope")  # unknown

    wide_id, wide_secret = add_client(srv, "wide")
    r = token_request(srv, {"grant_type": "client_credentials", "scope": "mfa:devices"}, auth=(wide_id, wide_secret))
    assert r.json()["scope"] == "mfa:devices"


@pytest.mark.parametrize("data, error", [
    ({}, "invalid_request"),  # no grant_type
    ({"grant_type": "password"}, "unsupported_grant_type"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
    ("grant_type=client_credentials&grant_type=client_credentials", "invalid_request"),  # repeated
    ("grant_type=client_credentials&scope=%FF", "invalid_request"),  # not UTF-8
    ("grant_type=client_credentials&" + "a=b&" * 40, "invalid_request"),  # too many fields
    ("grant_type=client_credentials&x=" + "%41" * 2000, "invalid_request"),  # too many escapes
    ("grant_type=client_credentials&x=" + "a" * 9000, "invalid_request"),  # too large
])
def test_malformed_requests(srv, data, error):
    client_id, secret = add_client(srv)
    r = token_request(srv, data, auth=(client_id, secret),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(r, 400, error)
    assert "Traceback" not in srv.log()


def test_wrong_content_type_and_both_authentications(srv):
    client_id, secret = add_client(srv)
    r = srv.session(None).post(f"{srv.base}/oauth2/token", json={"grant_type": "client_credentials"},
                               auth=(client_id, secret))
    assert_error(r, 400, "invalid_request")
    r = token_request(srv, {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
                      auth=(client_id, secret))
    assert_error(r, 400, "invalid_request")


def test_invalid_client(srv):
    client_id, secret = add_client(srv)
    assert_error(token_request(srv), 401, "invalid_client")  # no authentication at all
    assert_error(token_request(srv, auth=(client_id, "wrong")), 401, "invalid_client")
    assert_error(token_request(srv, auth=("nobody", secret)), 401, "invalid_client")
    assert_error(token_request(srv, {"grant_type": "client_credentials", "client_id": client_id}), 401,
                 "invalid_client")  # no secret
    assert_error(token_request(srv, headers={"Authorization": "Bearer abc"}), 401, "invalid_client")
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    assert token_request(srv, headers={"Authorization": basic}).status_code == 200  # Basic by hand
    audit = srv.database.query_audit("SELECT caller FROM audit_trail WHERE outcome = 'auth-failed'")
    assert (f"client_id:{client_id}",) in audit and ("client_id:nobody",) in audit


def test_two_authorization_headers_are_refused(srv):
    import http.client
    import ssl

    client_id, secret = add_client(srv)
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    context = ssl.create_default_context(cafile=srv.ca)
    conn = http.client.HTTPSConnection("localhost", srv.port, context=context, timeout=30)
    body = "grant_type=client_credentials"
    conn.putrequest("POST", "/oauth2/token")
    conn.putheader("Authorization", basic)
    conn.putheader("Authorization", basic)
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body.encode())
    r = conn.getresponse()
    assert r.status == 401 and b"invalid_client" in r.read()
    conn.close()


def test_tokens_expire(make_server):
    srv = make_server(properties={"accessTokenSeconds": "1"})
    client_id, secret = add_client(srv)
    r = token_request(srv, auth=(client_id, secret))
    assert r.json()["expires_in"] == 1
    token = r.json()["access_token"]
    assert live(srv, token) is not None
    time.sleep(1.2)
    assert live(srv, token) is None
    # A new token for the client clears its expired ones from the table.
    token_request(srv, auth=(client_id, secret))
    assert srv.database.query("SELECT count(*) FROM oauth_tokens WHERE token_hash = :h", h=token_digest(token)) == [(0,)]


def test_tokens_die_with_their_client_and_its_secret(srv):
    client_id, secret = add_client(srv)
    first = token_request(srv, auth=(client_id, secret)).json()["access_token"]
    rotated = srv.cli("client", "rotate-secret", "shop", "--tenant", "carbon.super").stdout
    new_secret = rotated.splitlines()[0].rsplit(" ", 1)[1]
    assert live(srv, first) is None
    assert_error(token_request(srv, auth=(client_id, secret)), 401, "invalid_client")  # the old secret (cached too)
    second = token_request(srv, auth=(client_id, new_secret)).json()["access_token"]
    assert live(srv, second) is not None
    srv.cli("client", "remove", "shop", "--tenant", "carbon.super")
    assert live(srv, second) is None
    assert_error(token_request(srv, auth=(client_id, new_secret)), 401, "invalid_client")


def test_a_foreign_tenant_client_gets_its_own_tenant(srv):
    srv.cli("tenant", "add", "abc.com")
    client_id, secret = add_client(srv, "shop", "abc.com")
    other_id, other_secret = add_client(srv, "shop", "carbon.super")  # the same name in another tenant
    assert client_id != other_id
    token = token_request(srv, auth=(client_id, secret)).json()["access_token"]
    application, _ = live(srv, token)
    assert application.tenant == "abc.com" and application.audit_name == "client:shop@abc.com"
    assert_error(token_request(srv, auth=(client_id, other_secret)), 401, "invalid_client")


def test_a_guessing_client_is_throttled(make_server):
    srv = make_server(properties={"loginFailuresBeforeBlock": "3", "loginBlockSeconds": "30",
                                  "loginFailuresBeforeDelay": "100"})
    client_id, _ = add_client(srv)
    for _ in range(3):
        assert_error(token_request(srv, auth=(client_id, "guess")), 401, "invalid_client")
    r = token_request(srv, auth=(client_id, "guess"))
    assert r.status_code == 429 and r.json()["error"] == "slow_down"
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert r.headers["Cache-Control"] == "no-store"


def test_wrong_method_and_unknown_path(srv):
    s = srv.session(None)
    r = s.get(f"{srv.base}/oauth2/token")
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and r.json()["status"] == "FAILURE"
    r = s.post(f"{srv.base}/oauth2/authorize")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"


def test_an_oversized_body_is_413(srv):
    r = srv.session(None).post(f"{srv.base}/oauth2/token", data=b"a" * (2 << 20),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_no_secret_or_token_in_the_log_or_in_clear_in_the_database(srv):
    client_id, secret = add_client(srv)
    token = token_request(srv, auth=(client_id, secret)).json()["access_token"]
    token_request(srv, {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    token_request(srv, auth=(client_id, secret + "x"))
    srv.stop()
    log = srv.log()
    assert secret not in log and token not in log
    if srv.database.schema is None:  # SQLite: the files themselves
        for path in [srv.data_dir / "totp-admin.db", *srv.data_dir.glob("totp-admin.db-*"),
                     *srv.database.audit_files()]:
            data = path.read_bytes()
            assert secret.encode() not in data and token.encode() not in data, path
    rows = srv.database.query("SELECT secret_hash FROM oauth_clients")
    assert rows and rows[0][0].startswith("$argon2id$")
    assert srv.database.query("SELECT token_hash FROM oauth_tokens WHERE token_hash = :h",
                              h=token_digest(token)) == [(token_digest(token),)]
    for table in ("oauth_clients", "oauth_tokens", "audit_events"):
        text = repr(srv.database.query(f"SELECT * FROM {table}"))
        assert secret not in text and token not in text
