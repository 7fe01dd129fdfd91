"""What each operation leaves in the database, secrets at rest, persistence, tenants."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from totpadmin.core import claims
from wire import decode_qr, secret_of, zeep_client

CLAIMS_SQL = ("SELECT c.uri, c.value, c.key_id FROM claims c JOIN users u ON u.id = c.user_id "
              "JOIN tenants t ON t.id = u.tenant_id WHERE t.domain = :tenant AND u.username = :name")


def active_key_id(server) -> str:
    return json.loads((server.data_dir / "secret-keys.json").read_text())["active"]


def claim_rows(server, name="admin", tenant="carbon.super") -> dict[str, tuple[str, str | None]]:
    return {uri: (value, key_id) for uri, value, key_id in server.database.query(CLAIMS_SQL, tenant=tenant, name=name)}


def everything_stored(server) -> bytes:
    """All bytes the database holds: the SQLite files, or every table's rows as text on PostgreSQL."""
    if server.database.schema is None:
        files = sorted(server.data_dir.glob("totp-admin.db*"))
        assert files
        return b"".join(Path(f).read_bytes() for f in files)
    rows = []
    for table in ("tenants", "users", "claims"):
        rows += server.database.query(f"SELECT CAST(t.* AS text) FROM {table} t")
    return "\n".join(r[0] for r in rows).encode()


def test_init_stores_claims_encrypted_and_is_idempotent(server):
    _, svc = zeep_client(server)
    first = svc.initTOTP(username="admin")
    rows = claim_rows(server)
    assert set(rows) == {claims.SECRET_KEY, claims.ENCODING, claims.QR_CODE_URL, claims.TOTP_ENABLED}
    assert rows[claims.ENCODING] == ("Base32", None)
    assert rows[claims.TOTP_ENABLED] == ("true", None)
    for uri in (claims.SECRET_KEY, claims.QR_CODE_URL):
        value, key_id = rows[uri]
        assert key_id == active_key_id(server)
        base64.b64decode(value, validate=True)

    updated = CLAIMS_SQL.replace("c.uri, c.value, c.key_id", "c.uri, c.updated_at")
    stamps = server.database.query(updated, tenant="carbon.super", name="admin")
    assert svc.initTOTP(username="admin") == first
    # Idempotent, and it writes nothing: not even a re-sealed copy of the same values.
    assert claim_rows(server) == rows
    assert server.database.query(updated, tenant="carbon.super", name="admin") == stamps


def test_sqlite_writers_queue_on_the_writer_lock(server):
    """Writes on SQLite wait for the flock next to the database file (every totp-admin process takes
    it), and go ahead the moment it is released; login checks only read and do not wait."""
    if server.database.schema is not None:
        pytest.skip("SQLite only")
    import fcntl
    import threading

    lock_file = server.data_dir / "totp-admin.db-writer.lock"
    session = server.session()
    assert session.post(f"{server.url}/initTOTP", data={"username": "admin"}).status_code == 200
    assert lock_file.exists() and lock_file.stat().st_mode & 0o777 == 0o600

    answers = []
    with open(lock_file, "r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        call = threading.Thread(target=lambda: answers.append(
            server.session().post(f"{server.url}/resetTOTP", data={"username": "admin"}, timeout=60)))
        call.start()
        call.join(1.5)
        assert call.is_alive() and not answers, "a write went ahead while another process held the lock"
        # Readiness only reads the database: it answers meanwhile.
        assert session.get(f"{server.base}/ready", timeout=10).status_code == 200
    call.join(30)
    assert answers and answers[0].status_code == 200 and "<ns:return>true</ns:return>" in answers[0].text
    assert claims.SECRET_KEY not in claim_rows(server)


def test_secret_is_never_stored_in_clear(server):
    _, svc = zeep_client(server)
    returned = svc.initTOTP(username="admin")
    url = decode_qr(returned)
    secret = secret_of(url)
    server.stop()  # SQLite: checkpoint the WAL so every byte is in the files we read
    stored = everything_stored(server)
    assert secret.encode() not in stored
    assert base64.b32decode(secret) not in stored
    assert url.encode() not in stored
    assert "".join(returned.split()).encode() not in stored


