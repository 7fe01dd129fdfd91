"""totpadmin.core.secret_codec: new secrets and their Base32/Base64 text."""

from __future__ import annotations

import base64

import pytest

from totpadmin.core.secret_codec import BASE32, BASE64, decode_secret, encode_secret, new_secret

RFC_SECRET = b"12345678901234567890"
RFC_SECRET_B32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


def test_new_secret_default_length_is_20():
    assert len(new_secret()) == 20


@pytest.mark.parametrize("length", [16, 20, 32, 64])
def test_new_secret_allowed_lengths(length):
    assert len(new_secret(length)) == length


@pytest.mark.parametrize("length", [0, 10, 15, 65])
def test_new_secret_refuses_out_of_range(length):
    with pytest.raises(ValueError):
        new_secret(length)


def test_new_secrets_are_random():
    assert len({new_secret() for _ in range(20)}) == 20


def test_base32_known_value():
    assert encode_secret(RFC_SECRET, BASE32) == RFC_SECRET_B32
    assert decode_secret(RFC_SECRET_B32, BASE32) == RFC_SECRET


@pytest.mark.parametrize("length", [16, 17, 18, 19, 20, 21, 32, 64])
def test_base32_round_trip_without_padding(length):
    secret = new_secret(length)
    text = encode_secret(secret, BASE32)
    assert "=" not in text
    assert text == text.upper()
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert text == base64.b32encode(secret).decode().rstrip("=")
    assert decode_secret(text, BASE32) == secret


@pytest.mark.parametrize("length", [16, 17, 18, 20, 64])
def test_base64_round_trip(length):
    secret = new_secret(length)
    text = encode_secret(secret, BASE64)
    assert text == base64.b64encode(secret).decode()
    assert decode_secret(text, BASE64) == secret


def test_base64_decode_tolerates_missing_padding_and_spaces():
    secret = b"\xfb\xff\x00" * 6 + b"\x01"  # 19 bytes: encodes with one '='
    text = encode_secret(secret, BASE64)
    assert text.endswith("=")
    assert decode_secret(text.rstrip("="), BASE64) == secret
    assert decode_secret(" ".join([text[:8], text[8:]]), BASE64) == secret


@pytest.mark.parametrize(
    "text",
    [
        RFC_SECRET_B32.lower(),
        "gezd gnbv gy3t qojq gezd gnbv gy3t qojq",
        "GEZD-GNBV".replace("-", " ") + " GY3TQOJQ\tGEZDGNBVGY3TQOJQ\n",
    ],
)
def test_base32_decode_tolerates_case_and_whitespace(text):
    assert decode_secret(text, BASE32) == RFC_SECRET


def test_base32_decode_accepts_padded_text():
    secret = bytes(range(16))  # 26 Base32 characters + 6 '='
    padded = base64.b32encode(secret).decode()
    assert padded.endswith("======")
    assert decode_secret(padded, BASE32) == secret


@pytest.mark.parametrize("text", ["GEZDGNB!", "GEZDGNB1", "GEZDGNB0", "A", "@@@@@@@@", "GEZDGNBVGY3TQOJQ=GEZ"])
def test_base32_garbage_raises_value_error(text):
    with pytest.raises(ValueError):
        decode_secret(text, BASE32)


@pytest.mark.parametrize("text", ["!!!!", "A", "abc$", "ab-_", "QUJD=REVG"])
def test_base64_garbage_raises_value_error(text):
    with pytest.raises(ValueError):
        decode_secret(text, BASE64)


@pytest.mark.parametrize("encoding", ["Base16", "base32", "", "hex"])
def test_unknown_encoding_raises(encoding):
    with pytest.raises(ValueError):
        encode_secret(RFC_SECRET, encoding)
    with pytest.raises(ValueError):
        decode_secret(RFC_SECRET_B32, encoding)
