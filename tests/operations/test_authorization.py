"""Who may do what, end to end: every operation for every kind of caller and target, under each
authorization setting (SelfOperationsEnabled, allowSecretKeyRetrieval).

A refused call must answer the legacy fault "User is not authorized perform the operation" and change
nothing of the target (claims, totp_state, recovery_codes rows compared before and after). An allowed
call must not answer that fault; from the prepared state (TOTP active, a pending secret, recovery codes,
one counted failure) every allowed call succeeds, and the mutating ones visibly act on the target.

One server per configuration, all on one database and data directory whose users are made once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conftest import ADMIN_PASSWORD, TNS, Server, free_port, make_conf, new_database

NOT_AUTHORIZED = "User is not authorized perform the operation"
WRONG_CODE = "not-a-code"  # never a valid TOTP or recovery code: counts as a failure, deterministically
PASSWORD = "correct horse battery staple"

TENANTS = ("abc.com", "xyz.org")
USERS = {  # name -> role
    "boss@abc.com": "admin",
    "chief@xyz.org": "admin",
    "bob@abc.com": "user",
    "carol@abc.com": "user",
}

OPERATIONS = (
    "initTOTP", "resetTOTP", "refreshSecretKey", "generateSecret", "enableTOTP", "validateTOTP",
    "retrieveSecretKey", "isTOTPEnabled", "unlockTOTP", "regenerateRecoveryCodes", "enableTOTPWithRecoveryCodes",
)
WITH_CODE = {"enableTOTP", "validateTOTP", "enableTOTPWithRecoveryCodes"}
# initTOTP on an enrolled user (every target is, see prepare) answers its QR URL and writes nothing.
READ_ONLY = {"retrieveSecretKey", "isTOTPEnabled", "initTOTP"}
SECRET_CLAIM = "http://wso2.org/claims/identity/secretkey"
ENABLED_CLAIM = "http://wso2.org/claims/identity/totpEnabled"
PENDING_CLAIM = "http://wso2.org/claims/identity/verifySecretkey"


@dataclass(frozen=True)
class Pair:
    kind: str
    caller: str
    target: str


PAIRS = (
    Pair("self-plain-user", "bob@abc.com", "bob@abc.com"),
    Pair("self-tenant-admin", "boss@abc.com", "boss@abc.com"),
    Pair("same-tenant-admin", "boss@abc.com", "bob@abc.com"),
    Pair("other-tenant-admin", "chief@xyz.org", "bob@abc.com"),
    Pair("tenant-admin-to-super-tenant", "boss@abc.com", "admin"),
    Pair("super-admin-to-tenant-user", "admin", "bob@abc.com"),
    Pair("plain-user-to-other-user", "bob@abc.com", "carol@abc.com"),
    Pair("plain-user-to-own-admin", "carol@abc.com", "boss@abc.com"),
)


@dataclass(frozen=True)
class Config:
    name: str
    self_operations: bool
    retrieval: bool

    @property
    def properties(self) -> dict[str, str]:
        return {"SelfOperationsEnabled": str(self.self_operations).lower(),
                "allowSecretKeyRetrieval": str(self.retrieval).lower(),
                "recoveryCodeCount": "1"}  # each code is a slow hash; one is enough to see a change


CONFIGS = (
    Config("defaults", self_operations=False, retrieval=False),
    Config("self-operations", self_operations=True, retrieval=True),
    Config("self-operations-no-retrieval", self_operations=True, retrieval=False),
    Config("retrieval-only", self_operations=False, retrieval=True),
)


def expected_allowed(config: Config, pair: Pair, operation: str) -> bool:
    """README "Who may do what" and SelfOperationsEnabled in conf/totp.properties."""
    if pair.kind in ("self-tenant-admin", "same-tenant-admin", "super-admin-to-tenant-user"):
        return True
    if pair.kind == "self-plain-user":
        if operation == "retrieveSecretKey":  # allowed to the user themself (when retrieval is on at all)
            return True
        return config.self_operations and operation != "unlockTOTP"  # unlockTOTP stays admin-only
    return False


# --- the world: one database, users made once; one server per configuration ---


@dataclass
class World:
    tmp: object
    database: object
    cli_server: Server


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("authz")
    with new_database(tmp) as db:
        cli = Server(data_dir=tmp / "data", conf_dir=tmp / "conf", database=db, port=0)
        cli.cli("user", "add", "admin", "--role", "admin", input=ADMIN_PASSWORD + "\n")
        for domain in TENANTS:
            cli.cli("tenant", "add", domain)
        for name, role in USERS.items():
            cli.cli("user", "add", name, "--role", role, input=PASSWORD + "\n")
        yield World(tmp=tmp, database=db, cli_server=cli)


class Running:
    def __init__(self, server: Server, config: Config):
        self.server = server
        self.config = config
        self._sessions = {}
        self._engine = server.database.engine()
        self._ids = {}

    def session(self, user: str):
        if user not in self._sessions:
            self._sessions[user] = self.server.session(user, ADMIN_PASSWORD if user == "admin" else PASSWORD)
        return self._sessions[user]

    def call(self, caller: str, operation: str, target: str):
        data = {"username": target}
        if operation in WITH_CODE:
            data["verificationCode"] = WRONG_CODE
        return self.session(caller).post(f"{self.server.url}/{operation}", data=data, timeout=30)

    def user_id(self, qualified: str) -> int:
        if qualified not in self._ids:
            name, _, tenant = qualified.rpartition("@") if "@" in qualified else (qualified, "", "carbon.super")
            rows = self.query("SELECT u.id FROM users u JOIN tenants t ON t.id = u.tenant_id "
                              "WHERE u.username = :n AND t.domain = :d", n=name, d=tenant)
            assert len(rows) == 1, (qualified, rows)
            self._ids[qualified] = rows[0][0]
        return self._ids[qualified]

    def query(self, sql: str, **params):
        import sqlalchemy as sa

        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]

    def snapshot(self, qualified: str) -> dict:
        uid = self.user_id(qualified)
        return {
            "claims": self.query("SELECT uri, value, key_id, updated_at FROM claims WHERE user_id = :u ORDER BY uri", u=uid),
            "totp_state": self.query("SELECT last_step, failures, lockouts, locked_until, pending_expires_at "
                                     "FROM totp_state WHERE user_id = :u", u=uid),
            "recovery_codes": self.query("SELECT id, lookup, code_hash, created_at FROM recovery_codes "
                                         "WHERE user_id = :u ORDER BY id", u=uid),
        }

    def prepare(self, target: str) -> None:
        """As the super admin: TOTP active, a pending secret, recovery codes and exactly one counted
        failure, so that any operation that runs changes something (the read-only ones aside).
        Only the missing parts are made: recovery codes cost slow hashes."""
        state = self.snapshot(target)
        uris = {row[0] for row in state["claims"]}
        steps = []
        if SECRET_CLAIM not in uris or ENABLED_CLAIM not in uris:
            steps.append(("initTOTP", {}))
        if PENDING_CLAIM not in uris:
            steps.append(("generateSecret", {}))
        if not state["recovery_codes"]:
            steps.append(("regenerateRecoveryCodes", {}))
        if not state["totp_state"] or state["totp_state"][0][1:4] != (1, 0, None):
            steps += [("unlockTOTP", {}), ("validateTOTP", {"verificationCode": WRONG_CODE})]
        for operation, data in steps:
            r = self.session("admin").post(f"{self.server.url}/{operation}", data={"username": target, **data},
                                           timeout=30)
            assert r.status_code == 200, (operation, target, r.status_code, r.headers.get("X-Fault-Reason"))
        state = self.snapshot(target)
        assert {SECRET_CLAIM, ENABLED_CLAIM, PENDING_CLAIM} <= {row[0] for row in state["claims"]}
        assert state["recovery_codes"] and state["totp_state"][0][1:4] == (1, 0, None), state

    def close(self):
        for s in self._sessions.values():
            s.close()
        self._engine.dispose()


@pytest.fixture(scope="module", params=CONFIGS, ids=lambda c: c.name)
def running(request, world):
    config: Config = request.param
    conf = make_conf(world.tmp / config.name, properties=config.properties)
    srv = Server(data_dir=world.tmp / "data", conf_dir=conf, database=world.database, port=free_port())
    srv.start()
    run = Running(srv, config)
    try:
        yield run
    finally:
        run.close()
        assert srv.stop() == 0, srv.log()


# --- the matrix ---


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: p.kind)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_permission_matrix(running, pair, operation):
    running.prepare(pair.target)
    before = running.snapshot(pair.target)
    r = running.call(pair.caller, operation, pair.target)
    after = running.snapshot(pair.target)
    reason = r.headers.get("X-Fault-Reason", "")

    if not expected_allowed(running.config, pair, operation):
        assert r.status_code == 500, (r.status_code, r.text)
        assert reason.endswith(NOT_AUTHORIZED), reason
        # The declared TOTPException, as Axis2's HTTP binding writes it; nothing of the target leaks.
        assert r.text.startswith(f'<ns:TOTPAdminServiceTOTPException xmlns:ns="{TNS}">'), r.text
        assert "<ns:return>" not in r.text
        assert after == before, f"{pair.caller} was refused {operation} on {pair.target}, yet its rows changed"
        return

    assert not reason.endswith(NOT_AUTHORIZED), f"{pair.caller} should be allowed {operation} on {pair.target}"
    if operation == "retrieveSecretKey" and not running.config.retrieval:
        assert r.status_code == 500
        assert "allowSecretKeyRetrieval=false" in reason, reason
        assert after == before
        return
    assert r.status_code == 200, (r.status_code, reason, r.text)
    assert r.text.startswith(f'<ns:{operation}Response xmlns:ns="{TNS}"')
    if operation in READ_ONLY:
        assert after == before, f"{operation} is read-only, yet the rows of {pair.target} changed"
    else:
        assert after != before, f"{operation} by {pair.caller} on {pair.target} answered 200 but changed nothing"


def test_every_caller_authenticates(running):
    """The matrix means something only if each caller's password is right: refusals must be
    authorization faults, not authentication failures."""
    for user in ["admin", *USERS]:
        r = running.call(user, "isTOTPEnabled", user)
        assert "Authentication failed" not in r.headers.get("X-Fault-Reason", ""), user


def test_refused_caller_cannot_probe_other_tenants_users(running):
    """A tenant admin asking about a user of another tenant gets the same refusal whether that user
    exists or not: authorization comes before the lookup."""
    exists = running.call("chief@xyz.org", "isTOTPEnabled", "bob@abc.com")
    ghost = running.call("chief@xyz.org", "isTOTPEnabled", "ghost@abc.com")
    assert (exists.status_code, exists.text, exists.headers.get("X-Fault-Reason")) == \
           (ghost.status_code, ghost.text, ghost.headers.get("X-Fault-Reason"))
    assert exists.headers["X-Fault-Reason"].endswith(NOT_AUTHORIZED)