def test_reset_clears_the_claims(server):
    _, svc = zeep_client(server)
    svc.initTOTP(username="admin")
    assert svc.resetTOTP(username="admin") is True
    assert claim_rows(server) == {claims.TOTP_ENABLED: ("false", None)}
    assert svc.resetTOTP(username="admin") is True, "reset of a user without TOTP still answers true"


def test_refresh_returns_the_stored_ciphertext_and_rotates(server):
    _, svc = zeep_client(server)
    old_url = decode_qr(svc.initTOTP(username="admin"))
    encrypted = svc.refreshSecretKey(username="admin")
    rows = claim_rows(server)
    assert rows[claims.SECRET_KEY] == (encrypted, active_key_id(server))
    assert rows[claims.ENCODING] == ("Base32", None)
    new_url = decode_qr(svc.initTOTP(username="admin"))
    assert secret_of(new_url) != secret_of(old_url)
    assert decode_qr(base64.b64encode(new_url.encode()).decode()) == new_url
    assert svc.refreshSecretKey(username="admin") != encrypted, "every refresh rotates"


def test_failed_call_changes_nothing(server):
    _, svc = zeep_client(server)
    svc.initTOTP(username="admin")
    before = claim_rows(server)
    r = server.session().post(server.url + "/initTOTP", data={"username": "admin@nowhere.example"})
    assert r.status_code == 500
    assert claim_rows(server) == before


def test_state_survives_a_restart(server):
    _, svc = zeep_client(server)
    first = svc.initTOTP(username="admin")
    assert server.stop() == 0
    server.start()
    _, svc = zeep_client(server)
    assert svc.initTOTP(username="admin") == first


def test_tenant_users(server):
    server.cli("tenant", "add", "ABC.com")
    server.cli("user", "add", "bob@abc.com", input="bob-password-4711\n")
    server.cli("user", "add", "boss@abc.com", "--role", "admin", input="boss-password-4711\n")
    server.cli("user", "add", "bob", input="other-bob-password\n")

    _, svc = zeep_client(server)
    url = decode_qr(svc.initTOTP(username="bob@ABC.com"))
    assert url.startswith("otpauth://totp/abc.com:bob?secret=") and url.endswith("&issuer=abc.com")
    assert set(claim_rows(server, "bob", "abc.com")) >= {claims.SECRET_KEY, claims.QR_CODE_URL}
    assert claim_rows(server, "bob", "carbon.super") == {}, "the super tenant's bob is untouched"

    # The tenant's own admin manages its users, and no one else's.
    boss = server.session("boss@abc.com", "boss-password-4711")
    r = boss.post(server.url + "/resetTOTP", data={"username": "bob@abc.com"})
    assert r.status_code == 200 and "<ns:return>true</ns:return>" in r.text
    r = boss.post(server.url + "/initTOTP", data={"username": "bob"})
    assert r.status_code == 500
    assert r.headers["X-Fault-Reason"].endswith("User is not authorized perform the operation")
    assert claim_rows(server, "bob", "carbon.super") == {}

    # A plain user is not an admin.
    r = server.session("bob@abc.com", "bob-password-4711").post(server.url + "/initTOTP", data={"username": "bob@abc.com"})
    assert r.status_code == 500 and "not authorized" in r.headers["X-Fault-Reason"]


@pytest.mark.parametrize("properties, check", [
    ({"chunkedBase64": "false"}, lambda ret, url: "\n" not in ret and "\r" not in ret),
    ({"UseCommonIssuer": "true", "Issuer": "Example Corp"},
     lambda ret, url: url.startswith("otpauth://totp/Example%20Corp:admin?") and url.endswith("&issuer=Example%20Corp")),
    ({"timeStepSize": "60"}, lambda ret, url: url.endswith("&period=60")),
    ({"secretKeyLength": "32"}, lambda ret, url: len(base64.b32decode(secret_of(url) + "=" * (-len(secret_of(url)) % 8))) == 32),
    ({"encodingMethod": "Base64"}, lambda ret, url: len(base64.b64decode(secret_of(url))) == 20),
])
def test_totp_properties_shape_the_answer(make_server, properties, check):
    srv = make_server(properties=properties)
    _, svc = zeep_client(srv)
    returned = svc.initTOTP(username="admin")
    assert check(returned, decode_qr(returned))
