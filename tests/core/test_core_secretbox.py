"""totpadmin.core.secretbox and totpadmin.core.keyring: sealed secrets and the key file."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from totpadmin.core import claims, keyring
from totpadmin.core.errors import SecretUnreadable
from totpadmin.core.keyring import KEY_BYTES, KeyFileError, KeyRing
from totpadmin.core.secretbox import NONCE_BYTES, SecretBox, associated_data

PLAINTEXT = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
AAD = associated_data(1, 42, claims.SECRET_KEY)


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(KeyRing(active_id="k1", keys={"k1": os.urandom(KEY_BYTES)}))


def test_round_trip(box):
    key_id, sealed = box.seal(PLAINTEXT, AAD)
    assert key_id == "k1" == box.active_key_id
    assert box.open(key_id, sealed, AAD) == PLAINTEXT


def test_round_trip_non_ascii(box):
    key_id, sealed = box.seal("clé secrète ✓", AAD)
    assert box.open(key_id, sealed, AAD) == "clé secrète ✓"


def test_sealed_text_is_fresh_each_time_and_hides_the_plaintext(box):
    _, first = box.seal(PLAINTEXT, AAD)
    _, second = box.seal(PLAINTEXT, AAD)
    assert first != second
    raw_first, raw_second = base64.b64decode(first), base64.b64decode(second)
    assert raw_first[:NONCE_BYTES] != raw_second[:NONCE_BYTES]
    # nonce + ciphertext (same length as the plaintext) + 16-byte GCM tag
    assert len(raw_first) == NONCE_BYTES + len(PLAINTEXT) + 16
    for sealed, raw in ((first, raw_first), (second, raw_second)):
        assert PLAINTEXT not in sealed
        assert PLAINTEXT.encode() not in raw


@pytest.mark.parametrize(
    "other_aad",
    [
        associated_data(1, 43, claims.SECRET_KEY),  # another user
        associated_data(2, 42, claims.SECRET_KEY),  # another tenant
        associated_data(1, 42, claims.VERIFY_SECRET_KEY),  # another claim
        associated_data(1, 42, claims.QR_CODE_URL),
        b"",
    ],
)
def test_wrong_associated_data_is_unreadable(box, other_aad):
    key_id, sealed = box.seal(PLAINTEXT, AAD)
    with pytest.raises(SecretUnreadable):
        box.open(key_id, sealed, other_aad)


def test_associated_data_binds_all_three_parts():
    values = {
        associated_data(1, 42, claims.SECRET_KEY),
        associated_data(1, 43, claims.SECRET_KEY),
        associated_data(2, 42, claims.SECRET_KEY),
        associated_data(1, 42, claims.QR_CODE_URL),
        associated_data(14, 2, claims.SECRET_KEY),
        associated_data(1, 42, claims.SECRET_KEY + "x"),
    }
    assert len(values) == 6


@pytest.mark.parametrize("position", [0, NONCE_BYTES, NONCE_BYTES + 5, -1])
def test_tampered_value_is_unreadable(box, position):
    key_id, sealed = box.seal(PLAINTEXT, AAD)
    raw = bytearray(base64.b64decode(sealed))
    raw[position] ^= 0x01
    with pytest.raises(SecretUnreadable):
        box.open(key_id, base64.b64encode(bytes(raw)).decode(), AAD)


@pytest.mark.parametrize("garbage", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_garbage_is_unreadable(box, garbage):
    with pytest.raises(SecretUnreadable):
        box.open("k1", garbage, AAD)


def test_unknown_key_id_is_unreadable(box):
    _, sealed = box.seal(PLAINTEXT, AAD)
    with pytest.raises(SecretUnreadable):
        box.open("k9", sealed, AAD)


def test_other_key_is_unreadable(box):
    key_id, sealed = box.seal(PLAINTEXT, AAD)
    stranger = SecretBox(KeyRing(active_id="k1", keys={"k1": os.urandom(KEY_BYTES)}))
    with pytest.raises(SecretUnreadable):
        stranger.open(key_id, sealed, AAD)


def test_unreadable_message_holds_no_secret(box):
    key_id, sealed = box.seal(PLAINTEXT, AAD)
    with pytest.raises(SecretUnreadable) as info:
        box.open(key_id, sealed, b"wrong")
    assert PLAINTEXT not in str(info.value)
    assert sealed not in str(info.value)


def test_rotation_keeps_old_values_readable():
    k1, k2 = os.urandom(KEY_BYTES), os.urandom(KEY_BYTES)
    old = SecretBox(KeyRing(active_id="k1", keys={"k1": k1}))
    key_id, sealed = old.seal(PLAINTEXT, AAD)
    rotated = SecretBox(KeyRing(active_id="k2", keys={"k1": k1, "k2": k2}))
    assert rotated.open(key_id, sealed, AAD) == PLAINTEXT
    new_id, new_sealed = rotated.seal(PLAINTEXT, AAD)
    assert new_id == "k2"
    with pytest.raises(SecretUnreadable):
        old.open(new_id, new_sealed, AAD)


# --- keyring ---


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_load_or_create_creates_private_file(tmp_path):
    path = tmp_path / "keys" / "keyring.json"
    ring = keyring.load_or_create(path)
    assert path.is_file()
    assert _mode(path) == 0o600
    assert len(ring.keys[ring.active_id]) == KEY_BYTES
    doc = json.loads(path.read_text())
    assert doc["active"] == ring.active_id
    assert base64.b64decode(doc["keys"][ring.active_id]) == ring.keys[ring.active_id]
    assert [p.name for p in path.parent.iterdir()] == ["keyring.json"]  # no temp file left behind


def test_reload_gives_the_same_key(tmp_path):
    path = tmp_path / "keyring.json"
    first = keyring.load_or_create(path)
    again = keyring.load_or_create(path)
    assert again.active_id == first.active_id
    assert again.keys == first.keys
    assert keyring.load(path).keys == first.keys


def test_two_key_rings_differ(tmp_path):
    a = keyring.load_or_create(tmp_path / "a.json")
    b = keyring.load_or_create(tmp_path / "b.json")
    assert a.keys[a.active_id] != b.keys[b.active_id]


def test_values_sealed_before_reload_open_after(tmp_path):
    path = tmp_path / "keyring.json"
    key_id, sealed = SecretBox(keyring.load_or_create(path)).seal(PLAINTEXT, AAD)
    assert SecretBox(keyring.load_or_create(path)).open(key_id, sealed, AAD) == PLAINTEXT


def test_key_ring_repr_hides_keys():
    ring = KeyRing(active_id="k1", keys={"k1": b"\xab" * KEY_BYTES})
    assert "\\xab" not in repr(ring) and "q6ur" not in repr(ring)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_accessible_key_file_is_refused(tmp_path, mode):
    path = tmp_path / "keyring.json"
    keyring.load_or_create(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        keyring.load_or_create(path)
    assert str(path) in str(info.value)
    assert f"{mode:04o}" in str(info.value)


def _write_private(path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o600)


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        "{}",
        '{"active": "k1"}',
        '{"active": "k1", "keys": {"k1": "not base64!"}}',
        '{"active": "k2", "keys": {"k1": "' + base64.b64encode(b"\0" * KEY_BYTES).decode() + '"}}',
        '{"active": "k1", "keys": {"k1": "' + base64.b64encode(b"\0" * 16).decode() + '"}}',
    ],
)
def test_malformed_key_file_is_refused_naming_the_path(tmp_path, content):
    path = tmp_path / "keyring.json"
    _write_private(path, content)
    with pytest.raises(KeyFileError) as info:
        keyring.load_or_create(path)
    assert str(path) in str(info.value)


def test_malformed_key_file_message_does_not_leak_key_material(tmp_path):
    key_b64 = base64.b64encode(b"\x11" * 16).decode()
    path = tmp_path / "keyring.json"
    _write_private(path, json.dumps({"active": "k1", "keys": {"k1": key_b64}}))
    with pytest.raises(KeyFileError) as info:
        keyring.load(path)
    assert key_b64 not in str(info.value)
