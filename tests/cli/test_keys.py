"""Online key rotation: `totp-admin keys rotate|list` against a running server and a real database
(SQLite, or PostgreSQL with TOTP_TEST_DATABASE_URL), and the pieces it is built from."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import stat
import threading
import time

import pytest
import sqlalchemy as sa

from conftest import TNS, Server
from totpadmin.core import claims, keyring
from totpadmin.core.errors import SecretUnreadable
from totpadmin.core.keyring import KEY_BYTES, KeyRing
from totpadmin.core.secretbox import SecretBox, associated_data
from totpadmin.core.usernames import UserRef
from totpadmin.store.database import Database
from totpadmin.store.rekey import InjectedCrash, RekeyError, rekey
from wire import decode_qr, secret_of

KEY_FILE = "secret-keys.json"
USERS = ["alice", "bob", "carol@abc.com", "dave", "erin@abc.com"]
SEALED_SQL = "SELECT key_id, COUNT(*) FROM claims WHERE key_id IS NOT NULL GROUP BY key_id"
USER_CLAIMS_SQL = ("SELECT c.uri, c.value, c.key_id FROM claims c JOIN users u ON u.id = c.user_id "
                   "JOIN tenants t ON t.id = u.tenant_id WHERE t.domain = :tenant AND u.username = :name")
INIT_PREFIX = f'<ns:initTOTPResponse xmlns:ns="{TNS}"><ns:return>'
INIT_SUFFIX = "</ns:return></ns:initTOTPResponse>"


# --- helpers ---

def key_doc(srv: Server) -> dict:
    return json.loads((srv.data_dir / KEY_FILE).read_text())


def key_mode(srv: Server) -> int:
    return stat.S_IMODE((srv.data_dir / KEY_FILE).stat().st_mode)


def sealed_by_key(srv: Server) -> dict[str, int]:
    return {kid: n for kid, n in srv.database.query(SEALED_SQL)}


def split_user(user: str) -> tuple[str, str]:
    name, _, tenant = user.partition("@")
    return name, tenant or "carbon.super"


def user_claims(srv: Server, user: str) -> dict[str, tuple[str, str | None]]:
    name, tenant = split_user(user)
    return {uri: (value, kid) for uri, value, kid in srv.database.query(USER_CLAIMS_SQL, tenant=tenant, name=name)}


def init(srv: Server, user: str, session=None) -> str:
    """initTOTP over a form POST, as the super-tenant admin: the Base64 QR URL answered."""
    r = (session or srv.session()).post(f"{srv.url}/initTOTP", data={"username": user})
    assert r.status_code == 200, (user, r.status_code, r.headers.get("X-Fault-Reason"), r.text[:300])
    assert r.text.startswith(INIT_PREFIX) and r.text.endswith(INIT_SUFFIX), r.text[:300]
    return r.text[len(INIT_PREFIX):-len(INIT_SUFFIX)]


def enroll(srv: Server, users=USERS) -> dict[str, str]:
    srv.cli("tenant", "add", "abc.com")
    for user in users:
        srv.cli("user", "add", user, input=f"{user}-password-4711\n")
    return {user: init(srv, user) for user in users}


def rotate(srv: Server, *args: str):
    return srv.cli("keys", "rotate", *args, check=False)


def keys_list(srv: Server) -> list[tuple[str, str, int]]:
    r = srv.cli("keys", "list", check=False)
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stdout, r.stderr)
    rows = []
    for line in r.stdout.splitlines():
        kid, state, count = line.split("\t")
        assert count.endswith(" values"), line
        rows.append((kid, state, int(count.split()[0])))
    return rows


def assert_no_secrets(text: str, answers: dict[str, str]) -> None:
    for answer in answers.values():
        qr_base64 = "".join(answer.replace("&#xd;", "").split())
        assert secret_of(decode_qr(qr_base64)) not in text
        assert qr_base64 not in text


def assert_all_on(srv: Server, key_id: str) -> None:
    assert sealed_by_key(srv) == {key_id: len(USERS) * 2}  # secretkey and qrcodeurl of each user


def assert_clean_failure(r, *words: str) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("totp-admin: "), r.stderr
    for word in words:
        assert word in r.stderr, (word, r.stderr)


# --- the key file and the box ---

def test_add_key_and_retire_unused(tmp_path):
    path = tmp_path / KEY_FILE
    first = keyring.load_or_create(path)
    ring = keyring.add_key(path)
    assert ring.active_id != first.active_id and re.fullmatch(r"k[0-9a-f]{8}", ring.active_id)
    assert ring.keys[first.active_id] == first.keys[first.active_id]
    assert keyring.load(path) == ring
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    assert keyring.retire_unused(path, {first.active_id}) == []  # still in use: kept
    assert set(keyring.load(path).keys) == {first.active_id, ring.active_id}
    assert keyring.retire_unused(path, set()) == [first.active_id]  # never the active one
    assert keyring.load(path).keys == {ring.active_id: ring.keys[ring.active_id]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_written_0600_even_over_a_stale_temporary(tmp_path):
    path = tmp_path / KEY_FILE
    keyring.load_or_create(path)
    stale = path.with_suffix(".tmp")
    stale.write_text("left by a crash")
    stale.chmod(0o644)
    keyring.add_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_one_rotation_at_a_time(tmp_path):
    path = tmp_path / KEY_FILE
    with keyring.locked(path):
        with pytest.raises(keyring.KeyFileBusy, match="another key rotation is running"):
            with keyring.locked(path):
                pass
    with keyring.locked(path):  # released
        pass


def test_box_reloads_the_key_file_for_unknown_keys_and_before_sealing(tmp_path, caplog):
    path = tmp_path / KEY_FILE
    ring = keyring.load_or_create(path)
    box = SecretBox(ring, reload=keyring.Reloader(path, ring))  # as a running server has it
    aad = associated_data(1, 2, claims.SECRET_KEY)
    old_value = box.seal("SECRET", aad)

    new = keyring.add_key(path)
    rotated = SecretBox(new).seal("SECRET", aad)  # re-encrypted by `keys rotate`
    assert rotated[0] == new.active_id
    keyring.retire_unused(path, set())
    assert box.open(*rotated, aad) == "SECRET"  # unknown key id: reloaded once
    assert box.active_key_id == new.active_id
    assert box.seal("X", aad)[0] == new.active_id
    with pytest.raises(SecretUnreadable):  # retired, and gone from the box too
        box.open(*old_value, aad)

    # Before every seal: a server that never met a re-encrypted value still seals with the new key.
    box2 = SecretBox(keyring.load(path), reload=keyring.Reloader(path, keyring.load(path)))
    newer = keyring.add_key(path)
    assert box2.seal("X", aad)[0] == newer.active_id

    # A key file made unsafe meanwhile is not loaded: the box keeps its keys and says why.
    keyring.add_key(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert box2.seal("X", aad)[0] == newer.active_id
    assert "key file not reloaded" in caplog.text and "0644" in caplog.text


def test_box_without_reload_does_not_touch_the_file(tmp_path):
    ring = KeyRing(active_id="k1", keys={"k1": os.urandom(KEY_BYTES)})
    other = SecretBox(KeyRing(active_id="k2", keys={"k2": os.urandom(KEY_BYTES)}))
    aad = associated_data(1, 2, claims.SECRET_KEY)
    with pytest.raises(SecretUnreadable):
        SecretBox(ring).open(*other.seal("S", aad), aad)


# --- rekey() in process, against the real database ---


def _refs(n: int) -> list[UserRef]:
    return [UserRef("abc.com" if i % 2 else "carbon.super", f"u{i}") for i in range(n)]


def _populate(db: Database, box: SecretBox, n: int) -> dict[UserRef, str]:
    """``n`` users with a sealed secret each (and a claim in clear)."""
    db.box = box
    with db.transaction() as unit:
        unit.users.add_tenant("abc.com")
        for ref in _refs(n):
            unit.users.add_user(ref, "not-a-hash", "user")
            account = unit.accounts.find(ref)
            account.set(claims.SECRET_KEY, f"SECRET{ref.name.upper()}")
            account.set(claims.ENCODING, "Base32")
    return {ref: f"SECRET{ref.name.upper()}" for ref in _refs(n)}


def _read_all(db: Database, box: SecretBox, refs) -> dict[UserRef, str]:
    db.box = box
    with db.transaction() as unit:
        return {ref: unit.accounts.find(ref, for_update=False).get(claims.SECRET_KEY) for ref in refs}


def test_rekey_in_batches_survives_a_crash_and_resumes(tmp_path, store, database):
    path = tmp_path / KEY_FILE
    old_ring = keyring.load_or_create(path)
    secrets_ = _populate(store, SecretBox(old_ring), 7)
    new_ring = keyring.add_key(path)
    box = SecretBox(new_ring)
    seen = []

    with pytest.raises(InjectedCrash):
        rekey(store, box, batch_size=2, fail_after=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 7), (2, 7), (4, 7)]
    counts = dict(database.query(SEALED_SQL))
    assert counts == {new_ring.active_id: 4, old_ring.active_id: 3}  # the third batch rolled back
    assert _read_all(store, box, secrets_) == secrets_

    report = rekey(store, box, batch_size=2)
    assert (report.rewritten, report.batches, report.remaining_old) == (3, 2, 0)
    assert dict(database.query(SEALED_SQL)) == {new_ring.active_id: 7}
    assert _read_all(store, box, secrets_) == secrets_
    assert rekey(store, box).rewritten == 0  # idempotent


def test_rekey_stops_at_a_tampered_value_naming_it(tmp_path, store, database):
    path = tmp_path / KEY_FILE
    old_ring = keyring.load_or_create(path)
    _populate(store, SecretBox(old_ring), 3)
    victim = database.query("SELECT u.id FROM users u WHERE u.username = 'u1'")[0][0]
    engine = database.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE claims SET value = :v WHERE user_id = :u AND uri = :uri"),
                     {"v": base64.b64encode(os.urandom(40)).decode(), "u": victim, "uri": claims.SECRET_KEY})
    engine.dispose()
    box = SecretBox(keyring.add_key(path))
    with pytest.raises(RekeyError) as info:
        rekey(store, box, batch_size=1)
    assert f"claim {claims.SECRET_KEY} of user u1@abc.com" in str(info.value)
    assert info.value.report.rewritten == 1  # u0's claim went before it
    assert database.query("SELECT key_id FROM claims WHERE user_id = :u AND uri = :uri",
                          u=victim, uri=claims.SECRET_KEY) == [(old_ring.active_id,)]


# --- the command, with servers running ---

def test_rotate_while_servers_run(make_server):
    srv = make_server()
    answers = enroll(srv)
    other = make_server()  # another instance on the same data dir and database, started before rotating
    old_key = key_doc(srv)["active"]
    assert_all_on(srv, old_key)
    assert keys_list(srv) == [(old_key, "active", len(USERS) * 2)]

    # Traffic all through the rotation: every answer must stay the same.
    stop, done, wrong = threading.Event(), [], []

    def traffic():
        session = srv.session()
        while not stop.is_set():
            for user, expected in answers.items():
                try:
                    got = init(srv, user, session)
                except AssertionError as exc:
                    wrong.append(str(exc))
                    continue
                (done if got == expected else wrong).append(user)

    worker = threading.Thread(target=traffic)
    worker.start()
    try:
        time.sleep(0.3)
        r = rotate(srv, "--batch-size", "2")
    finally:
        stop.set()
        worker.join()
    assert r.returncode == 0 and r.stderr == "", (r.stdout, r.stderr)
    assert not wrong, wrong[:5]
    assert len(done) > len(USERS), "the server kept answering during the rotation"
    assert_no_secrets(r.stdout, answers)

    new_key = key_doc(srv)["active"]
    assert new_key != old_key
    assert list(key_doc(srv)["keys"]) == [new_key], "the old key is retired"
    assert key_mode(srv) == 0o600
    assert f"added key {new_key}, now active (was {old_key})" in r.stdout
    assert f"retired keys: {old_key}" in r.stdout
    assert re.search(rf"re-encrypted \d+ stored values to {new_key} in \d+ batches", r.stdout), r.stdout
    assert_all_on(srv, new_key)
    assert keys_list(srv) == [(new_key, "active", len(USERS) * 2)]

    # The other instance still holds only the retired key in memory. Its first call seals a new user's
    # secret: with the new key, not the retired one. Then it reads the re-encrypted secrets.
    other.cli("user", "add", "frank", input="frank-password-4711\n")
    init(other, "frank")
    assert {kid for _, kid in user_claims(srv, "frank").values() if kid} == {new_key}
    for user, expected in answers.items():
        assert init(other, user) == expected
        assert init(srv, user) == expected
    assert "key file reloaded" in other.log()
    assert "Traceback" not in srv.log() + other.log()

    # Running it again is a fresh rotation: a newer key, the previous one retired.
    r = rotate(srv, "--settle-seconds", "0")
    assert r.returncode == 0, r.stderr
    newest = key_doc(srv)["active"]
    assert newest != new_key and list(key_doc(srv)["keys"]) == [newest]
    assert sealed_by_key(srv) == {newest: (len(USERS) + 1) * 2}
    for user, expected in answers.items():
        assert init(other, user) == expected


def test_crash_midway_then_resume(make_server):
    srv = make_server()
    answers = enroll(srv)
    old_key = key_doc(srv)["active"]

    r = rotate(srv, "--batch-size", "1", "--crash-after-batches", "2", "--settle-seconds", "0")
    assert r.returncode == -9, (r.returncode, r.stdout, r.stderr)  # killed inside its third batch
    new_key = key_doc(srv)["active"]
    assert new_key != old_key and set(key_doc(srv)["keys"]) == {old_key, new_key}
    assert key_mode(srv) == 0o600
    total = len(USERS) * 2
    assert sealed_by_key(srv) == {new_key: 2, old_key: total - 2}, "two batches committed, the third rolled back"
    assert dict((kid, (state, n)) for kid, state, n in keys_list(srv)) == {
        new_key: ("active", 2), old_key: ("old", total - 2)}

    # Half-rotated, the running server answers everybody as before.
    for user, expected in answers.items():
        assert init(srv, user) == expected

    r = rotate(srv, "--resume", "--batch-size", "3")
    assert r.returncode == 0 and r.stderr == "", (r.stdout, r.stderr)
    assert f"resuming: re-encrypting to the active key {new_key}" in r.stdout
    assert f"retired keys: {old_key}" in r.stdout
    assert_no_secrets(r.stdout, answers)
    assert key_doc(srv)["active"] == new_key and list(key_doc(srv)["keys"]) == [new_key]
    assert key_mode(srv) == 0o600
    assert_all_on(srv, new_key)
    for user, expected in answers.items():
        assert init(srv, user) == expected

    # Nothing left to do: --resume changes nothing.
    r = rotate(srv, "--resume")
    assert r.returncode == 0 and "re-encrypted 0 stored values" in r.stdout and "retired keys: none" in r.stdout


def test_tampered_value_stops_the_rotation_naming_the_row(make_server):
    srv = make_server()
    answers = enroll(srv)
    old_key = key_doc(srv)["active"]
    victim_value, _ = user_claims(srv, "carol@abc.com")[claims.SECRET_KEY]
    raw = bytearray(base64.b64decode(victim_value))
    raw[-1] ^= 1  # one bit of the GCM tag
    engine = srv.database.engine()
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE claims SET value = :v WHERE value = :old"),
                     {"v": base64.b64encode(bytes(raw)).decode(), "old": victim_value})
    engine.dispose()

    r = rotate(srv, "--batch-size", "1", "--settle-seconds", "0")
    assert_clean_failure(r, f"claim {claims.SECRET_KEY} of user carol@abc.com", f"stays on key {old_key}",
                         "no key was retired", "--resume")
    assert_no_secrets(r.stdout + r.stderr, answers)
    new_key = key_doc(srv)["active"]
    assert set(key_doc(srv)["keys"]) == {old_key, new_key}
    assert user_claims(srv, "carol@abc.com")[claims.SECRET_KEY][1] == old_key
    # Everybody else keeps working; the tampered secret is refused, as before the rotation.
    for user, expected in answers.items():
        if user != "carol@abc.com":
            assert init(srv, user) == expected
    r500 = srv.session().post(f"{srv.url}/initTOTP", data={"username": "carol@abc.com"})
    assert r500.status_code == 500

    # The operator resets that user; the rotation then finishes and retires the old key.
    reset = srv.session().post(f"{srv.url}/resetTOTP", data={"username": "carol@abc.com"})
    assert reset.status_code == 200 and "<ns:return>true</ns:return>" in reset.text
    r = rotate(srv, "--resume")
    assert r.returncode == 0, r.stderr
    assert list(key_doc(srv)["keys"]) == [new_key]
    assert set(sealed_by_key(srv)) == {new_key}
    assert key_mode(srv) == 0o600


def test_second_rotation_at_once_is_refused(make_server):
    srv = make_server()
    enroll(srv, ["alice"])
    before = key_doc(srv)
    with keyring.locked(srv.data_dir / KEY_FILE):
        r = rotate(srv, "--settle-seconds", "0")
    assert_clean_failure(r, "another key rotation is running")
    assert key_doc(srv) == before


def test_rotation_refuses_a_key_file_readable_by_others(make_server):
    srv = make_server()
    enroll(srv, ["alice"])
    (srv.data_dir / KEY_FILE).chmod(0o644)
    r = rotate(srv)
    assert r.returncode == 2 and "chmod 600" in r.stderr and "Traceback" not in r.stderr
    (srv.data_dir / KEY_FILE).chmod(0o600)
