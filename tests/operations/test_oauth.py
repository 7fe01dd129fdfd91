"""operations/oauth.py and operations/application_logins.py on a real database (the ``store`` fixture):
client management, the client-credentials verifier, and the bearer-token verifier the device API will
use (expired, unknown and removed-client tokens refused; a cached verdict confirmed in the call's own
transaction). An application is never a user: the SOAP admin operations refuse it."""

from __future__ import annotations

import pytest

from totpadmin.core.application import Application
from totpadmin.core.authentication import CacheState
from totpadmin.core.credential_cache import CredentialCache
from totpadmin.core.errors import (ClientExists, InvalidTenantDomain, NotAuthorized, ScopeRefused, UnknownClient,
                                   UnknownTenant)
from totpadmin.core.passwords import PasswordHasher
from totpadmin.core.policy import authorize
from totpadmin.core.usernames import UserRef
from totpadmin.operations.application_logins import (BearerCredentials, BearerLogins, ClientCredentials,
                                                     ClientLogins)
from totpadmin.operations.caller import Caller
from totpadmin.operations.login import Request
from totpadmin.operations.oauth import InvalidClientName, OAuthClients, OAuthTokens

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
REQUEST = Request("req-1", "127.0.0.1", "oauth2.token")


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts(store):
    clock = Clock()
    events = []
    tokens = OAuthTokens(store, 3600, clock=clock)
    clients = OAuthClients(store, FAST)
    client_logins = ClientLogins(store, FAST, CredentialCache(ttl=60), events.append)
    bearer_logins = BearerLogins(tokens, events.append, ttl=60, clock=clock)
    return clients, tokens, client_logins, bearer_logins, clock, events


def login_client(client_logins, client_id, secret):
    credentials = ClientCredentials(client_id, secret)
    return client_logins.check(credentials, client_logins.find(credentials))


def test_client_management(store, parts):
    clients, *_ = parts
    new = clients.add("shop", "carbon.super", ["mfa:authenticate"], "optional")
    assert len(new.client_secret) >= 40 and new.client_secret not in repr(new)
    [record] = clients.list()
    assert (record.name, record.tenant, record.client_id, record.scopes, record.totp_policy) == (
        "shop", "carbon.super", new.client_id, {"mfa:authenticate"}, "optional")
    assert record.secret_hash.startswith("$argon2id$")
    with pytest.raises(ClientExists):
        clients.add("shop", "carbon.super")
    with pytest.raises(UnknownTenant):
        clients.add("shop", "nowhere.org")
    with pytest.raises(InvalidTenantDomain):
        clients.add("shop", "not a domain")
    with pytest.raises(InvalidClientName):
        clients.add("two words", "carbon.super")
    with pytest.raises(ScopeRefused):
        clients.add("other", "carbon.super", ["openid"])
    with pytest.raises(UnknownClient):
        clients.remove("nobody", "carbon.super")
    with pytest.raises(UnknownClient):
        clients.rotate_secret("nobody", "carbon.super")
    assert clients.list("carbon.super") == [record] and clients.list("abc.com") == []
    clients.remove("shop", "carbon.super")
    assert clients.list() == []


def test_client_credentials_verifier(parts):
    clients, tokens, client_logins, _, _, events = parts
    new = clients.add("shop", "carbon.super")
    application = login_client(client_logins, new.client_id, new.client_secret)
    assert application.audit_name == "client:shop@carbon.super"
    assert application.scopes == {"mfa:devices", "mfa:authenticate"} and application.totp_policy == "required"
    assert login_client(client_logins, new.client_id, "wrong") is None
    assert login_client(client_logins, "unknown", new.client_secret) is None

    credentials = ClientCredentials(new.client_id, new.client_secret)
    assert client_logins.state(credentials) is CacheState.CACHED
    caller = client_logins.cached(credentials, REQUEST)
    assert caller.principal == application
    issued = tokens.issue(caller, None)  # confirmed inside the issuing transaction
    assert issued.scope == "mfa:authenticate mfa:devices" and issued.access_token not in repr(issued)
    clients.rotate_secret("shop", "carbon.super")
    with pytest.raises(Exception) as info:
        tokens.issue(client_logins.cached(credentials, REQUEST), None)
    assert type(info.value).__name__ == "LoginChanged"

    client_logins.refuse(ClientCredentials(new.client_id, "wrong"), REQUEST)
    assert events[-1].caller == f"client_id:{new.client_id}" and events[-1].outcome == "auth-failed"


def test_bearer_verifier(store, parts):
    clients, tokens, client_logins, bearer_logins, clock, events = parts
    new = clients.add("shop", "carbon.super")
    caller = Caller(login_client(client_logins, new.client_id, new.client_secret), "r", "127.0.0.1")
    issued = tokens.issue(caller, "mfa:devices")
    credentials = BearerCredentials(issued.access_token)
    assert issued.access_token not in repr(credentials) and issued.access_token not in credentials.claimed

    assert bearer_logins.state(credentials) is CacheState.MISSING
    application = bearer_logins.check(credentials, bearer_logins.find(credentials))
    assert application.scopes == {"mfa:devices"} and application.client_id == new.client_id

    cached = bearer_logins.cached(credentials, REQUEST)
    assert cached.principal == application
    with store.transaction(read_only=True) as transaction:
        assert cached.confirm(transaction)

    unknown = BearerCredentials("x" * 43)
    assert bearer_logins.check(unknown, bearer_logins.find(unknown)) is None
    bearer_logins.refuse(unknown, REQUEST)
    assert events[-1].caller.startswith("token:") and "x" * 20 not in events[-1].caller

    clock.now += 3601  # expired: neither found nor cached nor confirmed
    assert bearer_logins.find(credentials) is None
    assert bearer_logins.cached(credentials, REQUEST) is None
    with store.transaction(read_only=True) as transaction:
        assert not cached.confirm(transaction)


def test_a_removed_clients_token_is_refused_at_once(store, parts):
    clients, tokens, client_logins, bearer_logins, clock, _ = parts
    new = clients.add("shop", "carbon.super")
    issued = tokens.issue(Caller(login_client(client_logins, new.client_id, new.client_secret)), None)
    credentials = BearerCredentials(issued.access_token)
    bearer_logins.check(credentials, bearer_logins.find(credentials))
    cached = bearer_logins.cached(credentials, REQUEST)
    clients.remove("shop", "carbon.super")
    assert bearer_logins.find(credentials) is None
    with store.transaction(read_only=True) as transaction:
        assert not cached.confirm(transaction)  # the cached verdict does not outlive the row


def test_a_token_asks_only_for_granted_scopes(parts):
    clients, tokens, client_logins, *_ = parts
    new = clients.add("narrow", "carbon.super", ["mfa:authenticate"])
    caller = Caller(login_client(client_logins, new.client_id, new.client_secret))
    for scope in ("mfa:devices", "openid", "mfa:authenticate openid"):
        with pytest.raises(ScopeRefused):
            tokens.issue(caller, scope)
    assert tokens.issue(caller, "").scope == "mfa:authenticate"


def test_an_application_is_not_a_user():
    application = Application(1, "id", "shop", "carbon.super", frozenset({"mfa:devices"}), "required")
    with pytest.raises(NotAuthorized):
        authorize(application, UserRef("carbon.super", "alice"), allow_self=True)
