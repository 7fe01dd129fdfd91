"""totpadmin.core.otp against the RFC test vectors and an independent implementation (pyotp)."""

from __future__ import annotations

import base64
import hashlib
import random

import pyotp
import pytest

from totpadmin.core.otp import hotp, time_step, totp, window_offsets

from rfc_vectors import RFC4226_CODES, RFC4226_SECRET, RFC6238_CODES, SEEDS, TIMES

RFC6238_VECTORS = [
    (algorithm, unix_time, code)
    for algorithm, codes in RFC6238_CODES.items()
    for unix_time, code in zip(TIMES, codes)
]


@pytest.mark.parametrize("counter, expected", list(enumerate(RFC4226_CODES)))
def test_hotp_rfc4226_appendix_d(counter, expected):
    assert hotp(RFC4226_SECRET, counter) == expected


def test_hotp_refuses_negative_counter():
    with pytest.raises(ValueError):
        hotp(RFC4226_SECRET, -1)


@pytest.mark.parametrize("algorithm, unix_time, expected", RFC6238_VECTORS)
def test_totp_rfc6238_appendix_b_8_digits(algorithm, unix_time, expected):
    assert totp(SEEDS[algorithm], unix_time, digits=8, algorithm=algorithm) == expected


@pytest.mark.parametrize("algorithm, unix_time, expected", RFC6238_VECTORS)
def test_totp_6_digits_is_last_6_of_8(algorithm, unix_time, expected):
    assert totp(SEEDS[algorithm], unix_time, digits=6, algorithm=algorithm) == expected[-6:]


def test_totp_default_is_6_digit_sha1():
    assert totp(SEEDS["SHA1"], 59) == "287082"


def test_sha256_vector_needs_the_32_byte_seed():
    # The RFC's reference code uses the 20-byte seed for every hash; the published table does not.
    assert totp(SEEDS["SHA1"], 59, digits=8, algorithm="SHA256") != "46119246"
    assert totp(SEEDS["SHA256"], 59, digits=8, algorithm="SHA256") == "46119246"


def test_codes_are_zero_padded():
    # SHA1 at 1111111109 is 07081804: the leading zero must survive.
    code = totp(SEEDS["SHA1"], 1111111109, digits=8)
    assert code == "07081804"
    assert len(code) == 8


@pytest.mark.parametrize(
    "unix_time, period, expected",
    [(0, 30, 0), (29, 30, 0), (30, 30, 1), (59, 30, 1), (59.999, 30, 1), (60, 60, 1), (1111111109, 30, 0x23523EC)],
)
def test_time_step(unix_time, period, expected):
    assert time_step(unix_time, period=period) == expected


def test_totp_period_changes_the_counter():
    key = SEEDS["SHA1"]
    # With a 60-second period, t=119 is step 1, which is t=59 at 30 seconds.
    assert totp(key, 119, period=60) == totp(key, 59, period=30) == "287082"


@pytest.mark.parametrize(
    "window, expected",
    [(1, range(0, 1)), (2, range(0, 2)), (3, range(-1, 2)), (4, range(-1, 3)), (5, range(-2, 3))],
)
def test_window_offsets_googleauth_semantics(window, expected):
    assert window_offsets(window) == expected


def test_window_offsets_match_java_truncating_division():
    def java_div(a: int, b: int) -> int:
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b > 0) else -q

    for w in range(1, 22):
        assert window_offsets(w) == range(java_div(-(w - 1), 2), java_div(w, 2) + 1), w


@pytest.mark.parametrize("window", [0, -1])
def test_window_offsets_refuses_less_than_one(window):
    with pytest.raises(ValueError):
        window_offsets(window)


_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


@pytest.mark.parametrize("seed", range(20))
def test_totp_agrees_with_pyotp(seed):
    rng = random.Random(seed)
    key = rng.randbytes(rng.choice([16, 20, 32, 64]))
    algorithm = rng.choice(list(_DIGESTS))
    digits = rng.choice([6, 7, 8])
    period = rng.choice([15, 30, 60, 90])
    unix_time = rng.randrange(0, 4_000_000_000)
    reference = pyotp.TOTP(
        base64.b32encode(key).decode(), digits=digits, digest=_DIGESTS[algorithm], interval=period
    )
    assert totp(key, unix_time, period=period, digits=digits, algorithm=algorithm) == reference.at(unix_time)


@pytest.mark.parametrize("seed", range(10))
def test_hotp_agrees_with_pyotp(seed):
    rng = random.Random(1000 + seed)
    key = rng.randbytes(20)
    counter = rng.randrange(0, 2**40)
    reference = pyotp.HOTP(base64.b32encode(key).decode())
    assert hotp(key, counter) == reference.at(counter)
