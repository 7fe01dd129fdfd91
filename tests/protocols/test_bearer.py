"""Reading ``Authorization: Bearer`` (server/credentials.py) and the RFC 6750 3.1 answers of
protocols/json/bearer.py that bearer routes give: 401 invalid_token, 403 insufficient_scope."""

from __future__ import annotations

import json

from totpadmin.core.application import Application
from totpadmin.core.principal import Principal
from totpadmin.core.usernames import UserRef
from totpadmin.operations.application_logins import BearerCredentials
from totpadmin.protocols.json.bearer import bearer_credentials, scope_missing
from totpadmin.protocols.messages import ApiRequest
from totpadmin.server.credentials import basic_credentials, bearer_token

APP = Application(1, "cid", "shop", "abc.com", frozenset({"mfa:authenticate"}), "required")


def test_bearer_header():
    assert bearer_token([b"Bearer abc-DEF_123.~+/=="]) == "abc-DEF_123.~+/=="
    assert bearer_token([b"bearer  abc "]) == "abc"
    for headers in (None, [], [b"Bearer abc", b"Bearer abc"], [b"Basic YTpi"], [b"Bearer"], [b"Bearer a b"],
                    [b"Bearer \xff"], [b"Bearer " + b"a" * 513], [b"Bearer a=b"]):
        assert bearer_token(headers) is None, headers
    assert basic_credentials([b"Bearer abc"]) is None


def test_no_token_is_401_invalid_token():
    reply = bearer_credentials(ApiRequest("POST", None, "application/json"))
    assert reply.status == 401
    assert dict(reply.headers)["WWW-Authenticate"] == 'Bearer realm="totp-admin", error="invalid_token"'
    assert json.loads(reply.body) == {"status": "FAILURE", "code": "INVALID_TOKEN",
                                      "message": "The access token is missing, invalid or expired"}
    credentials = bearer_credentials(ApiRequest("POST", None, "application/json", bearer="tok"))
    assert credentials == BearerCredentials("tok") and "tok" not in repr(credentials)


def test_a_missing_scope_is_403_insufficient_scope():
    assert scope_missing(APP, "mfa:authenticate") is None
    reply = scope_missing(APP, "mfa:devices")
    assert reply.status == 403
    assert 'error="insufficient_scope"' in dict(reply.headers)["WWW-Authenticate"]
    assert json.loads(reply.body)["code"] == "INSUFFICIENT_SCOPE"
    user = Principal(1, UserRef("abc.com", "alice"), "admin")  # a user is never an application
    assert scope_missing(user, "mfa:authenticate").status == 403
    assert user.audit_name == "alice@abc.com" and APP.audit_name == "client:shop@abc.com"
